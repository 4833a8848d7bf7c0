"""Run HDF5 work in a forked child process that a timeout or Ctrl-C can always stop.

A corrupt HDF5 file can make the HDF5 C library loop forever without returning to Python, where
neither Ctrl-C nor a timer can reach it. The work therefore runs in a child process with a memory
and CPU limit; the parent waits for its answer (a JSON document on a pipe) for at most `timeout`
seconds and kills it otherwise. The child answers `{"ok": ...}` or `{"error": "one line"}`.

A flipped byte can make HDF5 spin inside one call. Waiting for the whole timeout (60 s by default)
to call a 100 KB file corrupt makes the user wait a minute for a one-line error, so the task reports
progress (`progress()`: a space before the JSON answer, at most ten a second) and the parent gives up
once no progress came for `stall` seconds (a few seconds, plus time for the bytes the task must
get through): a small file's structure walk takes milliseconds per object. The timeout stays the
bound of last resort, and is itself capped by the command's deadline (`initcli.safety.budget`).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any

from initcli.errors import InitcliError
from initcli.parallel.fanout import fork_held, release, settle_child
from initcli.safety import budget
from initcli.safety.files import shown

MAX_ANSWER_BYTES = 256 * 1024 * 1024
STALL_SECONDS = 3.0
"""No progress for this long (plus `stall_seconds_for`'s allowance for size) means HDF5 is spinning."""
_STALL_BYTES_PER_SECOND = 20e6
_PROGRESS_EVERY = 0.1

_progress_fd: int | None = None  # set in a worker child: where `progress` reports
_last_progress = 0.0


def stall_seconds_for(size: int) -> float:
    """How long a task over `size` bytes may go without progress: STALL_SECONDS + 1 s per 20 MB."""
    return STALL_SECONDS + size / _STALL_BYTES_PER_SECOND


def readable(fd: int, seconds: float) -> bool:
    """Whether `fd` has something to read (or its writer closed it) within `seconds`.

    poll, not select: select cannot wait on a descriptor numbered 1024 or more (a sharded model
    keeps a descriptor per shard open), and fails with ValueError there.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(max(0.0, seconds) * 1000))
    ready, _, _ = select.select([fd], [], [], max(0.0, seconds))
    return bool(ready)


def progress() -> None:
    """In a worker child: tell the parent the task is moving (cheap; rate-limited). Elsewhere: nothing."""
    global _last_progress
    if _progress_fd is None:
        return
    now = time.monotonic()
    if now - _last_progress >= _PROGRESS_EVERY:
        _last_progress = now
        with contextlib.suppress(OSError):
            os.write(_progress_fd, b" ")  # JSON allows whitespace before the answer


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _limit_child(timeout: float, memory: int) -> None:
    with contextlib.suppress(ValueError, OSError):
        seconds = int(timeout) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))
    current = _address_space()
    if current:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (current + memory, resource.RLIM_INFINITY))
    # Ctrl-C stops the child too, unless the parent ignores it (a background job, nohup): then so does the child.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _child(
    task: Callable[[], Any],
    write_end: int,
    timeout: float,
    memory: int,
    mask: set[int | signal.Signals],
    read_end: int,
    parent: int,
) -> None:
    try:
        os.close(read_end)
        if not settle_child(parent):  # the caller died before prctl took effect: nobody wants the answer
            return
        _limit_child(timeout, memory)
        global _progress_fd
        _progress_fd = write_end
        release(mask)
        try:
            answer: dict[str, Any] = {"ok": task()}
        except InitcliError as error:
            answer = {"error": str(error)}
        except MemoryError:
            answer = {"error": "reading it needs more memory than initcli allows (corrupt or hostile file?)"}
        except RecursionError:
            answer = {"error": "its structure is nested too deeply"}
        except Exception as error:  # noqa: BLE001 - the HDF5 library's many ways to fail on a bad file
            text = shown(" ".join(str(error).split())[:300])
            answer = {"error": f"HDF5 cannot read it ({type(error).__name__}: {text})"}
        data = json.dumps(answer).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
    finally:
        os._exit(0)


def run_isolated(
    task: Callable[[], Any],
    *,
    timeout: float,
    memory: int,
    label: str,
    what: str,
    meanwhile: Callable[[], None] | None = None,
    stall: float | None = None,
) -> Any:
    """Run `task` in a forked child and return its JSON-serializable result.

    Args:
        task: runs in the child; raises InitcliError for a refusal.
        timeout: seconds to wait before the child is killed.
        memory: bytes of address space the child may add to what it inherits.
        label: the file, for messages.
        what: what the child does ("reading the HDF5 structure"), for the timeout message.
        meanwhile: work for the parent while the child runs (its exceptions kill the child).
        stall: seconds without progress (see `progress`) after which the child is killed and
            the file called corrupt; None waits for the timeout.

    Raises:
        InitcliError: the child refused, failed, crashed or ran out of time.
        KeyboardInterrupt: Ctrl-C (the child is killed first).
    """
    background = Isolated(task, timeout=timeout, memory=memory, label=label, what=what, stall=stall)
    try:
        if meanwhile is not None:
            meanwhile()
        return background.wait()
    finally:
        background.cancel()


class Isolated:
    """`task` started in a forked child now; `wait` gives its answer (see `run_isolated`).

    `runs_hdf5`: the task runs the HDF5 library, so a crash is blamed on the file; otherwise a
    child killed by a signal is reported as stopped.

    Without fork (Windows) the task runs in-process when waited for, without the isolation.
    """

    def __init__(
        self,
        task: Callable[[], Any],
        *,
        timeout: float,
        memory: int,
        label: str,
        what: str,
        runs_hdf5: bool = True,
        stall: float | None = None,
    ) -> None:
        self.task, self.timeout, self.label, self.what, self.runs_hdf5 = task, timeout, label, what, runs_hdf5
        self.stall = stall
        self.command_timeout: float | None = None
        if budget.is_active():  # the command's deadline bounds every worker too
            command = budget.active()
            command.check_time(f"{label}: {what}")
            if command.remaining() < timeout:
                self.timeout, self.command_timeout = command.remaining(), command.timeout
        self.deadline = time.monotonic() + self.timeout
        self.pid: int | None = None
        self.forked = hasattr(os, "fork")
        if not self.forked:
            return
        read_end, write_end = os.pipe()
        parent = os.getpid()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only runs `task`
            try:
                pid, mask = fork_held()  # a signal before `_child` runs would unwind the caller's stack here
            except OSError:
                os.close(read_end)
                os.close(write_end)
                raise
        if pid == 0:
            _child(task, write_end, timeout, memory, mask, read_end, parent)
        os.close(write_end)
        self.pid, self.read_end = pid, read_end

    def wait(self) -> Any:
        """The child's answer.

        Raises:
            InitcliError: the child refused, failed, crashed or ran out of time.
        """
        if not self.forked:
            try:
                return json.loads(json.dumps(self.task()))
            except InitcliError as error:
                raise InitcliError(f"{self.label}: {error}") from None
        if self.pid is None:
            raise RuntimeError("Isolated.wait: the child was already waited for or cancelled")
        chunks: list[bytes] = []
        received = 0
        finished = stalled = False
        last_progress = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                remaining = self.deadline - now
                if remaining <= 0:
                    break
                if self.stall is not None and now - last_progress > self.stall:
                    stalled = True
                    break
                if not readable(self.read_end, min(remaining, 0.25)):
                    continue
                chunk = os.read(self.read_end, 1 << 20)
                if not chunk:
                    finished = True
                    break
                last_progress = time.monotonic()
                if not chunks and not chunk.strip():
                    continue  # progress only
                chunks.append(chunk)
                received += len(chunk)
                if received > MAX_ANSWER_BYTES:
                    break
        finally:
            status = self._stop(kill=not finished)
        label, what = self.label, self.what
        if not finished:
            if received > MAX_ANSWER_BYTES:
                raise InitcliError(f"{label}: the HDF5 structure is too large to describe")
            if stalled:
                raise InitcliError(
                    f"{label}: {what} made no progress for {self.stall:.0f} s: a corrupt file (it made HDF5 loop)"
                )
            if self.command_timeout is not None:
                raise InitcliError(
                    f"{label}: {what} took longer than {self.command_timeout:g} s, the command's timeout "
                    "(--timeout or INITCLI_TIMEOUT; a corrupt file can make HDF5 loop)"
                )
            raise InitcliError(
                f"{label}: {what} took longer than {self.timeout:g} s (a corrupt file can make HDF5 loop)"
            )
        if not chunks:
            if os.WIFSIGNALED(status):
                name = signal.Signals(os.WTERMSIG(status)).name
                if not self.runs_hdf5:  # killed from outside (OOM killer, kill -9): not the file's fault
                    raise InitcliError(f"{label}: {what} was stopped ({name}) before it answered")
                raise InitcliError(f"{label}: HDF5 crashed ({name}) while {what} (corrupt file?)")
            raise InitcliError(f"{label}: {what} failed without an answer (corrupt file?)")
        try:
            answer = json.loads(b"".join(chunks))
        except ValueError:
            raise InitcliError(f"{label}: {what} gave a broken answer") from None
        if "error" in answer:
            raise InitcliError(f"{label}: {answer['error']}")
        return answer["ok"]

    def cancel(self) -> None:
        """Kill the child if it still runs (its answer is no longer wanted) and reap it."""
        if self.pid is not None:
            self._stop(kill=True)

    def _stop(self, kill: bool) -> int:
        pid, self.pid = self.pid, None
        if pid is None:
            return 0
        os.close(self.read_end)
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        return status
