"""Which kind of model a path holds, judged cheaply, so that only the reader it needs is imported.

`looks_like_safetensors` and `tensorflow_path` say whether a file is safetensors, and whether a path
is a SavedModel directory or a TF checkpoint (the readers, `safetensors`, `tfmodel`/`tfbundle`, are
imported only then); `unsupported_format` names model files initcli does not read (ONNX, TFLite,
PyTorch pickles, frozen graphs) from their first bytes.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from initcli.errors import InitcliError
from initcli.readers.protowire import parse_message

_DATA_SHARD = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")


def _index_path(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


def _checkpoint_state_names_one(path: Path) -> bool:
    """A directory's `checkpoint` state file names a checkpoint beside it (as `tfmodel` reads it)."""
    state = path / "checkpoint"
    try:
        if not state.is_file() or state.stat().st_size > 1 << 20:
            return False
        text = state.read_text("utf-8", "replace")
    except OSError:
        return False
    match = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', text, re.MULTILINE)
    return match is not None and (path / f"{Path(match[1]).name}.index").is_file()


def looks_like_safetensors(head: bytes, size: int, name: str) -> bool:
    """Whether a file is safetensors: by its name, or by its first bytes (at least 9), a little-endian
    header length the file can hold, then `{` (for a misnamed file the reader then says what is wrong)."""
    if name.endswith(".safetensors"):
        return len(head) >= 8
    return len(head) >= 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= size - 8


def tensorflow_path(path: Path) -> bool:
    """Whether `tfmodel.open_tensorflow` would take `path`: a SavedModel directory, a SavedModel's
    `variables` directory, a directory whose `checkpoint` file names a checkpoint, a checkpoint prefix,
    its `.index` or one of its data shards."""
    if path.is_dir():
        return (
            (path / "saved_model.pb").is_file()
            or (path / f"{path.name}.index").is_file()
            or _checkpoint_state_names_one(path)
        )
    if path.name.endswith(".index") and path.is_file():
        return True
    return _index_path(path).is_file() or bool(_DATA_SHARD.match(path.name) and path.is_file())


_READS = (
    "initcli reads Keras models (.keras, .h5, .weights.h5, .weights.json, SavedModel directories, TF checkpoints,"
    " KerasHub presets) and safetensors files"
)


def unsupported_format(path: Path) -> str | None:
    """What a model file initcli cannot read is, and what to do, judged by its bytes; None if unknown.

    HDF5 files and zip archives other than PyTorch's are left to the Keras readers (None).
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return None
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return None
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return f"a TensorFlow Lite flatbuffer; {_READS}: inspect the Keras model it was converted from"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return None
        if any(name.endswith("data.pkl") for name in names):
            return f"a PyTorch checkpoint (zip with data.pkl); {_READS}"
        return None
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return f"a Python pickle (a PyTorch .pt/.pth file?); {_READS}, and never unpickles files"
    return _protobuf_kind(path, head)


def _protobuf_kind(path: Path, head: bytes) -> str | None:
    """Name ONNX models, SavedModel protos and frozen GraphDefs from their first fields."""
    if path.name == "saved_model.pb":
        return f"the graph file of a SavedModel: pass its directory ({path.parent}) instead"
    if not head:
        return None
    try:
        fields = parse_message(head, str(path)).fields
    except InitcliError:
        fields = _leading_fields(head)
    if head[:1] == b"\x08" and 1 in fields and isinstance(fields[1][0], int) and fields[1][0] < 64 and 2 in fields:
        producer = fields[2][0]
        if isinstance(producer, memoryview) and producer.tobytes().isascii() and len(producer) < 64:
            return f"an ONNX model; {_READS}: inspect the Keras model it was exported from"
    if path.suffix == ".pb" and head[:1] == b"\x0a":
        return (
            f"a TensorFlow GraphDef (a frozen graph holds constants, not variables); {_READS}: "
            "inspect the SavedModel directory or checkpoint it was frozen from"
        )
    if path.suffix == ".onnx":
        return f"an ONNX model; {_READS}"
    return None


def _leading_fields(head: bytes) -> dict[int, list[Any]]:
    """The complete fields at the start of a truncated protobuf `head`."""
    fields: dict[int, list[Any]] = {}
    for end in range(len(head), 0, -1):
        try:
            return parse_message(head[:end], "head").fields
        except InitcliError:
            continue
    return fields
