"""Fan-out over forked processes: the results, order and errors of a plain loop, whatever the children do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from initcli.errors import BadInputError
from initcli.parallel import fanout
from initcli.parallel.fanout import map_in_order, worker_count
from tests.helpers import no_children_left

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fan-out forks on Linux only")

PARENT = os.getpid()
MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def in_child() -> bool:
    return os.getpid() != PARENT


def square(task: int) -> tuple[int, int]:
    return task, task * task


@pytest.mark.parametrize("workers", [2, 3])
def test_results_come_in_order_and_children_did_some_of_them(workers: int) -> None:
    def slow_square(task: int) -> tuple[int, int, bool]:
        time.sleep(0.002)
        return task, task * task, in_child()

    results = list(map_in_order(slow_square, list(range(200)), workers=workers))
    assert [(task, value) for task, value, _ in results] == [(t, t * t) for t in range(200)]
    # Not vacuous: the children did take tasks (else this would test only the parent's loop).
    assert any(by_child for _, _, by_child in results)
    assert no_children_left()


def test_an_error_is_raised_at_its_task_whoever_met_it() -> None:
    def failing(task: int) -> int:
        if task in (37, 120):
            raise ValueError(f"task {task} is bad")
        time.sleep(0.001)
        return task

    seen = []
    with pytest.raises(ValueError, match="task 37 is bad"):
        for value in map_in_order(failing, list(range(200)), workers=2):
            seen.append(value)
    assert seen == list(range(37))
    assert no_children_left()


class Refusal(Exception):
    pass


def test_a_passed_on_error_is_raised_as_the_child_met_it_not_redone() -> None:
    """A refusal (say a read that timed out) is not met twice: the child's exception is raised as it is."""
    raised = []
    for refused in range(30, 50):  # until the child, not the parent, is the one that took the task

        def refusing(task: int, refused: int = refused) -> int:
            time.sleep(0.002)
            if task == refused:
                raise Refusal(f"task {task} refused in {'a child' if in_child() else 'the parent'}")
            return task

        with pytest.raises(Refusal) as caught:
            list(map_in_order(refusing, list(range(60)), workers=2, passed_on=(Refusal,)))
        raised.append(str(caught.value))
        if "a child" in raised[-1]:
            break
    assert f"task {refused} refused in a child" in raised
    assert no_children_left()


def test_a_child_that_dies_has_its_tasks_done_by_the_parent() -> None:
    def dying(task: int) -> int:
        if in_child() and task >= 20:
            os._exit(3)  # a crash in the middle of the run
        time.sleep(0.001)
        return task * 2

    assert list(map_in_order(dying, list(range(100)), workers=2)) == [t * 2 for t in range(100)]
    assert no_children_left()


def test_a_result_that_does_not_pickle_is_redone_by_the_parent() -> None:
    def unpicklable(task: int) -> object:
        time.sleep(0.001)
        return (lambda: task) if in_child() else task

    results = list(map_in_order(unpicklable, list(range(60)), workers=2))
    assert results == list(range(60))


def test_a_stalled_child_is_killed_and_its_tasks_redone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "STALL_SECONDS", 0.5)

    def stalling(task: int) -> int:
        if in_child():
            time.sleep(3600)
        time.sleep(0.05)  # the parent is slow to take tasks: the child surely takes one
        return task + 1

    def too_long(signum: int, frame: object) -> None:
        raise TimeoutError("the stalled child was waited for")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(30)  # a hang guard: a run that waits for the child's hour fails instead of hanging
    try:
        assert list(map_in_order(stalling, list(range(10)), workers=2)) == list(range(1, 11))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert no_children_left()


def test_a_silent_child_that_is_working_is_not_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Silence alone is not a stall: a child busy on one task (CPU time advancing) for eight times
    STALL_SECONDS delivers it, instead of being killed and its task done again by the parent."""
    monkeypatch.setattr(fanout, "STALL_SECONDS", 0.25)

    def long_in_the_child(task: int) -> tuple[int, bool]:
        if in_child():
            finish = time.monotonic() + 2.0
            while time.monotonic() < finish:  # busy: CPU time advances
                pass
        else:
            time.sleep(0.2)  # the parent is slow to take tasks: the child surely takes one
        return task, in_child()

    results = list(map_in_order(long_in_the_child, [0, 1, 2], workers=2))
    assert [task for task, _ in results] == [0, 1, 2]
    assert sum(by_child for _, by_child in results) == 1
    assert no_children_left()


def test_a_processes_activity_is_read_from_proc() -> None:
    """The stall check's reading: CPU ticks grow while this process computes, bytes read while it reads."""
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("no /proc")  # not Linux: initcli does not fork there either
    before = fanout._activity(os.getpid())
    finish = time.process_time() + 0.1
    while time.process_time() < finish:
        pass
    Path(__file__).read_bytes()
    after = fanout._activity(os.getpid())
    assert before is not None and after is not None
    assert after[0] > before[0]
    assert after[1] >= before[1] + Path(__file__).stat().st_size
    assert fanout._activity(2**22 + 7) is None  # no such process


def test_stopping_early_reaps_the_children() -> None:
    def slow(task: int) -> int:
        time.sleep(0.01)
        return task

    results = map_in_order(slow, list(range(1000)), workers=2)
    assert next(results) == 0
    results.close()
    assert no_children_left()


def test_one_worker_is_a_plain_loop_in_this_process() -> None:
    assert list(map_in_order(lambda task: (task, in_child()), [1, 2, 3], workers=1)) == [
        (1, False),
        (2, False),
        (3, False),
    ]


def test_worker_count_honours_the_variable_and_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # earlier tests may have loaded it
    monkeypatch.setenv("INITCLI_WORKERS", "1")
    assert worker_count() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setenv("INITCLI_WORKERS", "3")
    assert worker_count() == 3
    monkeypatch.setenv("INITCLI_WORKERS", "64")
    assert worker_count() == 4  # never more than the CPUs this process may use
    monkeypatch.setenv("INITCLI_WORKERS", "many")
    with pytest.raises(BadInputError, match="INITCLI_WORKERS must be a whole number"):
        worker_count()
    monkeypatch.setenv("INITCLI_WORKERS", "3")
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    monkeypatch.setenv("INITCLI_WORKERS", "3")
    assert worker_count() == 1


def test_children_print_nothing() -> None:
    code = (
        "import sys\nfrom initcli.parallel.fanout import map_in_order\n"
        "def noisy(task):\n    print('noise', task); sys.stderr.write('noise\\n'); return task\n"
        "print(sum(map_in_order(noisy, list(range(50)), workers=2)) == sum(range(50)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    # The parent's own tasks print; no line is printed twice and the children add nothing.
    assert lines[-1] == "True"
    assert len(lines) - 1 <= 50 and len(set(lines[:-1])) == len(lines) - 1


_COMPARE_REPORTS = """
import json, os, sys, time
from initcli import api
from initcli.analysis import inspection
real = inspection.measure_record
measured_here = []
def slow_measure(record, interval_alpha):
    measured_here.append(record.path)  # in a child this list is the child's copy
    time.sleep(0.05)
    return real(record, interval_alpha)
inspection.FAN_OUT_BYTES = 0
inspection.measure_record = slow_measure
out = {}
for workers in ("1", "2"):
    os.environ["INITCLI_WORKERS"] = workers
    measured_here.clear()
    out[workers] = {"report": api.inspect_model(sys.argv[1]).to_json(), "measured_here": len(measured_here)}
print(json.dumps(out))
"""


def test_inspect_gives_the_same_report_with_one_or_two_processes() -> None:
    """The whole report measured by one process and by two (fan-out forced on a small model).

    In a fresh interpreter: pytest's may hold TensorFlow, with which initcli does not fork.
    """
    done = subprocess.run(
        [sys.executable, "-c", _COMPARE_REPORTS, str(MODELS / "cnn.keras")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    weights = len(out["1"]["report"]["weights"])
    assert weights >= 4 and out["1"]["measured_here"] == weights
    assert 0 < out["2"]["measured_here"] < weights  # the child measured some of them
    assert out["1"]["report"] == out["2"]["report"]
    means = [row["sample"]["mean"] for row in out["2"]["report"]["weights"]]
    assert all(mean is not None and np.isfinite(mean) for mean in means)


@pytest.mark.parametrize("command", ["inspect", "check"])
def test_a_bad_workers_variable_is_a_usage_error_for_models(command: str) -> None:
    env = {**os.environ, "INITCLI_WORKERS": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "initcli", command, str(MODELS / "cnn.keras")], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "Error: INITCLI_WORKERS must be a whole number of processes, at least 1. Received: '0'"
    )


def test_a_child_whose_parent_died_before_prctl_does_no_work(monkeypatch) -> None:
    """The child checks, after asking to die with its parent, that its parent is still the one
    that forked it; here getppid says otherwise in the child, so the parent does every task."""
    real_getppid = os.getppid
    monkeypatch.setattr(os, "getppid", lambda: -1 if in_child() else real_getppid())

    def slow_square(task: int) -> tuple[int, int, bool]:
        time.sleep(0.002)
        return task, task * task, in_child()

    results = list(map_in_order(slow_square, list(range(100)), workers=2))
    assert [(task, value) for task, value, _ in results] == [(t, t * t) for t in range(100)]
    assert not any(by_child for _, _, by_child in results)
    assert no_children_left()
