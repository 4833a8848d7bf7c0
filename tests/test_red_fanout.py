"""Red-team findings on the fan-out (issue #13): a fork that fails (ulimit -u, EAGAIN) means fewer processes.

`ulimit -u` does not bind root, so the failure is planted: `os.fork` raises BlockingIOError(EAGAIN),
exactly what it raises when the process limit is reached.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from initcli.parallel.fanout import map_in_order
from tests.helpers import no_children_left

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fan-out forks on Linux only")

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def square(task: int) -> int:
    return task * task


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("forks_allowed", [0, 1])
def test_a_fork_that_fails_leaves_the_work_to_fewer_processes(
    monkeypatch: pytest.MonkeyPatch, forks_allowed: int
) -> None:
    real_fork = os.fork
    allowed = [forks_allowed]

    def fork() -> int:
        if allowed[0] <= 0:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        allowed[0] -= 1
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    descriptors = open_descriptors()
    assert list(map_in_order(square, list(range(100)), workers=3)) == [t * t for t in range(100)]
    assert open_descriptors() == descriptors  # the failed child's pipe is closed too
    assert no_children_left()


# Every script below replaces os.fork; `callers()` names the functions on the stack.
_FORK_PATCH = """
import os, sys
real_fork = os.fork
def callers():
    frame = sys._getframe(1)
    while frame is not None:
        yield frame.f_code.co_name
        frame = frame.f_back
"""

_FORK_FAILS_IN_FANOUT = (
    _FORK_PATCH
    + """
import errno, os, sys
from initcli.analysis import inspection
from initcli.cli import cli
def fork():
    if "map_in_order" in set(callers()):  # the measuring children, not the HDF5 walk or the CRC check
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    return real_fork()
os.fork = fork
inspection.FAN_OUT_BYTES = 0
cli(sys.argv[1:], prog_name="initcli")
"""
)


def test_inspect_under_a_process_limit_gives_the_one_process_report() -> None:
    """A full process table is no reason to fail: the report is the one a single process gives."""
    runs = {}
    for workers in ("1", "2"):
        env = {**os.environ, "INITCLI_WORKERS": workers}
        runs[workers] = subprocess.run(
            [sys.executable, "-c", _FORK_FAILS_IN_FANOUT, "inspect", str(MODELS / "cnn.keras"), "--format", "csv"],
            capture_output=True,
            text=True,
            env=env,
        )
    assert runs["1"].returncode == 0, runs["1"].stderr
    assert runs["2"].returncode == 0, runs["2"].stderr
    assert runs["2"].stderr == ""
    assert runs["2"].stdout == runs["1"].stdout
    assert len(runs["2"].stdout.splitlines()) >= 5


_FORK_FAILS_FOR_THE_CRC_CHECK = (
    _FORK_PATCH
    + """
import errno, os, sys
from initcli.cli import cli
def fork():
    names = set(callers())
    if "_open_keras_archive" in names and "run_isolated" not in names:  # the CRC check, not the HDF5 walk
        if os.environ.get("CRC_FORK") == "fails":
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        sys.stderr.write("forked for the CRC check\\n")
    return real_fork()
os.fork = fork
cli(sys.argv[1:], prog_name="initcli")
"""
)


def _flipped_crc(directory: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hostile_corpus import bad_crc

    return bad_crc("model.weights.h5")(directory)


@pytest.mark.parametrize("setting", [{"CRC_FORK": "fails", "INITCLI_WORKERS": "2"}, {"INITCLI_WORKERS": "1"}])
def test_the_crc_is_checked_in_this_process_when_no_child_can_or_may_do_it(tmp_path: Path, setting: dict) -> None:
    """A failed fork (ulimit -u) or INITCLI_WORKERS=1 (README: never fork) checks the CRC in-process:
    a good archive is read, a corrupt one still fails its CRC check."""
    env = {**os.environ, **setting}

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _FORK_FAILS_FOR_THE_CRC_CHECK, "inspect", str(path), "--format", "csv"],
            capture_output=True,
            text=True,
            env=env,
        )

    good = run(MODELS / "cnn.keras")
    assert good.returncode == 0, good.stderr
    assert good.stderr == ""  # no "cannot read", and no fork for the CRC check
    assert len(good.stdout.splitlines()) >= 5
    corrupt = run(_flipped_crc(tmp_path))
    assert corrupt.returncode == 1
    assert corrupt.stdout == ""
    assert corrupt.stderr.splitlines() == [
        f"Error: {tmp_path / 'crc-model.weights.h5.keras'}: model.weights.h5 fails its zip CRC check (corrupt file)"
    ]


# argv[1]: a function whose fork gets the signal, argv[2]: the signal, argv[3] "slow-crc" or "-",
# then initcli's arguments.
_SIGNAL_RIGHT_AFTER_FORK = (
    _FORK_PATCH
    + """
import os, signal, sys, time
from initcli.analysis import inspection
from initcli.cli import cli
from initcli.readers import open as opening
caller, signal_name, slow_crc = sys.argv[1:4]
def fork():
    pid = real_fork()
    if pid == 0 and caller in set(callers()):
        os.kill(os.getpid(), getattr(signal, signal_name))  # lands before the child's own code runs
    return pid
os.fork = fork
if slow_crc == "slow-crc":
    real_check = opening._crc_check
    def slow_check(*args):
        time.sleep(1.0)  # the background CRC check still runs while the children start
        return real_check(*args)
    opening._crc_check = slow_check
    inspection.FAN_OUT_BYTES = 0
cli(sys.argv[4:], prog_name="initcli")
"""
)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_that_reaches_a_child_as_it_starts_does_not_unwind_the_parents_stack_in_it(
    tmp_path: Path, signal_name: str
) -> None:
    """Ctrl-C or SIGTERM meeting a measuring child before its work loop: the child must not run the
    parent's handlers (print "Interrupted.", remove the parent's files, kill the parent's background
    CRC check, which then read as a corrupt file). It dies quietly; its work is redone by the parent."""
    model = tmp_path / "big.keras"
    model.write_bytes((MODELS / "cnn.keras").read_bytes())
    reference = subprocess.run(
        [sys.executable, "-m", "initcli", "inspect", str(model), "--format", "csv"],
        capture_output=True,
        text=True,
        env={**os.environ, "INITCLI_WORKERS": "1"},
    )
    assert reference.returncode == 0, reference.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGNAL_RIGHT_AFTER_FORK,
            "map_in_order",
            signal_name,
            "slow-crc",
            "inspect",
            str(model),
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "INITCLI_WORKERS": "2"},
    )
    assert done.stderr == ""
    assert done.returncode == 0
    assert done.stdout == reference.stdout


def test_a_signal_that_reaches_a_draw_child_as_it_starts_changes_nothing() -> None:
    """A draw's children (rng/parallel, through map_in_order): the draw is the one a single process
    makes, and nothing is printed."""
    command = ["sample", "--init", "he_normal", "--shape", "1024x1024", "--seed", "3", "--format", "json"]
    reference = subprocess.run(
        [sys.executable, "-m", "initcli", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "INITCLI_WORKERS": "1"},
    )
    assert reference.returncode == 0, reference.stderr
    done = subprocess.run(
        [sys.executable, "-c", _SIGNAL_RIGHT_AFTER_FORK, "map_in_order", "SIGINT", "-", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "INITCLI_WORKERS": "2"},
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == reference.stdout


def test_a_signal_that_reaches_the_hdf5_child_as_it_starts_is_one_error_line() -> None:
    """The structure walk's child stopped by a signal: one `Error:` line from the parent, nothing from the child."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGNAL_RIGHT_AFTER_FORK,
            "run_isolated",
            "SIGINT",
            "-",
            "inspect",
            str(MODELS / "cnn.h5"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("Error: "), done.stderr


_CRC_CHILD_KILLED = """
import os, signal, sys
from initcli.cli import cli
from initcli.readers import open as opening
def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer, or a user's kill -9
opening._crc_check = killed
cli(sys.argv[1:], prog_name="initcli")
"""


def test_a_killed_crc_check_is_no_pass_and_is_not_blamed_on_hdf5() -> None:
    """The background CRC child killed: no report (nothing vouched for the bytes), one line naming the check."""
    done = subprocess.run(
        [sys.executable, "-c", _CRC_CHILD_KILLED, "inspect", str(MODELS / "cnn.keras"), "--format", "csv"],
        capture_output=True,
        text=True,
        env={**os.environ, "INITCLI_WORKERS": "2"},
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"Error: {MODELS / 'cnn.keras'}: checking the zip CRC of model.weights.h5 was stopped (SIGKILL)"
        " before it answered"
    ]
