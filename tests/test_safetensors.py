"""safetensors files, with the `safetensors` package writing them and reading them back as the oracle."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.readers import open_model
from initcli.readers.h5snapshot import Limits
from tests.helpers import assert_bit_equal

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(25)
    return {
        "dense/kernel": rng.normal(0, 0.05, (64, 32)).astype(np.float32),
        "dense/bias": np.zeros(32, np.float32),
        "model.embed_tokens.weight": rng.normal(0, 0.02, (50, 16)).astype(ml_dtypes.bfloat16),
        "lm_head.weight": rng.uniform(-1, 1, (16, 50)).astype(np.float16),
        "norm.weight": np.ones(16, np.float64),
        "position_ids": np.arange(12, dtype=np.int64).reshape(3, 4),
        "counts": np.arange(7, dtype=np.int32),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 4), np.float32),
    }


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    safetensors_numpy.save_file(_tensors(), str(path), metadata={"format": "np"})
    return path


def test_rows_and_values_equal_what_safetensors_loads(saved: Path) -> None:
    from safetensors import safe_open

    theirs = safetensors_numpy.load_file(str(saved))
    with safe_open(str(saved), framework="np") as handle:
        names = set(handle.keys())
    model = open_model(saved)
    try:
        assert model.format == "safetensors"
        records = list(model.records())
        assert {r.path for r in records} == names == set(theirs)
        for record in records:
            expected = theirs[record.path]
            assert record.shape == expected.shape and record.dtype == expected.dtype.name
            ours = record.read()
            assert ours.dtype == expected.dtype and ours.shape == expected.shape
            assert ours.tobytes() == expected.tobytes()  # bit for bit, every dtype
            streamed = b"".join(chunk.tobytes() for chunk in record.chunks(5))
            assert streamed == expected.tobytes()
    finally:
        model.close()


def test_rows_come_in_the_order_of_their_bytes(saved: Path) -> None:
    (length,) = struct.unpack("<Q", saved.read_bytes()[:8])
    header = json.loads(saved.read_bytes()[8 : 8 + length])
    by_offset = sorted((entry["data_offsets"], name) for name, entry in header.items() if name != "__metadata__")
    model = open_model(saved)
    try:
        assert [r.path for r in model.records()] == [name for _, name in by_offset]
    finally:
        model.close()


def test_inspect_reports_numpy_statistics(saved: Path) -> None:
    result = CliRunner().invoke(cli, ["inspect", str(saved), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["format"] == "safetensors"
    rows = {row["path"]: row for row in report["weights"]}
    kernel = _tensors()["dense/kernel"].astype(np.float64)
    assert rows["dense/kernel"]["sample"]["mean"] == pytest.approx(kernel.mean(), rel=1e-12)
    assert rows["dense/kernel"]["sample"]["std"] == pytest.approx(kernel.std(), rel=1e-12)
    embedding = _tensors()["model.embed_tokens.weight"].astype(np.float64)
    assert rows["model.embed_tokens.weight"]["dtype"] == "bfloat16"
    assert rows["model.embed_tokens.weight"]["sample"]["std"] == pytest.approx(embedding.std(), rel=1e-12)
    assert rows["model.embed_tokens.weight"]["layer"] == "model.embed_tokens"
    assert rows["model.embed_tokens.weight"]["weight"] == "weight"
    result = CliRunner().invoke(cli, ["check", str(saved)])
    assert result.exit_code in (0, 3), result.output


def test_a_tensor_over_the_weight_budget_streams_but_is_not_held(saved: Path) -> None:
    """The file's own bytes back the tensor: chunks read it; holding it whole is refused."""
    model = open_model(saved, limits=Limits(max_weight_bytes=1024))
    try:
        record = next(r for r in model.records() if r.path == "dense/kernel")  # 8192 bytes
        with pytest.raises(Exception, match="over the 1,024-byte budget"):
            record.read()
        streamed = np.concatenate([chunk.copy() for chunk in record.chunks(100)])
        assert_bit_equal(streamed, _tensors()["dense/kernel"].ravel())
    finally:
        model.close()


def _file(tmp_path: Path, header: bytes | dict, data: bytes = b"", length: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def _entry(dtype: str, shape: list[int], begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    ("header", "data", "length", "fragment"),
    [
        ({"a": _entry("F32", [2], 0, 8)}, bytes(8), 1 << 62, "more than the file holds"),
        (b"{not json", b"", None, "not valid JSON"),
        (b"[1, 2]", b"", None, "not a JSON object"),
        ({"a": _entry("F32", [4], 0, 16)}, bytes(8), None, "data buffer (truncated?)"),
        ({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 4, 12)}, bytes(12), None, "overlaps"),
        ({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 12, 20)}, bytes(20), None, "unused"),
        ({"a": _entry("F32", [2], 0, 8)}, bytes(12), None, "cover 8 of the 12"),
        ({"a": _entry("F32", [3], 0, 8)}, bytes(8), None, "needs 12 bytes"),
        ({"a": _entry("C64", [1], 0, 8)}, bytes(8), None, "does not read"),
        ({"a": _entry("F32", [-2], 0, 8)}, bytes(8), None, "not a list of sizes"),
        ({"a": _entry("F32", [2], 8, 0)}, bytes(8), None, "not [begin, end]"),
        ({"a": {"dtype": "F32", "shape": [2]}}, bytes(8), None, "not [begin, end]"),
        ({"a": [1]}, bytes(8), None, "not described by an object"),
        ({"__metadata__": {"x": 1}}, b"", None, "not a map of strings"),
    ],
)
def test_hostile_headers_are_one_line_errors(tmp_path: Path, header, data: bytes, length, fragment: str) -> None:
    path = _file(tmp_path, header, data, length)
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert fragment in result.output, result.output


def test_a_header_over_the_document_budget_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from initcli.readers.safetensors import MAX_HEADER_BYTES

    path = tmp_path / "big.safetensors"
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{")
        handle.truncate(MAX_HEADER_BYTES + 100)  # sparse: the file can hold the header it claims
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1 and "more than the" in result.output and result.output.count("\n") == 1


def test_config_is_refused_for_safetensors(saved: Path, tmp_path: Path) -> None:
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
    result = CliRunner().invoke(cli, ["inspect", str(saved), "--config", str(config)])
    assert result.exit_code == 2, result.output
