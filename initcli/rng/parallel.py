"""One large draw filled by several forked processes (Linux).

Threads cannot share this work: every numpy operation of the generation kernels takes 5-20 us,
about what handing the GIL from one thread to another costs, so two threads run one at a time.
Forked processes each run the kernels at full speed. The draw is cut into pieces that the
processes (the caller included) take from a queue (a pipe holding the piece numbers) until it is
empty, so a process that gets less CPU simply does fewer pieces. Each piece is an independent
range of the counter-based stream, so the result does not depend on who computed what. The
caller writes its pieces straight into the output; a child writes each piece into a slot of a
small shared ring, and the caller copies it out (see `_Draw`).

The caller never waits for a child without a bound and never trusts a child that did not finish
cleanly: a child that fails, crashes or outlives a generous deadline is killed, and every piece
it did not deliver, or delivered before failing, is computed again by the caller. A child that
announced its last piece has nothing left to do but `os._exit(0)`: the caller does not wait for
the kernel to tear it down (0.3-0.5 ms here) but reaps it at its next draw (or, once the caller
has exited, init does). When processes
are not safe or not worth it (not Linux, a small draw, TensorFlow's thread pools in the process,
`INITCLI_WORKERS=1`) the caller fills everything itself.

A draw whose fill function pickles (the engine's always do: a module-level kernel and its stream)
is done by helpers that outlive it: forked at the first such draw, they wait for the next one on a
pipe and leave after `IDLE_SECONDS` without one, so repeated draws in one process pay the fork, the
child's start and its fresh scratch memory once (`_Pool`). Everything above about failures holds
for them: a helper that fails, crashes or hangs in a draw is killed, its pieces are recomputed, and
the next draw forks a new one. Any other fill function (a closure) gets children of its own that
exit with the draw.

What it is worth to a user (measured 2026-12-07 on this 2-core machine, best of 3, while other jobs
kept the load average near 2.5, so "quiet" was seldom quiet): a whole-process `initcli sample` at
3x3x512x512 / 4096x4096 takes 0.45 / 0.91 s with the helpers and 0.43 / 0.88 s serial
(`INITCLI_WORKERS=1`); beside two busy processes, 0.97 / 1.95 s with helpers against 1.56 / 2.35 s
serial. With one draw per process the pool and one-shot children do the same work. An API loop of
3x3x512x512 draws: 28-53 ms a draw with the pool, 56-58 ms with one-shot children, 58-59 ms serial,
so the pool pays about 2x only in library loops on free cores. Removing the pool (keeping one-shot
children or none) is open work of issue 23.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn

import numpy as np

from initcli.parallel import fanout, scratch

# Each process keeps a scratch arena (8 MiB at 2^16-element pieces) and each child a ring of 4
# pieces; eight processes bound that on any machine.
MAX_WORKERS = 8
# A child still running this long after the caller ran out of pieces is killed (its pieces are
# recomputed): at least a second, or 20 pieces' time on a loaded machine.
_MIN_GRACE_SECONDS = 1.0
_GRACE_PIECES = 20
# Scratch bytes a process may need per element of a piece (the kernels use at most 66, measured).
_SCRATCH_BYTES_PER_ELEMENT = 128
_HUGE_PAGE = 2 << 20
# Ring slots (pieces a child may have computed before the caller copies them out) per child.
_SLOTS_PER_CHILD = 4
_LAST = 0xFFFFFFFF  # a child's last message of a draw: (draw, _LAST, its first slot)
# A pool helper with no draw to do for this long leaves (it holds a copy of the caller's memory as
# it was when forked, which the caller cannot give back to the system while the helper lives).
IDLE_SECONDS = 5.0
# Pool helpers' ring slots hold a piece of this many bytes: 2^16 float64 values.
_POOL_SLOT_BYTES = 1 << 19
_COMMAND = struct.Struct("<IIIQI")  # draw, piece, pieces, elements, length of the pickled (fill, dtype)
_FORK_WITH_THREADS = r"This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks"

Fill = Callable[[int, int, np.ndarray], None]
"""fill(low, high, out): write elements [low, high) of the draw into `out` (high - low long)."""

# Tests only: called before each piece with (worker, piece number); the caller is worker 0.
_piece_hook: Callable[[int, int], None] | None = None
# Tests only: descriptors a pool helper keeps open (a log its _piece_hook writes to).
_keep_in_helpers: set[int] = set()


def worker_count(elements: int, min_elements: int) -> int:
    """How many processes (the caller included) should fill a draw of `elements`; 1 means no fork.

    `initcli.parallel.fanout.worker_count` (CPUs, `INITCLI_WORKERS`, Linux, no TensorFlow), and 1 below
    `min_elements`, or below a quarter of it while pool helpers are waiting: with no fork to pay,
    two pieces are worth sharing.
    """
    workers = fanout.worker_count(MAX_WORKERS)  # checks INITCLI_WORKERS even for a small draw
    if elements >= min_elements:
        return workers
    pool = _pools.get(os.getpid())
    if pool is None or elements < min_elements // 4:
        return 1
    return workers if any(_running(pid) for pid, _, _ in list(pool.helpers.values())) else 1


def _running(pid: int) -> bool:
    """Child `pid` has not exited (it is not reaped here: its draw's bookkeeping does that)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def fill(fill_piece: Fill, elements: int, dtype: np.dtype, workers: int, piece: int) -> np.ndarray:
    """A new array of `elements` values of `dtype`, filled by `workers` processes in pieces.

    Args:
        fill_piece: computes one range of the draw; must give the same values in any process. When
            it pickles, the draw goes to the pool's helpers (see `_Pool`).
        elements: the draw's length.
        dtype: its dtype.
        workers: processes to use, the caller included (see `worker_count`).
        piece: elements per piece, a multiple of 4 (the last piece may be shorter); raised where
            the queue would not fit in a pipe.
    """
    output = _private_array(elements, dtype)
    if workers <= 1 or elements <= piece:
        for low in range(0, elements, piece):
            fill_piece(low, min(elements, low + piece), output[low : low + piece])
        return output
    reap_finished()
    pooled = _pool_for(fill_piece, dtype, piece)
    pieces = -(-elements // piece)
    # One draw at a time uses the pool (its queue, ring and helpers); another thread's draw meanwhile
    # gets children of its own.
    if pooled is not None and pieces <= _pipe_capacity(pooled[0].queue.write) // 4 and pooled[0].lock.acquire(False):
        pool, recipe = pooled
        try:
            if pool.queue.read >= 0:  # not shut down meanwhile (another thread's draw was interrupted)
                _Draw(fill_piece, output, piece, pieces, min(workers, pieces) - 1, pool.queue.read, pool, recipe).run()
                return output
        finally:
            pool.lock.release()
    with _Pipe() as queue:
        capacity = max(1, _pipe_capacity(queue.write) // 4)
        piece = -(-max(piece, -(-elements // capacity)) // 4) * 4
        pieces = -(-elements // piece)
        os.set_blocking(queue.write, False)
        _send(queue.write, np.arange(pieces, dtype=np.uint32))
        queue.close_write()
        os.set_blocking(queue.read, False)
        draw = _Draw(fill_piece, output, piece, pieces, min(workers, pieces) - 1, queue.read)
        draw.run()
    return output


# Children that announced their last piece and were left to exit, reaped by the next draw.
_exiting: list[int] = []


def reap_finished() -> None:
    """Reap the children of earlier draws that have exited (without waiting for the others)."""
    for pid in list(_exiting):
        if _reaped(pid):
            with contextlib.suppress(ValueError):  # another thread's draw reaped it meanwhile
                _exiting.remove(pid)


def _reaped(pid: int) -> bool:
    """Child `pid` has exited and is reaped now (or was already); False while it runs."""
    try:
        exited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return exited != 0


class _Pipe:
    """An os.pipe() whose ends close when the `with` block is left (each at most once)."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe()

    def close_read(self) -> None:
        if self.read >= 0:
            os.close(self.read)
            self.read = -1

    def close_write(self) -> None:
        if self.write >= 0:
            os.close(self.write)
            self.write = -1

    def __enter__(self) -> _Pipe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close_read()
        self.close_write()


class _Pool:
    """Helper processes kept between draws, and what the caller talks to them through.

    All of it lives as long as the pool: the queue of piece numbers (the caller writes a draw's
    pieces before asking any helper to start, so an empty queue means the draw is handed out),
    the `done` pipe of announcements, one ring of `_SLOTS_PER_CHILD` slots per helper (shared
    memory, slots of `_POOL_SLOT_BYTES`), and per helper a pipe of draws to do and a pipe of its
    free slots. A helper is forked when a draw needs it and is not there (never forked, or gone:
    idle, killed, failed). Belongs to the process that made it: a process forked from that one
    (its user's own fork) makes its own.
    """

    def __init__(self) -> None:
        self.queue, self.done = _Pipe(), _Pipe()
        for end in (self.queue.read, self.queue.write, self.done.read):
            os.set_blocking(end, False)
        self.ring = _shared_array((MAX_WORKERS - 1) * _SLOTS_PER_CHILD * _POOL_SLOT_BYTES, np.dtype(np.uint8))
        self.helpers: dict[int, tuple[int, _Pipe, _Pipe]] = {}  # worker number -> (pid, commands, free slots)
        self.draws = 0
        self.pending = b""  # a partial announcement read from `done`
        self.lock = threading.Lock()  # held by the draw using the pool

    def ring_view(self, dtype: np.dtype, piece: int) -> np.ndarray:
        """The ring as (slot, element) for pieces of `piece` values of `dtype`."""
        slots = self.ring.reshape(-1, _POOL_SLOT_BYTES)[:, : piece * dtype.itemsize]
        return slots.view(dtype)

    def helper_ready(self, worker: int, parent: int) -> int | None:
        """The pid of helper `worker`, forked now if it is not running; None if the fork fails."""
        if worker in self.helpers:
            pid = self.helpers[worker][0]
            if not _reaped(pid):
                return pid
            self.forget(worker)  # it left (idle) or died between draws
        commands, free = _Pipe(), _free_slots(worker)
        try:
            pid, mask = _fork()
        except OSError:  # no more processes: the caller does their share
            commands.__exit__()
            free.__exit__()
            return None
        if pid == 0:
            _helper(parent, worker, self, commands, free, mask)
        commands.close_read()
        self.helpers[worker] = (pid, commands, free)
        return pid

    def ask(self, worker: int, draw: int, piece: int, pieces: int, elements: int, recipe: bytes) -> None:
        """Send helper `worker` a draw to work on (a write of a few hundred bytes: never blocks)."""
        header = _COMMAND.pack(draw, piece, pieces, elements, len(recipe))
        os.write(self.helpers[worker][1].write, header + recipe)

    def forget(self, worker: int) -> None:
        """Close the caller's ends of a helper's pipes (it is gone, or killed and reaped)."""
        _, commands, free = self.helpers.pop(worker)
        commands.__exit__()
        free.__exit__()

    def shut_down(self) -> None:
        """Kill and reap every helper and close everything (a draw was interrupted, or a test ends)."""
        _kill_all({worker: pid for worker, (pid, _, _) in self.helpers.items()})
        for worker in list(self.helpers):
            self.forget(worker)
        for pipe in (self.queue, self.done):
            pipe.__exit__()


_pools: dict[int, _Pool] = {}  # by the pid of the process that owns it


def _pool_for(fill_piece: Fill, dtype: np.dtype, piece: int) -> tuple[_Pool, bytes] | None:
    """This process's pool and the draw as its helpers receive it (the pickled fill function and
    dtype: bfloat16's dtype has no name numpy alone knows), when the draw can use it: its fill
    function pickles and a piece fits a slot."""
    if piece * dtype.itemsize > _POOL_SLOT_BYTES or piece % 4:
        return None
    try:
        recipe = pickle.dumps((fill_piece, dtype), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a closure or any other unpicklable fill: children of its own
        return None
    owner = os.getpid()
    pool = _pools.get(owner)
    if pool is None:
        for inherited in list(_pools):  # a pool inherited from the process this one was forked from is not ours
            if inherited != owner:
                _pools.pop(inherited, None)
        # No lock: a user's fork while another thread held it would leave the child one held forever.
        new = _Pool()
        pool = _pools.setdefault(owner, new)
        if pool is not new:  # another thread's first draw made one meanwhile
            new.shut_down()
    return pool, recipe


def shut_down_pool() -> None:
    """Kill this process's pool helpers, if any (they otherwise leave after IDLE_SECONDS idle)."""
    pool = _pools.pop(os.getpid(), None)
    if pool is not None:
        pool.shut_down()


class _Draw:
    """One parallel fill, as the caller runs it.

    Each child computes its pieces into slots of a small shared ring (`_SLOTS_PER_CHILD` pieces
    each), announces (draw, piece, slot) on the `done` pipe and takes a free slot back from its own
    pipe; the caller copies announced slots into the output between its own pieces, and frees
    them. The output is the caller's own memory: shared memory costs a page fault per 4 KiB
    written (~1.4 us here), the ring is faulted in once, and the copy runs at memory speed. The
    children are forked for this draw, or are the pool's helpers (`pool`).
    """

    def __init__(
        self,
        fill_piece: Fill,
        output: np.ndarray,
        piece: int,
        pieces: int,
        children: int,
        queue: int,
        pool: _Pool | None = None,
        recipe: bytes = b"",
    ):
        self.fill_piece, self.output, self.piece, self.pieces, self.queue = fill_piece, output, piece, pieces, queue
        self.children, self.pool, self.recipe = children, pool, recipe
        if pool is None:
            self.ring = _shared_array(children * _SLOTS_PER_CHILD * piece, output.dtype).reshape(-1, piece)
            self.number = 0
        else:
            self.ring = pool.ring_view(output.dtype, piece)
            pool.draws += 1
            self.number = pool.draws & 0xFFFFFFFF
        # owner[p]: 0 while piece p is not in the output, else 1 + the worker it came from (0: the caller).
        self.owner = np.zeros(pieces, dtype=np.uint8)
        self.pids: dict[int, int] = {}  # worker number -> pid, while it may run
        self.finished: set[int] = set()  # workers that announced their last piece or died
        self.statuses: dict[int, int] = {}  # worker number -> wait status
        self.pending = b""

    def run(self) -> None:
        if self.pool is not None:
            self._run_pooled(self.pool)
            return
        done = _Pipe()
        free = [_free_slots(worker) for worker in range(1, self.children + 1)]
        try:
            fanout.libc()  # loaded here, once, rather than in every child
            parent = os.getpid()
            for worker in range(1, self.children + 1):
                try:
                    pid, mask = _fork()
                except OSError:  # no more processes: the caller does their share
                    break
                if pid == 0:
                    _child(parent, worker, self, done, free, mask)
                self.pids[worker] = pid
            # The caller keeps the read ends of the free pipes: handing a slot back to a child
            # that died must not raise EPIPE (or SIGPIPE, where a program restored it).
            done.close_write()
            os.set_blocking(done.read, False)
            self._share(done.read, [slots.write for slots in free])
            for worker in self.finished - set(self.statuses):  # announced their last piece: exiting
                _exiting.append(self.pids.pop(worker))
                self.statuses[worker] = 0
            self.statuses.update(_reap(self.pids, time.monotonic() + _MIN_GRACE_SECONDS))
            self.pids.clear()
        finally:
            _kill_all(self.pids)
            done.close_read()
            done.close_write()
            for slots in free:
                slots.close_read()
                slots.close_write()
        self._recompute()

    def _run_pooled(self, pool: _Pool) -> None:
        """The draw by the pool's helpers: fork the missing ones, hand the pieces out, ask each to start."""
        parent = os.getpid()
        try:
            with contextlib.suppress(BlockingIOError):
                while os.read(pool.queue.read, 1 << 16):  # nothing should be left; never trust it
                    pass
            _send(pool.queue.write, np.arange(self.pieces, dtype=np.uint32))
            fanout.libc()
            for worker in range(1, self.children + 1):
                pid = pool.helper_ready(worker, parent)
                if pid is None:
                    break
                self.pids[worker] = pid
            asked = []
            for worker in list(self.pids):
                try:
                    pool.ask(worker, self.number, self.piece, self.pieces, self.output.size, self.recipe)
                except BrokenPipeError:  # it left (idle) or was killed since helper_ready: the others do its share
                    _kill_all({worker: self.pids.pop(worker)})
                    pool.forget(worker)
                    continue
                asked.append(worker)
            free_writes = [
                pool.helpers[worker][2].write if worker in pool.helpers else -1
                for worker in range(1, self.children + 1)
            ]
            self.pending = pool.pending
            self._share(pool.done.read, free_writes)
            pool.pending = self.pending
            # A helper that announced its last piece waits for the next draw; one that exited
            # (reaped by _wait) or is still running past the deadline (killed here) leaves the pool.
            for worker in asked:
                if worker in self.statuses:
                    pool.forget(worker)
                elif worker not in self.finished:
                    _kill_all({worker: self.pids.pop(worker)})
                    self.statuses[worker] = -1
                    pool.forget(worker)
            self.pids.clear()
        except BaseException:
            shut_down_pool()  # interrupted half way (Ctrl-C): no helper is left in an unknown state
            raise
        self._recompute()

    def _share(self, done: int, free: list[int]) -> None:
        """The caller's part once the children are at work: take pieces (copying the children's in
        between), then wait for the children's last pieces, with a deadline."""
        with _own_arena(self.piece):
            longest = _take_pieces(
                self.queue,
                self.piece,
                self.output.size,
                self.fill_piece,
                0,
                self._output_piece,
                lambda index: self._collect(done, free),
            )
        self._wait(done, free, time.monotonic() + max(_MIN_GRACE_SECONDS, _GRACE_PIECES * longest))

    def _recompute(self) -> None:
        """Compute here every piece no worker delivered, or that a worker which failed delivered."""
        failed = [1 + worker for worker, status in self.statuses.items() if status != 0]
        for index in np.flatnonzero((self.owner == 0) | np.isin(self.owner, failed)).tolist():
            low = index * self.piece
            self.fill_piece(low, min(self.output.size, low + self.piece), self.output[low : low + self.piece])

    def _output_piece(self, index: int) -> np.ndarray:
        """Where the caller writes piece `index`: straight into the output."""
        self.owner[index] = 1
        return self.output[index * self.piece : (index + 1) * self.piece]

    def _collect(self, done: int, free: list[int]) -> None:
        """Copy every announced slot of this draw into the output and hand it back to its child."""
        try:
            self.pending += os.read(done, 1 << 16)
        except BlockingIOError:
            return
        whole = len(self.pending) // 12 * 12
        messages = np.frombuffer(self.pending[:whole], dtype=np.uint32).reshape(-1, 3)
        self.pending = self.pending[whole:]
        for number, index, slot in messages.tolist():
            worker = 1 + slot // _SLOTS_PER_CHILD
            if number != self.number or worker > self.children:
                continue
            if index == _LAST:
                self.finished.add(worker)
                continue
            if index >= self.pieces:
                continue
            low = index * self.piece
            high = min(self.output.size, low + self.piece)
            self.output[low:high] = self.ring[slot, : high - low]
            self.owner[index] = 1 + worker
            if free[worker - 1] >= 0:
                _send(free[worker - 1], np.array([slot], dtype=np.uint32))

    def _wait(self, done: int, free: list[int], deadline: float) -> None:
        """Collect until every child has announced its last piece or died, or the deadline passes.

        A child that exited is reaped here: its status goes to `statuses` and it leaves `pids`.
        """
        waiters = _pidfds(self.pids.values())
        try:
            while True:
                self._collect(done, free)
                for worker, pid in list(self.pids.items()):
                    exited, status = os.waitpid(pid, os.WNOHANG)
                    if exited:
                        self.statuses[worker] = status
                        self.finished.add(worker)
                        del self.pids[worker]
                remaining = deadline - time.monotonic()
                running = [pid for worker, pid in self.pids.items() if worker not in self.finished]
                if not running or remaining <= 0:
                    return
                watched = [waiters[pid] for pid in running if pid in waiters]
                timeout = remaining if len(watched) == len(running) else min(remaining, 0.001)
                select.select([done, *watched], [], [], timeout)
        finally:
            for fd in waiters.values():
                os.close(fd)
            self._collect(done, free)


def _pipe_capacity(fd: int) -> int:
    """Bytes a pipe holds (64 KiB by default; 4 KiB once a user has too many pipe pages)."""
    try:
        import fcntl

        return fcntl.fcntl(fd, getattr(fcntl, "F_GETPIPE_SZ", 1032))
    except OSError:
        return select.PIPE_BUF


def _private_array(elements: int, dtype: np.dtype) -> np.ndarray:
    """An uninitialized array in fresh memory, in 2 MiB pages where the kernel allows.

    Filling memory that was never touched costs a page fault per page; with 4 KiB pages that was
    a fifth of a parallel 3x3x512x512 draw here. (numpy asks for huge pages too, but the C
    library often hands back smaller, already fragmented memory.)
    """
    nbytes = elements * dtype.itemsize
    if nbytes < _HUGE_PAGE:
        return np.empty(elements, dtype=dtype)
    mapping = mmap.mmap(-1, nbytes + _HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(AttributeError, OSError):
        mapping.madvise(mmap.MADV_HUGEPAGE)
    whole = np.frombuffer(mapping, dtype=np.uint8)
    start = -whole.ctypes.data % _HUGE_PAGE
    return whole[start : start + nbytes].view(dtype)


def _shared_array(elements: int, dtype: np.dtype) -> np.ndarray:
    """A zeroed array in an anonymous mapping that forked children write into and the caller sees."""
    size = max(elements * dtype.itemsize, 1)
    mapping = mmap.mmap(-1, size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    return np.frombuffer(mapping, dtype=dtype, count=elements)


def _take_pieces(
    queue: int,
    piece: int,
    elements: int,
    fill_piece: Fill,
    worker: int,
    target: Callable[[int], np.ndarray],
    on_done: Callable[[int], None],
) -> float:
    """Fill pieces taken from the queue until it is empty; return the longest piece's seconds.

    Every piece number was written before any worker started, so an empty pipe means the work is
    handed out (each 4-byte read takes one whole number: pipe reads of that size are atomic).
    `target(index)` is where the piece goes; `on_done(index)` follows each piece.
    """
    longest = 0.0
    while True:
        try:
            word = os.read(queue, 4)
        except BlockingIOError:
            return longest
        if len(word) != 4:
            return longest
        index = int.from_bytes(word, sys.byteorder)
        if _piece_hook is not None:
            _piece_hook(worker, index)
        low = index * piece
        high = min(elements, low + piece)
        started = time.monotonic()
        fill_piece(low, high, target(index)[: high - low])
        longest = max(longest, time.monotonic() - started)
        on_done(index)


def _child(
    parent: int,
    worker: int,
    draw: _Draw,
    done_pipe: _Pipe,
    pipes: list[_Pipe],
    mask: set[int | signal.Signals],
) -> NoReturn:
    """A forked child's whole life: its share of `draw` (see `_deliver`), then exit 0 (1 on any error).

    It dies with the caller, ignores Ctrl-C (the caller handles it and kills its children),
    writes nothing to stdout/stderr and leaves through os._exit: no atexit handlers, no flushing
    of buffers the caller also holds.
    """
    code = 1
    try:
        done_pipe.close_read()
        for other in pipes:
            other.close_write()
        _settle(parent, mask)
        scratch.replace_thread_scratch(Arena(draw.piece * _SCRATCH_BYTES_PER_ELEMENT))
        _deliver(
            0,
            worker,
            draw.queue,
            draw.piece,
            draw.output.size,
            draw.fill_piece,
            draw.ring,
            pipes[worker - 1].read,
            done_pipe.write,
        )
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the caller recomputes this child's pieces
        code = 1
    finally:
        os._exit(code)


def _helper(
    parent: int, worker: int, pool: _Pool, commands: _Pipe, free: _Pipe, mask: set[int | signal.Signals]
) -> NoReturn:
    """A pool helper's whole life: wait for a draw (at most IDLE_SECONDS), do its share as `_child`
    does, wait again; exit 0 when idle or when the caller closed its pipe, 1 on any error (the
    caller then recomputes what it did not deliver, and forks another next time).
    """
    code = 1
    try:
        _settle(parent, mask)
        # Only this helper's own ends stay open. It outlives the draw that forked it, so it must not
        # hold the caller's files, pipes and sockets (a pipe the caller closes would not reach its
        # end while the helper lives), nor the other helpers' pipes or the caller's ends of its own.
        _close_all_but({commands.read, free.read, pool.queue.read, pool.done.write, *_keep_in_helpers})
        # Sized for the largest piece a slot holds (2-byte values); only what is used is ever touched.
        scratch.replace_thread_scratch(Arena(_POOL_SLOT_BYTES // 2 * _SCRATCH_BYTES_PER_ELEMENT))
        while select.select([commands.read], [], [], IDLE_SECONDS)[0]:
            header = _read_exactly(commands.read, _COMMAND.size)
            if header is None:
                break  # the caller closed the pipe
            number, piece, pieces, elements, length = _COMMAND.unpack(header)
            recipe = _read_exactly(commands.read, length)
            if recipe is None:
                break
            fill_piece, dtype = pickle.loads(recipe)  # noqa: S301 - from the caller that forked this helper
            ring = pool.ring_view(dtype, piece)
            _deliver(number, worker, pool.queue.read, piece, elements, fill_piece, ring, free.read, pool.done.write)
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the caller recomputes this helper's pieces
        code = 1
    finally:
        os._exit(code)


def _settle(parent: int, mask: set[int | signal.Signals]) -> None:
    """A child's or helper's first steps: no garbage collection (it would touch, and so copy, every
    page of the inherited heap), Ctrl-C ignored, the held signals delivered here, and leave at once
    if the caller is already gone (see `fanout.settle_child`)."""
    gc.disable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fanout.release(mask)  # held since the fork: SIGTERM or SIGHUP now end this process here
    if not fanout.settle_child(parent):  # the caller died before prctl took effect
        os._exit(1)


def _deliver(
    number: int,
    worker: int,
    queue: int,
    piece: int,
    elements: int,
    fill_piece: Fill,
    ring: np.ndarray,
    free: int,
    done: int,
) -> None:
    """A child's or helper's share of draw `number`: take pieces from the queue into its free ring
    slots (read from `free`, which blocks until the caller has copied one out), announce each as
    (number, piece, slot) on `done`, and at the end (number, _LAST, its first slot)."""
    slot = [0]

    def free_slot(index: int) -> np.ndarray:
        word = os.read(free, 4)
        if len(word) != 4:
            raise EOFError("the caller closed the ring")
        slot[0] = int.from_bytes(word, sys.byteorder)
        return ring[slot[0]]

    def announce(index: int) -> None:
        _send(done, np.array([number, index, slot[0]], dtype=np.uint32))

    _take_pieces(queue, piece, elements, fill_piece, worker, free_slot, announce)
    _send(done, np.array([number, _LAST, (worker - 1) * _SLOTS_PER_CHILD], dtype=np.uint32))


def _free_slots(worker: int) -> _Pipe:
    """A pipe holding worker `worker`'s ring slot numbers, its write end non-blocking (see `_send`)."""
    slots = _Pipe()
    os.set_blocking(slots.write, False)
    first = (worker - 1) * _SLOTS_PER_CHILD
    _send(slots.write, np.arange(first, first + _SLOTS_PER_CHILD, dtype=np.uint32))
    return slots


def _close_all_but(keep: set[int]) -> None:
    """Close every descriptor of this process above 2 (stdin, stdout, stderr) but those in `keep`."""
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every number up to the limit
        import resource

        descriptors = list(range(3, min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 16)))
    for fd in descriptors:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # listdir's own descriptor, already closed
                os.close(fd)


def _read_exactly(fd: int, size: int) -> bytes | None:
    """`size` bytes from a blocking pipe, or None at its end."""
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(fd: int, words: np.ndarray) -> None:
    """Write uint32 words to a pipe in writes of at most PIPE_BUF bytes (each atomic).

    A full non-blocking pipe keeps the rest: pieces never queued are computed by the caller.
    """
    data = words.astype(np.uint32).tobytes()
    for start in range(0, len(data), select.PIPE_BUF):
        try:
            os.write(fd, data[start : start + select.PIPE_BUF])
        except BlockingIOError:
            return


def _fork() -> tuple[int, set[int | signal.Signals]]:
    with warnings.catch_warnings():
        # Python 3.12+ warns on fork in a process with threads; the child only runs numpy kernels.
        warnings.filterwarnings("ignore", message=_FORK_WITH_THREADS, category=DeprecationWarning)
        return fanout.fork_held()


def _reap(children: dict[int, int], deadline: float) -> dict[int, int]:
    """Wait for the children (worker number -> pid) until `deadline`, then kill those still running.

    Returns each child's wait status (0 for a clean exit, -1 when killed here) by worker number.
    """
    statuses: dict[int, int] = {}
    pending = dict(children)
    waiters = _pidfds(pending.values())
    try:
        while pending:
            for worker, pid in list(pending.items()):
                exited, status = os.waitpid(pid, os.WNOHANG)
                if exited:
                    statuses[worker] = status
                    del pending[worker]
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            watched = [waiters[pid] for pid in pending.values() if pid in waiters]
            select.select(watched, [], [], remaining if len(watched) == len(pending) else min(remaining, 0.001))
    finally:
        for fd in waiters.values():
            os.close(fd)
    _kill_all(pending)
    statuses.update(dict.fromkeys(pending, -1))
    return statuses


def _pidfds(pids: Iterable[int]) -> dict[int, int]:
    """A pollable descriptor per child (Linux 5.3+), readable once it has exited; none elsewhere."""
    fds: dict[int, int] = {}
    if not hasattr(os, "pidfd_open"):
        return fds
    for pid in pids:
        try:
            fds[pid] = os.pidfd_open(pid)
        except OSError:
            break
    return fds


def _kill_all(children: dict[int, int]) -> None:
    """Kill and reap children (worker number -> pid) left running."""
    for pid in children.values():
        if pid > 0:  # never 0: that would signal the whole process group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid in children.values():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


class Arena(scratch.Scratch):
    """Scratch buffers carved out of one anonymous mapping, in huge pages where the kernel allows.

    A forked worker starts with no scratch of its own; faulting in thousands of 4 KiB pages for
    it costs ~1 us each here (more inside a VM), a few 2 MiB pages far less. A buffer that does
    not fit any more is an ordinary array.
    """

    def __init__(self, nbytes: int, *, keep_from_children: bool = False) -> None:
        super().__init__()
        self._mapping = mmap.mmap(-1, nbytes + _HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        with contextlib.suppress(AttributeError, OSError):
            self._mapping.madvise(mmap.MADV_HUGEPAGE)
        if keep_from_children:
            # Otherwise every later fork would make the caller copy each page it writes next.
            with contextlib.suppress(AttributeError, OSError):
                self._mapping.madvise(mmap.MADV_DONTFORK)
        whole = np.frombuffer(self._mapping, dtype=np.uint8)
        start = -whole.ctypes.data % _HUGE_PAGE
        self._free = whole[start : start + nbytes]
        self.nbytes = nbytes

    def __call__(self, name: str, dtype: np.dtype | type, size: int) -> np.ndarray:
        dtype = np.dtype(dtype)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            nbytes = -(-size * dtype.itemsize // 64) * 64  # cache-line aligned
            if nbytes <= self._free.size:
                buffer = self._free[: size * dtype.itemsize].view(dtype)
                self._free = self._free[nbytes:]
            else:
                buffer = np.empty(size, dtype=dtype)
            self._buffers[name] = buffer
        return buffer[:size]


_arenas = threading.local()
# Arenas this process inherited from the one it was forked from, kept forever: their memory is not
# here (MADV_DONTFORK), and letting one go would unmap whatever this process has since placed at
# its addresses, its own new arena included (a crash at its next draw).
_inherited: list[Arena] = []


@contextlib.contextmanager
def _own_arena(piece: int) -> Iterator[None]:
    """The caller's scratch for its pieces: an Arena kept between draws and out of every child."""
    nbytes = piece * _SCRATCH_BYTES_PER_ELEMENT
    arena = getattr(_arenas, "arena", None)
    if arena is not None and getattr(_arenas, "pid", None) != os.getpid():
        _inherited.append(arena)
        arena = None
    if arena is None or arena.nbytes < nbytes:
        arena = _arenas.arena = Arena(nbytes, keep_from_children=True)
        _arenas.pid = os.getpid()
    previous = scratch.thread_scratch()
    scratch.replace_thread_scratch(arena)
    try:
        yield
    finally:
        scratch.replace_thread_scratch(previous)
