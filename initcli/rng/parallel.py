"""One large draw filled by several forked processes writing into shared memory (Linux).

Threads cannot share this work: every numpy operation of the generation kernels takes 5-20 us,
about what handing the GIL from one thread to another costs, so two threads run one at a time.
Forked processes each run the kernels at full speed. The output lives in an anonymous shared
mapping made before the fork; the draw is cut into pieces that the processes (the caller
included) take from a queue (a pipe holding the piece numbers) until it is empty, so a process
that gets less CPU simply does fewer pieces. Each piece is an independent range of the
counter-based stream, so the result does not depend on who computed what.

The caller never waits for a child without a bound and never trusts a child that did not exit
cleanly: a child that fails, crashes or outlives a generous deadline is killed, and every piece
it did not finish, or finished before failing, is computed again by the caller. When processes
are not safe or not worth it (not Linux, a small draw, TensorFlow's thread pools in the process,
`INITCLI_WORKERS=1`) the caller fills everything itself.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable
from typing import NoReturn

import numpy as np

from initcli import scratch
from initcli.errors import BadInputError

WORKERS_VARIABLE = "INITCLI_WORKERS"
# Below this many elements a fork and the page faults of fresh memory cost more than the second
# core saves (measured with benchmarks/bench_sample.py; see README).
MIN_PARALLEL_ELEMENTS = 1 << 19
# Each process keeps up to ~120 bytes of scratch per element of a piece; eight processes bound
# that on any machine.
MAX_WORKERS = 8
# A child still running this long after the caller ran out of pieces is killed (its pieces are
# recomputed): at least a second, or 20 pieces' time on a loaded machine.
_MIN_GRACE_SECONDS = 1.0
_GRACE_PIECES = 20
_PR_SET_PDEATHSIG = 1
_FORK_WITH_THREADS = r"This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks"

Fill = Callable[[int, int, np.ndarray], None]
"""fill(low, high, out): write elements [low, high) of the draw into `out` (high - low long)."""

# Tests only: called in each child before each of its pieces with (worker, piece number).
_child_hook: Callable[[int, int], None] | None = None


def requested_workers() -> int | None:
    """`INITCLI_WORKERS` from the environment (at least 1), or None when it is not set.

    Raises:
        BadInputError: it is set to something other than a positive whole number.
    """
    text = os.environ.get(WORKERS_VARIABLE, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise BadInputError(f"{WORKERS_VARIABLE} must be a whole number of processes, at least 1. Received: {text!r}")
    return value


def worker_count(elements: int) -> int:
    """How many processes (the caller included) should fill a draw of `elements`; 1 means no fork.

    At most the CPUs this process may run on (its affinity mask), `MAX_WORKERS` and
    `INITCLI_WORKERS`; 1 off Linux, below `MIN_PARALLEL_ELEMENTS`, and when TensorFlow is loaded
    (its thread pools make a fork unsafe).
    """
    requested = requested_workers()
    if elements < MIN_PARALLEL_ELEMENTS or not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 1
    if "tensorflow" in sys.modules:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        return 1
    return max(1, min(cpus, MAX_WORKERS, requested or cpus))


def fill(fill_piece: Fill, elements: int, dtype: np.dtype, workers: int, piece: int) -> np.ndarray:
    """A new array of `elements` values of `dtype`, filled by `workers` processes in pieces.

    Args:
        fill_piece: computes one range of the draw; must give the same values in any process.
        elements: the draw's length.
        dtype: its dtype.
        workers: processes to use, the caller included (see `worker_count`).
        piece: elements per piece, a multiple of 4 (the last piece may be shorter); raised where
            the queue would not fit in a pipe.
    """
    if workers <= 1 or elements <= piece:
        output = np.empty(elements, dtype=dtype)
        _fill_range(fill_piece, output, 0, elements, piece)
        return output
    read_end, write_end = os.pipe()
    try:
        capacity = max(1, _pipe_capacity(write_end) // 4)
        piece = -(-max(piece, -(-elements // capacity)) // 4) * 4
        pieces = -(-elements // piece)
        output = _shared_array(elements, dtype)
        # owner[p]: 0 while piece p is not done, else 1 + the worker that did it (0 is the caller).
        owner = _shared_array(pieces, np.dtype(np.uint8))
        _queue(write_end, pieces)
    finally:
        os.close(write_end)
    children: dict[int, int] = {}  # pid -> worker number
    statuses: dict[int, int] = {}  # worker number -> wait status
    try:
        os.set_blocking(read_end, False)
        libc = _libc()
        parent = os.getpid()
        for worker in range(1, min(workers, pieces)):
            try:
                pid = _fork()
            except OSError:  # no more processes: the caller does their share
                break
            if pid == 0:
                _child(libc, parent, worker, fill_piece, output, owner, read_end, piece)
            children[pid] = worker
        longest = _take_pieces(fill_piece, output, owner, read_end, piece, worker=0)
        statuses = _reap(children, time.monotonic() + max(_MIN_GRACE_SECONDS, _GRACE_PIECES * longest))
        children.clear()
    finally:
        os.close(read_end)
        _kill_all(children)
    failed = [1 + worker for worker, status in statuses.items() if status != 0]
    for index in np.flatnonzero((owner == 0) | np.isin(owner, failed)).tolist():
        low = index * piece
        high = min(elements, low + piece)
        fill_piece(low, high, output[low:high])
    return output


def _pipe_capacity(fd: int) -> int:
    """Bytes a pipe holds (64 KiB by default; 4 KiB once a user has too many pipe pages)."""
    try:
        import fcntl

        return fcntl.fcntl(fd, getattr(fcntl, "F_GETPIPE_SZ", 1032))
    except OSError:
        return select.PIPE_BUF


def _queue(write_end: int, pieces: int) -> None:
    """Write the piece numbers into the pipe without ever blocking.

    Chunks of at most PIPE_BUF bytes are written whole or not at all; numbers that do not fit
    stay undone, and the caller computes them after the children.
    """
    os.set_blocking(write_end, False)
    numbers = np.arange(pieces, dtype=np.uint32).tobytes()
    for start in range(0, len(numbers), select.PIPE_BUF):
        try:
            os.write(write_end, numbers[start : start + select.PIPE_BUF])
        except BlockingIOError:
            return


def _shared_array(elements: int, dtype: np.dtype) -> np.ndarray:
    """A zeroed array in an anonymous mapping that forked children write into and the caller sees."""
    size = max(elements * dtype.itemsize, 1)
    mapping = mmap.mmap(-1, size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    return np.frombuffer(mapping, dtype=dtype, count=elements)


def _fill_range(fill_piece: Fill, output: np.ndarray, low: int, high: int, piece: int) -> None:
    for start in range(low, high, piece):
        stop = min(high, start + piece)
        fill_piece(start, stop, output[start:stop])


def _take_pieces(fill_piece: Fill, output: np.ndarray, owner: np.ndarray, queue: int, piece: int, worker: int) -> float:
    """Fill pieces taken from the queue until it is empty; return the longest piece's seconds.

    Every piece number was written before the fork, so an empty pipe means the work is handed
    out (each 4-byte read takes one whole number: pipe reads of that size are atomic).
    """
    longest = 0.0
    elements = output.size
    while True:
        try:
            word = os.read(queue, 4)
        except BlockingIOError:
            return longest
        if len(word) != 4:
            return longest
        index = int.from_bytes(word, sys.byteorder)
        if worker and _child_hook is not None:
            _child_hook(worker, index)
        low = index * piece
        high = min(elements, low + piece)
        started = time.monotonic()
        fill_piece(low, high, output[low:high])
        longest = max(longest, time.monotonic() - started)
        owner[index] = 1 + worker


def _child(
    libc: object,
    parent: int,
    worker: int,
    fill_piece: Fill,
    output: np.ndarray,
    owner: np.ndarray,
    queue: int,
    piece: int,
) -> NoReturn:
    """A forked child's whole life: take pieces until none are left, then exit 0 (1 on any error).

    It dies with the caller, ignores Ctrl-C (the caller handles it and kills its children),
    writes nothing to stdout/stderr and leaves through os._exit: no atexit handlers, no flushing
    of buffers the caller also holds.
    """
    code = 1
    try:
        gc.disable()  # a collection would touch, and so copy, every page of the inherited heap
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(AttributeError, OSError):
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # type: ignore[attr-defined]
        if os.getppid() != parent:  # the caller died before prctl took effect
            os._exit(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        scratch.replace_thread_scratch(scratch.Scratch())  # the caller's buffers stay the caller's
        _take_pieces(fill_piece, output, owner, queue, piece, worker)
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the caller recomputes this child's pieces
        code = 1
    finally:
        os._exit(code)


def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns on fork in a process with threads; the child only runs numpy kernels.
        warnings.filterwarnings("ignore", message=_FORK_WITH_THREADS, category=DeprecationWarning)
        return os.fork()


def _reap(children: dict[int, int], deadline: float) -> dict[int, int]:
    """Wait for the children until `deadline`, then kill those still running.

    Returns each child's wait status (0 for a clean exit) keyed by worker number.
    """
    statuses: dict[int, int] = {}
    pending = dict(children)
    waiters = _pidfds(pending)
    try:
        while pending:
            for pid in list(pending):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    statuses[pending.pop(pid)] = status
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            fds = [waiters[pid] for pid in pending if pid in waiters]
            if len(fds) == len(pending):
                select.select(fds, [], [], remaining)
            else:
                time.sleep(min(remaining, 0.0002))
    finally:
        for fd in waiters.values():
            os.close(fd)
    for pid, worker in pending.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        statuses[worker] = -1
    return statuses


def _pidfds(children: dict[int, int]) -> dict[int, int]:
    """A pollable descriptor per child (Linux 5.3+), readable once it has exited; none elsewhere."""
    fds: dict[int, int] = {}
    if not hasattr(os, "pidfd_open"):
        return fds
    for pid in children:
        try:
            fds[pid] = os.pidfd_open(pid)
        except OSError:
            break
    return fds


def _kill_all(children: dict[int, int]) -> None:
    """Kill and reap children left running (the caller is leaving with an exception)."""
    for pid in children:
        if pid > 0:  # never 0: that would signal the whole process group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


_LIBC: object | None = None


def _libc() -> object:
    """The C library through ctypes (for prctl), loaded on the first parallel draw."""
    global _LIBC
    if _LIBC is None:
        import ctypes

        _LIBC = ctypes.CDLL(None)
    return _LIBC
