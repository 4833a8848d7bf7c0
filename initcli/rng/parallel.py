"""One large draw filled by forked processes: `initcli.parallel.fanout.map_in_order` over its pieces.

Threads cannot share this work: every numpy operation of the generation kernels takes 5-20 us,
about what handing the GIL from one thread to another costs, so two threads run one at a time.
The draw is cut into tasks of whole pieces; each piece is an independent range of the
counter-based stream, so the values do not depend on which process computed them. The output is
shared memory that the processes write into; a task counts as done once its process reports it
(after writing it), and any task a child did not report (it failed, crashed, or stalled and was
killed and reaped) is computed again by the caller. The processes are forked for the draw and
leave with it: `map_in_order` does the forking, the failures, the signals and the reaping for
inspect as well, so there is one fan-out in initcli.

What it is worth to a user (measured 2026-12-07 on this 2-core machine, interleaved whole
processes, best of 5, `INITCLI_WORKERS=1` for serial; /tmp/s23ab.py in issue 23's report):
`initcli sample --init he_normal --seed 0` at 4096x4096 takes 0.40 s with the fan-out (the
persistent pool this replaced) and 0.55 s serial on a quiet machine; at 3x3x512x512 0.24 s against
0.25 s; glorot_uniform 4096x4096 0.28 s against 0.31 s. Beside two busy processes: 1.78 against
1.81 s, 0.77 against 0.82 s, 0.98 against 1.05 s. So the fan-out pays for a large normal draw on
free cores and costs nothing under load. The pool of helpers kept between draws (841 lines: a
ring buffer, huge-page arenas, idle exits) made a CLI run no faster, since the CLI draws once per
process; it paid only in a library loop of draws, and was removed.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable

import numpy as np

from initcli.parallel.fanout import map_in_order

Fill = Callable[[int, int, np.ndarray], None]
"""fill(low, high, out): write elements [low, high) of the draw into `out` (high - low long)."""

# A draw is cut into at most this many tasks (4 bytes each in the task queue, a 64 KiB pipe).
_MAX_TASKS = 4096


def fill(fill_piece: Fill, elements: int, dtype: np.dtype, workers: int, piece: int) -> np.ndarray:
    """A new array of `elements` values of `dtype`, filled in pieces of `piece` elements by up to
    `workers` processes (the caller included; 1: by the caller alone)."""
    if workers <= 1 or elements <= piece:
        output = np.empty(elements, dtype=dtype)
        _fill_span(fill_piece, output, 0, elements, piece)
        return output
    mapping = mmap.mmap(-1, elements * dtype.itemsize, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    output = np.frombuffer(mapping, dtype=dtype, count=elements)
    span = piece * -(-elements // (piece * _MAX_TASKS))  # whole pieces per task

    def task(low: int) -> None:
        _fill_span(fill_piece, output, low, min(elements, low + span), piece)

    for _ in map_in_order(task, range(0, elements, span), workers=workers):
        pass
    return output


def _fill_span(fill_piece: Fill, output: np.ndarray, low: int, high: int, piece: int) -> None:
    for start in range(low, high, piece):
        stop = min(high, start + piece)
        fill_piece(start, stop, output[start:stop])
