"""Keras models in TensorFlow's own formats: ModelFile directories and TF checkpoints.

`model.save("dir")` (tf.keras / tf_keras) writes `dir/saved_model.pb`, `dir/variables/variables.*`
(a tensor bundle) and `dir/keras_metadata.pb`; `model.save_weights("ckpt")` and
`tf.train.Checkpoint(model=...).write("ckpt")` write only the bundle. In every case the bundle's
`_CHECKPOINTABLE_OBJECT_GRAPH` tensor (a TrackableObjectGraph) links objects by named edges
(`layer_with_weights-0`, `cell`, `kernel`) and gives each variable its Keras name (`full_name`,
e.g. `lstm/lstm_cell/kernel`). `keras_metadata.pb` (tf_keras's SavedMetadata) holds each layer's
JSON metadata (class_name, config with initializers) under its object path
(`root.layer_with_weights-0.cell`), which is walked in the object graph to find the layer that
owns each variable. Nothing here imports TensorFlow or runs anything from the files.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initcli.errors import InitcliError
from initcli.keras.eras import era_of
from initcli.readers.detect import unsupported_format
from initcli.readers.protowire import parse_message
from initcli.readers.records import ModelFile, WeightRecord
from initcli.readers.resolution import Resolution, class_of, find_by_name, mapping, resolve_slot
from initcli.readers.tfbundle import DTYPES, TensorBundle, checkpoint_prefix, index_path
from initcli.safety.budget import active
from initcli.safety.documents import parse_json
from initcli.safety.files import read_regular

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
MAX_METADATA_BYTES = 256 * 1024 * 1024
MAX_SAVED_MODEL_BYTES = 1024**3
# Edges to objects that hold variables but not model weights: optimizer state, compiled metrics,
# tf.train.Checkpoint's own counter.
_SKIPPED_EDGES = frozenset({"optimizer", "keras_api", "save_counter"})
_TF1_TRAINING_STATE = re.compile(
    r"(^|/)(global_step|beta[12]_power|Adam(_\d+)?|Momentum|RMSProp(_\d+)?|Adagrad|Adadelta(_\d+)?|Ftrl(_\d+)?"
    r"|ExponentialMovingAverage)$"
)
_DATA_SHARD = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")


@dataclass(kw_only=True)
class _Node:
    """One object of the TrackableObjectGraph."""

    children: list[tuple[str, int]] = field(default_factory=list)
    full_name: str | None = None
    checkpoint_key: str | None = None


def _name_based_graph(bundle: TensorBundle) -> list[_Node]:
    """A TF1 `tf.train.Saver` checkpoint has no object graph: its keys are the variables' names.

    Optimizer slots and training counters (`dense/kernel/Adam`, `global_step`) are left out.
    """
    root = _Node()
    nodes = [root]
    for key, entry in bundle.entries.items():
        if entry.dtype_code in DTYPES and not _TF1_TRAINING_STATE.search(key):
            root.children.append((key, len(nodes)))
            nodes.append(_Node(full_name=key, checkpoint_key=key))
    return nodes


def _object_graph(bundle: TensorBundle) -> list[_Node]:
    if OBJECT_GRAPH_KEY not in bundle.entries:
        return _name_based_graph(bundle)
    source = f"{bundle.source} ({OBJECT_GRAPH_KEY})"
    graph = parse_message(bundle.read_string(OBJECT_GRAPH_KEY), source)
    protos = graph.messages(1)
    nodes = []
    for proto in protos:
        node = _Node()
        for reference in proto.messages(1):
            child = reference.integer(1)
            if not 0 <= child < len(protos):
                raise InitcliError(f"{source}: an edge points at object {child} of {len(protos)}")
            node.children.append((reference.text(2), child))
        for attribute in proto.messages(2):
            if attribute.text(1) == "VARIABLE_VALUE":
                node.full_name = attribute.text(2)
                node.checkpoint_key = attribute.text(3)
        nodes.append(node)
    if not nodes:
        raise InitcliError(f"{source}: the object graph is empty")
    return nodes


def _walk(nodes: list[_Node], path: str, edges: dict[int, dict[str, int]]) -> int | None:
    """The node at a dotted object path (`root.layer_with_weights-0.cell`), if the graph has it.

    `edges` caches each visited node's children by name (the first edge of a name wins).
    """
    parts = path.split(".")
    if parts[0] != "root":
        return None
    current = 0
    for part in parts[1:]:
        if current not in edges:
            edges[current] = {}
            for name, child in nodes[current].children:
                edges[current].setdefault(name, child)
        found = edges[current].get(part)
        if found is None:
            return None
        current = found
    return current


def _json_metadata(text: str, source: str) -> Mapping[str, Any] | None:
    """One object's metadata, through the bounded JSON parser (size, depth and element limits)."""
    if not text:
        return None
    active().spend_bytes(len(text), source)
    value = parse_json(text, f"{source}: layer metadata")
    return value if isinstance(value, Mapping) else None


def keras_metadata(path: Path) -> dict[str, Mapping[str, Any]]:
    """tf_keras's `keras_metadata.pb`: object path -> that object's JSON metadata."""
    source = str(path)
    metadata = parse_message(read_regular(path, MAX_METADATA_BYTES, "keras_metadata.pb", inside=path.parent), source)
    out: dict[str, Mapping[str, Any]] = {}
    for node in metadata.messages(1):
        value = _json_metadata(node.text(5), source)
        if value is not None:
            out[node.text(3)] = value
    return out


def saved_model_metadata(path: Path) -> dict[str, Mapping[str, Any]]:
    """Keras metadata that tf.keras 2.0-2.4 kept in `saved_model.pb` (SavedUserObject.metadata), by object path."""
    source = str(path)
    saved_model = parse_message(read_regular(path, MAX_SAVED_MODEL_BYTES, "saved_model.pb", inside=path.parent), source)
    meta_graphs = saved_model.messages(2)
    graph = meta_graphs[0].message(7) if meta_graphs else None
    if graph is None:
        return {}
    objects = graph.messages(1)
    if not objects:
        raise InitcliError(f"{source}: the SavedModel's object graph is empty (no root object)")
    budget = active()
    paths = {0: "root"}
    queue = deque([0])
    while queue:
        current = queue.popleft()
        for reference in objects[current].messages(1):
            child = reference.integer(1)
            if 0 <= child < len(objects) and child not in paths:
                # A chain of long edge names would build paths quadratic in its depth: each is bounded.
                child_path = f"{paths[current]}.{reference.text(2)}"
                budget.check_path(child_path, source)
                budget.spend_bytes(len(child_path), source)
                paths[child] = child_path
                queue.append(child)
    out: dict[str, Mapping[str, Any]] = {}
    for index, path_text in paths.items():
        user_object = objects[index].message(4)
        if user_object is not None:
            value = _json_metadata(user_object.text(3), source)
            if value is not None:
                out[path_text] = value
    return out


def _model_order(nodes: list[_Node]) -> list[int]:
    """Variable nodes in the order a depth-first walk from the root meets them (layer by layer)."""
    order = []
    seen = {0}
    stack = [0]
    while stack:
        current = stack.pop()
        if nodes[current].checkpoint_key is not None:
            order.append(current)
        for name, child in reversed(nodes[current].children):
            if child not in seen and name not in _SKIPPED_EDGES:
                seen.add(child)
                stack.append(child)
    return order


def _owners(nodes: list[_Node]) -> dict[int, list[tuple[int, str]]]:
    """For each object, the objects holding it under a named attribute (not a list index)."""
    owners: dict[int, list[tuple[int, str]]] = {}
    for index, node in enumerate(nodes):
        for name, child in node.children:
            if not name.isdigit() and name not in _SKIPPED_EDGES:
                owners.setdefault(child, []).append((index, name))
    return owners


class _Reader:
    """Turns a bundle, its object graph and (optionally) Keras metadata into weight records."""

    def __init__(self, bundle: TensorBundle, metadata: Mapping[str, Mapping[str, Any]]) -> None:
        self.bundle = bundle
        self.era = era_of(mapping(metadata.get("root")).get("keras_version"))
        self.nodes = _object_graph(bundle)
        self.layer_metadata: dict[int, Mapping[str, Any]] = {}
        edges: dict[int, dict[str, int]] = {}
        for path, value in metadata.items():
            node = _walk(self.nodes, path, edges)
            if node is not None:
                self.layer_metadata[node] = value

    def records(self) -> Iterator[WeightRecord]:
        owners = _owners(self.nodes)
        for index in _model_order(self.nodes):
            node = self.nodes[index]
            key = node.checkpoint_key or ""
            entry = self.bundle.entries.get(key)
            if entry is None:
                raise InitcliError(f"{self.bundle.source}: the object graph names {key!r}, which is not in the index")
            if entry.dtype_code not in DTYPES:
                continue
            candidates = owners.get(index, [])
            owner, edge = next(((o, n) for o, n in candidates if o in self.layer_metadata), (None, None))
            if edge is None:
                owner, edge = candidates[0] if candidates else (None, key.split("/")[-3] if "/" in key else key)
            yield self._record(node, key, owner, edge, entry.shape, entry.dtype)

    def _record(
        self, node: _Node, key: str, owner: int | None, edge: str, shape: tuple[int, ...], dtype: str
    ) -> WeightRecord:
        path = (node.full_name or key.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")).removesuffix(":0")
        components = path.split("/")
        # The variable's own name; the attribute holding it can differ (Keras 3 Dense keeps `_kernel`).
        weight = components[-1] if node.full_name else edge
        meta = self.layer_metadata.get(owner) if owner is not None else None
        layer = components[-2] if len(components) >= 2 else components[0]
        if meta is None:
            resolution = Resolution(notes=["no layer config for this variable in the file: initializer unknown"])
        else:
            layer = str(meta.get("name", layer))
            class_name = class_of(meta)
            _, _, slot, _ = find_by_name(meta, [weight], len(shape))
            resolution = resolve_slot(meta, slot, shape=shape, era=self.era)
            if slot is None:
                resolution.notes = [f"layer class {class_name} or variable {weight!r} not known to initcli"]
            resolution.fan_axes = None  # Keras 2 computes every fan from the kernel shape alone
        return resolution.record(
            path=path, layer=layer, weight=weight, shape=shape, dtype=dtype, read=lambda: self.bundle.read(key)
        )


def _saved(
    source: Path, kind: str, bundle: TensorBundle, metadata: Mapping[str, Mapping[str, Any]], notes: list[str]
) -> ModelFile:
    try:
        reader = _Reader(bundle, metadata)
    except InitcliError:
        bundle.close()
        raise
    version = metadata.get("root", {}).get("keras_version")
    # No `config`: it is a tf_keras config, which Keras 3 cannot rebuild (so no --fresh); each
    # record carries its layer's config.
    return ModelFile(
        str(source), kind, version if isinstance(version, str) else None, reader.records, bundle.close, notes
    )


def open_tf_checkpoint(path: Path | str) -> ModelFile:
    """Open a TF-format checkpoint by its prefix (`ckpt`), its `.index` or one of its data shards.

    Raises:
        InitcliError: no bundle there, or a corrupt, truncated or unsupported one.
    """
    path = Path(path)
    prefix = checkpoint_prefix(path)
    if prefix is None:
        match = _DATA_SHARD.match(path.name)
        prefix = path.with_name(match["prefix"]) if match else None
    if prefix is None or not index_path(prefix).is_file():
        expected = index_path(prefix if prefix is not None else path).name
        raise InitcliError(f"{path}: no TensorFlow checkpoint there (no {expected} beside it)")
    bundle = TensorBundle(prefix)
    notes = ["TF checkpoint: weights and names only; it stores no layer configs, so initializers are unknown"]
    if OBJECT_GRAPH_KEY not in bundle.entries:
        notes.append("name-based TF1 checkpoint: each tensor named by its key; optimizer slots left out")
    return _saved(path, "tf-checkpoint", bundle, {}, notes)


def open_saved_model_dir(path: Path | str) -> ModelFile:
    """Open a SavedModel directory written by tf.keras / tf_keras (`model.save("dir")`).

    Raises:
        InitcliError: not a SavedModel, no variables, or corrupt files.
    """
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise InitcliError(f"{path}: a directory without saved_model.pb, not a SavedModel")
    prefix = path / "variables" / "variables"
    if not (path / "variables" / "variables.index").is_file():
        raise InitcliError(f"{path}: a SavedModel without variables (variables/variables.index): no weights to read")
    notes = []
    if (path / "keras_metadata.pb").is_file():
        metadata = keras_metadata(path / "keras_metadata.pb")
    else:
        metadata = saved_model_metadata(path / "saved_model.pb")
        if not metadata:
            notes.append("no Keras metadata in this SavedModel (not saved by Keras?): initializers unknown")
    bundle = TensorBundle(prefix)
    return _saved(path, "savedmodel", bundle, metadata, notes)


def _checkpoint_in_directory(path: Path) -> Path | None:
    """The latest checkpoint a directory's `checkpoint` state file names, if it names one beside it."""
    state = path / "checkpoint"
    if not state.is_file() or state.stat().st_size > 1 << 20:
        return None
    text = read_regular(state, 1 << 20, "the checkpoint state file", inside=path).decode("utf-8", "replace")
    match = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', text, re.MULTILINE)
    if match is None:
        return None
    name = Path(match[1]).name  # only a checkpoint inside this directory
    return path / name if (path / f"{name}.index").is_file() else None


def open_tensorflow(path: Path) -> ModelFile | None:
    """Open `path` if it is a SavedModel directory or a TF checkpoint; None if it is neither.

    Raises:
        InitcliError: such a model that cannot be read.
    """
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return open_saved_model_dir(path)
        if (path / f"{path.name}.index").is_file():  # a SavedModel's `variables` directory
            return open_tf_checkpoint(path / path.name)
        inner = _checkpoint_in_directory(path)
        return open_tf_checkpoint(inner) if inner is not None else None
    if checkpoint_prefix(path) is not None or (_DATA_SHARD.match(path.name) and path.is_file()):
        return open_tf_checkpoint(path)
    return None


__all__ = ["open_saved_model_dir", "open_tensorflow", "open_tf_checkpoint", "unsupported_format"]
