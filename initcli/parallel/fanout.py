"""Independent tasks on every core: forked processes take tasks from a shared queue, results come back in order.

Threads do not help here: each numpy call in the statistics takes microseconds, about what handing
the GIL between two threads costs, so two threads run no faster than one. Forked processes share
nothing but the work queue (a pipe of task numbers, 4 bytes each, which the kernel hands out whole to
one reader at a time) and send their results back pickled.

The parent is both a worker and the fallback: anything a child does not deliver (it failed, died, was
killed, or its result would not pickle) the parent computes itself, so the results, and the
exceptions, are those of a plain loop, raised at the same task. Children die with the parent, print
nothing, and are reaped before `map_in_order` returns or is closed.

What it is worth to a user (measured 2026-12-07 on this 2-core VM shared with other jobs; whole
processes, interleaved, best of 5 unless said, against `INITCLI_WORKERS=1`, as
benchmarks/bench_fanout.py does): `inspect --format json` of a 402M-parameter model (six
Dense(8192), 1.6 GB) takes 0.83-0.84 s against 1.35-1.36 s serial at load average 0.4-1.9, and
beside two busy processes 1.51-1.64 s against 2.09-2.10 s (best of 5 and 7; medians 1.6-3.2 s
against 4.3-5.3 s). On ResNet50 (98 MB, 320 weights) the two are within 10% either way: 0.40-0.44 s
against 0.43-0.47 s quiet, 0.77-0.80 s against 0.73-0.76 s loaded. Large draws use it too
(`initcli.rng.parallel`): one fan-out in initcli. The stall check (/proc CPU time and bytes read)
is what keeps a child that deadlocked after the fork (a lock a thread held) from hanging the
command, without killing a child busy on one huge weight.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
import select
import signal
import struct
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from initcli.errors import BadInputError
from initcli.parallel.scratch import Scratch, replace_thread_scratch

Task = TypeVar("Task")
Result = TypeVar("Result")

WORKERS_VARIABLE = "INITCLI_WORKERS"
# Each process keeps its own scratch buffers; this many bound that on any machine.
MAX_WORKERS = 8
# A child silent this long while the parent waits for it, that also used no CPU and read nothing in
# that time, is presumed stuck (blocked, stopped, deadlocked), killed, and its tasks redone. A child
# busy with one long task (a huge weight on a slow disk) is left to finish it.
STALL_SECONDS = 60.0
_F_SETPIPE_SZ = 1031
_F_GETPIPE_SZ = 1032
_PR_SET_PDEATHSIG = 1
_INDEX = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")


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


def worker_count(limit: int = MAX_WORKERS) -> int:
    """How many processes (the caller included) may work at once; 1 means no fork.

    At most the CPUs this process may run on (its affinity mask), `limit` and `INITCLI_WORKERS`;
    1 off Linux and when TensorFlow is loaded (its thread pools hold locks a forked child could
    inherit held). Every command that forks asks here, so the variable means one thing.
    """
    requested = requested_workers()  # a bad value is an error wherever the run goes
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 1
    if "tensorflow" in sys.modules:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        return 1
    return max(1, min(cpus, limit, requested or cpus))


# Signals whose Python handlers (KeyboardInterrupt, the scratch folder's SIGTERM exit) would make a
# just-forked child unwind its copy of the caller's stack: print, remove the caller's files, kill the
# caller's other processes. They wait, blocked, until the child's own code handles them.
_HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


def fork_held() -> tuple[int, set[int | signal.Signals]]:
    """`os.fork()` with SIGINT, SIGTERM and SIGHUP held in the child until it calls `release(mask)`.

    Returns (pid, mask): the caller's signal mask, restored in the parent before returning.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        raise
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return pid, previous


def release(mask: set[int | signal.Signals]) -> None:
    """In a child of `fork_held`, inside the code that handles its signals: deliver the held ones."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


_LIBC: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    """The C library through ctypes (for prctl), loaded once: loaded before a fork, no child pays for it."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None)
    return _LIBC


def settle_child(parent: int) -> bool:
    """A forked child's first steps: die with `parent` (PR_SET_PDEATHSIG) and write nothing where
    the parent writes (stdout and stderr to /dev/null).

    Returns False when `parent` is already gone (it died before prctl took effect): the child's work
    has nobody to go to, and the child should leave.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    return True


@dataclass
class _Child:
    pid: int
    results: int  # read end of its result pipe
    buffer: bytearray = field(default_factory=bytearray)
    open: bool = True
    reaped: bool = False
    last_heard: float = field(default_factory=time.monotonic)
    activity: tuple[int, int] | None = None  # its CPU ticks and bytes read when last looked at


def map_in_order(
    function: Callable[[Task], Result],
    tasks: Sequence[Task],
    *,
    workers: int | None = None,
    passed_on: tuple[type[Exception], ...] = (),
) -> Iterator[Result]:
    """`function(task)` for each task, yielded in order, computed by up to `workers` processes.

    With one worker (or one task) this is a plain loop. An exception from `function` is raised when
    its task's turn comes, as the loop would raise it: one of the `passed_on` types as the child
    met it (an answer, such as a file's refusal, that redoing would only repeat, timeouts included),
    any other by the parent computing that task itself.
    """
    workers = worker_count() if workers is None else workers
    count = len(tasks)
    queue = _task_queue(count) if workers > 1 and count > 1 else None
    if queue is None:
        for task in tasks:
            yield function(task)
        return
    children: list[_Child] = []
    parent = os.getpid()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child runs only `function`
            for _ in range(min(workers, count) - 1):
                try:
                    results_read, results_write = os.pipe()
                except OSError:  # out of descriptors: fewer processes do the work
                    break
                try:
                    pid, mask = fork_held()
                except OSError:  # the process limit (ulimit -u) reached: fewer processes do the work
                    os.close(results_read)
                    os.close(results_write)
                    break
                if pid == 0:
                    _child(function, tasks, queue, results_write, passed_on, mask, results_read, parent)
                os.close(results_write)
                children.append(_Child(pid=pid, results=results_read))
        yield from _parent(function, tasks, queue, children)
    finally:
        os.close(queue)
        for child in children:
            if child.open:
                os.close(child.results)
            if child.reaped:  # its pid may be another process's by now
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)


def _task_queue(count: int) -> int | None:
    """A pipe holding every task number, its write end closed; None if the numbers do not fit."""
    read_end, write_end = os.pipe()
    data = b"".join(_INDEX.pack(index) for index in range(count))
    try:
        if len(data) > select.PIPE_BUF:  # a pipe holds 64 KiB, or 4 KiB once the user has many pipe pages
            import fcntl

            if fcntl.fcntl(write_end, _F_GETPIPE_SZ) < len(data):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(write_end, _F_SETPIPE_SZ, len(data))
                if fcntl.fcntl(write_end, _F_GETPIPE_SZ) < len(data):
                    os.close(read_end)
                    return None
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
    finally:
        os.close(write_end)
    return read_end


def _next_task(queue: int) -> int | None:
    data = os.read(queue, _INDEX.size)
    return _INDEX.unpack(data)[0] if len(data) == _INDEX.size else None


def _child(
    function: Callable[[Task], Result],
    tasks: Sequence[Task],
    queue: int,
    results: int,
    passed_on: tuple[type[Exception], ...],
    mask: set[int | signal.Signals],
    results_read: int,
    parent: int,
) -> None:
    try:
        os.close(results_read)
        release(mask)  # a signal meant for this child now ends it here, quietly
        if not settle_child(parent):
            return
        gc.disable()  # a collection would touch, and so copy, every page of the inherited heap
        replace_thread_scratch(Scratch())  # fresh buffers: writing the inherited ones copies them first
        while (index := _next_task(queue)) is not None:
            try:
                try:
                    answer: object = function(tasks[index])
                except passed_on as error:
                    answer = _Raised(error)
                payload = pickle.dumps((index, answer), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - the parent redoes the task and raises what it raises
                payload = pickle.dumps((index, _Failed()))
            data = memoryview(_LENGTH.pack(len(payload)) + payload)
            while data:
                data = data[os.write(results, data) :]
    finally:
        os._exit(0)


def _activity(pid: int) -> tuple[int, int] | None:
    """CPU time (clock ticks, user + system) and bytes read so far by process `pid`, from /proc;
    None where that cannot be read. Bytes read count as 0 where /proc/PID/io is not readable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()  # after the command name, which may hold spaces
        ticks = int(fields[11]) + int(fields[12])  # utime and stime, the stat file's fields 14 and 15
    except (OSError, ValueError, IndexError):
        return None
    read = 0
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/io", "rb") as handle:
        for line in handle:
            if line.startswith(b"rchar:"):
                read = int(line.split()[1])
    return ticks, read


class _Failed:
    """A child's answer for a task it could not deliver."""


@dataclass(frozen=True)
class _Raised:
    """A child's answer for a task whose `passed_on` exception the parent raises as it is."""

    error: Exception


def _parent(
    function: Callable[[Task], Result], tasks: Sequence[Task], queue: int, children: list[_Child]
) -> Iterator[Result]:
    done: dict[int, tuple[bool, object]] = {}  # task -> (ok, result or exception)
    redo: list[int] = []
    queue_empty = False
    for index in range(len(tasks)):
        while index not in done:
            _receive(children, done, redo, wait=0.0)
            if index in done:
                break
            if not queue_empty:
                own = _next_task(queue)
                if own is None:
                    queue_empty = True
                else:
                    done[own] = _run(function, tasks[own])
                continue
            if redo:
                own = min(redo)
                redo.remove(own)
                done[own] = _run(function, tasks[own])
                continue
            if not any(child.open for child in children):
                # Every child has finished; what none of them delivered was taken and lost: do it here.
                done[index] = _run(function, tasks[index])
                continue
            _receive(children, done, redo, wait=1.0)
            _stop_stalled(children)
        ok, value = done.pop(index)
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        yield value  # type: ignore[misc]


def _run(function: Callable[[Task], Result], task: Task) -> tuple[bool, object]:
    try:
        return True, function(task)
    except Exception as error:  # noqa: BLE001 - raised in order by the caller
        return False, error


def _receive(children: list[_Child], done: dict[int, tuple[bool, object]], redo: list[int], wait: float) -> None:
    """Take in whatever results the children have sent (waiting up to `wait` seconds for the first)."""
    readable = [child.results for child in children if child.open]
    if not readable:
        return
    ready, _, _ = select.select(readable, [], [], wait)
    for child in children:
        if not child.open or child.results not in ready:
            continue
        data = os.read(child.results, 1 << 20)
        if not data:
            os.close(child.results)
            child.open = False
            continue
        child.last_heard = time.monotonic()
        child.buffer += data
        while len(child.buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(child.buffer)
            if len(child.buffer) < _LENGTH.size + length:
                break
            index, result = pickle.loads(bytes(child.buffer[_LENGTH.size : _LENGTH.size + length]))  # noqa: S301 - our own child
            del child.buffer[: _LENGTH.size + length]
            if isinstance(result, _Failed):
                redo.append(index)
            elif isinstance(result, _Raised):
                done[index] = (False, result.error)
            else:
                done[index] = (True, result)


def _stop_stalled(children: list[_Child]) -> None:
    """Kill children silent and idle for STALL_SECONDS: their undelivered tasks are then done by the parent.

    A silent child that has used CPU or read bytes since it was last looked at is working: it is
    given another STALL_SECONDS. (Where /proc cannot tell, silence alone decides.)
    """
    now = time.monotonic()
    for child in children:
        if child.open and now - child.last_heard > STALL_SECONDS:
            activity = _activity(child.pid)
            if activity is not None and activity != child.activity:
                child.activity, child.last_heard = activity, now
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)  # gone before its task is redone (a draw's child writes shared memory)
            child.reaped = True
            os.close(child.results)
            child.open = False
