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
from tests.helpers import assert_bit_equal

ROOT = Path(__file__).resolve().parents[1]
# initcli forks only on Linux (elsewhere every draw is serial, which the other tests cover).
forks = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="initcli forks workers on Linux only")
# Above MIN_PARALLEL_ELEMENTS, not a whole number of pieces, and starting and ending inside blocks.
START, STOP = 3, 2 * stateless.MIN_PARALLEL_ELEMENTS + 5 * stateless._PIECE_ELEMENTS + 1_002

PROBE = r"""
import json, os, signal, sys, time
import numpy as np
from initcli.rng import parallel, stateless
from initcli.rng.philox import PhiloxStream

args = json.loads(sys.argv[1])
out_dir = args["dir"]
log = os.open(os.path.join(out_dir, "log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
parent = os.getpid()

def note(text):
    os.write(log, (text + "\n").encode())

def child_pieces():
    with open(os.path.join(out_dir, "log")) as handle:
        return sum(1 for line in handle if line.startswith("piece "))

def hook(worker, piece):
    if worker == 0:
        if not os.environ.get("CALLER_WAITED"):
            os.environ["CALLER_WAITED"] = "1"
            time.sleep(0.05)  # let the children start even on a loaded machine
        return
    note(f"piece {worker} {piece} {os.getpid()}")

parallel._piece_hook = hook
parallel._keep_in_helpers.add(log)  # the helpers log through it
draws = []
real_draw = parallel._Draw.__init__
def recorded_draw(self, *args, **kwargs):
    real_draw(self, *args, **kwargs)
    draws.append(self.pool is not None)  # the pool's helpers, or children of the draw's own
parallel._Draw.__init__ = recorded_draw
scenario = args["scenario"]
summary = {}
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
    # The protocol with a trivial draw: element i is i. Children misbehave as the scenario says.
    def fill_piece(low, high, out):
        if os.getpid() == parent:
            if scenario == "interrupt":
                raise KeyboardInterrupt
            if scenario != "overflow":
                time.sleep(0.005)  # leave the children pieces to misbehave on
            out[:] = np.arange(low, high)
            return
        done = int(os.environ.get("PIECES_DONE", "0"))
        os.environ["PIECES_DONE"] = str(done + 1)
        if scenario == "noisy":
            print("child output", flush=True)
            sys.stderr.write("child error\n")
            raise RuntimeError("a child fails loudly")
        if scenario == "orphan" or (scenario == "interrupt" and done == 0):
            note(f"sleeping {os.getpid()}")
            time.sleep(3600)
        if scenario == "overflow":
            out[:] = np.arange(low, high)
            return
        if done < 2:
            out[:] = -1.0  # garbage, marked done: only a clean exit may vouch for it
            return
        note(f"misbehaving {os.getpid()}")
        if scenario == "exit":
            os._exit(1)
        if scenario == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if scenario == "hang":
            time.sleep(3600)
        out[:] = np.arange(low, high)

    if args.get("closure"):
        # Does not pickle: the draw gets children of its own, instead of the pool's helpers.
        fill_piece = (lambda fill: lambda low, high, out: fill(low, high, out))(fill_piece)
    if scenario == "overflow":
        parallel._pipe_capacity = lambda fd: 1 << 30  # more piece numbers than the pipe holds
    if scenario == "fork_fails":
        def refuse():
            raise OSError(11, "Resource temporarily unavailable")
        parallel._fork = refuse
    if scenario == "noisy":
        print("before the draw")  # buffered (stdout is a pipe): a child must not flush it again
    try:
        result = parallel.fill(fill_piece, args["elements"], np.dtype(np.float64), args["workers"], args["piece"])
    except KeyboardInterrupt:
        summary["interrupted"] = True
        result = np.empty(0)
    summary["pooled"] = draws == [True]
    if parallel._pools and not summary.get("interrupted"):
        summary["helpers_alive"] = len(parallel._pools[os.getpid()].helpers)
        parallel.shut_down_pool()  # helpers wait for the next draw: count only what should be gone
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
# Each protocol test runs twice: with the pool's helpers (a fill function that pickles) and with
# children of the draw's own (a closure).
PATHS = pytest.mark.parametrize("closure", [False, True], ids=["pool", "own-children"])


@forks
@PATHS
@pytest.mark.parametrize("scenario", ["exit", "crash", "hang"])
def test_a_failing_child_is_never_trusted(tmp_path, scenario, closure):
    """The child marks two garbage pieces done, then exits 1, crashes or hangs (and is killed):
    the caller computes every piece that child did again, and a failed helper leaves the pool."""
    summary, result = probe(tmp_path, scenario=scenario, closure=closure, **PROTOCOL)
    assert summary["pooled"] is not closure
    assert summary["misbehaving"], "the child never reached its third piece"
    assert_bit_equal(result, np.arange(PROTOCOL["elements"], dtype=np.float64))
    assert summary.get("helpers_alive", 0) == 0
    assert summary["children_left"] is False
    for pid in summary["misbehaving"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@forks
def test_pieces_the_queue_cannot_hold_are_done_by_the_caller(tmp_path):
    summary, result = probe(tmp_path, scenario="overflow", elements=200_000, piece=4, workers=2)
    assert summary["child_pieces"] > 0
    assert_bit_equal(result, np.arange(200_000, dtype=np.float64))


@forks
@PATHS
def test_no_fork_means_the_caller_does_it_all(tmp_path, closure):
    summary, result = probe(tmp_path, scenario="fork_fails", closure=closure, **PROTOCOL)
    assert summary["pooled"] is not closure
    assert summary["child_pieces"] == 0
    assert_bit_equal(result, np.arange(PROTOCOL["elements"], dtype=np.float64))


@forks
@PATHS
def test_children_write_nothing_and_flush_nothing(tmp_path, closure):
    summary, result = probe(tmp_path, scenario="noisy", closure=closure, **PROTOCOL)
    assert summary["pooled"] is not closure
    assert summary["child_pieces"] > 0
    assert summary["stdout"].count("before the draw") == 1
    assert "child output" not in summary["stdout"]
    assert_bit_equal(result, np.arange(PROTOCOL["elements"], dtype=np.float64))


@forks
@PATHS
def test_ctrl_c_in_the_caller_kills_the_children(tmp_path, closure):
    summary, _ = probe(tmp_path, scenario="interrupt", closure=closure, **PROTOCOL)
    assert summary["pooled"] is not closure
    assert summary["interrupted"] is True
    assert summary["children_left"] is False


@forks
@PATHS
def test_children_die_with_the_caller(tmp_path, closure):
    """SIGKILL the caller while its child sleeps inside a piece: the child goes too (PR_SET_PDEATHSIG)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = json.dumps({"dir": str(tmp_path), "scenario": "orphan", "closure": closure, **PROTOCOL})
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
            pid, _ = parallel._fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
    finally:
        stop.set()
        thread.join()
    assert [str(warning.message) for warning in caught] == []


def test_worker_count_rules(monkeypatch):
    monkeypatch.delenv(fanout.WORKERS_VARIABLE, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    big = stateless.MIN_PARALLEL_ELEMENTS
    assert parallel.worker_count(big, big) == 3
    assert parallel.worker_count(big - 1, big) == 1
    assert parallel.worker_count(big, 2 * big) == 1
    monkeypatch.setenv(fanout.WORKERS_VARIABLE, "1")
    assert parallel.worker_count(big, big) == 1
    monkeypatch.setenv(fanout.WORKERS_VARIABLE, "2")
    assert parallel.worker_count(big, big) == 2
    monkeypatch.setenv(fanout.WORKERS_VARIABLE, "64")
    assert parallel.worker_count(big, big) == 3  # never more than the CPUs this process may use
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert parallel.worker_count(big, big) == parallel.MAX_WORKERS
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    assert parallel.worker_count(big, big) == 1
    monkeypatch.delitem(sys.modules, "tensorflow")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert parallel.worker_count(big, big) == 1


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


REAP_PROBE = r"""
import json, os, sys, time
import numpy as np
from initcli.rng import parallel

log_path = sys.argv[1]
log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
draw = [0]

def hook(worker, piece):
    if worker:
        os.write(log, f"{draw[0]} {os.getpid()}\n".encode())
    elif piece == 0:
        time.sleep(0.05)  # let the child start even on a loaded machine

def make_fill():
    def fill_piece(low, high, out):
        out[:] = np.arange(low, high)
    return fill_piece

fill_piece = make_fill()  # a closure: it does not pickle, so each draw's children exit with it
parallel._piece_hook = hook
parallel._keep_in_helpers.add(log)  # the helpers log through it
results = []
for draw[0] in (1, 2):
    results.append(parallel.fill(fill_piece, 40_000, np.dtype(np.float64), 2, 1_000))
    time.sleep(0.5)  # the children of this draw exit meanwhile
children = {}
for line in open(log_path).read().splitlines():
    number, pid = line.split()
    children.setdefault(number, set()).add(int(pid))
first = sorted(children.get("1", ()))
print(json.dumps({
    "first": first,
    "first_left": [pid for pid in first if os.path.exists(f"/proc/{pid}")],
    "exact": all(bool((r == np.arange(40_000)).all()) for r in results),
}))
"""


@forks
def test_finished_children_are_reaped_by_the_next_draw(tmp_path):
    """A child that announced its last piece is not waited for, but the next draw reaps it: no
    zombie is left behind from one draw to the next."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(fanout.WORKERS_VARIABLE, None)
    result = subprocess.run(
        [sys.executable, "-c", REAP_PROBE, str(tmp_path / "log")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["first"], "the first draw's child computed no piece"
    assert summary["exact"]
    assert summary["first_left"] == []


FORKED_USER_PROBE = r"""
import os, sys
from initcli.rng import stateless
from initcli.rng.philox import PhiloxStream
stream = PhiloxStream.from_seed(1, 2)
size = 2 * stateless.MIN_PARALLEL_ELEMENTS
reference = stateless.normal(stream, "float32", 0, size)  # a parallel draw: the caller's arena exists
statuses = []
for _ in range(5):
    pid = os.fork()  # the user's own fork (multiprocessing's default start method on Linux does this)
    if pid == 0:
        again = stateless.normal(stream, "float32", 0, size)  # its own parallel draw
        again = stateless.normal(stream, "float32", 0, size)  # and another, after its arena is made
        os._exit(0 if (again == reference).all() else 1)
    statuses.append(os.waitpid(pid, 0)[1])
print(statuses)
"""


@forks
def test_a_process_forked_after_a_draw_draws_too(tmp_path):
    """A process forked from one that made a parallel draw (a user's fork, a multiprocessing worker)
    makes its own parallel draws, exactly. Its inherited arena has no memory there (MADV_DONTFORK):
    letting it go unmapped whatever the child had since put at that address (SIGSEGV, every time)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(fanout.WORKERS_VARIABLE, None)
    done = subprocess.run(
        [sys.executable, "-c", FORKED_USER_PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 0, 0, 0, 0]"


POOL_PROBE = r"""
import json, os, signal, sys, time
import select
import numpy as np
from initcli.rng import parallel, stateless
from initcli.rng.philox import PhiloxStream

scenario, log_path = sys.argv[1], sys.argv[2]
log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
parent = os.getpid()

class Draw(list):
    # draw[0] = n marks the start of draw n in the log: a helper's memory is that of its fork, so it
    # cannot tell which draw it works for; what it logs after a mark belongs to that draw.
    def __setitem__(self, index, value):
        super().__setitem__(index, value)
        os.write(log, f"draw {value}\n".encode())

draw = Draw([0])

def hook(worker, piece):
    if worker:
        os.write(log, f"{os.getpid()} {os.getppid()}\n".encode())
    elif piece == 0:
        time.sleep(0.05)  # let the helper start taking pieces even on a loaded machine

def failing_in_the_first_draw(low, high, out):
    # Module-level, so it pickles and goes to the pool's helpers: the helper forked in draw 1 marks
    # two pieces of garbage done, then exits 1 on its third (the one of draw 2 is forked then).
    if os.getpid() != parent:
        done = int(os.environ.get("PIECES_DONE", "0"))
        os.environ["PIECES_DONE"] = str(done + 1)
        if draw[0] == 1 and done < 2:
            out[:] = -1.0
            return
        if draw[0] == 1:
            os._exit(1)
    else:
        time.sleep(0.002)
    out[:] = np.arange(low, high)

def same(a, b):
    return a.shape == b.shape and bool((a.view(np.uint8) == b.view(np.uint8)).all())

def serial(kind, dtype, start, stop):
    os.environ["INITCLI_WORKERS"] = "1"
    try:
        return getattr(stateless, kind)(stream, dtype, start, stop)
    finally:
        del os.environ["INITCLI_WORKERS"]

parallel._piece_hook = hook
parallel._keep_in_helpers.add(log)  # the helpers log through it
stream = PhiloxStream.from_seed(5, 6)
size = 2 * stateless.MIN_PARALLEL_ELEMENTS + 12_345
exact = []
if scenario == "reuse":
    cases = [("normal", "float32"), ("truncated_normal", "bfloat16"), ("uniform", "float64"), ("normal", "float64")]
    for draw[0], (kind, dtype) in enumerate(cases, 1):
        stop = 7 + (2 * size if kind == "uniform" else size)
        result = getattr(stateless, kind)(stream, dtype, 7, stop)
        exact.append(same(result, serial(kind, dtype, 7, stop)))
elif scenario == "fails":
    for draw[0] in (1, 2):
        result = parallel.fill(failing_in_the_first_draw, 40_000, np.dtype(np.float64), 2, 1_000)
        exact.append(bool((result == np.arange(40_000)).all()))
elif scenario == "idle":
    parallel.IDLE_SECONDS = 0.3
    reference = serial("normal", "float32", 0, size)
    for draw[0] in (1, 2):
        exact.append(same(stateless.normal(stream, "float32", 0, size), reference))
        time.sleep(1.5)  # longer than IDLE_SECONDS: the helper leaves
elif scenario == "warm":
    parallel.IDLE_SECONDS = 2.0
    quarter = stateless.MIN_PARALLEL_ELEMENTS // 4
    stops = (size, quarter + 9, quarter - 1, stateless.MIN_PARALLEL_ELEMENTS - 1, quarter + 9)
    for draw[0], stop in enumerate(stops, 1):
        if draw[0] == 5:
            time.sleep(3.0)  # the helper leaves: a small draw is not worth forking another
        result = stateless.truncated_normal(stream, "float16", 3, stop)
        exact.append(same(result, serial("truncated_normal", "float16", 3, stop)))
elif scenario == "fds":
    read, write = os.pipe()  # the caller's own pipe, open when the helper is forked
    draw[0] = 1
    exact.append(same(stateless.normal(stream, "float32", 0, size), serial("normal", "float32", 0, size)))
    os.close(write)  # the caller is done writing: its reader must see the end now, helper or not
    ready = select.select([read], [], [], 2.0)[0]
    exact.append(bool(ready) and os.read(read, 1) == b"")
elif scenario == "forked":
    reference = serial("normal", "float32", 0, size)
    draw[0] = 1
    exact.append(same(stateless.normal(stream, "float32", 0, size), reference))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a user's own fork: its draws must not go to its parent's helpers
        answer = False
        try:
            draw[0] = 2
            answer = same(stateless.normal(stream, "float32", 0, size), reference)
            parallel.shut_down_pool()
        finally:
            os.write(write, b"1" if answer else b"0")
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    exact.append(os.read(read, 1) == b"1")
    draw[0] = 3
    exact.append(same(stateless.normal(stream, "float32", 0, size), reference))
elif scenario == "threads":
    # Two threads draw at once, again and again: one draw has the pool, the other children of its own.
    import threading
    kinds = [("normal", "float32", 0, size), ("uniform", "float64", 5, 2 * size)]
    references = [serial(*kind) for kind in kinds]
    barrier = threading.Barrier(2)
    failures = []
    def draw_again_and_again(which):
        kind, dtype, start, stop = kinds[which]
        for _ in range(6):
            barrier.wait()
            try:
                result = getattr(stateless, kind)(stream, dtype, start, stop)
            except Exception as error:
                failures.append(repr(error))
                continue
            exact.append(same(result, references[which]))
    threads = [threading.Thread(target=draw_again_and_again, args=(which,)) for which in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    exact.append(failures == [])
    time.sleep(0.5)  # the children of the last draws exit meanwhile: reap them
    parallel.reap_finished()
elif scenario == "helper_left":
    # The helper leaves (idle, or killed by someone) just after the draw found it alive, before it is
    # asked: writing the draw to its pipe fails with EPIPE.
    real_ready = parallel._Pool.helper_ready
    def ready_then_gone(self, worker, parent):
        pid = real_ready(self, worker, parent)
        if draw[0] == 2:
            os.kill(pid, signal.SIGKILL)
            while "\nState:\tZ" not in open(f"/proc/{pid}/status").read():  # exited, not reaped
                time.sleep(0.001)
        return pid
    parallel._Pool.helper_ready = ready_then_gone
    reference = serial("normal", "float32", 0, size)
    for draw[0] in (1, 2, 3):
        exact.append(same(stateless.normal(stream, "float32", 0, size), reference))
helpers = {}
number = 0
for line in open(log_path).read().splitlines():
    if line.startswith("draw "):
        number = int(line.split()[1])
        continue
    pid, ppid = (int(value) for value in line.split())
    helpers.setdefault(number, set()).add((pid, ppid))
def running(pid):
    try:
        return "\nState:\tZ" not in open(f"/proc/{pid}/status").read()  # a zombie has exited
    except FileNotFoundError:
        return False

pool = parallel._pools.get(parent)
alive = sorted(pid for pid, _, _ in pool.helpers.values() if running(pid)) if pool else []
seen = {pid for pids in helpers.values() for pid, _ in pids}
parallel.shut_down_pool()
try:
    os.waitpid(-1, os.WNOHANG)
    children_left = True
except ChildProcessError:
    children_left = False
print(json.dumps({
    "exact": exact,
    "helpers": {str(number): sorted(pids) for number, pids in helpers.items()},
    "parent": parent,
    "alive_before_shut_down": alive,
    "running_after": sorted(pid for pid in seen if os.path.exists(f"/proc/{pid}")),
    "children_left": children_left,
}))
"""


def pool_probe(tmp_path: Path, scenario: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(fanout.WORKERS_VARIABLE, None)
    result = subprocess.run(
        [sys.executable, "-c", POOL_PROBE, scenario, str(tmp_path / "log")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a performance assertion
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def _pids(summary: dict, draw: int) -> set[int]:
    return {pid for pid, _ in summary["helpers"].get(str(draw), [])}


@forks
def test_the_pools_helper_serves_draw_after_draw(tmp_path):
    """Four draws of different kinds and dtypes in one process: each equals the serial stream, and no
    helper is left running. Which helper computed which piece is not asserted: on a loaded machine
    the caller may take every piece itself, or a helper past its deadline is replaced (this test
    failed that way before)."""
    summary = pool_probe(tmp_path, "reuse")
    assert summary["exact"] == [True] * 4
    assert summary["running_after"] == [] and summary["children_left"] is False


@forks
@pytest.mark.parametrize("scenario", ["fails", "idle"])
def test_a_helper_that_failed_or_sat_idle_is_gone_and_the_next_draw_forks_another(tmp_path, scenario):
    """ "fails": the first draw's helper exits 1 mid-draw; "idle": each draw is followed by more than
    IDLE_SECONDS without one. Both draws are exact, by different helpers."""
    summary = pool_probe(tmp_path, scenario)
    assert summary["exact"] == [True, True]
    first, second = _pids(summary, 1), _pids(summary, 2)
    assert first and second and not first & second
    if scenario == "idle":
        assert summary["alive_before_shut_down"] == []  # the second helper left too
    assert summary["running_after"] == [] and summary["children_left"] is False


@forks
def test_a_forked_process_draws_with_helpers_of_its_own(tmp_path):
    """A user's fork of a process with a pool: its draw goes to its own helper (its child), and the
    parent's helper still serves the parent afterwards."""
    summary = pool_probe(tmp_path, "forked")
    assert summary["exact"] == [True, True, True]
    (parent_helper,) = summary["helpers"]["1"]
    (forked_helper,) = summary["helpers"]["2"]
    assert parent_helper[1] == summary["parent"]
    assert forked_helper[1] not in (summary["parent"], parent_helper[0])
    assert forked_helper[0] != parent_helper[0]
    assert summary["helpers"]["3"] == [parent_helper]
    assert summary["running_after"] == [] and summary["children_left"] is False


def test_an_announcement_from_another_draw_is_ignored():
    """A pool's `done` pipe outlives each draw: a piece announced for an earlier draw (by a helper
    killed as it wrote) must not be copied into this one."""
    pool = parallel._Pool()
    try:
        draw = parallel._Draw(lambda low, high, out: None, np.zeros(8), 4, 2, 1, pool.queue.read, pool, b"")
        draw.ring[0, :4] = 7.0  # what slot 0 holds
        parallel._send(pool.done.write, np.array([draw.number - 1, 0, 0], dtype=np.uint32))
        draw._collect(pool.done.read, [-1])
        assert draw.owner.tolist() == [0, 0] and draw.output.tolist() == [0.0] * 8
        parallel._send(pool.done.write, np.array([draw.number, 1, 0], dtype=np.uint32))
        draw._collect(pool.done.read, [-1])
        assert draw.owner.tolist() == [0, 2] and draw.output.tolist() == [0.0] * 4 + [7.0] * 4
    finally:
        pool.shut_down()


@forks
def test_waiting_helpers_share_draws_down_to_a_quarter_of_the_threshold(tmp_path):
    """Once a large draw has started the pool, draws from MIN_PARALLEL_ELEMENTS / 4 on (no fork to pay)
    are shared with its helper; smaller ones stay in the caller, and so do those once the helper has
    left. Every draw is exact."""
    summary = pool_probe(tmp_path, "warm")
    assert summary["exact"] == [True] * 5
    helper = _pids(summary, 1)
    assert helper and _pids(summary, 2) == helper and _pids(summary, 4) == helper
    assert _pids(summary, 3) == set()
    assert _pids(summary, 5) == set()  # after the helper left, idle


@forks
def test_threads_drawing_at_once_get_the_serial_stream(tmp_path):
    """Two threads draw at the same moment, six times each: every draw is exact and none fails (the
    pool serves one draw at a time; the other gets children of its own)."""
    summary = pool_probe(tmp_path, "threads")
    assert summary["exact"] == [True] * 13
    assert summary["running_after"] == [] and summary["children_left"] is False


@forks
def test_a_helper_gone_before_it_is_asked_is_done_without(tmp_path):
    """A helper that leaves between the draw's check and its command (its idle time ran out, or
    someone killed it): the draw is exact, and raises nothing (a BrokenPipeError here read as `| head`
    closing, and the command line exited 0 without its output)."""
    summary = pool_probe(tmp_path, "helper_left")
    assert summary["exact"] == [True] * 3
    assert _pids(summary, 3), "the next draw forked no helper"
    assert summary["running_after"] == [] and summary["children_left"] is False


@forks
def test_a_waiting_helper_holds_none_of_the_callers_files(tmp_path):
    """The helper, forked while the caller had a pipe open, lives on after the draw; the caller closing
    its end must still reach the reader at once (the helper closed its inherited copies)."""
    summary = pool_probe(tmp_path, "fds")
    assert _pids(summary, 1), "the helper computed no piece"
    assert summary["alive_before_shut_down"] != []  # it was still waiting when the pipe was closed
    assert summary["exact"] == [True, True]
