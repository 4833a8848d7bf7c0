"""Keras 3 sharded weights: a `.weights.json` index and the `*.weights.h5` shards beside it.

`model.save_weights("m.weights.json", max_shard_size=GB)` (keras/src/saving/saving_lib.py,
`ShardedH5IOStore`) writes `{"metadata": {"total_size": bytes}, "weight_map": {"/layers/dense/vars":
["m_00000.weights.h5", ...], ...}}` and shards `m_00000.weights.h5`, `m_00001.weights.h5`, ... Each
shard is an ordinary Keras weights tree (`layers/<path>/vars/0, 1, ...`) holding some of the layers;
a layer whose variables straddle a shard boundary has its `vars` group in both, with variables
`0..k` in one and `k+1..` in the next (and its `name` attribute only in the first).

Each shard is opened as a regular file inside the index's folder and the structures of all of them
walked by one isolated HDF5 worker (`h5snapshot.snapshot_all`, the walk of a single `.weights.h5`);
the trees are merged, and each weight is read from its own shard only when its record is read.
Shard names must be plain file names beside the index (no `/`, `\\`, NUL, leading dot, or lone
surrogate), at most MAX_SHARDS of them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from initcli.errors import InitcliError
from initcli.readers.h5snapshot import H5Dataset, H5Group, H5Source, Limits, snapshot_all
from initcli.readers.h5tree import TreeWalker, tree_era
from initcli.readers.records import ModelFile
from initcli.safety.documents import MAX_DOCUMENT_BYTES, parse_json
from initcli.safety.files import FileIdentity, open_inside, read_regular, shown

MAX_SHARDS = 10_000
INDEX_SUFFIX = ".weights.json"


def is_sharded_index(path: Path) -> bool:
    """Whether `path` names a sharded-weights index (by name: Keras's save_weights requires `.weights.json`)."""
    return path.name.endswith(INDEX_SUFFIX)


def shard_names(index: Any, label: str) -> list[str]:
    """The shard file names an index lists, in the order Keras wrote them; the index checked.

    Raises:
        InitcliError: not a sharded-weights index, or one naming files that are not plain shard names.
    """
    if not isinstance(index, Mapping) or not isinstance(index.get("weight_map"), Mapping):
        raise InitcliError(f"{label}: not a Keras sharded-weights index (no weight_map)")
    names: dict[str, None] = {}
    for key, value in index["weight_map"].items():
        if not isinstance(key, str) or not key.startswith("/"):
            raise InitcliError(f"{label}: weight_map key {shown(key)} is not an HDF5 group path")
        files = value if isinstance(value, list) else [value]
        if not files:
            raise InitcliError(f"{label}: weight_map entry {shown(key)} names no shard")
        for name in files:
            if not isinstance(name, str) or not _plain_shard_name(name):
                where = f"{label}: weight_map entry {shown(key)}"
                raise InitcliError(f"{where} names {shown(name)}, not a .weights.h5 file beside the index")
            names[name] = None
            if len(names) > MAX_SHARDS:
                raise InitcliError(f"{label}: the index names more than {MAX_SHARDS} shards")
    if not names:
        raise InitcliError(f"{label}: the index names no shard")
    # `{base}_{i:05}.weights.h5` sort in the order they were written; the walk orders variables itself.
    return sorted(names)


def _plain_shard_name(name: str) -> bool:
    return (
        name.endswith(".weights.h5")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and not name.startswith(".")
        and _encodable(name)
    )


def _encodable(name: str) -> bool:
    """Whether the OS can be asked for a file of this name (JSON's `"\\ud800"` is a lone surrogate: no)."""
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        return False
    return True


def merge_trees(roots: list[H5Group], label: str) -> H5Group:
    """One weights tree from the shards' trees: groups united, each dataset from the one shard that holds it.

    Raises:
        InitcliError: a dataset held by two shards, a name that is a group in one shard and a
            dataset in another, or an attribute two shards give different values.
    """
    merged = H5Group(name="/", address=0, attrs={}, children={})
    for root in roots:
        _merge_into(merged, root, label)
    return merged


def _merge_into(target: H5Group, group: H5Group, label: str) -> None:
    for key, value in group.attrs.items():
        if key in target.attrs and not _same(target.attrs[key], value):
            raise InitcliError(f"{label}: the shards disagree on attribute {shown(key)} of {shown(group.name)}")
        target.attrs.setdefault(key, value)
    for key, child in group.children.items():
        present = target.children.get(key)
        if isinstance(child, H5Dataset):
            if present is not None:
                raise InitcliError(f"{label}: {shown(child.name)} is in more than one shard")
            target.children[key] = child
            continue
        if present is None:
            present = target.children[key] = H5Group(name=child.name, address=child.address, attrs={}, children={})
        elif not isinstance(present, H5Group):
            raise InitcliError(f"{label}: {shown(child.name)} is a dataset in one shard and a group in another")
        _merge_into(present, child, label)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def open_sharded(path: Path, limits: Limits, config: Mapping[str, Any] | None = None) -> ModelFile:
    """Open a Keras 3 sharded-weights index and every shard it names.

    Raises:
        InitcliError: an unreadable or hostile index, a missing or unreadable shard.
    """
    label = str(path)
    index = parse_json(read_regular(path, MAX_DOCUMENT_BYTES, "sharded-weights index"), label)
    names = shard_names(index, label)
    descriptors: list[int] = []
    sources: list[H5Source] = []
    try:
        for name in names:
            shard = path.with_name(name)
            try:
                fd = open_inside(shard, path.parent)  # a symlink out of the index's folder is refused
            except InitcliError as error:
                raise InitcliError(f"{label}: a shard it names: {error}") from None
            descriptors.append(fd)
            identity = FileIdentity.of(fd)
            sources.append(
                H5Source(fd=fd, start=0, size=identity.size, label=str(shard), identity=identity, limits=limits)
            )
        root = merge_trees(snapshot_all(sources, label), label)
    except BaseException:
        _close(descriptors)
        raise
    era = tree_era(root, config)
    walker = TreeWalker(has_config=config is not None, era=era)
    notes = [f"Keras sharded weights: {len(names)} shard{'s' if len(names) != 1 else ''} named by {path.name}"]
    if config is None:
        notes.append("weights-only file: no initializer information; fans and statistics only")
    close: Callable[[], None] = lambda: _close(descriptors)  # noqa: E731
    return ModelFile(
        label,
        "sharded-weights",
        era.version,
        lambda: walker.walk(root, config),
        close,
        notes,
        config if era.line in ("keras3", "unknown") else None,
    )


def _close(descriptors: list[int]) -> None:
    for fd in descriptors:
        with contextlib.suppress(OSError):
            os.close(fd)
    descriptors.clear()
