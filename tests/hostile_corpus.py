"""Hostile and broken model files, generated at test time from the example models (nothing committed).

Each case is `Case(name, build, expect)`: `build(directory)` writes the file and returns its path;
`expect` is a fragment of the one-line error initcli must give (exit 1), or None when the file is
valid and must be read (exit 0).
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    expect: str | None


def _weights_file(directory: Path, name: str, edit: Callable[[h5py.File], None]) -> Path:
    path = directory / name
    path.write_bytes((MODELS / "cnn.weights.h5").read_bytes())
    with h5py.File(path, "r+") as handle:
        edit(handle)
    return path


def _legacy_file(directory: Path, name: str, edit: Callable[[h5py.File], None]) -> Path:
    path = directory / name
    path.write_bytes((MODELS / "cnn.h5").read_bytes())
    with h5py.File(path, "r+") as handle:
        edit(handle)
    return path


def _archive(
    directory: Path,
    name: str,
    replace: dict[str, bytes] | None = None,
    compress: tuple[str, ...] = (),
    edit_weights: Callable[[h5py.File], None] | None = None,
) -> Path:
    """cnn.keras rewritten with members replaced, deflated, or its weights edited."""
    replace = dict(replace or {})
    with zipfile.ZipFile(MODELS / "cnn.keras") as original:
        members = {info.filename: original.read(info.filename) for info in original.infolist()}
    if edit_weights is not None:
        scratch = directory / f"{name}.weights.h5"
        scratch.write_bytes(members["model.weights.h5"])
        with h5py.File(scratch, "r+") as handle:
            edit_weights(handle)
        replace["model.weights.h5"] = scratch.read_bytes()
        scratch.unlink()
    members.update(replace)
    path = directory / name
    with zipfile.ZipFile(path, "w") as out:
        for member, data in members.items():
            method = zipfile.ZIP_DEFLATED if member in compress else zipfile.ZIP_STORED
            out.writestr(zipfile.ZipInfo(member, (2024, 1, 1, 0, 0, 0)), data, compress_type=method)
    return path


def _patch_central(path: Path, member: str, edit: Callable[[bytearray, int], None]) -> Path:
    """Edit the central-directory entry of `member` (edit(data, entry_offset))."""
    data = bytearray(path.read_bytes())
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        name_length, extra_length, comment_length = struct.unpack("<HHH", data[position + 28 : position + 34])
        if data[position + 46 : position + 46 + name_length] == member.encode():
            edit(data, position)
            path.write_bytes(bytes(data))
            return path
        position = data.find(b"PK\x01\x02", position + 46 + name_length + extra_length + comment_length)
    raise AssertionError(f"{member} not in {path}")


def _replace_dataset(path: str, make: Callable[[h5py.File, str], None]) -> Callable[[h5py.File], None]:
    def edit(handle: h5py.File) -> None:
        del handle[path]
        make(handle, path)

    return edit


def flipped_weights(directory: Path) -> Path:
    """The red team's hang: one byte at offset 2280 of cnn.weights.h5 (0x18 -> 0xEB)."""
    data = bytearray((MODELS / "cnn.weights.h5").read_bytes())
    assert data[2280] == 0x18
    data[2280] = 0xEB
    path = directory / "flipped.weights.h5"
    path.write_bytes(bytes(data))
    return path


def hard_link_lattice(directory: Path) -> Path:
    """60 levels of groups, each linked twice from the level above: 2**60 paths, 60 objects."""
    path = directory / "lattice.weights.h5"
    with h5py.File(path, "w") as handle:
        levels = [handle.create_group(f"level{i}") for i in range(60)]
        for upper, lower in zip(levels, levels[1:]):
            upper["a"] = lower
            upper["b"] = lower
        handle["layers"] = levels[0]
    return path


def hard_link_cycle(directory: Path) -> Path:
    def edit(handle: h5py.File) -> None:
        handle["layers/dense/loop"] = handle["layers"]

    return _weights_file(directory, "cycle.weights.h5", edit)


def deep_groups(directory: Path) -> Path:
    path = directory / "deep.weights.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layers")
        for i in range(80):
            group = group.create_group(f"g{i}")
    return path


def fifo(directory: Path) -> Path:
    path = directory / "pipe.keras"
    os.mkfifo(path)
    return path


def _json_member(text: bytes) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        return _archive(directory, "json.keras", {"config.json": text}, compress=("config.json",))

    return build


def _config_edit(change: Callable[[dict], None], name: str) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        with zipfile.ZipFile(MODELS / "cnn.keras") as original:
            config = json.loads(original.read("config.json"))
        change(config)
        return _archive(directory, name, {"config.json": json.dumps(config).encode()})

    return build


def _set(path: tuple, value: object) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def bad_crc(member: str) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        path = _archive(directory, f"crc-{member}.keras")

        def edit(data: bytearray, at: int) -> None:
            data[at + 16 : at + 20] = bytes(b ^ 0xFF for b in data[at + 16 : at + 20])

        return _patch_central(path, member, edit)

    return build


def encrypted(directory: Path) -> Path:
    path = _archive(directory, "encrypted.keras")

    def edit(data: bytearray, at: int) -> None:
        data[at + 8] |= 0x01

    return _patch_central(path, "config.json", edit)


def unsupported_method(directory: Path) -> Path:
    path = _archive(directory, "bzip2.keras")

    def edit(data: bytearray, at: int) -> None:
        data[at + 10 : at + 12] = (12).to_bytes(2, "little")

    return _patch_central(path, "config.json", edit)


def corrupt_directory(directory: Path) -> Path:
    path = _archive(directory, "directory.keras")

    def edit(data: bytearray, at: int) -> None:
        data[at : at + 4] = b"XXXX"

    return _patch_central(path, "config.json", edit)


def compressed_weights(directory: Path) -> Path:
    return _archive(directory, "deflated.keras", compress=("model.weights.h5", "config.json", "metadata.json"))


def sparse_chunked(directory: Path) -> Path:
    """A 16000x16000 float32 (1 GB) chunked dataset whose chunks were never written."""
    return _weights_file(
        directory,
        "sparse.weights.h5",
        _replace_dataset(
            "layers/dense/vars/0",
            lambda handle, path: handle.create_dataset(path, shape=(16000, 16000), dtype="f4", chunks=(1000, 1000)),
        ),
    )


def huge_declared(directory: Path) -> Path:
    """The red team's 27000x27000 chunked dataset, never written (2.9 GB declared)."""
    return _weights_file(
        directory,
        "huge.weights.h5",
        _replace_dataset(
            "layers/dense/vars/0",
            lambda handle, path: handle.create_dataset(path, shape=(27000, 27000), dtype="f4", chunks=(1000, 1000)),
        ),
    )


def contiguous_unwritten(directory: Path) -> Path:
    return _weights_file(
        directory,
        "unwritten.weights.h5",
        _replace_dataset(
            "layers/dense/vars/0", lambda handle, path: handle.create_dataset(path, shape=(8000, 8000), dtype="f4")
        ),
    )


def legacy_repeated(directory: Path) -> Path:
    def edit(handle: h5py.File) -> None:
        group = handle["model_weights/dense"]
        group.attrs["weight_names"] = np.array([b"dense/kernel"] * 1000)

    return _legacy_file(directory, "repeated.h5", edit)


def legacy_two_names(directory: Path) -> Path:
    def edit(handle: h5py.File) -> None:
        group = handle["model_weights/dense"]
        group["dense/kernel_again"] = group["dense/kernel"]
        group.attrs["weight_names"] = np.array([b"dense/kernel", b"dense/kernel_again"])

    return _legacy_file(directory, "two-names.h5", edit)


def legacy_link_component(kind: str) -> Callable[[Path], Path]:
    """`evil/kernel:0` in weight_names where `evil` is a soft or external link (the last part is plain)."""

    def build(directory: Path) -> Path:
        other = directory / "other.h5"
        with h5py.File(other, "w") as handle:
            handle.create_dataset("secret/kernel:0", data=np.full((3, 4), 7.0, dtype="f4"))

        def edit(handle: h5py.File) -> None:
            group = handle["model_weights/dense"]
            if kind == "external":
                group["evil"] = h5py.ExternalLink(str(other), "/secret")
            else:
                group["evil"] = h5py.SoftLink("/model_weights/dense/dense")
            group.attrs["weight_names"] = np.array([b"evil/kernel:0"])

        return _legacy_file(directory, f"{kind}-component.h5", edit)

    return build


def weights_link(kind: str) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        def edit(handle: h5py.File) -> None:
            del handle["layers/dense/vars/0"]
            if kind == "external":
                handle["layers/dense/vars/0"] = h5py.ExternalLink(str(MODELS / "cnn.h5"), "/model_weights/dense")
            else:
                handle["layers/dense/vars/0"] = h5py.SoftLink("/layers/conv2d/vars/0")

        return _weights_file(directory, f"{kind}.weights.h5", edit)

    return build


def keras_soft_link(directory: Path) -> Path:
    def edit(handle: h5py.File) -> None:
        handle["layers/evil"] = h5py.SoftLink("/layers/dense")

    return _archive(directory, "soft.keras", edit_weights=edit)


def external_dataset(directory: Path) -> Path:
    target = directory / "outside.bin"
    target.write_bytes(np.zeros(64, dtype="f4").tobytes())

    def edit(handle: h5py.File) -> None:
        del handle["layers/dense/vars/1"]
        handle.create_dataset("layers/dense/vars/1", shape=(16,), dtype="f4", external=[(str(target), 0, 64)])

    return _weights_file(directory, "external-dataset.weights.h5", edit)


def _typed_weight(name: str, make: Callable[[], np.ndarray], attrs: dict | None = None) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        def edit(handle: h5py.File) -> None:
            del handle["layers/dense/vars/1"]
            dataset = handle.create_dataset("layers/dense/vars/1", data=make())
            for key, value in (attrs or {}).items():
                dataset.attrs[key] = value

        return _weights_file(directory, f"{name}.weights.h5", edit)

    return build


def truncated(model: str, fraction: float) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        data = (MODELS / model).read_bytes()
        path = directory / f"truncated-{model}"
        path.write_bytes(data[: int(len(data) * fraction)])
        return path

    return build


def legacy_config(change: Callable[[dict], None], name: str) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        def edit(handle: h5py.File) -> None:
            config = json.loads(handle.attrs["model_config"])
            change(config)
            handle.attrs["model_config"] = json.dumps(config)

        return _legacy_file(directory, name, edit)

    return build


def _deep_json() -> bytes:
    return b'{"class_name": "Functional", "config": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


CASES = [
    Case("flipped_byte_hdf5_loop", flipped_weights, "HDF5 loop"),
    Case("hard_link_lattice", hard_link_lattice, "the same HDF5 object is linked"),
    Case("hard_link_cycle", hard_link_cycle, "the same HDF5 object is linked"),
    Case("deep_groups", deep_groups, "nested more than"),
    Case("fifo", fifo, "not a regular file"),
    Case("deep_json", _json_member(_deep_json()), "nested"),
    Case("big_json", _json_member(b" " * (20 * 1024 * 1024) + b"{}"), "more than initcli reads"),
    Case("many_json_elements", _json_member(b"[" + b"0," * 3_000_000 + b"0]"), "elements"),
    Case(
        "huge_json_integer", _json_member(b'{"class_name": "Functional", "x": ' + b"9" * 6000 + b"}"), "not valid JSON"
    ),
    Case("bad_crc_config", bad_crc("config.json"), "config.json cannot be read"),
    Case("bad_crc_weights", bad_crc("model.weights.h5"), "CRC"),
    Case("encrypted_member", encrypted, "encrypted"),
    Case("unsupported_compression", unsupported_method, "compression method"),
    Case("corrupt_central_directory", corrupt_directory, "not a valid .keras archive"),
    Case("compressed_weights", compressed_weights, None),
    Case("layers_not_a_list", _config_edit(_set(("config", "layers"), "dense"), "layers.keras"), "not a list"),
    Case("config_a_string", _config_edit(_set(("config",), "oops"), "config.keras"), "not a mapping"),
    Case("layer_name_a_list", _config_edit(_set(("config", "name"), [1]), "name.keras"), "not text"),
    Case("sparse_chunked_dataset", sparse_chunked, "never written"),
    Case("declared_27000x27000", huge_declared, "more than the"),
    Case("contiguous_never_written", contiguous_unwritten, "never written"),
    Case("legacy_weight_listed_1000_times", legacy_repeated, "twice"),
    Case("legacy_weight_under_two_names", legacy_two_names, "the same HDF5 object is linked"),
    Case("legacy_external_link_component", legacy_link_component("external"), "ExternalLink"),
    Case("legacy_soft_link_component", legacy_link_component("soft"), "SoftLink"),
    Case("weights_external_link", weights_link("external"), "ExternalLink"),
    Case("weights_soft_link", weights_link("soft"), "SoftLink"),
    Case("keras_soft_link", keras_soft_link, "SoftLink"),
    Case("external_dataset", external_dataset, "outside the file"),
    Case(
        "compound_weight",
        _typed_weight("compound", lambda: np.zeros(16, dtype=[("a", "f4"), ("b", "i4")])),
        "compound",
    ),
    Case("string_weight", _typed_weight("string", lambda: np.array([b"abc"] * 16)), "string"),
    Case("complex_weight", _typed_weight("complex", lambda: np.zeros(16, dtype="c8")), "complex"),
    Case("bool_weight", _typed_weight("bool", lambda: np.zeros(16, dtype=bool)), "enum"),
    Case("opaque_weight", _typed_weight("opaque", lambda: np.zeros(16, dtype="V2")), "opaque"),
    Case("big_endian_weight", _typed_weight("big-endian", lambda: np.zeros(16, dtype=">f4")), None),
    Case("int_weight", _typed_weight("int", lambda: np.arange(16, dtype="i8")), None),
    Case(
        "legacy_layers_not_a_list",
        legacy_config(_set(("config", "layers"), {"a": 1}), "legacy-layers.h5"),
        "not a list",
    ),
    Case("legacy_config_a_string", legacy_config(_set(("config",), "x"), "legacy-config.h5"), "not a mapping"),
    Case("truncated_keras", truncated("cnn.keras", 0.5), "not a valid .keras archive"),
    Case("truncated_h5", truncated("cnn.h5", 0.5), "not a readable HDF5"),
    Case("truncated_weights_h5", truncated("cnn.weights.h5", 0.9), "not a readable HDF5"),
]
