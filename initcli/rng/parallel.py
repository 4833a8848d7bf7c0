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

What it is worth to a user (measured 2026-12-07 on this 2-core VM shared with other jobs, so
"quiet" means load average 0.4-1.9: whole processes, interleaved, best of 5 unless said, fan-out
against `INITCLI_WORKERS=1`: benchmarks/bench_fanout.py). `initcli sample --init he_normal
--seed 0` at 4096x4096: 0.43-0.46 s against 0.55-0.56 s serial quiet; beside two busy processes
0.71-0.73 s against 0.76-0.77 s (best of 7 and 5). At 3x3x512x512 and for glorot_uniform 4096x4096
the two are within 5% either way. Under the other jobs' load alone (load average near 5), two runs
gave 0.67 s against 0.60 s and 1.48 s against 1.24 s serial. So the fan-out pays for a large draw
on free CPUs (20%), is even beside two busy processes, and costs 12-20% when many other jobs are
running; a check of the load before forking (/proc/loadavg) was tried and measured no steadier.
The pool of helpers kept between draws that this replaced (841 lines: a ring buffer, huge-page
arenas, idle exits, draw numbers) measured 0.40 s / 0.55 s serial quiet and 1.78 / 1.81 s loaded:
no better for a CLI run, which draws once per process. It paid only in a library loop of draws
(about 2x on free CPUs), which now forks at every large draw.
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
