"""Hostile and broken model files: every one ends within its time and memory budget, exit 0 or 1,
with a one-line error naming what is wrong, never a traceback or an "internal error".

The files are generated at test time (tests/hostile_corpus.py) and byte-flipped or truncated copies
of the example models; each is inspected by `python -m initcli inspect FILE --format json` in its
own process, under an address-space limit, with a per-file timeout.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from initcli.errors import BadInputError, InitcliError
from initcli.readers import open_model
from tests.hostile_corpus import CASES, MODELS, Case

ROOT = Path(__file__).resolve().parent.parent
HDF5_TIMEOUT = 3  # seconds of HDF5 structure walk per file (INITCLI_TIMEOUT)
PROCESS_TIMEOUT = 60  # a process running longer has hung
ADDRESS_SPACE = 3 * 1024**3
PEAK_RSS_BUDGET_MB = 500


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


# The child reports its own peak: os.wait4's ru_maxrss also counts the pages it shared with pytest
# between fork and exec (Linux keeps that high-water mark across exec), so it grows with pytest.
_MEASURED_CLI = """
import atexit, os, resource, runpy, sys

def _peak():
    with open("/proc/self/status") as status:
        own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(os.environ["INITCLI_TEST_PEAK_FILE"], "w") as out:
        out.write(str(max(own, workers)))

atexit.register(_peak)
sys.argv = ["initcli", *sys.argv[1:]]
runpy.run_module("initcli", run_name="__main__")
"""


def _peak_mb(peak_file: Path, fallback_kb: int) -> float:
    """The child's own peak RSS in MB (what wait4 says if the child died before reporting it)."""
    try:
        text = peak_file.read_text()
    finally:
        peak_file.unlink(missing_ok=True)
    return (int(text) if text.strip() else fallback_kb) / 1024.0


def inspect_in_process(path: Path) -> Outcome:
    """Run the CLI on `path` in a child process with limits; a hang is killed and reported."""
    peak_file = Path(tempfile.mkstemp(prefix="initcli-peak-")[1])
    env = {
        **os.environ,
        "INITCLI_TIMEOUT": str(HDF5_TIMEOUT),
        "PYTHONPATH": str(ROOT),
        "INITCLI_TEST_PEAK_FILE": str(peak_file),
    }
    started = time.monotonic()
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", _MEASURED_CLI, "inspect", str(path), "--format", "json"],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_limit_memory,
        )
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - started > PROCESS_TIMEOUT:
                process.kill()
                process.wait()
                pytest.fail(f"{path.name}: hung for more than {PROCESS_TIMEOUT} s")
            time.sleep(0.02)
        stdout.seek(0)
        stderr.seek(0)
        return Outcome(
            process.returncode,
            stdout.read().decode("utf-8", "replace"),
            stderr.read().decode("utf-8", "replace"),
            time.monotonic() - started,
            _peak_mb(peak_file, usage.ru_maxrss),
        )


def assert_well_behaved(outcome: Outcome, name: str) -> None:
    """Exit 0 with JSON, or exit 1 with exactly one `Error: ...` line; nothing else is acceptable."""
    assert "Traceback" not in outcome.stderr, f"{name}: {outcome.stderr}"
    assert "internal error" not in outcome.stderr, f"{name}: {outcome.stderr}"
    assert outcome.returncode in (0, 1), f"{name}: exit {outcome.returncode}: {outcome.stderr}"
    assert outcome.peak_rss_mb < PEAK_RSS_BUDGET_MB, f"{name}: peak RSS {outcome.peak_rss_mb:.0f} MB"
    if outcome.returncode == 1:
        assert outcome.stderr.startswith("Error: "), f"{name}: {outcome.stderr!r}"
        assert outcome.stderr.count("\n") == 1 and outcome.stderr.endswith("\n"), f"{name}: {outcome.stderr!r}"
        assert outcome.stderr.isprintable() or outcome.stderr[:-1].isprintable(), f"{name}: {outcome.stderr!r}"
    else:
        assert outcome.stdout.lstrip().startswith("{"), f"{name}: {outcome.stdout[:200]}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_file(tmp_path: Path, case: Case) -> None:
    path = case.build(tmp_path)
    outcome = inspect_in_process(path)
    assert_well_behaved(outcome, case.name)
    if case.expect is None:
        assert outcome.returncode == 0, outcome.stderr
    else:
        assert outcome.returncode == 1, f"{case.name}: exit 0 for a file that must be refused"
        assert case.expect in outcome.stderr, outcome.stderr


def _mutants(seed: int, count: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    mutants = []
    for model in sorted(path for path in MODELS.iterdir() if path.is_file()):
        original = model.read_bytes()
        for index in range(count):
            data = bytearray(original)
            if index % 3 == 2:
                data = data[: rng.randrange(len(data))]
            else:
                # Flips concentrated in the first 8 KB, where HDF5 keeps most of its metadata.
                for _ in range(rng.randint(1, 6)):
                    position = rng.randrange(min(len(data), 8192)) if rng.random() < 0.7 else rng.randrange(len(data))
                    data[position] = rng.randrange(256)
            mutants.append((f"{model.name}-{index}", bytes(data)))
    return mutants


@pytest.mark.slow
def test_fuzzed_example_models_never_crash_hang_or_blow_up(tmp_path: Path) -> None:
    mutants = _mutants(seed=20261124, count=6)
    paths = []
    for name, data in mutants:
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(path)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(inspect_in_process, paths))
    for path, outcome in zip(paths, outcomes):
        assert_well_behaved(outcome, path.name)
    assert any(outcome.returncode == 1 for outcome in outcomes)


def test_a_file_changed_after_opening_is_an_error_never_other_values(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes((MODELS / "cnn.keras").read_bytes())
    model = open_model(path)
    try:
        records = list(model.records())
        with open(path, "r+b") as handle:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\0" * 16)
        with pytest.raises(InitcliError, match="changed while it was being read"):
            records[0].read()
    finally:
        model.close()


def test_a_file_truncated_after_opening_is_an_error_never_zeros(tmp_path: Path) -> None:
    path = tmp_path / "model.weights.h5"
    path.write_bytes((MODELS / "cnn.weights.h5").read_bytes())
    model = open_model(path)
    try:
        records = list(model.records())
        os.truncate(path, 4096)
        with pytest.raises(InitcliError, match="ends early|changed while"):
            for record in records:
                record.read()
    finally:
        model.close()


def test_compressed_weights_member_reads_the_same_values(tmp_path: Path) -> None:
    deflated = next(case for case in CASES if case.name == "compressed_weights").build(tmp_path)
    stored, compressed = open_model(MODELS / "cnn.keras"), open_model(deflated)
    try:
        pairs = list(zip(stored.records(), compressed.records(), strict=True))
        assert pairs
        for left, right in pairs:
            assert left.path == right.path
            np.testing.assert_array_equal(left.read(), right.read())
    finally:
        stored.close()
        compressed.close()


def test_the_hdf5_loop_is_stopped_by_the_timeout(tmp_path: Path) -> None:
    path = next(case for case in CASES if case.name == "flipped_byte_hdf5_loop").build(tmp_path)
    started = time.monotonic()
    with pytest.raises(InitcliError, match="took longer than 1 s"):
        open_model(path, timeout=1)
    assert time.monotonic() - started < 30


def test_ctrl_c_stops_an_hdf5_loop(tmp_path: Path) -> None:
    path = next(case for case in CASES if case.name == "flipped_byte_hdf5_loop").build(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "initcli", "inspect", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "INITCLI_TIMEOUT": "120"},
        text=True,
    )
    # Interrupt once the structure walk runs, whatever the machine's load: its worker is a child process.
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 60
    while not children.read_text().split() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_a_positive_number(timeout: float) -> None:
    with pytest.raises(BadInputError, match="timeout"):
        open_model(MODELS / "cnn.keras", timeout=timeout)


def _with_dense_bias(path: Path, values: np.ndarray) -> Path:
    """cnn.weights.h5 copied to `path` with its dense bias stored as `values` (their dtype and byte order)."""
    import h5py

    path.write_bytes((MODELS / "cnn.weights.h5").read_bytes())
    with h5py.File(path, "r+") as handle:
        del handle["layers/dense/vars/1"]
        handle.create_dataset("layers/dense/vars/1", data=values)
    return path


def test_big_endian_and_integer_weights_keep_their_values(tmp_path: Path) -> None:

    expected = np.linspace(-1, 1, 16).astype(">f4")
    model = open_model(_with_dense_bias(tmp_path / "typed.weights.h5", expected))
    try:
        record = next(r for r in model.records() if r.path == "dense/bias")
        assert record.dtype == "float32"
        np.testing.assert_array_equal(record.read(), expected.astype("<f4"))
    finally:
        model.close()


def _stored_weights_start(path: Path) -> int:
    """Where model.weights.h5's bytes begin inside a .keras archive (it is stored, not deflated)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.weights.h5")
    assert info.compress_type == zipfile.ZIP_STORED
    data = path.read_bytes()
    name_length, extra_length = (
        int.from_bytes(data[info.header_offset + at : info.header_offset + at + 2], "little") for at in (26, 28)
    )
    return info.header_offset + 30 + name_length + extra_length


@pytest.mark.parametrize("command", ["inspect", "check"])
@pytest.mark.parametrize("where", ["kernel values", "hdf5 superblock"])
def test_a_corrupt_archive_fails_its_crc_check_though_checked_in_the_background(
    tmp_path: Path, command: str, where: str
) -> None:
    """The CRC check runs beside the measuring; a flipped byte still gives the CRC error and no report."""
    import h5py

    path = tmp_path / "flipped.keras"
    path.write_bytes((MODELS / "cnn.keras").read_bytes())
    start = _stored_weights_start(path)
    if where == "kernel values":
        import io
        import zipfile

        with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
            kernels = []
            h5.visititems(
                lambda name, item: kernels.append(item) if isinstance(item, h5py.Dataset) and item.ndim >= 2 else None
            )
            offset = kernels[0].id.get_offset()
            size = kernels[0].id.get_storage_size()
        position = start + offset + size // 2
    else:
        position = start + 2  # inside the HDF5 signature: the structure walk fails first
    data = bytearray(path.read_bytes())
    data[position] ^= 0x40
    path.write_bytes(bytes(data))
    done = subprocess.run(
        [sys.executable, "-m", "initcli", command, str(path), "--format", "json"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1
    assert "fails its zip CRC check" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_chunked_reads_give_the_stored_values(tmp_path: Path, byteorder: str) -> None:
    """`chunks` streams a contiguous dataset through one reused buffer; the values are h5py's, in order."""

    stored = np.random.default_rng(7).standard_normal(1000).astype(f"{byteorder}f4")
    model = open_model(_with_dense_bias(tmp_path / "chunks.weights.h5", stored))
    try:
        record = next(r for r in model.records() if r.path == "dense/bias")
        assert record.read_chunks is not None  # the streaming path, not the read-whole fallback
        pieces = [chunk.copy() for chunk in record.chunks(384)]
        assert [piece.size for piece in pieces] == [384, 384, 232]
        assert all(piece.dtype == np.dtype("=f4") for piece in pieces)
        np.testing.assert_array_equal(np.concatenate(pieces), stored.astype("=f4"))
    finally:
        model.close()


@pytest.mark.tensorflow
def test_keras_bfloat16_model_reads_as_bfloat16(tmp_path: Path, keras) -> None:
    import ml_dtypes

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, dtype="bfloat16")])
    path = tmp_path / "bf16.keras"
    model.save(path)
    # Named as Keras names them after loading the file (without the Sequential's scope).
    loaded = keras.saving.load_model(path, compile=False).weights
    expected = {v.path: np.asarray(w.numpy()) for v, w in zip(loaded, model.weights, strict=True)}
    saved = open_model(path)
    try:
        records = list(saved.records())
        assert {record.path for record in records} == set(expected)
        for record in records:
            values = record.read()
            assert record.dtype == "bfloat16" and values.dtype == ml_dtypes.bfloat16
            np.testing.assert_array_equal(values.astype(np.float32), expected[record.path].astype(np.float32))
    finally:
        saved.close()


@pytest.mark.parametrize("parent_ignores", [True, False])
def test_a_worker_stops_at_ctrl_c_only_when_its_parent_does(parent_ignores: bool) -> None:
    """A parent that ignores SIGINT (a background job, nohup) must not see its workers die of one."""
    from initcli.readers.worker import Isolated

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN if parent_ignores else signal.default_int_handler)
    try:
        worker = Isolated(lambda: time.sleep(1.0) or "done", timeout=30, memory=1 << 28, label="f", what="waiting")
        time.sleep(0.3)
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGINT)
        if parent_ignores:
            assert worker.wait() == "done"
        else:
            with pytest.raises(InitcliError, match="SIGINT"):
                worker.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
