"""Read a TensorFlow tensor bundle (a TF checkpoint's `<prefix>.index` + `<prefix>.data-*`) without TensorFlow.

The `.index` file is a LevelDB-style sorted table (tensorflow/core/lib/io/table*.cc, format.cc,
block.cc): data blocks of prefix-compressed keys with restart points, an index block pointing at
them, each block followed by a compression byte (none, or Snappy in TensorFlow 1.1) and a masked
CRC-32C, and a 48-byte footer ending in a magic number. Its first entry (the empty key) is a
`BundleHeaderProto`; every other key names a tensor and holds a `BundleEntryProto` saying where
its bytes lie in which `.data-0000k-of-0000N` shard and their CRC-32C
(tensorflow/core/util/tensor_bundle/).

The file is untrusted: every offset and size is checked against the file that holds it, every
block and tensor checksum is verified, a tensor is read only when asked for and only if it fits
the memory budget, and nothing in the files is executed.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from initcli.errors import InitcliError
from initcli.readers import snappy
from initcli.readers.crc32c import crc32c, unmask
from initcli.readers.protowire import Message, parse_message, read_varint
from initcli.safety.budget import Budget, active
from initcli.safety.files import open_inside, read_regular, shown
from initcli.safety.numbers import check_holdable_shape

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
BLOCK_TRAILER_BYTES = 5
MAX_INDEX_BYTES = 256 * 1024 * 1024
MAX_BLOCK_BYTES = 64 * 1024 * 1024  # uncompressed; TensorFlow writes ~256 KB blocks
MAX_ENTRIES = 1_000_000
MAX_KEY_BYTES = 64 * 1024  # tensor names; prefix compression could otherwise rebuild huge keys cheaply
MAX_TOTAL_KEY_BYTES = 64 * 1024 * 1024
MAX_SHARDS = 100_000
MAX_RANK = 64  # numpy's limit (TensorFlow allows 254): a tensor initcli cannot hold is refused when opened
_READ_PIECE = 16 * 1024 * 1024  # one positioned read; Ctrl-C is seen between pieces
MAX_STRING_BYTES = 256 * 1024 * 1024
DEFAULT_MEMORY_BUDGET = 4 * 1024**3
BUNDLE_VERSION = 1  # kTensorBundleVersion: the newest format this reader knows

_NO_COMPRESSION, _SNAPPY = 0, 1
DT_STRING = 7

# TensorFlow DataType enum (tensorflow/core/framework/types.proto) -> numpy dtype.
_NUMPY_DTYPES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    8: "complex64",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    17: "uint16",
    18: "complex128",
    19: "float16",
    22: "uint32",
    23: "uint64",
    24: "float8_e5m2",
    25: "float8_e4m3fn",
}


class _Dtypes(Mapping[int, "np.dtype[Any]"]):
    """The numpy dtype of each TensorFlow DataType code, made on first use: ml_dtypes (bfloat16,
    float8) takes 0.5 s to import, which every `open_model` paid before it knew the format."""

    def __init__(self, names: Mapping[int, str]) -> None:
        self._names = dict(names)
        self._made: dict[int, np.dtype[Any]] = {}

    def __getitem__(self, code: int) -> np.dtype[Any]:
        if code not in self._made:
            name = self._names[code]
            if name.startswith(("bfloat16", "float8")):
                import ml_dtypes

                self._made[code] = np.dtype(getattr(ml_dtypes, name))
            else:
                self._made[code] = np.dtype(name)
        return self._made[code]

    def __contains__(self, code: object) -> bool:
        return code in self._names

    def __iter__(self) -> Iterator[int]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


DTYPES: Mapping[int, np.dtype[Any]] = _Dtypes(_NUMPY_DTYPES)
# Bytes per value of each code, known without importing ml_dtypes (sizes are checked for every entry).
_ITEMSIZES = {
    code: 1 if name.startswith("float8") else 2 if name == "bfloat16" else np.dtype(name).itemsize
    for code, name in _NUMPY_DTYPES.items()
}
_OTHER_DTYPES = {
    7: "string",
    11: "qint8",
    12: "quint8",
    13: "qint32",
    15: "qint16",
    16: "quint16",
    20: "resource",
    21: "variant",
}


def dtype_name(code: int) -> str:
    """TensorFlow's name of a DataType code ("float32", "string", ...)."""
    if code in DTYPES:
        return DTYPES[code].name
    return _OTHER_DTYPES.get(code, f"DataType {code}")


@dataclass(frozen=True, kw_only=True)
class BundleEntry:
    """Where one tensor lies: its `BundleEntryProto`.

    Attributes:
        key: the tensor's checkpoint key.
        dtype_code: TensorFlow DataType enum value.
        shape: the tensor's shape.
        shard_id, offset, size: its bytes are [offset, offset + size) of data shard `shard_id`.
        masked_crc32c: the stored (masked) CRC-32C of those bytes.
        sliced: the entry describes a partitioned variable stored as slices under other keys.
    """

    key: str
    dtype_code: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    masked_crc32c: int
    sliced: bool

    @property
    def dtype(self) -> str:
        return dtype_name(self.dtype_code)

    @property
    def count(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


# ---------------------------------------------------------------------------------------------
# The sorted table (.index)


def _block(data: bytes, offset: int, size: int, limit: int, source: str, what: str) -> memoryview:
    """The contents of the block at (offset, size), its checksum verified."""
    if offset < 0 or size < 0 or offset + size + BLOCK_TRAILER_BYTES > limit:
        raise InitcliError(f"{source}: {what} block at offset {offset}, {size} bytes, extends past the table")
    view = memoryview(data)
    trailer = view[offset + size : offset + size + BLOCK_TRAILER_BYTES]
    stored = unmask(int.from_bytes(trailer[1:5], "little"))
    if crc32c(view[offset : offset + size + 1]) != stored:
        raise InitcliError(f"{source}: {what} block checksum mismatch (corrupt index file)")
    compression = trailer[0]
    if compression == _SNAPPY:  # TensorFlow 1.1 compressed its index blocks
        return memoryview(snappy.decompress(view[offset : offset + size], limit=MAX_BLOCK_BYTES, source=source))
    if compression != _NO_COMPRESSION:
        raise InitcliError(f"{source}: {what} block has unknown compression type {compression}")
    return view[offset : offset + size]


def _block_entries(
    block: memoryview, source: str, key_budget: int = MAX_TOTAL_KEY_BYTES, budget: Budget | None = None
) -> list[tuple[bytes, memoryview]]:
    """Decode a block's (key, value) pairs: prefix-compressed keys, then restart offsets and their count.

    Raises:
        InitcliError: malformed entries, or keys adding up to more than `key_budget` bytes.
        BudgetError: more entries than the command's budget allows, or its deadline passed.
    """
    if budget is None:
        budget = active()
    size = len(block)
    if size < 4:
        raise InitcliError(f"{source}: malformed table block ({size} bytes)")
    restarts = int.from_bytes(block[size - 4 :], "little")
    if restarts > (size - 4) // 4:
        raise InitcliError(f"{source}: malformed table block ({restarts} restart points in {size} bytes)")
    limit = size - 4 * (1 + restarts)
    entries: list[tuple[bytes, memoryview]] = []
    key = b""
    position = 0
    while position < limit:
        shared, position = read_varint(block, position, source)
        unshared, position = read_varint(block, position, source)
        value_length, position = read_varint(block, position, source)
        if shared > len(key) or unshared + value_length > limit - position:
            raise InitcliError(f"{source}: malformed table entry (bad key or value length)")
        if shared + unshared > MAX_KEY_BYTES:
            raise InitcliError(f"{source}: a table key of {shared + unshared:,} bytes, longer than any tensor name")
        key_budget -= shared + unshared
        if key_budget < 0:
            raise InitcliError(f"{source}: table keys add up to more than {MAX_TOTAL_KEY_BYTES:,} bytes")
        key = key[:shared] + bytes(block[position : position + unshared])
        position += unshared
        entries.append((key, block[position : position + value_length]))
        position += value_length
        if len(entries) > MAX_ENTRIES:
            raise InitcliError(f"{source}: more than {MAX_ENTRIES} table entries")
        budget.spend_entries(1, source)
    budget.spend_bytes(sum(len(key) for key, _ in entries), source)
    return entries


def _block_handle(value: memoryview, source: str) -> tuple[int, int]:
    offset, position = read_varint(value, 0, source)
    size, _ = read_varint(value, position, source)
    return offset, size


def read_table(data: bytes, source: str, budget: Budget | None = None) -> list[tuple[bytes, memoryview]]:
    """All (key, value) pairs of a LevelDB-style table held in `data`, in key order.

    Raises:
        InitcliError: bad magic, out-of-range handles, checksum mismatches, unsorted keys.
        BudgetError: more entries than the budget (default: the command's) allows, or its deadline passed.
    """
    if budget is None:
        budget = active()
    if len(data) < FOOTER_BYTES:
        raise InitcliError(f"{source}: too short for a checkpoint index ({len(data)} bytes)")
    footer = memoryview(data)[len(data) - FOOTER_BYTES :]
    if int.from_bytes(footer[FOOTER_BYTES - 8 :], "little") != TABLE_MAGIC:
        raise InitcliError(f"{source}: not a TensorFlow checkpoint index (bad table magic number)")
    _, position = read_varint(footer, 0, source)  # metaindex offset (the metaindex block is unused)
    _, position = read_varint(footer, position, source)
    index_offset, position = read_varint(footer, position, source)
    index_size, position = read_varint(footer, position, source)
    if position > FOOTER_BYTES - 8:
        raise InitcliError(f"{source}: malformed table footer")
    table_end = len(data) - FOOTER_BYTES
    index = _block(data, index_offset, index_size, table_end, source, "index")
    entries: list[tuple[bytes, memoryview]] = []
    key_bytes = 0
    block_end = 0
    for _, handle in _block_entries(index, source, budget=budget):
        offset, size = _block_handle(handle, source)
        if offset < block_end:  # blocks follow one another: no block is read twice
            raise InitcliError(f"{source}: index points at overlapping data blocks (corrupt index file)")
        block_end = offset + size + BLOCK_TRAILER_BYTES
        contents = _block(data, offset, size, table_end, source, "data")
        block_entries = _block_entries(contents, source, MAX_TOTAL_KEY_BYTES - key_bytes, budget)
        entries.extend(block_entries)
        key_bytes += sum(len(key) for key, _ in block_entries)
        if len(entries) > MAX_ENTRIES:
            raise InitcliError(f"{source}: more than {MAX_ENTRIES:,} table entries")
    for (previous, _), (key, _) in zip(entries, entries[1:]):
        if key <= previous:
            raise InitcliError(f"{source}: table keys out of order (corrupt index file)")
    return entries


# ---------------------------------------------------------------------------------------------
# The bundle


def _shape(entry: Message, key: str, source: str) -> tuple[int, ...]:
    proto = entry.message(2)
    if proto is None:
        return ()
    if proto.integer(3, signed=False):
        raise InitcliError(f"{source}: tensor {key!r} has an unknown rank")
    dims = tuple(dim.integer(1) for dim in proto.messages(2))
    if len(dims) > MAX_RANK:
        raise InitcliError(f"{source}: tensor {shown(key)!r} has rank {len(dims)}; initcli reads at most {MAX_RANK}")
    if any(d < 0 for d in dims):
        raise InitcliError(f"{source}: tensor {shown(key)!r} has an invalid shape {list(dims)}")
    check_holdable_shape(dims, f"{source}: tensor {shown(key)!r}")
    return dims


def _entry(key: str, value: memoryview, source: str) -> BundleEntry:
    proto = parse_message(value, source)
    return BundleEntry(
        key=key,
        dtype_code=proto.integer(1),
        shape=_shape(proto, key, source),
        shard_id=proto.integer(3),
        offset=proto.integer(4),
        size=proto.integer(5),
        masked_crc32c=proto.integer(6, signed=False),
        sliced=bool(proto.fields.get(7)),
    )


def index_path(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


def shard_path(prefix: Path, shard: int, shards: int) -> Path:
    return prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{shards:05d}")


class TensorBundle:
    """An opened tensor bundle: its entries by key, and their values read on demand.

    Args:
        prefix: the checkpoint prefix (`ckpt` for `ckpt.index` and `ckpt.data-00000-of-00001`).
        memory_budget: the largest tensor, in bytes, that `read` will load.

    Raises:
        InitcliError: a missing, truncated, corrupt or unsupported bundle.
    """

    def __init__(self, prefix: Path, *, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        self.prefix = prefix
        self.memory_budget = memory_budget
        self.source = str(index_path(prefix))
        self._files: dict[int, io.BufferedReader] = {}
        self._closed = False
        data = self._read_index()
        pairs = read_table(data, self.source)
        if not pairs or pairs[0][0] != b"":
            raise InitcliError(f"{self.source}: no bundle header (not a TensorFlow checkpoint index)")
        header = parse_message(pairs[0][1], self.source)
        self.num_shards = header.integer(1)
        self.big_endian = header.integer(2) == 1
        self._check_version(header.message(3))
        if not 1 <= self.num_shards <= MAX_SHARDS:
            raise InitcliError(f"{self.source}: header declares {self.num_shards} data shards")
        self.entries: dict[str, BundleEntry] = {}
        budget = active()
        for raw_key, value in pairs[1:]:
            budget.tick(self.source)
            try:
                key = raw_key.decode("utf-8")
            except UnicodeDecodeError:
                key = raw_key.decode("latin-1")
            self.entries[key] = _entry(key, value, self.source)
        self._shard_sizes: dict[int, int] = {}
        for entry in self.entries.values():
            if not entry.sliced:
                self._check_entry(entry)

    def _read_index(self) -> bytes:
        path = index_path(self.prefix)
        return read_regular(path, MAX_INDEX_BYTES, "the checkpoint index", inside=path.parent)

    def _check_version(self, version: Message | None) -> None:
        if version is None:
            return
        min_consumer = version.integer(2)
        if min_consumer > BUNDLE_VERSION or BUNDLE_VERSION in version.integers(3):
            raise InitcliError(
                f"{self.source}: checkpoint format version needs a newer reader "
                f"(min_consumer {min_consumer}; initcli reads version {BUNDLE_VERSION})"
            )

    def _shard_size(self, shard: int) -> int:
        if shard not in self._shard_sizes:
            path = shard_path(self.prefix, shard, self.num_shards)
            if not path.exists() and not path.is_symlink():
                raise InitcliError(f"{path}: data shard missing (the checkpoint is incomplete)")
            fd = open_inside(path, self.prefix.parent)  # never a FIFO, device or a link leaving the directory
            try:
                self._shard_sizes[shard] = os.fstat(fd).st_size
            finally:
                os.close(fd)
        return self._shard_sizes[shard]

    def _check_entry(self, entry: BundleEntry) -> None:
        where = f"{self.source}: tensor {entry.key!r}"
        if not 0 <= entry.shard_id < self.num_shards:
            raise InitcliError(f"{where} is in shard {entry.shard_id} of {self.num_shards}")
        if entry.offset < 0 or entry.size < 0:
            raise InitcliError(f"{where} has a negative offset or size")
        if entry.dtype_code in DTYPES:
            expected = entry.count * _ITEMSIZES[entry.dtype_code]
            if entry.size != expected:
                raise InitcliError(
                    f"{where}: {entry.dtype}{list(entry.shape)} needs {expected} bytes, the index says {entry.size}"
                )
        shard_size = self._shard_size(entry.shard_id)
        if entry.offset + entry.size > shard_size:
            path = shard_path(self.prefix, entry.shard_id, self.num_shards)
            raise InitcliError(
                f"{path}: tensor {entry.key!r} lies at bytes {entry.offset}-{entry.offset + entry.size}, "
                f"past the end of the {shard_size}-byte data file (truncated?)"
            )

    def _file(self, shard: int) -> io.BufferedReader:
        if self._closed:
            raise InitcliError(f"{self.source}: read after the checkpoint was closed")
        if shard not in self._files:
            path = shard_path(self.prefix, shard, self.num_shards)
            fd = open_inside(path, self.prefix.parent)
            self._files[shard] = os.fdopen(fd, "rb")
        return self._files[shard]

    def _read_into(self, entry: BundleEntry, buffer: memoryview) -> None:
        # Positioned reads: processes forked to measure weights share the descriptor, not a file offset.
        fd = self._file(entry.shard_id).fileno()
        view = buffer.cast("B")
        got = 0
        while got < len(view):
            count = os.preadv(fd, [view[got : got + _READ_PIECE]], entry.offset + got)
            if count == 0:
                break
            got += count
        if got != entry.size:
            path = shard_path(self.prefix, entry.shard_id, self.num_shards)
            raise InitcliError(f"{path}: tensor {entry.key!r} is cut short ({got} of {entry.size} bytes)")

    def _checked_entry(self, key: str) -> BundleEntry:
        entry = self.entries.get(key)
        if entry is None:
            raise InitcliError(f"{self.source}: no tensor {key!r} in the checkpoint")
        if entry.sliced:
            raise InitcliError(
                f"{self.source}: {key!r} is a partitioned (sliced) variable; initcli does not read partitioned "
                "TF1 checkpoints: load and re-save the model with TensorFlow"
            )
        return entry

    def read(self, key: str) -> np.ndarray:
        """The tensor stored under `key`, its checksum verified.

        Raises:
            InitcliError: unknown key, partitioned or non-numeric tensor, over the memory budget,
                truncated data or a checksum mismatch.
        """
        entry = self._checked_entry(key)
        if entry.dtype_code not in DTYPES:
            raise InitcliError(f"{self.source}: tensor {key!r} holds {entry.dtype} values, not numbers")
        dtype = DTYPES[entry.dtype_code]
        nbytes = entry.count * dtype.itemsize
        if nbytes != entry.size:  # checked when opened; again here, as it guards the allocation below
            raise InitcliError(f"{self.source}: tensor {key!r}: size {entry.size} disagrees with its shape")
        if nbytes > self.memory_budget:
            raise InitcliError(
                f"{self.source}: tensor {key!r} is {nbytes:,} bytes, over the {self.memory_budget:,}-byte budget"
            )
        values = np.empty(entry.count, dtype=dtype)
        raw = values.view(np.uint8)
        self._read_into(entry, raw.data)
        self._verify(entry, crc32c(raw.data))
        if self.big_endian and dtype.itemsize > 1:
            values = values.byteswap()
        return values.reshape(entry.shape)

    def read_string(self, key: str) -> bytes:
        """The scalar string tensor stored under `key` (e.g. the object graph), its checksums verified."""
        entry = self._checked_entry(key)
        if entry.dtype_code != DT_STRING or entry.count != 1:
            raise InitcliError(f"{self.source}: {key!r} is not a scalar string tensor")
        if entry.size > MAX_STRING_BYTES:
            raise InitcliError(f"{self.source}: {key!r} is {entry.size:,} bytes, more than initcli reads")
        buffer = bytearray(entry.size)
        self._read_into(entry, memoryview(buffer))
        # Layout: varint64 length, masked CRC-32C of the length (as uint32 or uint64), the bytes.
        length, position = read_varint(buffer, 0, self.source)
        if position + 4 + length != entry.size:
            raise InitcliError(f"{self.source}: string tensor {key!r} is malformed (length {length})")
        width = 4 if length <= 0xFFFFFFFF else 8
        crc = crc32c(length.to_bytes(width, "little"))
        stored_length_crc = bytes(buffer[position : position + 4])
        if unmask(int.from_bytes(stored_length_crc, "little")) != crc:
            raise InitcliError(f"{self.source}: string tensor {key!r}: length checksum mismatch (corrupt data file)")
        crc = crc32c(stored_length_crc, crc)
        data = bytes(buffer[position + 4 :])
        self._verify(entry, crc32c(data, crc))
        return data

    def _verify(self, entry: BundleEntry, actual: int) -> None:
        if actual != unmask(entry.masked_crc32c):
            path = shard_path(self.prefix, entry.shard_id, self.num_shards)
            raise InitcliError(f"{path}: tensor {entry.key!r}: checksum mismatch (corrupt data file)")

    def close(self) -> None:
        self._closed = True
        for handle in self._files.values():
            handle.close()
        self._files.clear()


def checkpoint_prefix(path: Path) -> Path | None:
    """The bundle prefix `path` names, if any: `ckpt` (with ckpt.index beside it) or `ckpt.index` itself."""
    if path.name.endswith(".index") and path.is_file():
        return path.with_name(path.name[: -len(".index")])
    if index_path(path).is_file():
        return path
    return None


def open_bundle(prefix: Path | str | os.PathLike[str], **options: Any) -> TensorBundle:
    """Open the tensor bundle at `prefix` (see `TensorBundle`)."""
    return TensorBundle(Path(prefix), **options)
