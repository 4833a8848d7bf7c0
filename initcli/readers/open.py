"""Recognize and open a saved model file, treating it as untrusted input."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py

from initcli.errors import InitcliError
from initcli.readers.h5tree import TreeWalker
from initcli.readers.records import SavedModel, WeightRecord

MAX_JSON_BYTES = 64 * 1024 * 1024
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"


class _ZipMemberFile(io.RawIOBase):
    """A read-only, seekable view of a stored (uncompressed) zip member, for h5py to read in place."""

    def __init__(self, path: Path, start: int, size: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._start, self._size, self._position = start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), max(0, self._size - self._position))
        if wanted == 0:
            return 0
        self._file.seek(self._start + self._position)
        count = self._file.readinto(memoryview(buffer)[:wanted]) or 0
        self._position += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _member_data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
    if len(header) < 30 or header[:4] != _ZIP_SIGNATURE:
        raise InitcliError(f"{path}: corrupt zip member header for {info.filename}")
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_length + extra_length


def _read_json_member(archive: zipfile.ZipFile, name: str, path: Path) -> Any:
    info = archive.getinfo(name)
    if info.file_size > MAX_JSON_BYTES:
        raise InitcliError(f"{path}: {name} declares {info.file_size} bytes, more than initcli reads")
    with archive.open(info) as member:
        data = member.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise InitcliError(f"{path}: {name} is larger than it declares")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InitcliError(f"{path}: {name} is not valid JSON ({error})") from None


def _open_h5(source: Any, label: str) -> h5py.File:
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as error:
        raise InitcliError(f"{label}: not a readable HDF5 weights file ({error})") from None


def _open_keras_archive(path: Path) -> SavedModel:
    try:
        archive = zipfile.ZipFile(path)
        names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise InitcliError(f"{path}: not a valid .keras archive ({error})") from None
    for required in ("config.json", "model.weights.h5"):
        if required not in names:
            raise InitcliError(f"{path}: not a .keras archive: no {required} inside")
    file_size = path.stat().st_size
    weights_info = archive.getinfo("model.weights.h5")
    config = _read_json_member(archive, "config.json", path)
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise InitcliError(f"{path}: config.json does not describe a Keras model")
    metadata = _read_json_member(archive, "metadata.json", path) if "metadata.json" in names else {}
    notes = []
    if weights_info.compress_type == zipfile.ZIP_STORED:
        start = _member_data_offset(path, weights_info)
        if start + weights_info.file_size > file_size:
            raise InitcliError(f"{path}: model.weights.h5 extends past the end of the file (truncated?)")
        raw: Any = _ZipMemberFile(path, start, weights_info.file_size)
        source: Any = io.BufferedReader(raw, buffer_size=1 << 16)  # HDF5 metadata reads are small and scattered
    else:
        # Keras stores members uncompressed; a compressed one is read through zipfile (slower).
        if weights_info.file_size > 64 * max(weights_info.compress_size, 1):
            raise InitcliError(
                f"{path}: model.weights.h5 expands {weights_info.file_size} bytes from "
                f"{weights_info.compress_size}: refusing a likely zip bomb"
            )
        source = archive.open(weights_info)
        notes.append("model.weights.h5 is compressed inside the archive; read through zipfile")
    weights = _open_h5(source, f"{path}: model.weights.h5")
    walker = TreeWalker(has_config=True)

    def records() -> Iterator[WeightRecord]:
        return walker.walk(weights, config)

    def close() -> None:
        weights.close()
        source.close()
        archive.close()

    version = metadata.get("keras_version") if isinstance(metadata, Mapping) else None
    return SavedModel(str(path), "keras", version, records, close, notes, config)


def _open_weights_h5(path: Path, weights: h5py.File) -> SavedModel:
    walker = TreeWalker(has_config=False)
    return SavedModel(
        str(path),
        "weights.h5",
        None,
        lambda: walker.walk(weights, None),
        weights.close,
        ["weights-only file: no initializer information; fans and statistics only"],
    )


def open_model(path: str | os.PathLike[str]) -> SavedModel:
    """Open a `.keras`, legacy `.h5` or `.weights.h5` file, a SavedModel directory or a TF checkpoint.

    Raises:
        InitcliError: missing, unreadable, empty, truncated, corrupt or unrecognized files.
    """
    path = Path(path)
    # -- TensorFlow formats (readers/tfmodel.py): SavedModel directories and TF checkpoints (a prefix such
    # as `ckpt` names no file itself, so this comes before the existence check).
    from initcli.readers.tfmodel import open_tensorflow, unsupported_format

    opened = open_tensorflow(path)
    if opened is not None:
        return opened
    # -- end TensorFlow formats
    if not path.exists():
        raise InitcliError(f"{path}: no such file")
    if path.is_dir():
        raise InitcliError(f"{path}: is a directory, not a model file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise InitcliError(f"{path}: cannot read ({error.strerror})") from None
    if not head:
        raise InitcliError(f"{path}: empty file")
    # -- formats initcli names but does not read (ONNX, TFLite, PyTorch, frozen graphs): readers/tfmodel.py
    unsupported = unsupported_format(path)
    if unsupported is not None:
        raise InitcliError(f"{path}: {unsupported}")
    # -- end unsupported formats
    if head.startswith(_ZIP_SIGNATURE):
        return _open_keras_archive(path)
    if head == _HDF5_SIGNATURE:
        weights = _open_h5(path, str(path))
        if "model_config" in weights.attrs or "model_weights" in weights:
            from initcli.readers.legacy import open_legacy_h5

            return open_legacy_h5(path, weights)
        if "layers" in weights or "vars" in weights:
            return _open_weights_h5(path, weights)
        weights.close()
        raise InitcliError(f"{path}: an HDF5 file, but not a Keras model or weights file")
    raise InitcliError(f"{path}: not a Keras model file (expected a .keras archive or an HDF5 file)")
