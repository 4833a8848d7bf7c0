"""A bounded Snappy decompressor, for the Snappy-compressed table blocks TensorFlow 1.1 wrote.

Snappy's format (google/snappy format_description.txt): a varint of the uncompressed length, then
elements, each a tag byte whose low two bits say literal (00) or copy with a 1-, 2- or 4-byte
offset (01, 10, 11) back into the output produced so far. Every length and offset is checked, and
the output never grows past the declared length, itself capped by the caller.

`cramjam` (the `fast` extra; Rust bindings of the snappy crate) decompresses when it is installed,
after the declared length has been checked here against the caller's cap, and its output length is
checked against the declaration: measured on a 2 MB block, 1,361 MB/s against 69 MB/s for the Python
loop below, 5.5 ms to import (`python -X importtime`, paid only when a Snappy block is met). Only
TensorFlow 1.1-era checkpoint indexes have Snappy blocks (index metadata, not tensor data), so the
Python loop stays as the fallback that needs no compiled extra; both are tested against each other and
against cramjam's compressor (tests/test_hostile_codecs.py).
"""

from __future__ import annotations

import os
from typing import Any

from initcli.errors import InitcliError
from initcli.readers.protowire import read_varint


def decompress(data: bytes | memoryview, *, limit: int, source: str) -> bytes:
    """Decompress one Snappy block of at most `limit` bytes uncompressed.

    Raises:
        InitcliError: a declared length over `limit`, a truncated element, an offset outside the
            output, or output that disagrees with the declared length.
    """
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    expected, position = read_varint(view, 0, source)
    if expected > limit:
        raise InitcliError(f"{source}: Snappy block declares {expected:,} bytes, more than {limit:,}")
    cramjam = _library()
    if cramjam is None:
        return python_decompress(view, expected, position, source)
    try:
        out = bytes(cramjam.snappy.decompress_raw(bytes(view)))
    except Exception as error:  # noqa: BLE001 - cramjam.DecompressionError and kin: the block is corrupt
        # The Python loop (bounded by `expected`) says what is wrong; it runs on corrupt blocks only.
        python_decompress(view, expected, position, source)
        raise InitcliError(f"{source}: corrupt Snappy block ({type(error).__name__})") from None
    if len(out) != expected:
        raise InitcliError(f"{source}: Snappy block holds {len(out):,} bytes, declares {expected:,}")
    return out


def _library() -> Any:
    """cramjam, or None when it is not installed (or INITCLI_PURE_CODECS is set, as tests do)."""
    if os.environ.get("INITCLI_PURE_CODECS"):
        return None
    try:
        import cramjam
    except ImportError:
        return None
    return cramjam


def python_decompress(view: memoryview, expected: int, position: int, source: str) -> bytes:
    """`decompress` without cramjam: the elements after the length varint (at `position`), in Python."""
    out = bytearray()
    end = len(view)
    while position < end:
        tag = view[position]
        position += 1
        kind = tag & 3
        if kind == 0:
            length = (tag >> 2) + 1
            if length > 60:
                width = length - 60
                if position + width > end:
                    raise InitcliError(f"{source}: truncated Snappy literal length")
                length = int.from_bytes(view[position : position + width], "little") + 1
                position += width
            if length > end - position:
                raise InitcliError(f"{source}: Snappy literal runs past the block")
            chunk = view[position : position + length]
            position += length
        else:
            if kind == 1:
                width, length = 1, 4 + ((tag >> 2) & 7)
            else:
                width, length = (2 if kind == 2 else 4), (tag >> 2) + 1
            if position + width > end:
                raise InitcliError(f"{source}: truncated Snappy copy")
            offset = int.from_bytes(view[position : position + width], "little")
            if kind == 1:
                offset |= (tag >> 5) << 8
            position += width
            if offset == 0 or offset > len(out):
                raise InitcliError(f"{source}: Snappy copy offset {offset} outside the output")
            start = len(out) - offset
            if offset >= length:
                chunk = memoryview(bytes(out[start : start + length]))
            else:  # the copy overlaps its own output: the last `offset` bytes repeat
                pattern = bytes(out[start:])
                chunk = memoryview((pattern * (length // offset + 1))[:length])
        if len(out) + len(chunk) > expected:
            raise InitcliError(f"{source}: Snappy block expands past its declared {expected:,} bytes")
        out += chunk
    if len(out) != expected:
        raise InitcliError(f"{source}: Snappy block holds {len(out):,} bytes, declares {expected:,}")
    return bytes(out)
