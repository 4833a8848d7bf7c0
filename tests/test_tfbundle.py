"""TensorFlow checkpoints and SavedModel directories, read without TensorFlow.

Oracles: tf_keras and `tf.train.load_checkpoint` (tests marked `tensorflow`); for the core suite,
fixtures that tf_keras wrote with `expected.json` made by TensorFlow alongside them
(tests/fixtures/tfbundle/make_fixtures.py), RFC 3720's CRC-32C vectors and a bit-by-bit CRC written
here. Hostile bundles are built here byte by byte, with this file's own protobuf and table writer.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.errors import InitcliError
from initcli.readers import open_model, snappy
from initcli.readers.crc32c import crc32c, mask, unmask
from initcli.readers.protowire import MAX_DEPTH, parse_message
from initcli.readers.tfbundle import TensorBundle
from tests.helpers import INITIALIZER_ARGUMENTS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tfbundle"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


# ---------------------------------------------------------------------------------------------
# An independent writer: protobuf fields, CRC-32C bit by bit, LevelDB table, tensor bundle.


def crc_bitwise(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    return (rotated + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pb_int(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def pb_bytes(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def pb_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + value.to_bytes(4, "little")


def block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A table block with prefix-compressed keys and one restart point."""
    out = bytearray()
    previous = b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    return bytes(out) + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")


def snappy_literal(contents: bytes) -> bytes:
    """A valid Snappy stream holding `contents` as one literal (tag 63: 4-byte length)."""
    return varint(len(contents)) + bytes([63 << 2]) + (len(contents) - 1).to_bytes(4, "little") + contents


def with_trailer(contents: bytes, compression: int = 0) -> bytes:
    if compression == 1:
        contents = snappy_literal(contents)
    typed = contents + bytes([compression])
    return typed + masked(crc_bitwise(typed)).to_bytes(4, "little")


def table(entries: list[tuple[bytes, bytes]], *, compression: int = 0, magic: int = 0xDB4775248B80FB57) -> bytes:
    return framed_table(block(entries), compression=compression, magic=magic)


def framed_table(data_block: bytes, *, compression: int = 0, magic: int = 0xDB4775248B80FB57) -> bytes:
    """A table around one data block as given (well formed or not), with valid block checksums."""
    out = with_trailer(data_block, compression)
    stored_size = len(out) - 5
    metaindex = block([])
    metaindex_offset = len(out)
    out += with_trailer(metaindex)
    index = block([(b"\xff", varint(0) + varint(stored_size))])
    index_offset = len(out)
    out += with_trailer(index)
    footer = varint(metaindex_offset) + varint(len(metaindex)) + varint(index_offset) + varint(len(index))
    return out + footer.ljust(40, b"\0") + magic.to_bytes(8, "little")


TF_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int64): 9, np.dtype(np.float16): 19}


def string_tensor(payload: bytes, crc_of: Callable[[bytes, int], int] = crc_bitwise) -> tuple[bytes, int]:
    length = len(payload).to_bytes(4, "little")
    length_crc = masked(crc_bitwise(length)).to_bytes(4, "little")
    crc = crc_of(payload, crc_bitwise(length_crc, crc_bitwise(length)))
    return varint(len(payload)) + length_crc + payload, crc


def object_graph(nodes: list[tuple[list[tuple[str, int]], tuple[str, str] | None]]) -> bytes:
    out = b""
    for children, variable in nodes:
        node = b"".join(pb_bytes(1, pb_int(1, child) + pb_bytes(2, name.encode())) for name, child in children)
        if variable is not None:
            full_name, key = variable
            node += pb_bytes(
                2, pb_bytes(1, b"VARIABLE_VALUE") + pb_bytes(2, full_name.encode()) + pb_bytes(3, key.encode())
            )
        out += pb_bytes(1, node)
    return out


KERNEL_KEY = "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
GRAPH = object_graph(
    [([("layer_with_weights-0", 1)], None), ([("kernel", 2)], None), ([], ("dense/kernel", KERNEL_KEY))]
)


def write_bundle(
    prefix: Path,
    tensors: dict[str, np.ndarray | bytes],
    *,
    overrides: dict[str, dict[str, object]] | None = None,
    num_shards: int = 1,
    big_endian: bool = False,
    extra_entry_bytes: dict[str, bytes] | None = None,
    crc_of: Callable[[bytes, int], int] = crc_bitwise,
    **table_options: int,
) -> None:
    """Write a bundle as TensorFlow lays it out; `overrides` replaces entry fields to break it.

    `crc_of` computes the tensors' CRC-32C (default: bit by bit, here; a C one for tens of MB)."""
    data = bytearray()
    entries = []
    for key in sorted(tensors):
        value = tensors[key]
        if isinstance(value, bytes):
            raw, crc = string_tensor(value, crc_of)
            fields: dict[str, object] = {"dtype": 7, "dims": []}
        else:
            raw = value.astype(value.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
            crc = crc_of(raw, 0)
            fields = {"dtype": TF_DTYPES[value.dtype], "dims": list(value.shape)}
        fields.update({"shard": 0, "offset": len(data), "size": len(raw), "crc": masked(crc)})
        fields.update((overrides or {}).get(key, {}))
        data += raw
        shape = b"".join(pb_bytes(2, pb_int(1, dim)) for dim in fields["dims"])  # type: ignore[attr-defined]
        entry = (
            pb_int(1, fields["dtype"])  # type: ignore[arg-type]
            + pb_bytes(2, shape)
            + pb_int(3, fields["shard"])  # type: ignore[arg-type]
            + pb_int(4, fields["offset"])  # type: ignore[arg-type]
            + pb_int(5, fields["size"])  # type: ignore[arg-type]
            + pb_fixed32(6, fields["crc"])  # type: ignore[arg-type]
            + (extra_entry_bytes or {}).get(key, b"")
        )
        entries.append((key.encode(), entry))
    header = pb_int(1, num_shards) + pb_int(2, int(big_endian)) + pb_bytes(3, pb_int(1, 1))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{prefix}.index").write_bytes(table([(b"", header), *entries], **table_options))
    Path(f"{prefix}.data-00000-of-{num_shards:05d}").write_bytes(bytes(data))


KERNEL = np.arange(12, dtype=np.float32).reshape(4, 3) / 7


def good_bundle(tmp_path: Path, **options: object) -> Path:
    prefix = tmp_path / "ckpt"
    write_bundle(prefix, {"_CHECKPOINTABLE_OBJECT_GRAPH": GRAPH, KERNEL_KEY: KERNEL}, **options)  # type: ignore[arg-type]
    return prefix


def read_all(path: Path) -> list[np.ndarray]:
    model = open_model(path)
    try:
        return [record.read() for record in model.records()]
    finally:
        model.close()


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


# ---------------------------------------------------------------------------------------------
# CRC-32C


def test_crc32c_rfc3720_vectors() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C


@pytest.mark.parametrize("size", [0, 1, 7, 1023, 1024, 1027, 4096, 4099, 65536 + 5, 300_001])
def test_crc32c_equals_bitwise_definition(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc32c(data) == crc_bitwise(data)
    cut = size // 3
    assert crc32c(data[cut:], crc32c(data[:cut])) == crc_bitwise(data)


def test_crc32c_in_many_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Data longer than one pass (64 MB by default) is checksummed in passes joined by register shifts."""
    import initcli.readers.crc32c as module

    monkeypatch.setattr(module, "_MAX_ROWS", 3)
    monkeypatch.setattr(module, "_MAX_LANES", 64)
    data = np.random.default_rng(9).integers(0, 256, 50_003, dtype=np.uint8).tobytes()
    assert crc32c(data) == crc_bitwise(data)


def test_mask_round_trip_and_definition() -> None:
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert mask(value) == masked(value)
        assert unmask(mask(value)) == value


# ---------------------------------------------------------------------------------------------
# Real files written by tf_keras (checked-in fixtures; expected.json made by TensorFlow)


def test_savedmodel_fixture_matches_tensorflow() -> None:
    model = open_model(FIXTURES / "savedmodel")
    try:
        assert model.format == "savedmodel"
        assert model.keras_version == EXPECTED["tf_keras"]
        records = list(model.records())
        assert [r.path for r in records] == [v["name"] for v in EXPECTED["variables"]]
        for record, expected in zip(records, EXPECTED["variables"]):
            values = record.read()
            assert record.shape == tuple(expected["shape"]) == values.shape
            assert record.dtype == expected["dtype"] == values.dtype.name
            assert hashlib.sha256(values.tobytes()).hexdigest() == expected["sha256"], record.path
            assert (record.layer, record.layer_class) == (expected["layer"], expected["layer_class"])
            assert record.argument == expected["argument"]
            assert record.initializer == expected["initializer"], record.path
            assert record.fan_axes is None  # Keras 2: fans from the kernel shape alone
    finally:
        model.close()


@pytest.mark.parametrize(
    "relative",
    [
        "weights/ckpt",
        "weights/ckpt.index",
        "weights/ckpt.data-00000-of-00001",
        "weights",  # a directory with a `checkpoint` state file
        "savedmodel/variables",  # a SavedModel's variables directory
        "trackable/ckpt",
    ],
)
def test_checkpoint_fixtures_match_tensorflow(relative: str) -> None:
    model = open_model(FIXTURES / relative)
    try:
        assert model.format == "tf-checkpoint"
        records = list(model.records())
        assert [r.path for r in records] == [v["name"] for v in EXPECTED["variables"]]
        for record, expected in zip(records, EXPECTED["variables"]):
            assert hashlib.sha256(record.read().tobytes()).hexdigest() == expected["sha256"], record.path
            assert record.weight == expected["name"].rsplit("/", 1)[-1]
            assert record.initializer is None and record.layer_class is None
    finally:
        model.close()


@pytest.mark.parametrize("relative", ["savedmodel", "weights/ckpt"])
def test_inspect_json_follows_the_schema(relative: str) -> None:
    result = invoke("inspect", str(FIXTURES / relative), "--format", "json")
    assert result.exit_code == 0, result.output
    schema = json.loads((ROOT / "schemas" / "output.schema.json").read_text())
    jsonschema.validate(json.loads(result.stdout), {**schema, "$ref": "#/$defs/inspect_output"})


def test_inspect_savedmodel_directory_json() -> None:
    result = invoke("inspect", str(FIXTURES / "savedmodel"), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format"] == "savedmodel"
    rows = {row["path"]: row for row in document["weights"]}
    assert list(rows) == [v["name"] for v in EXPECTED["variables"]]
    assert rows["hidden/kernel"]["initializer"]["class_name"] == "RandomNormal"
    assert rows["hidden/kernel"]["initializer"]["config"]["stddev"] == 0.3


def test_reading_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from initcli.readers import open_model\n"
        f"m = open_model({str(FIXTURES / 'savedmodel')!r})\n"
        "[r.read() for r in m.records()]\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr


# ---------------------------------------------------------------------------------------------
# Hostile and broken bundles


def test_crafted_bundle_reads(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path)
    model = open_model(prefix)
    try:
        records = list(model.records())
        assert [(r.path, r.layer, r.weight, r.shape) for r in records] == [("dense/kernel", "dense", "kernel", (4, 3))]
        assert records[0].read().tobytes() == KERNEL.tobytes()
    finally:
        model.close()


def test_big_endian_bundle(tmp_path: Path) -> None:
    (values,) = read_all(good_bundle(tmp_path, big_endian=True))
    assert values.dtype == np.float32 and np.array_equal(values, KERNEL)


def expect_error(path: Path, *fragments: str) -> None:
    with pytest.raises(InitcliError) as caught:
        read_all(path)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_bad_magic(tmp_path: Path) -> None:
    expect_error(good_bundle(tmp_path, magic=0x1234), "bad table magic")


def test_index_block_checksum(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path)
    index = bytearray(Path(f"{prefix}.index").read_bytes())
    index[5] ^= 0x01  # inside the data block's first key
    Path(f"{prefix}.index").write_bytes(bytes(index))
    expect_error(prefix, "block checksum mismatch")


def test_tensor_checksum(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path)
    data = bytearray(Path(f"{prefix}.data-00000-of-00001").read_bytes())
    offset = len(data) - KERNEL.nbytes + 13  # kernel bytes follow the object graph
    data[offset] ^= 0x40
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    expect_error(prefix, "checksum mismatch", "layer_with_weights-0/kernel")


def test_object_graph_checksum(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path)
    data = bytearray(Path(f"{prefix}.data-00000-of-00001").read_bytes())
    data[20] ^= 0x01
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    expect_error(prefix, "checksum mismatch")


def test_truncated_data_shard(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path)
    shard = Path(f"{prefix}.data-00000-of-00001")
    shard.write_bytes(shard.read_bytes()[:-5])
    expect_error(prefix, "past the end", "truncated")


def test_missing_data_shard(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path)
    Path(f"{prefix}.data-00000-of-00001").unlink()
    expect_error(prefix, "data shard missing")


def test_offset_beyond_shard(tmp_path: Path) -> None:
    expect_error(good_bundle(tmp_path, overrides={KERNEL_KEY: {"offset": 1 << 40}}), "past the end")


def test_size_disagrees_with_shape(tmp_path: Path) -> None:
    expect_error(good_bundle(tmp_path, overrides={KERNEL_KEY: {"size": 44}}), "needs 48 bytes", "says 44")


def test_shape_product_overflow_allocates_nothing(tmp_path: Path) -> None:
    overrides = {KERNEL_KEY: {"dims": [1 << 62, 1 << 62, 1 << 62]}}
    expect_error(good_bundle(tmp_path, overrides=overrides), "multiply past int64")


def test_huge_declared_size_allocates_nothing(tmp_path: Path) -> None:
    overrides = {KERNEL_KEY: {"dims": [1 << 58], "size": 1 << 60}}
    expect_error(good_bundle(tmp_path, overrides=overrides), "past the end")


def test_negative_dimension(tmp_path: Path) -> None:
    expect_error(good_bundle(tmp_path, overrides={KERNEL_KEY: {"dims": [-4, -3]}}), "invalid shape")


def test_memory_budget(tmp_path: Path) -> None:
    bundle = TensorBundle(good_bundle(tmp_path), memory_budget=40)
    try:
        with pytest.raises(InitcliError, match="over the 40-byte budget"):
            bundle.read(KERNEL_KEY)
        enough = TensorBundle(bundle.prefix, memory_budget=48)
        assert enough.read(KERNEL_KEY).shape == (4, 3)
        enough.close()
    finally:
        bundle.close()


def test_absurd_varint(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path, extra_entry_bytes={KERNEL_KEY: pb_int(9, 0)[:1] + b"\xff" * 11 + b"\x01"})
    expect_error(prefix, "varint longer than 10 bytes")


def test_length_past_buffer(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path, extra_entry_bytes={KERNEL_KEY: varint(9 << 3 | 2) + varint(1 << 40)})
    expect_error(prefix, "declares 1099511627776 bytes")


def test_snappy_compressed_index(tmp_path: Path) -> None:
    (values,) = read_all(good_bundle(tmp_path, compression=1))
    assert values.tobytes() == KERNEL.tobytes()


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        # literal "abc", copy (1-byte offset) of 9 bytes from 3 back, literal "XYZ"
        (varint(15) + b"\x08abc" + bytes([5 << 2 | 1, 3]) + b"\x08XYZ", b"abcabcabcabcXYZ"),
        # literal "hello ", copy (2-byte offset) of 5 bytes from 6 back
        (varint(11) + b"\x14hello " + bytes([4 << 2 | 2]) + (6).to_bytes(2, "little"), b"hello hello"),
        # literal "ab", copy (4-byte offset) of 3 bytes from 2 back, overlapping itself
        (varint(5) + b"\x04ab" + bytes([2 << 2 | 3]) + (2).to_bytes(4, "little"), b"ababa"),
        # a literal with a 1-byte length (tag 60)
        (varint(61) + bytes([60 << 2, 60]) + b"z" * 61, b"z" * 61),
    ],
)
def test_snappy_format(stream: bytes, expected: bytes) -> None:
    assert snappy.decompress(stream, limit=1 << 20, source="s") == expected


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (varint(1 << 30) + b"\x00a", "more than"),
        (varint(8) + b"\x08abc" + bytes([5 << 2 | 1, 4]), "outside the output"),
        (varint(8) + b"\x08abc" + bytes([5 << 2 | 1, 0]), "outside the output"),
        (varint(4) + b"\x08abc" + bytes([5 << 2 | 1, 3]), "past its declared"),
        (varint(9) + b"\x08abc", "declares 9"),
        (varint(9) + b"\x1cabc", "past the block"),
        (varint(9) + bytes([63 << 2, 1]), "truncated Snappy literal length"),
    ],
)
def test_snappy_hostile(stream: bytes, message: str) -> None:
    with pytest.raises(InitcliError, match=message):
        snappy.decompress(stream, limit=1 << 20, source="s")


def test_partitioned_variable_refused(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path, extra_entry_bytes={KERNEL_KEY: pb_bytes(7, b"")})
    expect_error(prefix, "partitioned")


def test_shard_count_out_of_range(tmp_path: Path) -> None:
    expect_error(good_bundle(tmp_path, overrides={KERNEL_KEY: {"shard": 3}}), "in shard 3 of 1")


def test_object_graph_edge_out_of_range(tmp_path: Path) -> None:
    prefix = tmp_path / "ckpt"
    graph = object_graph([([("layer", 7)], None)])
    write_bundle(prefix, {"_CHECKPOINTABLE_OBJECT_GRAPH": graph, KERNEL_KEY: KERNEL})
    expect_error(prefix, "points at object 7 of 1")


def test_cyclic_object_graph_terminates(tmp_path: Path) -> None:
    prefix = tmp_path / "ckpt"
    graph = object_graph(
        [([("a", 1)], None), ([("b", 0), ("kernel", 2), ("self", 1)], None), ([], ("dense/kernel", KERNEL_KEY))]
    )
    write_bundle(prefix, {"_CHECKPOINTABLE_OBJECT_GRAPH": graph, KERNEL_KEY: KERNEL})
    assert [values.shape for values in read_all(prefix)] == [(4, 3)]


def test_name_based_checkpoint(tmp_path: Path) -> None:
    """TF1 Saver checkpoints: keys are variable names; optimizer slots and counters are not weights."""
    prefix = tmp_path / "ckpt"
    bias = np.ones(3, dtype=np.float64)
    tensors = {
        "dense/kernel": KERNEL,
        "dense/kernel/Adam": KERNEL,
        "dense/kernel/Adam_1": KERNEL,
        "dense/bias": bias,
        "beta1_power": np.float32(0.9).reshape(()),
        "global_step": np.array(7, dtype=np.int64),
    }
    write_bundle(prefix, tensors)  # type: ignore[arg-type]
    model = open_model(prefix)
    try:
        records = list(model.records())
        assert [(r.path, r.layer, r.weight) for r in records] == [
            ("dense/bias", "dense", "bias"),
            ("dense/kernel", "dense", "kernel"),
        ]
        assert records[0].read().tobytes() == bias.tobytes() and records[1].read().tobytes() == KERNEL.tobytes()
        assert any("name-based" in note for note in model.notes)
    finally:
        model.close()


def test_prefix_compressed_key_bomb(tmp_path: Path) -> None:
    """Entries that each share a long prefix would rebuild gigabytes of keys from a small block."""
    long_key = b"k" * 60_000
    contents = varint(0) + varint(len(long_key)) + varint(0) + long_key
    contents += b"".join(varint(60_000) + varint(1) + varint(0) + bytes([i % 256]) for i in range(2_000))
    contents += (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    index = block([(b"\xff", varint(0) + varint(len(contents)))])
    data = with_trailer(contents) + with_trailer(index)
    footer = (varint(0) + varint(0) + varint(len(contents) + 5) + varint(len(index))).ljust(40, b"\0")
    Path(tmp_path / "ckpt.index").write_bytes(data + footer + (0xDB4775248B80FB57).to_bytes(8, "little"))
    expect_error(tmp_path / "ckpt", "keys add up to more than")


def test_index_pointing_at_one_block_many_times(tmp_path: Path) -> None:
    contents = block([(b"", b"")])
    handles = [(i.to_bytes(4, "big"), varint(0) + varint(len(contents))) for i in range(50_000)]
    index = block(handles)
    data = with_trailer(contents) + with_trailer(index)
    footer = (varint(0) + varint(0) + varint(len(contents) + 5) + varint(len(index))).ljust(40, b"\0")
    Path(tmp_path / "ckpt.index").write_bytes(data + footer + (0xDB4775248B80FB57).to_bytes(8, "little"))
    expect_error(tmp_path / "ckpt", "overlapping data blocks")


def test_nesting_depth_is_capped() -> None:
    groups = b"".join(varint(1 << 3 | 3) for _ in range(MAX_DEPTH + 2))
    with pytest.raises(InitcliError, match="nested deeper"):
        parse_message(groups, "x.pb")
    nested = b""
    for _ in range(MAX_DEPTH + 2):
        nested = pb_bytes(1, nested)
    message = parse_message(nested, "x.pb")
    with pytest.raises(InitcliError, match="nested deeper"):
        for _ in range(MAX_DEPTH + 2):
            found = message.message(1)
            assert found is not None
            message = found


def test_corrupt_file_on_the_command_line(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path, magic=0x1234)
    result = invoke("inspect", str(prefix))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output


def test_data_shard_without_index(tmp_path: Path) -> None:
    prefix = good_bundle(tmp_path)
    Path(f"{prefix}.index").unlink()
    result = invoke("inspect", f"{prefix}.data-00000-of-00001")
    assert result.exit_code == 1
    assert "no ckpt.index beside it" in result.output, result.output


def test_savedmodel_without_variables(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(pb_int(1, 1))
    result = invoke("inspect", str(tmp_path))
    assert result.exit_code == 1
    assert "without variables" in result.output


def test_metadata_from_saved_model_pb_when_keras_metadata_is_missing(tmp_path: Path) -> None:
    """tf.keras 2.0-2.4 kept each layer's metadata in saved_model.pb (SavedUserObject.metadata)."""
    dense = {"class_name": "Dense", "name": "dense", "config": {"name": "dense", "kernel_initializer": "he_normal"}}
    root_object = pb_bytes(1, pb_int(1, 1) + pb_bytes(2, b"layer_with_weights-0")) + pb_bytes(
        4, pb_bytes(1, b"_tf_keras_sequential") + pb_bytes(3, json.dumps({"keras_version": "2.4.0"}).encode())
    )
    dense_object = pb_bytes(4, pb_bytes(1, b"_tf_keras_layer") + pb_bytes(3, json.dumps(dense).encode()))
    object_graph_def = pb_bytes(1, root_object) + pb_bytes(1, dense_object)
    (tmp_path / "saved_model.pb").write_bytes(pb_int(1, 1) + pb_bytes(2, pb_bytes(7, object_graph_def)))
    write_bundle(tmp_path / "variables" / "variables", {"_CHECKPOINTABLE_OBJECT_GRAPH": GRAPH, KERNEL_KEY: KERNEL})
    model = open_model(tmp_path)
    try:
        (record,) = list(model.records())
        assert (model.format, model.keras_version) == ("savedmodel", "2.4.0")
        assert (record.layer_class, record.argument) == ("Dense", "kernel_initializer")
        assert record.initializer == {"class_name": "he_normal", "config": {}}
        assert record.default_initializer == "glorot_uniform"
    finally:
        model.close()


@pytest.mark.parametrize(
    ("metadata", "message"),
    [(b"[" * 200_000, "levels deep"), (b'{"class_name": ', "not valid JSON"), (b"\xff\xfe", "not UTF-8")],
    ids=["deep", "truncated", "not-utf8"],
)
def test_hostile_keras_metadata(tmp_path: Path, metadata: bytes, message: str) -> None:
    (tmp_path / "saved_model.pb").write_bytes(pb_int(1, 1))
    node = pb_bytes(3, b"root") + pb_bytes(4, b"_tf_keras_model") + pb_bytes(5, metadata)
    (tmp_path / "keras_metadata.pb").write_bytes(pb_bytes(1, node))
    write_bundle(tmp_path / "variables" / "variables", {"_CHECKPOINTABLE_OBJECT_GRAPH": GRAPH, KERNEL_KEY: KERNEL})
    result = invoke("inspect", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output, result.output


# ---------------------------------------------------------------------------------------------
# Formats initcli names but does not read


def pytorch_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/version", b"3\n")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("model.tflite", b"\x1c\x00\x00\x00TFL3" + bytes(40), "TensorFlow Lite"),
        ("model.pt", b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.", "pickle"),
        ("model.onnx", pb_int(1, 8) + pb_bytes(2, b"pytorch") + pb_bytes(3, b"2.1.0") + b"\x3a\x10", "ONNX"),
        ("frozen.pb", pb_bytes(1, pb_bytes(1, b"input") + pb_bytes(2, b"Placeholder")), "GraphDef"),
        ("saved_model.pb", pb_int(1, 1) + pb_bytes(2, b"\x0a\x00"), "pass its directory"),
        ("model.safetensors", (8).to_bytes(8, "little") + b'{"a":{}}', "safetensors"),
    ],
)
def test_unsupported_formats_are_named(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = invoke("inspect", str(path))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and fragment in result.output, result.output
    assert result.output.count("\n") == 1


def test_pytorch_zip_is_named(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    pytorch_zip(path)
    result = invoke("inspect", str(path))
    assert result.exit_code == 1
    assert "PyTorch" in result.output


# ---------------------------------------------------------------------------------------------
# Against tf_keras and TensorFlow's own checkpoint reader


def build_more_layers():
    import tf_keras

    tf_keras.utils.set_random_seed(4)
    layers = tf_keras.layers
    frames = layers.Input((3, 6, 6, 2))
    x = layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True, recurrent_initializer="he_normal")(frames)
    x = layers.Conv3D(3, 2, kernel_initializer="lecun_normal")(x)
    x = layers.PReLU(alpha_initializer=tf_keras.initializers.Constant(0.25))(x)
    x = layers.Reshape((2, 75))(x)
    x = layers.SimpleRNN(4, return_sequences=True, kernel_initializer="variance_scaling")(x)
    x = layers.GRU(3, reset_after=False, return_sequences=True)(x)
    x = layers.EinsumDense("abc,cd->abd", output_shape=(None, 5), bias_axes="d")(x)
    x = layers.Conv1DTranspose(2, 2, kernel_initializer="truncated_normal")(x)
    x = layers.GroupNormalization(groups=2)(x)
    model = tf_keras.Model(frames, x)
    model.compile("sgd", "mse")
    return model


def build_mobilenet():
    import tf_keras

    tf_keras.utils.set_random_seed(5)
    return tf_keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10)


def build_tf_keras_model():
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    layers = tf_keras.layers
    tokens = layers.Input((6,), dtype="int32")
    x = layers.Embedding(11, 8, embeddings_initializer="random_normal")(tokens)
    x = layers.Conv1D(8, 3, padding="same", kernel_initializer="he_normal")(x)
    x = layers.LSTM(5, return_sequences=True, kernel_initializer="lecun_uniform")(x)
    x = layers.Bidirectional(
        layers.GRU(3, return_sequences=True),
        backward_layer=layers.GRU(3, return_sequences=True, go_backwards=True, recurrent_initializer="glorot_normal"),
    )(x)
    x = layers.MultiHeadAttention(2, 4, kernel_initializer="he_uniform")(x, x)
    x = layers.TimeDistributed(layers.Dense(4, kernel_initializer=tf_keras.initializers.RandomNormal(stddev=0.3)))(x)
    inner = tf_keras.Sequential([layers.Dense(3), layers.LayerNormalization(), layers.BatchNormalization()])
    x = inner(x)
    x = layers.Reshape((6, 3, 1))(x)
    x = layers.DepthwiseConv2D(2, depthwise_initializer="orthogonal")(x)
    x = layers.SeparableConv2D(2, 2)(x)
    x = layers.Conv2DTranspose(2, 2, bias_initializer="ones")(x)
    model = tf_keras.Model(tokens, x)
    model.compile("adam", "mse", metrics=["mae"])
    inputs = np.arange(12).reshape(2, 6) % 11
    model.fit(inputs, np.zeros((2, *model.output_shape[1:])), verbose=0)  # optimizer and metric state too
    return model


def normalized(identifier: object) -> str:
    return str(identifier).replace("_", "").lower()


def owners(model) -> dict[str, object]:
    found = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for variable in layer._trainable_weights + layer._non_trainable_weights:
            found[variable.name] = layer
    return found


def by_full_name(prefix: str) -> dict[str, np.ndarray]:
    """TensorFlow's own reading: the object graph (parsed by TF's protobuf) maps names to checkpoint keys."""
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    out = {}
    for node in graph.nodes:
        for attribute in node.attributes:
            if attribute.name == "VARIABLE_VALUE":
                out[attribute.full_name] = reader.get_tensor(attribute.checkpoint_key)
    return out


BUILT: dict[object, object] = {}


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("build", "kind"),
    [
        (build_tf_keras_model, "savedmodel"),
        (build_tf_keras_model, "save_weights"),
        (build_tf_keras_model, "checkpoint"),
        (build_more_layers, "savedmodel"),
        (build_more_layers, "checkpoint"),
        (build_mobilenet, "savedmodel"),
    ],
    ids=[
        "mixed-savedmodel",
        "mixed-save_weights",
        "mixed-checkpoint",
        "more-savedmodel",
        "more-checkpoint",
        "mobilenet",
    ],
)
def test_tf_keras_model_bit_equal(tmp_path: Path, build, kind: str) -> None:
    import tensorflow as tf

    if build not in BUILT:  # each model is built (and trained a step) once for every format
        BUILT[build] = build()
    model = BUILT[build]
    if kind == "savedmodel":
        # Tracing the mixed model's RNN and attention layers takes ~30 s; the object graph and
        # keras_metadata.pb hold the same layers and variables without traces. One model keeps the default.
        model.save(tmp_path / "model", save_traces=build is build_more_layers)
        path, prefix = tmp_path / "model", str(tmp_path / "model" / "variables" / "variables")
    elif kind == "save_weights":
        model.save_weights(str(tmp_path / "ckpt"))
        path, prefix = tmp_path / "ckpt", str(tmp_path / "ckpt")
    else:
        trackables = {"model": model, **({"optimizer": model.optimizer} if model.optimizer else {})}
        prefix = tf.train.Checkpoint(**trackables).write(str(tmp_path / "ckpt"))
        path = Path(prefix)
    tensorflow_values = by_full_name(prefix)
    live = {v.name.removesuffix(":0"): v for v in model.weights}
    layer_of = owners(model)
    saved = open_model(path)
    try:
        records = list(saved.records())
        assert [r.path for r in records] == list(live), "every weight, named and ordered as Keras does"
        for record in records:
            values = record.read()
            expected = tensorflow_values[record.path]
            assert values.dtype == expected.dtype and values.shape == expected.shape == record.shape
            assert values.tobytes() == expected.tobytes(), record.path
            assert values.tobytes() == live[record.path].numpy().tobytes(), record.path
            layer = layer_of[live[record.path].name]
            assert record.weight == record.path.rsplit("/", 1)[-1]
            if kind != "savedmodel":
                assert record.initializer is None
                continue
            assert record.layer == layer.name
            assert record.layer_class == type(layer).__name__
            assert record.argument == INITIALIZER_ARGUMENTS[record.weight]
            configured = layer.get_config()[record.argument]
            signature_default = inspect.signature(type(layer).__init__).parameters[record.argument].default
            assert normalized(record.default_initializer) == normalized(signature_default), record.path
            assert record.initializer is not None
            assert (record.initializer["class_name"], record.initializer["config"]) == (
                configured["class_name"],
                configured["config"],
            ), record.path
    finally:
        saved.close()


@pytest.mark.tensorflow
def test_larger_tensor_checksums_match_tensorflow(tmp_path: Path) -> None:
    """Multi-megabyte tensors of odd sizes: TensorFlow's stored CRC-32C must equal ours on every one."""
    import tensorflow as tf

    rng = np.random.default_rng(5)
    variables = {
        f"v{size}": tf.Variable(rng.standard_normal(size).astype(dtype))
        for size, dtype in [(1_000_003, np.float32), (262_147, np.float64), (77_777, np.float16)]
    }
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "big"))
    bundle = TensorBundle(Path(prefix))
    try:
        for name, variable in variables.items():
            values = bundle.read(f"{name}/.ATTRIBUTES/VARIABLE_VALUE")  # verifies TensorFlow's checksum
            assert values.tobytes() == variable.numpy().tobytes()
    finally:
        bundle.close()


@pytest.mark.tensorflow
def test_keras3_trackable_checkpoint(tmp_path: Path, keras) -> None:
    """Keras 3 models are trackable too: names are `variable.path`."""
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    saved = open_model(prefix)
    try:
        records = list(saved.records())
        assert [(r.path, r.weight) for r in records] == [(v.path, v.name) for v in model.weights]
        for record, variable in zip(records, model.weights):
            assert record.read().tobytes() == variable.numpy().tobytes()
    finally:
        saved.close()


@pytest.mark.tensorflow
def test_tf1_saver_checkpoint(tmp_path: Path) -> None:
    """A name-based checkpoint written by tf.compat.v1.train.Saver, with Adam slots and a global step."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(2)
        inputs = tf.compat.v1.placeholder(tf.float32, (None, 4))
        kernel = tf.compat.v1.get_variable(
            "dense/kernel", (4, 3), initializer=tf.compat.v1.glorot_uniform_initializer()
        )
        bias = tf.compat.v1.get_variable("dense/bias", (3,), initializer=tf.compat.v1.zeros_initializer())
        loss = tf.reduce_sum(tf.matmul(inputs, kernel) + bias)
        step = tf.compat.v1.train.get_or_create_global_step()
        train = tf.compat.v1.train.AdamOptimizer().minimize(loss, global_step=step)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(train, {inputs: np.ones((2, 4), np.float32)})
            prefix = saver.save(session, str(tmp_path / "model.ckpt"))
            expected = {"dense/bias": session.run(bias), "dense/kernel": session.run(kernel)}
    saved = open_model(prefix)
    try:
        records = list(saved.records())
        assert [r.path for r in records] == sorted(expected)
        for record in records:
            assert record.read().tobytes() == expected[record.path].tobytes()
    finally:
        saved.close()


@pytest.mark.parametrize(
    ("limit", "member", "what"),
    [
        ("MAX_INDEX_BYTES", "variables/variables.index", "the checkpoint index"),
        ("MAX_METADATA_BYTES", "keras_metadata.pb", "keras_metadata.pb"),
    ],
)
def test_oversized_bundle_files_are_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, member: str, what: str
) -> None:
    import shutil

    from initcli.readers import tfbundle, tfmodel

    copy = tmp_path / "savedmodel"
    shutil.copytree(FIXTURES / "savedmodel", copy)
    size = (copy / member).stat().st_size
    module = tfbundle if limit == "MAX_INDEX_BYTES" else tfmodel
    monkeypatch.setattr(module, limit, size - 1)
    with pytest.raises(InitcliError, match=f"{what} is larger than {size - 1} bytes, more than initcli reads"):
        open_model(copy).records()
    monkeypatch.setattr(module, limit, size)
    open_model(copy).close()  # exactly at the bound: read


def test_tensors_read_by_forked_processes_are_their_own(tmp_path: Path) -> None:
    """inspect measures weights in forked processes that share the shard's descriptor: reads must be
    positioned (a shared file offset would hand one process another's bytes)."""
    import dataclasses

    from initcli.parallel.fanout import map_in_order

    prefix = good_bundle(tmp_path)
    shard = Path(f"{prefix}.data-00000-of-00001")
    data = np.random.default_rng(3).bytes(8 << 20)
    shard.write_bytes(data)  # the regions below are read by offset; the index's own entries are not used
    bundle = TensorBundle(prefix)
    template = bundle.entries[KERNEL_KEY]
    regions = [(offset, 1 + offset % 40_000) for offset in range(0, (8 << 20) - 40_000, 7_919)]

    def read(region: tuple[int, int]) -> bytes:
        entry = dataclasses.replace(template, offset=region[0], size=region[1])
        buffer = bytearray(region[1])
        bundle._read_into(entry, memoryview(buffer))
        return bytes(buffer)

    try:
        read(regions[0])  # the shard is open before the fork, as after reading the object graph
        got = list(map_in_order(read, regions, workers=2))
    finally:
        bundle.close()
    assert len(regions) > 1000
    assert all(chunk == data[offset : offset + size] for chunk, (offset, size) in zip(got, regions))
