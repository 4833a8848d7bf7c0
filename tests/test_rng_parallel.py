"""Draws filled by forked worker processes: bit-exact, and never hung or wrong when a worker misbehaves.

Forking happens in a fresh interpreter (PROBE below, run with `python -c`): this test process may
hold TensorFlow's thread pools, and initcli itself never forks with TensorFlow loaded. The probe
writes its arrays to .npy files and a JSON summary to stdout; the tests compare the arrays with
the serial kernels and with TensorFlow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.errors import BadInputError
from initcli.parallel import fanout
from initcli.rng import parallel, stateless
from initcli.rng.philox import PhiloxStream
from tests.helpers import assert_bit_equal, no_children_left

ROOT = Path(__file__).resolve().parents[1]
# initcli forks only on Linux (elsewhere every draw is serial, which the other tests cover).
forks = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="initcli forks workers on Linux only")
# Above MIN_PARALLEL_ELEMENTS, not a whole number of pieces, and starting and ending inside blocks.
START, STOP = 3, 2 * stateless.MIN_PARALLEL_ELEMENTS + 5 * stateless._PIECE_ELEMENTS + 1_002

PROBE = r"""
import json, os, signal, sys, time
import numpy as np
from initcli.parallel import fanout
from initcli.rng import parallel, stateless
from initcli.rng.philox import PhiloxStream

args = json.loads(sys.argv[1])
out_dir = args["dir"]
log = os.open(os.path.join(out_dir, "log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
parent = os.getpid()

def note(text):
    os.write(log, (text + "\n").encode())

def wait_for_a_child():
    # The caller's first piece waits (a minute at most) until a child has taken one, so that the
    # children take part however loaded the machine is.
    if os.environ.get("CALLER_WAITED") or os.environ.get("INITCLI_WORKERS") == "1":
        return  # waited already, or no child to wait for (the serial reference draw)
    os.environ["CALLER_WAITED"] = "1"
    for _ in range(6000):
        with open(os.path.join(out_dir, "log")) as handle:
            if "piece " in handle.read():
                return
        time.sleep(0.01)

fanout.STALL_SECONDS = 0.5  # a hung child is killed soon (its task is redone)
scenario = args["scenario"]
summary = {}
if scenario in ("stream", "sampling"):
    real_fill_range = stateless._fill_range
    def logged_fill_range(*fill_args):
        if os.getpid() != parent:
            note(f"piece {os.getpid()}")
        else:
            wait_for_a_child()
        real_fill_range(*fill_args)
    stateless._fill_range = logged_fill_range
if scenario == "stream":
    os.environ["INITCLI_WORKERS"] = "1"
    serial = getattr(stateless, args["kind"])(PhiloxStream.from_seed(*args["seed"]), args["dtype"], *args["range"])
    os.environ["INITCLI_WORKERS"] = str(args["workers"])
    result = getattr(stateless, args["kind"])(PhiloxStream.from_seed(*args["seed"]), args["dtype"], *args["range"])
    np.save(os.path.join(out_dir, "serial.npy"), serial.view(f"u{serial.itemsize}"))
elif scenario == "sampling":
    from initcli.initializers import resolve
    from initcli.analysis.sampling import iter_chunks
    spec = resolve(args["init"])
    result = np.concatenate(list(iter_chunks(spec, tuple(args["shape"]), args["dtype"], seed=args["seed"])))
else:
    # A trivial draw: element i is i. Children misbehave as the scenario says.
    def fill_piece(low, high, out):
        if os.getpid() == parent:
            if scenario == "interrupt":
                raise KeyboardInterrupt
            if scenario != "fork_fails":
                wait_for_a_child()
            time.sleep(0.005)  # leave the children pieces to misbehave on
            out[:] = np.arange(low, high)
            return
        note(f"piece {os.getpid()}")
        done = int(os.environ.get("PIECES_DONE", "0"))
        os.environ["PIECES_DONE"] = str(done + 1)
        if scenario == "noisy":
            print("child output", flush=True)
            sys.stderr.write("child error\n")
            raise RuntimeError("a child fails loudly")
        if scenario == "orphan" or (scenario == "interrupt" and done == 0):
            note(f"sleeping {os.getpid()}")
            time.sleep(3600)
        if done < 2:
            out[:] = np.arange(low, high)
            return
        out[:] = -1.0  # garbage in the shared output, never reported done: the caller writes it again
        note(f"misbehaving {os.getpid()}")
        if scenario == "raise":
            raise RuntimeError("a child fails")
        if scenario == "exit":
            os._exit(1)
        if scenario == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if scenario == "hang":
            time.sleep(3600)
        out[:] = np.arange(low, high)

    if scenario == "fork_fails":
        def refuse():
            raise OSError(11, "Resource temporarily unavailable")
        fanout.fork_held = refuse
    if scenario == "noisy":
        print("before the draw")  # buffered (stdout is a pipe): a child must not flush it again
    try:
        result = parallel.fill(fill_piece, args["elements"], np.dtype(np.float64), args["workers"], args["piece"])
    except KeyboardInterrupt:
        summary["interrupted"] = True
        result = np.empty(0)
    try:
        os.waitpid(-1, os.WNOHANG)
        summary["children_left"] = True
    except ChildProcessError:
        summary["children_left"] = False
np.save(os.path.join(out_dir, "result.npy"), result.view(f"u{result.itemsize}"))  # bfloat16 as its bits
with open(os.path.join(out_dir, "log")) as handle:
    lines = handle.read().splitlines()
summary["child_pieces"] = sum(1 for line in lines if line.startswith("piece "))
summary["misbehaving"] = [int(line.split()[1]) for line in lines if line.startswith(("misbehaving", "sleeping"))]
print(json.dumps(summary))
"""


def probe(tmp_path: Path, dtype: str = "float64", **args) -> tuple[dict, np.ndarray]:
    """Run PROBE in a fresh interpreter; return its summary and its result array (of `dtype`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("INITCLI_WORKERS", None)
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps({"dir": str(tmp_path), "dtype": dtype, **args})],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # a hang guard, not a performance assertion
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    summary = json.loads(completed.stdout.splitlines()[-1])
    summary["stdout"] = completed.stdout
    return summary, load(tmp_path / "result.npy", dtype)


def load(path: Path, dtype: str) -> np.ndarray:
    return np.load(path).view(stateless.numpy_dtype(dtype))


@forks
@pytest.mark.parametrize("kind", ["uniform", "normal", "truncated_normal"])
@pytest.mark.parametrize("dtype", stateless.FLOAT_DTYPES)
def test_processes_give_the_serial_stream(tmp_path, kind, dtype):
    summary, result = probe(
        tmp_path, scenario="stream", kind=kind, dtype=dtype, seed=[7, 2], range=[START, STOP], workers=2
    )
    assert summary["child_pieces"] > 0
    assert_bit_equal(result, load(tmp_path / "serial.npy", dtype))


@forks
@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("kind", "dtype"),
    [
        ("uniform", "float32"),
        ("normal", "float32"),
        ("truncated_normal", "float32"),
        ("normal", "float64"),
        ("truncated_normal", "float64"),
        ("normal", "bfloat16"),
    ],
)
def test_processes_equal_tensorflow(tmp_path, keras, kind, dtype):
    import tensorflow as tf

    summary, result = probe(
        tmp_path, scenario="stream", kind=kind, dtype=dtype, seed=[5, 9], range=[START, STOP], workers=3
    )
    assert summary["child_pieces"] > 0
    reference = getattr(tf.random, f"stateless_{kind}")([STOP], seed=(5, 9), dtype=getattr(tf, dtype)).numpy()
    assert_bit_equal(result, reference[START:])


@forks
@pytest.mark.tensorflow
def test_the_sampling_path_reaches_the_processes(tmp_path, keras):
    """`initcli sample` draws through sampling.iter_chunks: a 1024x1024 draw uses the workers."""
    summary, result = probe(
        tmp_path, scenario="sampling", init="random_normal", shape=[1024, 1024], dtype="float32", seed=3
    )
    assert summary["child_pieces"] > 0
    reference = keras.initializers.RandomNormal(seed=3)((1024, 1024)).numpy().reshape(-1)
    assert_bit_equal(result, reference)


PROTOCOL = {"elements": 40_000, "piece": 1_000, "workers": 2}


@forks
@pytest.mark.parametrize("scenario", ["raise", "exit", "crash", "hang"])
def test_a_failing_child_is_never_trusted(tmp_path, scenario):
    """A child writes garbage into its piece of the shared output, then raises, exits 1, crashes or
    hangs (and is killed) before reporting it: the caller computes that piece again."""
    summary, result = probe(tmp_path, scenario=scenario, **PROTOCOL)
    assert summary["misbehaving"], "the child never reached its third piece"
    assert_bit_equal(result, np.arange(PROTOCOL["elements"], dtype=np.float64))
    assert summary["children_left"] is False
    for pid in summary["misbehaving"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@forks
def test_no_fork_means_the_caller_does_it_all(tmp_path):
    summary, result = probe(tmp_path, scenario="fork_fails", **PROTOCOL)
    assert summary["child_pieces"] == 0
    assert_bit_equal(result, np.arange(PROTOCOL["elements"], dtype=np.float64))


@forks
def test_children_write_nothing_and_flush_nothing(tmp_path):
    summary, result = probe(tmp_path, scenario="noisy", **PROTOCOL)
    assert summary["child_pieces"] > 0
    assert summary["stdout"].count("before the draw") == 1
    assert "child output" not in summary["stdout"]
    assert_bit_equal(result, np.arange(PROTOCOL["elements"], dtype=np.float64))


@forks
def test_ctrl_c_in_the_caller_kills_the_children(tmp_path):
    summary, _ = probe(tmp_path, scenario="interrupt", **PROTOCOL)
    assert summary["interrupted"] is True
    assert summary["children_left"] is False


@forks
def test_children_die_with_the_caller(tmp_path):
    """SIGKILL the caller while its child sleeps inside a piece: the child goes too (PR_SET_PDEATHSIG)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = json.dumps({"dir": str(tmp_path), "scenario": "orphan", **PROTOCOL})
    caller = subprocess.Popen([sys.executable, "-c", PROBE, args], env=env, stdout=subprocess.DEVNULL)
    log = tmp_path / "log"
    try:
        for _ in range(600):  # until the child is asleep (at most a minute)
            if log.exists() and "sleeping" in log.read_text():
                break
            time.sleep(0.1)
        sleeping = [int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("sleeping")]
        assert sleeping
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait()
    for _ in range(600):
        if not any(_alive(pid) for pid in sleeping):
            break
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in sleeping)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as dead)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


@forks
def test_the_fork_with_threads_warning_is_silenced():
    """Python 3.12+ warns when a process with threads forks (and the tests turn warnings into errors)."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            filled = parallel.fill(lambda low, high, out: out.fill(low), 4_000, np.dtype(np.float64), 2, 1_000)
    finally:
        stop.set()
        thread.join()
    assert [str(warning.message) for warning in caught] == []
    assert filled.tolist() == [float(low) for low in range(0, 4_000, 1_000) for _ in range(1_000)]
    assert no_children_left()


@forks
def test_a_draw_too_large_for_the_task_pipe_is_cut_into_larger_tasks(monkeypatch):
    """A draw of more pieces than the task queue holds: fewer, larger tasks (never a queue write that
    blocks forever, never a piece left out)."""
    spans = []
    real = parallel.map_in_order

    def recorded(function, tasks, **kwargs):
        spans.append((len(tasks), tasks.step))
        return real(function, tasks, **kwargs)

    monkeypatch.setattr(parallel, "map_in_order", recorded)
    filled = parallel.fill(lambda low, high, out: out.fill(low), 40_000, np.dtype(np.float64), 2, 4)
    assert_bit_equal(filled, np.arange(40_000, dtype=np.float64) // 4 * 4)
    assert spans == [(3_334, 12)]  # 10,000 pieces of 4 in at most _MAX_TASKS (4096) tasks: 3 pieces each
    assert no_children_left()


def test_a_task_queue_the_pipe_cannot_hold_means_one_process(monkeypatch):
    """A pipe of 4 KiB (a user over pipe-user-pages-soft) cannot take 2000 task numbers: no queue, so
    map_in_order runs the plain loop instead of blocking on the write."""
    import fcntl

    monkeypatch.setattr(
        fcntl, "fcntl", lambda fd, command, *arg: 4096 if command == fanout._F_GETPIPE_SZ else _refuse()
    )
    assert fanout._task_queue(2000) is None
    small = fanout._task_queue(1000)  # 4000 bytes: within PIPE_BUF, which every pipe holds
    assert small is not None
    assert os.read(small, 8) == np.arange(2, dtype="<u4").tobytes()
    os.close(small)


def _refuse():
    raise PermissionError(1, "Operation not permitted")


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_workers_variable_is_a_usage_error(monkeypatch, value):
    monkeypatch.setenv(fanout.WORKERS_VARIABLE, value)
    with pytest.raises(BadInputError, match=r"INITCLI_WORKERS must be a whole number"):
        stateless.normal(PhiloxStream.from_seed(0, 0), "float32", 0, 10)
    result = CliRunner().invoke(cli, ["sample", "--init", "he_normal", "--shape", "4x4", "--seed", "0"])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (
        f"Error: INITCLI_WORKERS must be a whole number of processes, at least 1. Received: {value!r}"
    )
    assert "Traceback" not in result.output


FORKED_USER_PROBE = r"""
import os, sys
from initcli.rng import stateless
from initcli.rng.philox import PhiloxStream
stream = PhiloxStream.from_seed(1, 2)
size = 2 * stateless.MIN_PARALLEL_ELEMENTS
reference = stateless.normal(stream, "float32", 0, size)  # a parallel draw
statuses = []
for _ in range(5):
    pid = os.fork()  # the user's own fork (multiprocessing's default start method on Linux does this)
    if pid == 0:
        again = stateless.normal(stream, "float32", 0, size)  # its own parallel draw
        again = stateless.normal(stream, "float32", 0, size)  # and another
        os._exit(0 if (again == reference).all() else 1)
    statuses.append(os.waitpid(pid, 0)[1])
print(statuses)
"""


@forks
def test_a_process_forked_after_a_draw_draws_too(tmp_path):
    """A process forked from one that made a parallel draw (a user's fork, a multiprocessing worker)
    makes its own parallel draws, exactly."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(fanout.WORKERS_VARIABLE, None)
    done = subprocess.run(
        [sys.executable, "-c", FORKED_USER_PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 0, 0, 0, 0]"


THREADS_PROBE = r"""
import os, threading
from initcli.rng import stateless
from initcli.rng.philox import PhiloxStream
stream = PhiloxStream.from_seed(5, 6)
size = 2 * stateless.MIN_PARALLEL_ELEMENTS + 12_345
kinds = [("normal", "float32", 0, size), ("uniform", "float64", 5, 2 * size)]
os.environ["INITCLI_WORKERS"] = "1"
references = [getattr(stateless, kind)(stream, dtype, start, stop) for kind, dtype, start, stop in kinds]
del os.environ["INITCLI_WORKERS"]
barrier = threading.Barrier(2)
outcomes = []
def draw_again_and_again(which):
    kind, dtype, start, stop = kinds[which]
    for _ in range(3):
        barrier.wait()
        try:
            result = getattr(stateless, kind)(stream, dtype, start, stop)
        except Exception as error:
            outcomes.append(repr(error))
            continue
        outcomes.append(bool((result.view("u1") == references[which].view("u1")).all()))
threads = [threading.Thread(target=draw_again_and_again, args=(which,)) for which in (0, 1)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
try:
    os.waitpid(-1, os.WNOHANG)
    outcomes.append("a child is left")
except ChildProcessError:
    pass
print(outcomes)
"""


@forks
def test_threads_drawing_at_once_get_the_serial_stream():
    """Two threads of a library user draw at the same moment, three times each: each draw forks its
    own children (a child of one may inherit the other's pipes), every draw is exact, none is left."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(fanout.WORKERS_VARIABLE, None)
    done = subprocess.run([sys.executable, "-c", THREADS_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([True] * 6)
