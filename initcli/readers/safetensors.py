"""safetensors files (Hugging Face's and KerasHub's exports), read from their documented format.

The format (huggingface/safetensors, README "Format"): 8 bytes, a little-endian unsigned 64-bit
header length N; N bytes of UTF-8 JSON, `{name: {"dtype": "F32", "shape": [...], "data_offsets":
[begin, end]}, ..., "__metadata__": {str: str}}` (trailing spaces allowed); then the byte buffer.
Offsets are relative to the buffer; tensors are little-endian, C-ordered, and tile the buffer
exactly (no gaps, no overlaps: the reference implementation refuses anything else, and so does this
reader). The header is parsed with the document bounds of `safety/documents.py`; every offset is
checked against the file's real size before any tensor is read. Nothing is executed or unpickled.

Rows are the tensor names, in the order of their bytes in the file; values are read when a record
is read, or streamed in chunks (a weight over the per-weight budget is streamed, never held whole:
the file's own bytes back it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from initcli.errors import InitcliError, WeightTooLargeError
from initcli.readers.h5snapshot import Limits
from initcli.readers.records import ModelFile, WeightRecord
from initcli.safety.documents import MAX_DOCUMENT_BYTES, parse_json
from initcli.safety.files import FileIdentity, pread_into, shown

MAX_HEADER_BYTES = MAX_DOCUMENT_BYTES
MAX_RANK = 64
# safetensors dtype -> (numpy name, item size). BF16 and F8 are numpy dtypes through ml_dtypes,
# imported only when such a tensor is read.
DTYPES: dict[str, tuple[str, int]] = {
    "BOOL": ("bool", 1),
    "U8": ("uint8", 1),
    "I8": ("int8", 1),
    "U16": ("uint16", 2),
    "I16": ("int16", 2),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "U32": ("uint32", 4),
    "I32": ("int32", 4),
    "F32": ("float32", 4),
    "U64": ("uint64", 8),
    "I64": ("int64", 8),
    "F64": ("float64", 8),
    "F8_E5M2": ("float8_e5m2", 1),
    "F8_E4M3": ("float8_e4m3fn", 1),
}
_ML_DTYPES = {"bfloat16", "float8_e5m2", "float8_e4m3fn"}


def numpy_dtype(name: str) -> np.dtype[Any]:
    """The little-endian numpy dtype of a dtype name from DTYPES' values."""
    if name in _ML_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name).newbyteorder("<")


class _Tensor:
    __slots__ = ("begin", "dtype", "itemsize", "name", "shape")

    def __init__(self, name: str, dtype: str, itemsize: int, shape: tuple[int, ...], begin: int) -> None:
        self.name, self.dtype, self.itemsize, self.shape, self.begin = name, dtype, itemsize, shape, begin


def parse_header(header: Any, buffer_size: int, label: str) -> tuple[list[_Tensor], dict[str, str]]:
    """The tensors a parsed header describes, in buffer order, and its `__metadata__`.

    Raises:
        InitcliError: anything but an exact tiling of the buffer by well-formed tensor entries.
    """
    if not isinstance(header, Mapping):
        raise InitcliError(f"{label}: the safetensors header is not a JSON object")
    metadata: dict[str, str] = {}
    tensors: list[tuple[int, int, _Tensor]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, Mapping) or not all(isinstance(v, str) for v in entry.values()):
                raise InitcliError(f"{label}: the safetensors __metadata__ is not a map of strings")
            metadata = dict(entry)
            continue
        where = f"{label}: safetensors tensor {shown(name)}"
        if not isinstance(entry, Mapping):
            raise InitcliError(f"{where} is not described by an object")
        dtype = entry.get("dtype")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise InitcliError(f"{where} has dtype {shown(dtype)}, which initcli does not read")
        shape = entry.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_RANK
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 62 for d in shape)
        ):
            raise InitcliError(f"{where} has shape {shown(shape)}, not a list of sizes")
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise InitcliError(f"{where} has data_offsets {shown(offsets)}, not [begin, end]")
        begin, end = offsets
        numpy_name, itemsize = DTYPES[dtype]
        if math.prod(shape) * itemsize != end - begin:
            needed = math.prod(shape) * itemsize
            raise InitcliError(f"{where}: {dtype}{shape} needs {needed} bytes, its offsets hold {end - begin}")
        if end > buffer_size:
            raise InitcliError(f"{where} ends at byte {end} of a {buffer_size}-byte data buffer (truncated?)")
        tensors.append((begin, end, _Tensor(name, numpy_name, itemsize, tuple(shape), begin)))
    tensors.sort(key=lambda t: (t[0], t[1]))
    position = 0
    for begin, end, tensor in tensors:
        if begin != position:
            problem = "overlaps the tensor before it" if begin < position else f"leaves bytes {position}-{begin} unused"
            raise InitcliError(f"{label}: safetensors tensor {shown(tensor.name)} {problem}")
        position = end
    if position != buffer_size:
        raise InitcliError(f"{label}: the safetensors tensors cover {position} of the {buffer_size} data bytes")
    return [tensor for _, _, tensor in tensors], metadata


def _split(name: str) -> tuple[str, str]:
    """(layer, weight) of a tensor name: `a/b/kernel` or `model.layers.0.mlp.weight`."""
    for separator in ("/", "."):
        if separator in name:
            layer, weight = name.rsplit(separator, 1)
            return layer, weight
    return name, name


class _Reader:
    def __init__(self, fd: int, identity: FileIdentity, data_start: int, label: str, limits: Limits) -> None:
        self.fd, self.identity, self.data_start, self.label, self.limits = fd, identity, data_start, label, limits

    def record(self, tensor: _Tensor) -> WeightRecord:
        layer, weight = _split(tensor.name)
        return WeightRecord(
            path=tensor.name,
            layer=layer,
            layer_class=None,
            weight=weight,
            shape=tensor.shape,
            dtype=tensor.dtype,
            read=lambda: self.read(tensor),
            read_chunks=lambda elements: self.chunks(tensor, elements),
        )

    def _unchanged(self) -> None:
        if FileIdentity.of(self.fd) != self.identity:
            raise InitcliError(f"{self.label}: the file changed while it was being read")

    def read(self, tensor: _Tensor) -> np.ndarray:
        nbytes = math.prod(tensor.shape) * tensor.itemsize
        if nbytes > self.limits.max_weight_bytes:
            raise WeightTooLargeError(
                f"{self.label}: tensor {shown(tensor.name)} is {nbytes:,} bytes, over the "
                f"{self.limits.max_weight_bytes:,}-byte budget for one weight held whole",
                weight=tensor.name,
                nbytes=nbytes,
                budget=self.limits.max_weight_bytes,
            )
        dtype = numpy_dtype(tensor.dtype)
        buffer = np.empty(nbytes, dtype=np.uint8)
        if nbytes:
            pread_into(self.fd, buffer, self.data_start + tensor.begin, self.label)
        self._unchanged()
        return buffer.view(dtype).reshape(tensor.shape).astype(dtype.newbyteorder("="), copy=False)

    def chunks(self, tensor: _Tensor, elements: int) -> Iterator[np.ndarray]:
        """The flattened values, `elements` at a time, read into one reused buffer."""
        dtype = numpy_dtype(tensor.dtype)
        count = math.prod(tensor.shape)
        elements = max(1, min(elements, count))
        buffer = np.empty(elements * tensor.itemsize, dtype=np.uint8)
        native = dtype.newbyteorder("=")
        for start in range(0, count, elements):
            size = min(elements, count - start)
            piece = buffer[: size * tensor.itemsize]
            pread_into(self.fd, piece, self.data_start + tensor.begin + start * tensor.itemsize, self.label)
            values = piece.view(dtype)
            yield values if dtype == native else values.byteswap().view(native)
        self._unchanged()


def open_safetensors(label: str, fd: int, identity: FileIdentity, limits: Limits) -> ModelFile:
    """Read the header of a safetensors file open at `fd` (the caller closes `fd`).

    Raises:
        InitcliError: a header longer than the file or the budget, not JSON, or not an exact
            description of the file's data.
    """
    head = os.pread(fd, 8, 0)
    if len(head) < 8:
        raise InitcliError(f"{label}: too short for a safetensors file")
    length = int.from_bytes(head, "little")
    if length > identity.size - 8:
        raise InitcliError(f"{label}: the safetensors header claims {length:,} bytes, more than the file holds")
    if length > MAX_HEADER_BYTES:
        raise InitcliError(
            f"{label}: a {length:,}-byte safetensors header, more than the {MAX_HEADER_BYTES:,} initcli reads"
        )
    text = os.pread(fd, length, 8)
    if len(text) != length:
        raise InitcliError(f"{label}: the file ends inside its safetensors header (truncated?)")
    header = parse_json(text.rstrip(b" "), f"{label}: safetensors header", MAX_HEADER_BYTES)
    tensors, metadata = parse_header(header, identity.size - 8 - length, label)
    reader = _Reader(fd, identity, 8 + length, label, limits)
    notes = ["safetensors: tensor names as rows; no initializer information; fans and statistics only"]
    if metadata.get("format"):
        notes.append(f"safetensors metadata: format {shown(metadata['format'])}")

    def records() -> Iterator[WeightRecord]:
        return (reader.record(tensor) for tensor in tensors)

    return ModelFile(label, "safetensors", None, records, lambda: None, notes)
