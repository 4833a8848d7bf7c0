"""`sample --save`: the .npy file is complete or absent, never written through a link or onto a device.

The oracle for the file's contents is numpy's own reader (`np.load`).
"""

from __future__ import annotations

import errno
import io
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from initcli.errors import InitcliError
from initcli.render import npy_writer
from initcli.render.npy_writer import NpyFileWriter, write_npy

REPOSITORY = Path(__file__).resolve().parents[1]


def pieces(values: np.ndarray, size: int) -> list[np.ndarray]:
    flat = values.reshape(-1)
    return [flat[start : start + size] for start in range(0, flat.size, size)] or [flat]


def consume(iterator) -> list[np.ndarray]:
    return list(iterator)


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".partial"))


@pytest.mark.parametrize(
    ("shape", "dtype", "chunk"),
    [
        ((3, 4, 5), "float32", 7),
        ((64, 33), "float64", 1000),
        ((10,), "float16", 3),
        ((), "float32", 1),
        ((2, 1, 3), "float32", 1),
    ],
)
def test_round_trip_equals_input(tmp_path, shape, dtype, chunk):
    values = np.random.default_rng(0).normal(size=shape).astype(dtype)
    chunks = pieces(values, chunk)
    target = tmp_path / "out.npy"
    passed = consume(write_npy(target, shape, dtype, chunks, force=False))
    assert all(a is b for a, b in zip(passed, chunks))  # passed through unchanged
    loaded = np.load(target)
    assert loaded.dtype == np.dtype(dtype) and loaded.shape == shape
    assert loaded.tobytes() == values.tobytes()
    assert leftovers(tmp_path) == []


def test_bfloat16_is_stored_as_exact_float32(tmp_path):
    values = np.random.default_rng(1).normal(size=(5, 6)).astype(ml_dtypes.bfloat16)
    values.reshape(-1)[:4] = [np.inf, -0.0, 1e-40, 3.3895e38]  # edge values survive too
    target = tmp_path / "out.npy"
    consume(write_npy(target, values.shape, "bfloat16", pieces(values, 4), force=False))
    loaded = np.load(target)
    assert loaded.dtype == np.float32
    assert loaded.astype(ml_dtypes.bfloat16).tobytes() == values.tobytes()  # float32 -> bfloat16 is exact


def test_file_mode_is_0644_minus_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        consume(write_npy(tmp_path / "out.npy", (2,), "float32", [np.zeros(2, np.float32)], force=False))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "out.npy").st_mode) == 0o640


def test_existing_target_is_refused_without_force_before_any_value_is_drawn(tmp_path):
    target = tmp_path / "out.npy"
    target.write_bytes(b"precious")

    def never_drawn():
        raise AssertionError("the chunks were consumed")
        yield

    with pytest.raises(InitcliError, match=r"out\.npy already exists; pass --force to overwrite it\.$"):
        write_npy(target, (2,), "float32", never_drawn(), force=False)
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_force_replaces_a_regular_file(tmp_path):
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")
    consume(write_npy(target, (3,), "float32", [np.arange(3, dtype=np.float32)], force=True))
    np.testing.assert_array_equal(np.load(target), [0, 1, 2])


def test_an_old_partial_file_is_neither_used_nor_removed(tmp_path):
    old_partial = tmp_path / "out.npy.partial"  # the name the old writer overwrote and deleted
    old_partial.write_bytes(b"someone's data")
    consume(write_npy(tmp_path / "out.npy", (2,), "float32", [np.ones(2, np.float32)], force=False))
    assert old_partial.read_bytes() == b"someone's data"


@pytest.mark.parametrize("force", [False, True])
def test_symlink_target_is_refused_and_its_target_untouched(tmp_path, force):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"do not touch")
    link = tmp_path / "out.npy"
    link.symlink_to(victim)
    with pytest.raises(InitcliError, match=r"out\.npy is a symbolic link; refusing to write through or replace it"):
        write_npy(link, (2,), "float32", [np.ones(2, np.float32)], force=force)
    assert victim.read_bytes() == b"do not touch"
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert leftovers(tmp_path) == []


def test_dangling_symlink_is_refused_and_nothing_created(tmp_path):
    link = tmp_path / "out.npy"
    link.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(InitcliError, match="symbolic link"):
        write_npy(link, (2,), "float32", [np.ones(2, np.float32)], force=False)
    assert not (tmp_path / "would-be-created").exists()


def make_socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


@pytest.mark.parametrize(
    ("make", "kind"),
    [(os.mkdir, "a directory"), (os.mkfifo, "a FIFO"), (make_socket, "a socket")],
)
@pytest.mark.parametrize("force", [False, True])
def test_non_regular_targets_are_refused(tmp_path, make, kind, force):
    target = tmp_path / "out.npy"
    make(target)
    mode = os.lstat(target).st_mode
    with pytest.raises(InitcliError, match=f"out\\.npy is {kind}; refusing to replace it"):
        write_npy(target, (2,), "float32", [np.ones(2, np.float32)], force=force)
    assert os.lstat(target).st_mode == mode
    assert leftovers(tmp_path) == []


def test_device_node_is_refused_with_force():
    before = os.lstat("/dev/null")
    with pytest.raises(InitcliError, match=r"^/dev/null is a character device; refusing to replace it"):
        write_npy("/dev/null", (2,), "float32", [np.ones(2, np.float32)], force=True)
    after = os.lstat("/dev/null")
    assert (after.st_ino, after.st_rdev, after.st_mode) == (before.st_ino, before.st_rdev, before.st_mode)


def test_temporary_file_is_never_reused_or_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"do not touch")
    planted = tmp_path / ".out.npy.aaaa.partial"
    planted.symlink_to(victim)  # an attacker guessed the first name
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(npy_writer.secrets, "token_hex", lambda _: next(names))
    consume(write_npy(tmp_path / "out.npy", (2,), "float32", [np.ones(2, np.float32)], force=False))
    assert victim.read_bytes() == b"do not touch"
    assert planted.is_symlink()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), [1, 1])


def test_temporary_names_are_random_hidden_and_next_to_the_target(tmp_path):
    writers = [NpyFileWriter(tmp_path / "out.npy", (1,), "float32", force=False) for _ in range(2)]
    try:
        first, second = (writer.temporary for writer in writers)
        assert first != second
        assert first.parent == tmp_path and first.name.startswith(".out.npy.") and first.name.endswith(".partial")
    finally:
        for writer in writers:
            writer.abort()
    assert leftovers(tmp_path) == []


def test_a_long_target_name_still_fits(tmp_path):
    target = tmp_path / ("n" * 251 + ".npy")  # 255 bytes, the most a name can have
    consume(write_npy(target, (2,), "float32", [np.ones(2, np.float32)], force=False))
    assert np.load(target).tolist() == [1, 1]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "No space left on device"),
        (errno.EDQUOT, "Disk quota exceeded"),
        (errno.EIO, "Input/output error"),
        (errno.EPERM, "Operation not permitted"),
        (errno.EACCES, "Permission denied"),
    ],
)
@pytest.mark.parametrize("failing_call", [1, 3])  # the header, or the values
def test_write_errors_are_one_line_and_leave_nothing(tmp_path, monkeypatch, code, reason, failing_call):
    real_write = os.write
    calls = []

    def write(descriptor, data):
        calls.append(len(data))
        if len(calls) == failing_call:
            raise OSError(code, os.strerror(code))
        return real_write(descriptor, data)

    monkeypatch.setattr(npy_writer.os, "write", write)
    target = tmp_path / "out.npy"
    with pytest.raises(InitcliError) as raised:
        consume(write_npy(target, (3, 100), "float32", pieces(np.zeros(300, np.float32), 100), force=False))
    assert str(raised.value) == f"Cannot write {target}: {reason}"
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_partial_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(npy_writer.os, "write", lambda descriptor, data: real_write(descriptor, data[:5]))
    values = np.arange(40, dtype=np.float64)
    consume(write_npy(tmp_path / "out.npy", (40,), "float64", pieces(values, 9), force=False))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), values)


def test_fsync_failure_leaves_nothing(tmp_path, monkeypatch):
    def fsync(descriptor):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(npy_writer.os, "fsync", fsync)
    target = tmp_path / "out.npy"
    with pytest.raises(InitcliError, match=r"Cannot write .*out\.npy: Input/output error$"):
        consume(write_npy(target, (2,), "float32", [np.ones(2, np.float32)], force=False))
    assert not target.exists() and leftovers(tmp_path) == []


def test_missing_directory_is_one_line(tmp_path):
    with pytest.raises(InitcliError, match=r"Cannot write .*/missing/out\.npy: No such file or directory$"):
        write_npy(tmp_path / "missing" / "out.npy", (2,), "float32", [], force=False)


def test_file_size_limit_in_a_subprocess(tmp_path):
    """A real failing write (RLIMIT_FSIZE; SIGXFSZ ignored, so write() fails with EFBIG) instead of SIGBUS."""
    script = textwrap.dedent(
        """
        import resource, signal, sys
        import numpy as np
        from initcli.errors import InitcliError
        from initcli.render.npy_writer import write_npy

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        chunks = (np.full(10_000, i, np.float32) for i in range(100))
        try:
            for _ in write_npy(sys.argv[1], (1_000_000,), "float32", chunks, force=False):
                pass
        except InitcliError as error:
            print(error)
            sys.exit(1)
        """
    )
    target = tmp_path / "out.npy"
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, env=environment, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == f"Cannot write {target}: File too large\n"
    assert not target.exists() and leftovers(tmp_path) == []


def failing_chunks(error: BaseException):
    yield np.zeros(10, np.float32)
    yield np.zeros(10, np.float32)
    raise error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("draw failed")])
def test_interrupted_source_leaves_nothing(tmp_path, error):
    target = tmp_path / "out.npy"
    with pytest.raises(type(error)):
        consume(write_npy(target, (100,), "float32", failing_chunks(error), force=False))
    assert not target.exists() and leftovers(tmp_path) == []


def test_consumer_stopping_early_leaves_nothing(tmp_path):
    target = tmp_path / "out.npy"
    stream = write_npy(target, (100,), "float32", pieces(np.zeros(100, np.float32), 10), force=False)
    next(stream)
    assert len(leftovers(tmp_path)) == 1
    stream.close()
    assert not target.exists() and leftovers(tmp_path) == []

    stream = write_npy(target, (100,), "float32", pieces(np.zeros(100, np.float32), 10), force=False)
    next(stream)
    del stream  # abandoned: CPython closes the generator at once
    assert not target.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("count", [99, 101])
def test_wrong_value_count_is_a_bug_and_leaves_nothing(tmp_path, count):
    target = tmp_path / "out.npy"
    with pytest.raises(ValueError, match="expected 100|more than 100"):
        consume(write_npy(target, (100,), "float32", [np.zeros(count, np.float32)], force=False))
    assert not target.exists() and leftovers(tmp_path) == []


def test_target_appearing_during_the_write_is_not_clobbered(tmp_path):
    target = tmp_path / "out.npy"

    def chunks():
        yield np.zeros(2, np.float32)
        target.write_bytes(b"appeared meanwhile")

    with pytest.raises(InitcliError, match="already exists"):
        consume(write_npy(target, (2,), "float32", chunks(), force=False))
    assert target.read_bytes() == b"appeared meanwhile"
    assert leftovers(tmp_path) == []


def test_symlink_appearing_during_a_forced_write_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"do not touch")
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")

    def chunks():
        yield np.zeros(2, np.float32)
        target.unlink()
        target.symlink_to(victim)

    with pytest.raises(InitcliError, match="symbolic link"):
        consume(write_npy(target, (2,), "float32", chunks(), force=True))
    assert victim.read_bytes() == b"do not touch" and target.is_symlink()
    assert leftovers(tmp_path) == []


def test_hostile_path_is_shown_on_one_line(tmp_path):
    target = tmp_path / "out\n::error::forged.npy"
    target.write_bytes(b"x")
    with pytest.raises(InitcliError) as raised:
        write_npy(target, (2,), "float32", [], force=False)
    assert "\n" not in str(raised.value) and "out\\n::error::forged.npy already exists" in str(raised.value)


class FakeStdout:
    def __init__(self, buffer: io.BufferedIOBase) -> None:
        self.buffer = buffer

    def flush(self) -> None:
        pass


def test_stdout_receives_the_complete_file(monkeypatch):
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", FakeStdout(buffer))
    values = np.random.default_rng(2).uniform(size=(7, 3)).astype(np.float32)
    consume(write_npy("-", values.shape, "float32", pieces(values, 5), force=False))
    loaded = np.load(io.BytesIO(buffer.getvalue()))
    assert loaded.tobytes() == values.tobytes() and loaded.shape == (7, 3)


def test_stdout_terminal_is_refused(monkeypatch):
    leader, follower = os.openpty()
    try:
        with open(follower, "wb", closefd=False) as terminal:
            monkeypatch.setattr(sys, "stdout", FakeStdout(terminal))
            with pytest.raises(InitcliError, match="^refusing to write binary .npy to a terminal; redirect stdout$"):
                write_npy(Path("-"), (2,), "float32", [np.ones(2, np.float32)], force=False)
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)), BrokenPipeError),  # the CLI stops quietly
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), InitcliError),
    ],
)
def test_stdout_write_errors(monkeypatch, error, expected):
    class Failing(io.BytesIO):
        def write(self, data):
            raise error

    monkeypatch.setattr(sys, "stdout", FakeStdout(Failing()))
    with pytest.raises(expected) as raised:
        consume(write_npy("-", (2,), "float32", [np.ones(2, np.float32)], force=False))
    if expected is InitcliError:
        assert str(raised.value) == "Cannot write .npy to standard output: No space left on device"
