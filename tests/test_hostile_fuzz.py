"""Seeded mutation fuzzing of the protobuf decoder and the TensorFlow checkpoint readers (issue 24).

Each input is a good file (test_tfbundle's independent writer) mutated by a seeded generator: bits
flipped, bytes set, ranges inserted, deleted, duplicated or cut off, runs of 0xff (endless varints).
Every outcome must be a decoded message / the model's records, or an InitcliError of one line:
never another exception, never a hang (each case runs under a 10 s budget). The short runs are in
every test run; the long ones are marked `slow`.

Byte mutations of a checkpoint index mostly stop at its block checksums, so the deeper code (entry
fields, shard offsets, sizes, shapes, dtypes) is fuzzed by a structure-aware generator too: entries
are written with random field values and random bytes, then framed with valid checksums, and the data
shard is cut at random. Each case's Python/numpy allocations are traced: the peak must stay under
1 GB. Measured by planting, one at a time, each of tfbundle.py's 33 `raise InitcliError` lines as a
`raise ValueError` (a crash the fuzzers must see): the byte fuzzer went red on 8 of them (framing,
checksums, string tensors); the structured one on 10 the byte fuzzer never reached (restart points,
entry lengths, rank, shape, shard count, missing shard, shard id, negative offset or size, data
checksum). The rest are budget limits with their own tests (entries, key bytes) or re-checks
behind an earlier check.
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from initcli.errors import InitcliError
from initcli.readers import open_model
from initcli.readers.protowire import Message, parse_message
from initcli.safety.budget import Budget, scope
from tests.test_hostile_budget import object_graph_saved_model, saved_model
from tests.test_tfbundle import (
    GRAPH,
    KERNEL,
    KERNEL_KEY,
    block,
    framed_table,
    good_bundle,
    pb_bytes,
    pb_int,
    table,
    write_bundle,
)

PEAK_BYTES = 1 << 30


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits of `data`."""
    out = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        size = len(out)
        kind = rng.randrange(7)
        at = rng.randrange(size + 1)
        if kind == 0 and size:
            out[min(at, size - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1 and size:
            out[min(at, size - 1)] = rng.getrandbits(8)
        elif kind == 2:
            out[at:at] = rng.randbytes(rng.randrange(1, 16))
        elif kind == 3:
            del out[at : at + rng.randrange(1, 32)]
        elif kind == 4:
            end = min(size, at + rng.randrange(1, 64))
            out[at:at] = out[at:end] * rng.randrange(1, 4)
        elif kind == 5:
            del out[at:]
        else:
            out[at:at] = b"\xff" * rng.randrange(1, 12)
    return bytes(out)


def _walk(message: Message, depth: int = 0) -> int:
    """Read every field every way initcli's readers may: ints, text, bytes, nested messages."""
    seen = 0
    for number, values in message.fields.items():
        seen += len(values)
        for accessor in (message.integers, message.text, message.data):
            try:
                accessor(number)
            except InitcliError as error:
                _one_line(error)
        if depth < 8:
            try:
                nested = message.messages(number)
            except InitcliError as error:
                _one_line(error)
            else:
                seen += sum(_walk(child, depth + 1) for child in nested)
    return seen


def _one_line(error: InitcliError) -> None:
    text = str(error)
    assert text and "\n" not in text and "\r" not in text, repr(text)


SEEDS_PROTOBUF = [
    GRAPH,
    object_graph_saved_model(GRAPH),
    bytes.fromhex("0801120a0a0568656c6c6f1001"),  # a message with a nested one
]


def _fuzz_protobuf(count: int, seed: int) -> None:
    rng = random.Random(seed)
    for index in range(count):
        data = mutate(rng.choice(SEEDS_PROTOBUF), rng)
        with scope(Budget(timeout=10)):
            try:
                _walk(parse_message(data, "fuzz"))
            except InitcliError as error:
                _one_line(error)
            except Exception as error:  # pragma: no cover - the failure being looked for
                pytest.fail(f"case {index} (seed {seed}): {type(error).__name__}: {error}: {data.hex()}")


def test_protobuf_fuzz_short() -> None:
    _fuzz_protobuf(2000, seed=24)


@pytest.mark.slow
def test_protobuf_fuzz_long() -> None:
    _fuzz_protobuf(50_000, seed=2024)


def _read_whole(path: Path) -> None:
    model = open_model(path)
    try:
        for record in model.records():
            record.read()
    finally:
        model.close()


def _fuzz_files(tmp_path: Path, count: int, seed: int, build: Callable[[Path], tuple[Path, list[Path]]]) -> None:
    """Mutate one of the files `build` names per case and read the model whole."""
    rng = random.Random(seed)
    model, files = build(tmp_path / "good")
    originals = {file: file.read_bytes() for file in files}
    for index in range(count):
        target = rng.choice(files)
        for file, data in originals.items():
            file.write_bytes(mutate(data, rng) if file == target else data)
        with scope(Budget(timeout=10)):
            try:
                _read_whole(model)
            except InitcliError as error:
                _one_line(error)
            except Exception as error:  # pragma: no cover - the failure being looked for
                pytest.fail(f"case {index} (seed {seed}, {target.name}): {type(error).__name__}: {error}")


def _bundle(root: Path) -> tuple[Path, list[Path]]:
    prefix = good_bundle(root)
    return prefix, [Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001")]


def _saved(root: Path) -> tuple[Path, list[Path]]:
    from tests.test_tfbundle import object_graph

    objects = object_graph(
        [([("layer_with_weights-0", 1)], None), ([("kernel", 2)], None), ([], ("dense/kernel", KERNEL_KEY))]
    )
    directory = saved_model(root / "model", object_graph_saved_model(objects))
    variables = directory / "variables" / "variables"
    return directory, [directory / "saved_model.pb", Path(f"{variables}.index")]


def test_bundle_fuzz_short(tmp_path: Path) -> None:
    assert KERNEL.shape == (4, 3)
    _fuzz_files(tmp_path, 400, 24, _bundle)


def test_saved_model_fuzz_short(tmp_path: Path) -> None:
    _fuzz_files(tmp_path, 300, 24, _saved)


_INTERESTING = [0, 1, 2, 3, 4, 7, 12, 47, 48, 49, 96, 255, 1 << 31, (1 << 32) - 1, 1 << 40, 1 << 62, -1, -48]
_DTYPES = [0, 1, 2, 3, 7, 9, 14, 19, 21, 24, 25, 99, 1 << 31]


def _entry_fields(rng: random.Random) -> dict[str, object]:
    """Random values for some of a BundleEntryProto's fields (the rest stay as the writer sets them)."""
    fields: dict[str, object] = {}
    if rng.random() < 0.3:
        fields["dtype"] = rng.choice(_DTYPES)
    if rng.random() < 0.4:
        fields["dims"] = [rng.choice(_INTERESTING) for _ in range(rng.choice([0, 1, 2, 2, 3, 5, 70]))]
    for name in ("shard", "offset", "size"):
        if rng.random() < 0.35:
            fields[name] = rng.choice(_INTERESTING)
    return fields


def _structured_bundle(prefix: Path, rng: random.Random) -> None:
    """A checkpoint whose index is well framed (valid block checksums) and whose entries are not."""
    overrides = {KERNEL_KEY: _entry_fields(rng)}
    extra = {KERNEL_KEY: rng.randbytes(rng.randrange(1, 12))} if rng.random() < 0.15 else None
    write_bundle(
        prefix,
        {"_CHECKPOINTABLE_OBJECT_GRAPH": GRAPH, KERNEL_KEY: KERNEL},
        overrides=overrides,
        extra_entry_bytes=extra,
        num_shards=rng.choice([1, 1, 1, 2, 0]),
    )
    index = Path(f"{prefix}.index")
    header = pb_int(1, 1) + pb_int(2, 0) + pb_bytes(3, pb_int(1, 1))  # one shard, little-endian, version 1
    entry = pb_int(1, 1) + pb_bytes(2, b"".join(pb_bytes(2, pb_int(1, d)) for d in KERNEL.shape))
    entry += pb_int(3, 0) + pb_int(4, 0) + pb_int(5, 48)  # float32 (4, 3) at shard 0, offset 0, 48 bytes
    if rng.random() < 0.25:  # the entry's own bytes mutated, then framed with valid checksums again
        index.write_bytes(table([(b"", header), (KERNEL_KEY.encode(), mutate(entry, rng))]))
    elif rng.random() < 0.3:  # the data block's framing (key/value lengths, restarts) mutated, checksums valid
        index.write_bytes(framed_table(mutate(block([(b"", header), (KERNEL_KEY.encode(), entry)]), rng)))
    for shard in prefix.parent.glob(f"{prefix.name}.data-*"):
        if rng.random() < 0.3:
            data = shard.read_bytes()
            shard.write_bytes(data[: rng.randrange(len(data) + 1)])


def _read_traced(path: Path, case: str) -> None:
    """Read the model whole under a 10 s budget: a one-line InitcliError or nothing, and under 1 GB traced
    (tracemalloc must be tracing)."""
    tracemalloc.reset_peak()
    with scope(Budget(timeout=10)):
        try:
            _read_whole(path)
        except InitcliError as error:
            _one_line(error)
        except Exception as error:  # pragma: no cover - the failure being looked for
            pytest.fail(f"{case}: {type(error).__name__}: {error}")
    peak = tracemalloc.get_traced_memory()[1]
    assert peak < PEAK_BYTES, f"{case}: {peak:,} bytes traced"


def _fuzz_structured(tmp_path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    tracemalloc.start()
    try:
        for index in range(count):
            root = tmp_path / f"case{index % 4}"
            for old in root.glob("*"):
                old.unlink()
            prefix = root / "ckpt"
            _structured_bundle(prefix, rng)
            _read_traced(prefix, f"case {index} (seed {seed})")
    finally:
        tracemalloc.stop()


def test_structured_bundle_fuzz_short(tmp_path: Path) -> None:
    _fuzz_structured(tmp_path, 300, 24)


@pytest.mark.slow
def test_structured_bundle_fuzz_long(tmp_path: Path) -> None:
    _fuzz_structured(tmp_path, 2000, 2024)


@pytest.mark.slow
def test_bundle_fuzz_long(tmp_path: Path) -> None:
    _fuzz_files(tmp_path, 5000, 2024, _bundle)


@pytest.mark.slow
def test_saved_model_fuzz_long(tmp_path: Path) -> None:
    _fuzz_files(tmp_path, 3000, 2024, _saved)


# ---------------------------------------------------------------------------------------------
# safetensors: the seed file is written by the `safetensors` package; its 8-byte length and JSON
# header are mutated as bytes, and as JSON with random dtypes, shapes and data offsets. Planting each
# `raise InitcliError` of readers/safetensors.py as a ValueError turns this red on 12 of 15; the
# three left green are behind earlier checks (a file under 8 bytes is not taken for safetensors; a
# header longer than the file is refused before it is read) or need the file to change while read.

_ST_DTYPES = ["F32", "F16", "BF16", "F64", "I8", "U8", "I64", "BOOL", "F8_E4M3", "C64", "X", ""]
_ST_NUMBERS = [0, 1, 2, 3, 8, 12, 16, 47, 48, 96, -1, 1 << 31, 1 << 62, 1 << 64, 2.5, None, "8"]


def _safetensors_seed(root: Path) -> tuple[Path, list[Path]]:
    import numpy as np

    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    root.mkdir(parents=True, exist_ok=True)
    path = root / "model.safetensors"
    tensors = {"dense/kernel": KERNEL, "dense/bias": np.arange(3, dtype=np.float16), "scale": np.ones((), np.float64)}
    safetensors_numpy.save_file(tensors, str(path), metadata={"format": "np"})
    return path, [path]


def _structured_safetensors(path: Path, seed_bytes: bytes, rng: random.Random) -> None:
    import json
    import struct

    length = struct.unpack("<Q", seed_bytes[:8])[0]
    header = json.loads(seed_bytes[8 : 8 + length])
    data = seed_bytes[8 + length :]
    for name in [key for key in header if key != "__metadata__"]:
        entry = header[name]
        if rng.random() < 0.3:
            entry["dtype"] = rng.choice(_ST_DTYPES)
        if rng.random() < 0.3:
            entry["shape"] = [rng.choice(_ST_NUMBERS) for _ in range(rng.choice([0, 1, 2, 3, 70]))]
        if rng.random() < 0.3:
            entry["data_offsets"] = [rng.choice(_ST_NUMBERS) for _ in range(rng.choice([0, 1, 2, 2, 2, 3]))]
        if rng.random() < 0.05:
            header[name] = rng.choice([[], 1, "x", None, {}])
    if rng.random() < 0.1:
        header["__metadata__"] = rng.choice([{"format": 1}, [], "x", {"a": "b"}])
    raw = json.dumps(header if rng.random() < 0.95 else rng.choice([[header], "x", 1, None])).encode()
    declared = len(raw) if rng.random() < 0.9 else rng.choice([0, 1, len(raw) - 1, len(raw) + 1, 1 << 40])
    if rng.random() < 0.2:
        data = data[: rng.randrange(len(data) + 1)]
    out = struct.pack("<Q", declared) + raw + data
    path.write_bytes(out if rng.random() < 0.97 else out[: rng.randrange(8)])


def _fuzz_safetensors(tmp_path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    path, _ = _safetensors_seed(tmp_path / "good")
    original = path.read_bytes()
    tracemalloc.start()
    try:
        for index in range(count):
            if index % 2:
                _structured_safetensors(path, original, rng)
            else:
                path.write_bytes(mutate(original, rng))
            _read_traced(path, f"case {index} (seed {seed})")
    finally:
        tracemalloc.stop()


def test_safetensors_fuzz_short(tmp_path: Path) -> None:
    _fuzz_safetensors(tmp_path, 400, 24)


@pytest.mark.slow
def test_safetensors_fuzz_long(tmp_path: Path) -> None:
    _fuzz_safetensors(tmp_path, 4000, 2024)
