"""Weights over the per-weight budget are streamed, not refused, when the file's storage holds them (issue 25).

The budget is lowered through `Limits` so that small weights take the streaming path; h5py's own
reading and numpy on whole arrays are the oracles, and the rows must equal those of the path that
holds each weight whole.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
import pytest

from initcli.api import inspect_model
from initcli.readers import open_model
from initcli.readers.h5snapshot import Limits, _hyperslabs
from initcli.readers.open import read_model_json
from initcli.stats.moments import StatsAccumulator
from tests.helpers import assert_bit_equal, no_children_left

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "models" / "mlp.keras"
LOW = Limits(max_weight_bytes=1000)  # every weight here is larger: all of them stream


def _native(values: np.ndarray) -> np.ndarray:
    return values.astype(values.dtype.newbyteorder("="), copy=False)


@pytest.fixture(scope="module")
def storages(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """One .weights.h5 with every storage HDF5 offers Keras weights, and the arrays written."""
    rng = np.random.default_rng(25)
    arrays = {
        "contiguous": rng.standard_normal((300, 70)).astype(np.float32),
        "chunked_big_endian": rng.standard_normal((3, 5, 7001)).astype(">f4"),
        "deflated": (rng.standard_normal((1000, 33)) * 0.1).astype(np.float32),
        "bfloat16": rng.uniform(-2, 2, (64, 96)).astype(ml_dtypes.bfloat16),
        "float64_compact": rng.standard_normal((40, 20)),
    }
    path = tmp_path_factory.mktemp("large") / "storages.weights.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("layers/contiguous/vars/0", data=arrays["contiguous"])
        handle.create_dataset("layers/chunked_big_endian/vars/0", data=arrays["chunked_big_endian"], chunks=(2, 3, 999))
        handle.create_dataset("layers/deflated/vars/0", data=arrays["deflated"], chunks=(64, 33), compression="gzip")
        bf16 = handle.create_dataset("layers/bfloat16/vars/0", data=arrays["bfloat16"], chunks=(16, 96))
        bf16.attrs["dtype"] = "bfloat16"  # as keras/src/saving/saving_lib.py H5IOStore writes bfloat16
        space = h5py.h5s.create_simple((40, 20))
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.COMPACT)
        group = handle.require_group("layers/float64_compact/vars")
        h5py.h5d.create(group.id, b"0", h5py.h5t.IEEE_F64LE, space, dcpl=plist).write(
            h5py.h5s.ALL, h5py.h5s.ALL, arrays["float64_compact"]
        )
    with h5py.File(path, "r") as handle:  # the layouts are the ones meant
        layouts = {name: handle[f"layers/{name}/vars/0"].id.get_create_plist().get_layout() for name in arrays}
    assert layouts["contiguous"] == h5py.h5d.CONTIGUOUS and layouts["float64_compact"] == h5py.h5d.COMPACT
    assert layouts["deflated"] == layouts["bfloat16"] == h5py.h5d.CHUNKED
    return path, arrays


@pytest.mark.parametrize("elements", [500, 4099, 1 << 22])
def test_streamed_values_equal_what_h5py_reads(storages, elements: int) -> None:
    path, arrays = storages
    model = open_model(path, limits=LOW)
    try:
        records = {record.layer: record for record in model.records()}
        assert sorted(records) == sorted(arrays)
        for name, record in records.items():
            expected = _native(arrays[name]).reshape(-1)
            chunks = [chunk.copy() for chunk in record.chunks(elements)]
            assert [chunk.size for chunk in chunks[:-1]] == [elements] * (len(chunks) - 1)  # as `diff` needs
            assert 0 < chunks[-1].size <= elements
            assert_bit_equal(np.concatenate(chunks), expected)
            with pytest.raises(Exception, match="over the 1,000-byte budget for one weight held whole"):
                record.read()
    finally:
        model.close()


def test_streamed_statistics_equal_numpy_and_the_held_path(storages) -> None:
    """Exact min/max/count, mean/std within 1e-12 of numpy; the KS subsample is every k-th value; as if held."""
    path, arrays = storages
    streamed, held = open_model(path, limits=LOW), open_model(path)
    try:
        for low, whole in zip(streamed.records(), held.records(), strict=True):
            values = _native(arrays[low.layer]).reshape(-1)
            accumulator = StatsAccumulator(values.size, ks_limit=1000)
            for chunk in low.chunks(777):
                accumulator.update(chunk)
            stats = accumulator.result()
            exact = values.astype(np.float64)
            assert (stats.count, stats.nonfinite, stats.min, stats.max) == (values.size, 0, exact.min(), exact.max())
            assert stats.mean == pytest.approx(exact.mean(), rel=1e-12, abs=1e-15)
            assert stats.std == pytest.approx(exact.std(), rel=1e-12)
            stride = -(-values.size // 1000)
            assert_bit_equal(accumulator.ks_sample(), exact[::stride].astype(accumulator.ks_sample().dtype))
            reference = StatsAccumulator(values.size, ks_limit=1000)
            reference.update(whole.read())
            assert reference.result() == stats  # bit for bit
    finally:
        streamed.close()
        held.close()


@pytest.fixture(scope="module")
def mlp_chunked(tmp_path_factory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """examples' mlp.keras weights rewritten as deflated chunked datasets, with its config beside them."""
    folder = tmp_path_factory.mktemp("mlp")
    with zipfile.ZipFile(MLP) as archive:
        (folder / "model.weights.h5").write_bytes(archive.read("model.weights.h5"))
        (folder / "config.json").write_bytes(archive.read("config.json"))
    arrays: dict[str, np.ndarray] = {}
    target = folder / "chunked.weights.h5"
    with h5py.File(folder / "model.weights.h5", "r") as source, h5py.File(target, "w") as copy:

        def visit(name: str, item: object) -> None:
            if isinstance(item, h5py.Group):
                group = copy.require_group(name)
                group.attrs.update(dict(item.attrs))
            elif isinstance(item, h5py.Dataset):
                values = item[()]
                arrays[name] = values
                chunks = tuple(max(1, d // 3) for d in values.shape) or None
                created = copy.create_dataset(name, data=values, chunks=chunks, compression="gzip" if chunks else None)
                created.attrs.update(dict(item.attrs))

        copy.attrs.update(dict(source.attrs))
        source.visititems(visit)
    return target, folder / "config.json", arrays


def _rows(report) -> list[dict]:
    return json.loads(json.dumps(report.to_json()["weights"]))


@pytest.mark.parametrize("stored", ["keras archive (contiguous)", "weights file (chunked, deflated)"])
def test_inspect_rows_of_streamed_weights_equal_the_held_rows_and_numpy(mlp_chunked, stored: str) -> None:
    weights, config_path, arrays = mlp_chunked
    path, config = (MLP, None) if stored.startswith("keras") else (weights, read_model_json(config_path))
    held = _rows(inspect_model(open_model(path, config=config)))
    streamed = _rows(inspect_model(open_model(path, config=config, limits=LOW)))
    assert streamed == held  # every field: statistics, theory, p-values, verdicts, notes
    assert any(row["theory"] is not None and row["checks"]["pvalue"] is not None for row in streamed)
    with h5py.File(weights, "r") as handle:
        by_size = {}
        for row in streamed:
            location = next(
                name for name, values in arrays.items() if values.shape == tuple(row["shape"]) and name not in by_size
            )
            by_size[location] = row
            exact = np.asarray(handle[location][()], dtype=np.float64).reshape(-1)
            sample = row["sample"]
            assert (sample["count"], sample["min"], sample["max"]) == (exact.size, exact.min(), exact.max())
            assert sample["mean"] == pytest.approx(exact.mean(), rel=1e-12, abs=1e-15)
            assert sample["std"] == pytest.approx(exact.std(), rel=1e-12, abs=1e-15)


def test_hyperslabs_tile_the_array_in_c_order() -> None:
    for shape, chunks, elements in [((3, 5, 7001), (2, 3, 999), 500), ((10, 4), (3, 4), 9), ((7,), (), 100)]:
        flat = np.arange(int(np.prod(shape))).reshape(shape)
        slabs = _hyperslabs(shape, chunks, elements)
        pieces = [flat[selection].reshape(-1) for selection, _ in slabs]
        assert all(piece.size <= max(elements, shape[-1] if len(shape) == 1 else 0) for piece in pieces)
        assert all(flat[selection].size == np.prod(slab) for selection, slab in slabs)
        assert_bit_equal(np.concatenate(pieces), flat.reshape(-1))
    # 29 values are 7 rows of 4; cut at whole chunks of 3 rows: 6 rows, so no chunk is read twice.
    assert [selection for selection, _ in _hyperslabs((10, 4), (3, 4), 29)] == [(slice(0, 6),), (slice(6, 10),)]


def _refused(path: Path, limits: Limits) -> str:
    with pytest.raises(Exception) as caught:
        model = open_model(path, limits=limits)
        try:
            for record in model.records():
                for _ in record.chunks(1 << 20):
                    pass
        finally:
            model.close()
    return str(caught.value)


def test_declared_sizes_the_file_cannot_hold_are_still_refused(tmp_path: Path) -> None:
    budget = Limits(max_weight_bytes=4096)
    unwritten = tmp_path / "unwritten.weights.h5"
    with h5py.File(unwritten, "w") as handle:  # never written: HDF5 allocates no storage
        handle.create_dataset("layers/dense/vars/0", shape=(1000, 1000), dtype="f4")
    message = _refused(unwritten, budget)
    assert "more than the 4096-byte per-weight budget" in message and "never written" in message
    sparse = tmp_path / "sparse.weights.h5"
    with h5py.File(sparse, "w") as handle:
        handle.create_dataset("layers/dense/vars/0", shape=(1000, 1000), dtype="f4", chunks=(100, 100))
        handle["layers/dense/vars/0"][:100, :100] = 1.0  # one chunk of a hundred
    message = _refused(sparse, budget)
    assert "in 100 chunks but the file stores 1 of them (never written)" in message
    truncated = tmp_path / "truncated.weights.h5"
    with h5py.File(truncated, "w") as handle:
        handle.create_dataset("layers/dense/vars/0", data=np.ones((1000, 100), np.float32))
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    assert "truncated" in _refused(truncated, budget) or "HDF5" in _refused(truncated, budget)
    # safetensors: a 4-byte data buffer declaring 2 GB
    header = json.dumps({"w": {"dtype": "F32", "shape": [500_000_000], "data_offsets": [0, 2_000_000_000]}}).encode()
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    assert "ends at byte 2000000000 of a 4-byte data buffer" in _refused(tiny, budget)


MEMORY_SCRIPT = """
import json, resource, sys
import numpy as np
from initcli.readers import open_model
from initcli.readers.h5snapshot import Limits
from initcli.stats.moments import StatsAccumulator

def high_water():  # VmHWM, the peak resident set since the last reset (Linux)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

def reset():
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")

model = open_model(sys.argv[1], limits=Limits(max_weight_bytes=1 << 20))
out = {}
for record in model.records():
    count = int(np.prod(record.shape))
    accumulator = StatsAccumulator(count)
    reset()
    before = high_water()
    for chunk in record.chunks(1 << 18):
        accumulator.update(chunk)
    stats = accumulator.result()
    out[record.layer] = {"growth": high_water() - before, "mean": stats.mean, "std": stats.std, "max": stats.max}
out["children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
out["self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
model.close()
print(json.dumps(out))
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's resettable VmHWM")
def test_memory_stays_bounded_by_the_chunk_not_the_weight(tmp_path: Path) -> None:
    """Two 32 MB weights (contiguous; chunked, read through HDF5 workers) streamed in 1 MB chunks by a fresh process.

    The peak resident set of the reading process is reset before each weight (VmHWM): what it grows
    by is what streaming that weight costs.
    """
    values = np.random.default_rng(5).random((2048, 4096), dtype=np.float32)
    path = tmp_path / "big.weights.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("layers/contiguous/vars/0", data=values)
        handle.create_dataset("layers/chunked/vars/0", data=values, chunks=(64, 4096))
    weight = values.nbytes
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    measured = json.loads(result.stdout)
    exact = values.astype(np.float64)
    for name in ("contiguous", "chunked"):
        assert measured[name]["growth"] < weight / 4, (name, measured)  # two 1 MB slots and the statistics' blocks
        assert measured[name]["mean"] == pytest.approx(exact.mean(), rel=1e-12)
        assert measured[name]["std"] == pytest.approx(exact.std(), rel=1e-12)
        assert measured[name]["max"] == exact.max()
    # A worker is a fork of the process: its peak is the parent's plus what it reads, never the weight.
    assert measured["children"] < measured["self"] + weight / 4, measured


def _sharded_and_safetensors(folder: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """The same tensors as a two-shard Keras index (a layer's variables split over the shards) and as safetensors."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(4)
    arrays = {
        "dense/0": rng.normal(0.1, 0.05, (300, 40)).astype(np.float32),
        "dense/1": rng.normal(0, 1, 40).astype(np.float32),
        "embedding/0": rng.normal(0, 0.02, (500, 64)).astype(ml_dtypes.bfloat16),
    }
    for shard, names in (("m_00000.weights.h5", ["dense/0"]), ("m_00001.weights.h5", ["dense/1", "embedding/0"])):
        with h5py.File(folder / shard, "w") as handle:
            for name in names:
                layer, index = name.split("/")
                created = handle.create_dataset(f"layers/{layer}/vars/{index}", data=arrays[name])
                if arrays[name].dtype == ml_dtypes.bfloat16:
                    created.attrs["dtype"] = "bfloat16"
    weight_map = {
        "/layers/dense/vars": ["m_00000.weights.h5", "m_00001.weights.h5"],
        "/layers/embedding/vars": ["m_00001.weights.h5"],
    }
    index = folder / "m.weights.json"
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    tensors = folder / "m.safetensors"
    safetensors_numpy.save_file(arrays, str(tensors))
    return index, tensors, arrays


def test_sharded_and_safetensors_rows_of_streamed_weights_equal_the_held_rows_and_numpy(tmp_path: Path) -> None:
    index, tensors, arrays = _sharded_and_safetensors(tmp_path)
    for path in (index, tensors):
        held = _rows(inspect_model(open_model(path)))
        streamed = _rows(inspect_model(open_model(path, limits=LOW)))
        assert streamed == held, path
        assert len(streamed) == len(arrays)
        for row in streamed:
            values = next(v for v in arrays.values() if v.shape == tuple(row["shape"])).astype(np.float64)
            sample = row["sample"]
            assert (sample["count"], sample["min"], sample["max"]) == (values.size, values.min(), values.max())
            assert sample["mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert sample["std"] == pytest.approx(values.std(), rel=1e-12)


def test_a_stream_goes_on_in_fresh_workers(storages, monkeypatch) -> None:
    """Each worker hands over after its first slab (its lifetime 0): the values are still all there, in order."""
    import initcli.readers.h5snapshot as h5snapshot

    monkeypatch.setattr(h5snapshot, "WORKER_LIFETIME", 0.0)
    path, arrays = storages
    model = open_model(path, limits=LOW)
    try:
        record = next(r for r in model.records() if r.layer == "chunked_big_endian")
        assert_bit_equal(
            np.concatenate([c.copy() for c in record.chunks(20000)]), _native(arrays[record.layer]).ravel()
        )
    finally:
        model.close()
    assert no_children_left()


def test_a_corrupt_chunk_met_while_streaming_is_a_one_line_error(tmp_path: Path) -> None:
    from initcli.errors import InitcliError

    path = tmp_path / "corrupt.weights.h5"
    values = np.random.default_rng(1).standard_normal((400, 100)).astype(np.float32)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("layers/dense/vars/0", data=values, chunks=(50, 100), compression="gzip")
    with h5py.File(path, "r") as handle:
        last = handle["layers/dense/vars/0"].id.get_chunk_info(7)  # the last of 8 chunks
    data = bytearray(path.read_bytes())
    data[last.byte_offset : last.byte_offset + last.size] = b"\xff" * last.size
    path.write_bytes(bytes(data))
    model = open_model(path, limits=LOW)
    try:
        record = next(iter(model.records()))
        seen = 0
        with pytest.raises(InitcliError) as caught:
            for chunk in record.chunks(5000):
                assert_bit_equal(chunk, values.reshape(-1)[seen : seen + chunk.size])
                seen += chunk.size
        assert seen == 35000  # the seven good chunks were streamed first
        assert "\n" not in str(caught.value) and "HDF5" in str(caught.value), caught.value
    finally:
        model.close()
    assert no_children_left()


def test_streaming_works_in_the_fanned_out_processes(tmp_path: Path) -> None:
    """10 MB of chunked weights: inspect measures them in forked processes (where it may fork), each one streaming
    through HDF5 workers of its own."""
    from initcli.analysis.inspection import FAN_OUT_BYTES

    path = tmp_path / "fan.weights.h5"
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((640, 1024)).astype(np.float32) for _ in range(4)]
    with h5py.File(path, "w") as handle:
        for index, values in enumerate(arrays):
            compression = "gzip" if index % 2 else None
            handle.create_dataset(f"layers/d{index}/vars/0", data=values, chunks=(128, 1024), compression=compression)
    assert sum(values.nbytes for values in arrays) > FAN_OUT_BYTES
    held = _rows(inspect_model(open_model(path)))
    streamed = _rows(inspect_model(open_model(path, limits=Limits(max_weight_bytes=1 << 20))))
    assert streamed == held
    for row, values in zip(streamed, arrays, strict=True):
        assert row["sample"]["std"] == pytest.approx(values.astype(np.float64).std(), rel=1e-12)
    assert no_children_left()


def test_diff_reads_a_streamed_chunked_weight_against_a_contiguous_one(tmp_path: Path) -> None:
    """`diff` pairs chunk with chunk: hyperslabs regrouped to exactly `elements` values meet positioned reads."""
    from initcli.analysis.diff import compare

    rng = np.random.default_rng(9)
    a_values = rng.standard_normal((3, 5, 7001)).astype(np.float32)
    b_values = a_values + rng.normal(0, 0.01, a_values.shape).astype(np.float32)
    paths = []
    for name, values, chunks in (("a", a_values, None), ("b", b_values, (2, 3, 999))):
        paths.append(tmp_path / f"{name}.weights.h5")
        with h5py.File(paths[-1], "w") as handle:
            handle.create_dataset("layers/dense/vars/0", data=values, chunks=chunks)
    first, second = open_model(paths[0], limits=LOW), open_model(paths[1], limits=LOW)
    try:
        result = compare(next(iter(first.records())), next(iter(second.records())), "path", elements=4099)
    finally:
        first.close()
        second.close()
    a, b = a_values.astype(np.float64).ravel(), b_values.astype(np.float64).ravel()
    assert result.sums is not None
    assert result.correlation == pytest.approx(np.corrcoef(a, b)[0, 1], rel=1e-12)
    assert result.std_b == pytest.approx(b.std(), rel=1e-12)


def test_propagate_refuses_a_weight_over_the_budget_in_one_line() -> None:
    """The static prediction multiplies each kernel whole in float64: over the per-weight budget it is
    refused with the reason and what to do, not streamed (inspect and check stream the same file)."""
    from initcli.errors import InitcliError
    from initcli.propagate.run import Options, static_report

    held = open_model(MLP)
    try:  # the oracle that the model itself is fine: the path that holds weights whole predicts
        assert static_report(held, Options()).runs
    finally:
        held.close()
    low = open_model(MLP, limits=LOW)
    try:
        with pytest.raises(InitcliError) as refused:
            static_report(low, Options())
    finally:
        low.close()
    message = str(refused.value)
    assert "\n" not in message and message.startswith("propagate: weight ")
    assert "over the 1,000-byte budget for one weight held whole" in message
    assert "use inspect or check (they stream it)" in message
    # inspect of the same file streams the weights instead
    assert len(inspect_model(open_model(MLP, limits=LOW)).weights) > 1
