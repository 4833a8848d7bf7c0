"""Recognize and open a saved model file, treating it as untrusted input."""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from initcli.errors import BadInputError, InitcliError
from initcli.keras.eras import era_of
from initcli.parallel.fanout import worker_count
from initcli.readers.configcheck import check_model_config
from initcli.readers.detect import looks_like_safetensors, tensorflow_path, unsupported_format
from initcli.readers.h5snapshot import H5Group, H5Source, Limits, snapshot
from initcli.readers.h5tree import TreeWalker, tree_era
from initcli.readers.records import ModelFile, WeightRecord
from initcli.readers.worker import Isolated
from initcli.safety import budget
from initcli.safety.documents import MAX_DOCUMENT_BYTES, parse_json
from initcli.safety.files import FileIdentity, open_regular, shown

MAX_JSON_BYTES = MAX_DOCUMENT_BYTES
MAX_ARCHIVE_MEMBERS = 10_000
MAX_CENTRAL_DIRECTORY_BYTES = 16 * 1024 * 1024
MAX_INFLATE_RATIO = 64
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_PIECE = 16 * 1024 * 1024


def _pread(fd: int, size: int, offset: int) -> bytes:
    return os.pread(fd, size, offset) if offset >= 0 else b""


def _check_directory_size(fd: int, file_size: int, label: str) -> None:
    """Refuse archives whose central directory lists too many members before zipfile reads it all."""
    tail_start = max(0, file_size - (65535 + 22))
    tail = _pread(fd, file_size - tail_start, tail_start)
    position = tail.rfind(_END_OF_DIRECTORY)
    if position < 0 or position + 22 > len(tail):
        raise InitcliError(f"{label}: not a valid .keras archive (no zip end-of-directory record)")
    entries = int.from_bytes(tail[position + 10 : position + 12], "little")
    directory = int.from_bytes(tail[position + 12 : position + 16], "little")
    if entries == 0xFFFF or directory == 0xFFFFFFFF:
        locator = _pread(fd, 20, tail_start + position - 20)
        if len(locator) == 20 and locator[:4] == _ZIP64_LOCATOR:
            record = _pread(fd, 56, int.from_bytes(locator[8:16], "little"))
            if len(record) == 56:
                entries = int.from_bytes(record[32:40], "little")
                directory = int.from_bytes(record[40:48], "little")
    if entries > MAX_ARCHIVE_MEMBERS or directory > MAX_CENTRAL_DIRECTORY_BYTES:
        raise InitcliError(f"{label}: the archive lists {entries} members, more than a .keras file holds")


def _check_member(info: zipfile.ZipInfo, label: str) -> None:
    if info.flag_bits & 0x1:
        raise InitcliError(f"{label}: {info.filename} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InitcliError(
            f"{label}: {info.filename} uses zip compression method {info.compress_type}; "
            "initcli reads stored and deflated members"
        )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, limit: int) -> bytes:
    if info.file_size > limit:
        raise InitcliError(f"{label}: {info.filename} declares {info.file_size} bytes, more than initcli reads")
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as error:
        raise InitcliError(f"{label}: {info.filename} cannot be read ({shown(error)})") from None
    if len(data) > limit:
        raise InitcliError(f"{label}: {info.filename} is larger than it declares")
    return data


def _member_data_offset(fd: int, info: zipfile.ZipInfo, label: str) -> int:
    header = _pread(fd, 30, info.header_offset)
    if len(header) < 30 or header[:4] != _ZIP_SIGNATURE:
        raise InitcliError(f"{label}: corrupt zip member header for {info.filename}")
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    name = _pread(fd, name_length, info.header_offset + 30)
    if name != info.orig_filename.encode("utf-8") and name != info.orig_filename.encode("cp437", "replace"):
        raise InitcliError(f"{label}: zip member header names {shown(name)} instead of {info.filename}")
    if int.from_bytes(header[8:10], "little") != info.compress_type or int.from_bytes(header[6:8], "little") & 1:
        raise InitcliError(f"{label}: zip member header of {info.filename} disagrees with the directory")
    return info.header_offset + 30 + name_length + extra_length


_CRC_PIECE = 1024 * 1024


def _verify_crc(fd: int, start: int, size: int, expected: int, label: str) -> None:
    """Check the stored weights member against the zip's CRC-32 (raises InitcliError naming `label`)."""
    try:
        _crc_check(fd, start, size, expected)
    except InitcliError as error:
        raise InitcliError(f"{label}: {error}") from None


def _crc_check(fd: int, start: int, size: int, expected: int) -> None:
    # One buffer, reused: a fresh bytes object per piece made the kernel fault in new pages each
    # time, which doubled the cost of checking a 1.5 GB archive.
    buffer = memoryview(bytearray(min(_CRC_PIECE, max(size, 1))))
    crc = 0
    done = 0
    while done < size:
        count = os.preadv(fd, [buffer[: min(len(buffer), size - done)]], start + done)
        if not count:
            raise InitcliError("model.weights.h5 ends early (truncated?)")
        crc = zlib.crc32(buffer[:count], crc)
        done += count
    if crc != expected:
        raise InitcliError("model.weights.h5 fails its zip CRC check (corrupt file)")


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, limits: Limits) -> int:
    """Inflate a compressed weights member once, into a private unlinked temporary file."""
    if info.file_size > MAX_INFLATE_RATIO * max(info.compress_size, 1):
        raise InitcliError(
            f"{label}: model.weights.h5 expands {info.file_size} bytes from {info.compress_size}: "
            "refusing a likely zip bomb"
        )
    limit = min(info.file_size, 4 * limits.max_weight_bytes)
    if info.file_size > limit:
        raise InitcliError(f"{label}: model.weights.h5 declares {info.file_size} bytes, more than initcli inflates")
    import tempfile  # only compressed archives need it (it brings shutil, random, bz2 and lzma)

    handle = tempfile.TemporaryFile(prefix="initcli-")
    try:
        written = 0
        with archive.open(info) as member:
            while piece := member.read(_PIECE):
                written += len(piece)
                if written > limit:
                    raise InitcliError(f"{label}: model.weights.h5 is larger than it declares")
                handle.write(piece)
        handle.flush()
        return os.dup(handle.fileno())
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError) as error:
        raise InitcliError(f"{label}: model.weights.h5 cannot be inflated ({shown(error)})") from None
    finally:
        handle.close()


def _open_keras_archive(
    label: str, fd: int, identity: FileIdentity, limits: Limits, background_checks: bool = False
) -> ModelFile:
    _check_directory_size(fd, identity.size, label)
    handle = os.fdopen(os.dup(fd), "rb")
    try:
        archive = zipfile.ZipFile(handle)
        infos = archive.infolist()
    except Exception as error:  # noqa: BLE001 - zipfile raises many types on a corrupt directory
        handle.close()
        raise InitcliError(f"{label}: not a valid .keras archive ({shown(error)})") from None
    owned = [archive.close, handle.close]
    try:
        names = [info.filename for info in infos]
        members: dict[str, zipfile.ZipInfo] = {}
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                raise InitcliError(f"{label}: not a .keras archive: no {required} inside")
        for name in ("config.json", "metadata.json", "model.weights.h5"):
            if names.count(name) > 1:
                raise InitcliError(f"{label}: the archive holds {name} more than once")
            if name in names:
                members[name] = archive.getinfo(name)
                _check_member(members[name], label)
        config = parse_json(
            _read_member(archive, members["config.json"], label, MAX_JSON_BYTES), f"{label}: config.json"
        )
        if not isinstance(config, Mapping) or "class_name" not in config:
            raise InitcliError(f"{label}: config.json does not describe a Keras model")
        check_model_config(config, f"{label}: config.json")
        metadata: Any = {}
        if "metadata.json" in members:
            metadata = parse_json(
                _read_member(archive, members["metadata.json"], label, MAX_JSON_BYTES), f"{label}: metadata.json"
            )
        weights_info = members["model.weights.h5"]
        notes = []
        finish: Callable[[], None] = _nothing
        verify: Callable[[], None] | None
        if weights_info.compress_type == zipfile.ZIP_STORED:
            start = _member_data_offset(fd, weights_info, label)
            if weights_info.compress_size != weights_info.file_size:
                raise InitcliError(f"{label}: model.weights.h5 is stored with two different sizes")
            if start + weights_info.file_size > identity.size:
                raise InitcliError(f"{label}: model.weights.h5 extends past the end of the file (truncated?)")
            source = H5Source(
                fd=fd, start=start, size=weights_info.file_size, label=label, identity=identity, limits=limits
            )
            size, crc = weights_info.file_size, weights_info.CRC
            integrity = _background_crc(fd, start, size, crc, label) if background_checks else None
            if integrity is not None:
                # Checked by a child process while the weights are measured; `finish` waits for it.
                owned.append(integrity.cancel)
                finish = integrity.wait
                verify = None
            else:

                def verify() -> None:
                    _verify_crc(fd, start, size, crc, label)

        else:
            inflated = _inflate(archive, weights_info, label, limits)
            owned.append(lambda: os.close(inflated))
            source = H5Source(
                fd=inflated,
                start=0,
                size=weights_info.file_size,
                label=label,
                identity=FileIdentity.of(inflated),
                limits=limits,
            )
            notes.append("model.weights.h5 is compressed inside the archive; inflated once to a private file")
            verify = None
        try:
            root = _windows_paths(_checked_snapshot(source, "model.weights.h5", verify), label)
        except InitcliError:
            finish()  # a failed CRC check explains a broken structure best
            raise
    except BaseException:
        _close_all(owned)
        raise
    version = metadata.get("keras_version") if isinstance(metadata, Mapping) else None
    walker = TreeWalker(has_config=True, era=era_of(version))

    def records() -> Iterator[WeightRecord]:
        return walker.walk(root, config)

    return ModelFile(
        label,
        "keras",
        version if isinstance(version, str) else None,
        records,
        lambda: _close_all(owned),
        notes,
        config,
        finish=finish,
    )


def _nothing() -> None:
    pass


def _background_crc(fd: int, start: int, size: int, crc: int, label: str) -> Isolated | None:
    """The CRC check started in a child process, or None where none may or can be forked.

    INITCLI_WORKERS=1 (and TensorFlow in this process) means no fork; a full process table
    (ulimit -u) is no reason to refuse a good file: the caller then checks in this process.
    """
    if worker_count() <= 1:
        return None
    try:
        return Isolated(
            lambda: _crc_check(fd, start, size, crc),
            timeout=_BACKGROUND_SECONDS,
            memory=_BACKGROUND_MEMORY,
            label=label,
            what="checking the zip CRC of model.weights.h5",
            runs_hdf5=False,
        )
    except OSError:
        return None


# A CRC check in the background has no time limit of its own (a large archive on a slow disk takes
# what it takes; Ctrl-C and the parent's exit stop it) and needs only its read buffer.
_BACKGROUND_SECONDS = 7 * 24 * 3600.0
_BACKGROUND_MEMORY = 256 * 1024 * 1024


def _checked_snapshot(source: H5Source, what: str, meanwhile: Callable[[], None] | None = None) -> H5Group:
    try:
        return snapshot(source, meanwhile)
    except InitcliError as error:
        text = str(error)
        if what != "HDF5" and text.startswith(f"{source.label}: not a readable HDF5 file"):
            text = text.replace("not a readable HDF5 file", f"{what}: not a readable HDF5 weights file", 1)
            raise InitcliError(text) from None
        raise


def _windows_paths(root: H5Group, label: str) -> H5Group:
    """A weights tree saved on Windows by tf_keras, nested as it is everywhere else.

    tf_keras joins a layer's group path with the platform's separator (`tf.io.gfile.join`), so on
    Windows `layers/dense` is one root-level group named `layers\\dense`, which tf_keras itself cannot
    load on another platform; Keras 3 replaces the backslashes before it writes. A root-level name
    is never a layer's own name, so its backslashes are path separators: they are split here into
    the groups a Linux tf_keras writes. Other trees are returned unchanged.

    Raises:
        InitcliError: a split name with an empty, `.` or `..` part, or one that lands on a name
            another group already has.
    """
    if not any("\\" in key for key in root.children):
        return root
    nested = H5Group(name=root.name, address=root.address, attrs=root.attrs, children={})
    # Shallow paths first, so that `layers\\functional` is in place before `layers\\functional\\layers\\dense`.
    for key, child in sorted(root.children.items(), key=lambda item: item[0].count("\\")):
        parts = key.split("\\")
        if any(part in ("", ".", "..") for part in parts):
            raise InitcliError(f"{label}: malformed weights file: group {shown(key)} names no path")
        node = nested
        for depth, part in enumerate(parts[:-1], 1):
            inner = node.children.get(part)
            if inner is None:
                inner = node.children[part] = H5Group(
                    name="/" + "/".join(parts[:depth]), address=0, attrs={}, children={}
                )
            if not isinstance(inner, H5Group):
                raise InitcliError(f"{label}: malformed weights file: {shown(key)} runs through a dataset")
            node = inner
        if parts[-1] in node.children:
            raise InitcliError(f"{label}: malformed weights file: {shown(key)} is there twice")
        if isinstance(child, H5Group):
            child = H5Group(
                name="/" + "/".join(parts), address=child.address, attrs=child.attrs, children=child.children
            )
        node.children[parts[-1]] = child
    return nested


def _close_all(actions: list[Callable[[], None]]) -> None:
    for action in reversed(actions):
        with contextlib.suppress(OSError):
            action()
    actions.clear()


def _open_hdf5(
    label: str, fd: int, identity: FileIdentity, limits: Limits, config: Mapping[str, Any] | None = None
) -> ModelFile:
    source = H5Source(fd=fd, start=0, size=identity.size, label=label, identity=identity, limits=limits)
    root = _windows_paths(_checked_snapshot(source, "HDF5"), label)
    close = lambda: None  # noqa: E731 - the descriptor is closed by open_model's caller-facing close
    if "model_config" in root.attrs or "model_weights" in root or "layer_names" in root.attrs:
        from initcli.readers.legacy import open_legacy_h5

        return open_legacy_h5(label, root, close, config)
    if "layers" in root or "vars" in root:
        era = tree_era(root, config)
        walker = TreeWalker(has_config=config is not None, era=era)
        notes = [] if config else ["weights-only file: no initializer information; fans and statistics only"]
        return ModelFile(
            label,
            "weights.h5",
            era.version,
            lambda: walker.walk(root, config),
            close,
            notes,
            config if era.line in ("keras3", "unknown") else None,
        )
    raise InitcliError(f"{label}: an HDF5 file, but not a Keras model or weights file")


def read_model_json(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """A `model.to_json()` file (`--config`): the model config a weights-only file lacks.

    Raises:
        InitcliError: unreadable, too large, not JSON, or not a Keras model config.
    """
    label = str(Path(path))
    fd = open_regular(path)
    try:
        size = FileIdentity.of(fd).size
        if size > MAX_JSON_BYTES:
            raise InitcliError(f"{label}: {size} bytes, more than initcli reads from a model config")
        data = os.pread(fd, MAX_JSON_BYTES + 1, 0)
    except OSError as error:
        raise InitcliError(f"{label}: cannot read ({error.strerror})") from None
    finally:
        os.close(fd)
    config = parse_json(data, label)
    if not isinstance(config, Mapping) or "class_name" not in config or "config" not in config:
        raise InitcliError(f"{label}: not a Keras model config (expected the JSON of model.to_json())")
    check_model_config(config, label)
    return config


def _open_large_model(path: Path, limits: Limits, config: Mapping[str, Any] | None) -> ModelFile | None:
    """A Keras 3 sharded-weights index or a KerasHub preset directory, opened; None for other paths."""
    if path.name.endswith(".weights.json"):
        from initcli.readers.sharded import open_sharded

        return open_sharded(path, limits, config)
    if path.is_dir() and (path / "config.json").is_file():  # readers/preset.py's is_preset_directory
        from initcli.readers.preset import open_preset

        if config is not None:
            raise BadInputError(f"--config is for weights-only files; {path} is a KerasHub preset with its own")
        return open_preset(path, lambda weights: _open_model(weights, limits.timeout, limits, None, False))
    return None


DEFAULT_TIMEOUT = budget.DEFAULT_TIMEOUT
default_timeout = budget.default_timeout


def open_model(
    path: str | os.PathLike[str],
    *,
    timeout: float | None = None,
    limits: Limits | None = None,
    config: Mapping[str, Any] | None = None,
    background_checks: bool = False,
) -> ModelFile:
    """Open a `.keras`, legacy `.h5` or `.weights.h5` file by what its bytes say it is, a SavedModel
    directory or a TF checkpoint.

    The HDF5 structure is read in a worker process that is killed after `timeout` seconds; weights
    are read when a record's `read()` is called, and refused if the file changed since it was opened.

    Args:
        path: the model file (a regular file; pipes and devices are refused before they can block).
        timeout: seconds the HDF5 structure walk, and each read through HDF5, may take
            (default: `INITCLI_TIMEOUT` from the environment, else 60).
        limits: all budgets (their `timeout` is replaced by `timeout`).
        config: a model config (`read_model_json`) for a weights-only file, naming its variables
            and giving their initializers; refused for files that carry their own.
        background_checks: check a `.keras` archive's CRC in a child process while the caller reads
            the weights; the caller must then call the model's `finish()` before trusting them.

    Raises:
        BadInputError: a timeout that is not a number of seconds in (0, 86400].
        InitcliError: missing, unreadable, empty, truncated, corrupt, hostile or unrecognized files.
    """
    timeout = default_timeout() if timeout is None else budget.parse_timeout(timeout, "timeout")
    if budget.is_active():
        return _open_model(path, timeout, limits, config, background_checks)
    # A library call: this open gets a budget of its own (a command sets one for all it does).
    with budget.scope(budget.Budget(timeout=timeout)):
        return _open_model(path, timeout, limits, config, background_checks)


def _open_model(
    path: str | os.PathLike[str],
    timeout: float,
    limits: Limits | None,
    config: Mapping[str, Any] | None,
    background_checks: bool,
) -> ModelFile:
    limits = Limits(**{**(limits.__dict__ if limits else {}), "timeout": float(timeout)})
    label = str(Path(path))
    # SavedModel directories and TF checkpoints (readers/tfmodel.py): a prefix such as `ckpt` names no
    # file itself, so this comes before the regular-file check.
    large = _open_large_model(Path(path), limits, config)  # readers/sharded.py, preset.py
    if large is not None:
        return large
    # The bundle readers (and ml_dtypes for bfloat16 tensors) are imported only for such a path.
    opened = None
    if tensorflow_path(Path(path)):
        from initcli.readers.tfmodel import open_tensorflow

        opened = open_tensorflow(Path(path))
    if opened is not None:
        if config is not None:
            opened.close()
            raise BadInputError(f"--config is for weights-only HDF5 files, not {opened.format} {label}")
        return opened
    fd = open_regular(path)
    try:
        identity = FileIdentity.of(fd)
        head = os.pread(fd, 8, 0)
        if not head:
            raise InitcliError(f"{label}: empty file")
        if looks_like_safetensors(os.pread(fd, 9, 0), identity.size, label):
            if config is not None:
                raise BadInputError(f"--config is for weights-only HDF5 files, not the safetensors file {label}")
            from initcli.readers.safetensors import open_safetensors

            model = open_safetensors(label, fd, identity, limits)
        elif (unsupported := unsupported_format(Path(path))) is not None:  # ONNX, TFLite, PyTorch: named, not read
            raise InitcliError(f"{label}: {unsupported}")
        elif head.startswith(_ZIP_SIGNATURE) or head.startswith(_END_OF_DIRECTORY):
            if config is not None:
                raise BadInputError(f"--config is for weights-only files; {label} is a .keras archive with its own")
            model = _open_keras_archive(label, fd, identity, limits, background_checks)
        elif head == _HDF5_SIGNATURE:
            model = _open_hdf5(label, fd, identity, limits, config)
        elif (pointer := _git_lfs_pointer(fd, identity.size)) is not None:
            raise InitcliError(f"{label}: {pointer}")
        else:
            raise InitcliError(f"{label}: not a Keras model file (expected a .keras archive or an HDF5 file)")
    except OSError as error:
        os.close(fd)
        raise InitcliError(f"{label}: cannot read ({error.strerror})") from None
    except BaseException:
        os.close(fd)
        raise
    inner_close = model.close
    closed = False

    def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            try:
                inner_close()
            finally:
                os.close(fd)

    model.close = close
    return model


_LFS_VERSION = b"version https://git-lfs.github.com/spec/v1\n"


def _git_lfs_pointer(fd: int, size: int) -> str | None:
    """What a Git LFS pointer file (a clone without `git lfs pull`) stands for, or None if `fd` is not one.

    A pointer is a short text file (the spec caps it at 1024 bytes): the version line, then `oid sha256:...`
    and `size N`, the byte count of the object that was not fetched.
    """
    if size > 1024:
        return None
    text = os.pread(fd, 1024, 0)
    if not text.startswith(_LFS_VERSION):
        return None
    sizes = [line[5:] for line in text.split(b"\n") if line.startswith(b"size ")]
    fetched = f"{int(sizes[0]):,}-byte object" if sizes and sizes[0].isdigit() and len(sizes[0]) < 20 else "object"
    return f"a Git LFS pointer, not the model (the {fetched} was not fetched): run git lfs pull"
