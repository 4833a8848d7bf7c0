"""Walk the `layers/...` tree of a Keras 3 or tf_keras 2.13+ weights file (`model.weights.h5`, `.weights.h5`).

Each layer is a group whose `vars` subgroup holds its variables as datasets `0, 1, ...` in creation
order; Keras 3 gives `vars` the layer's name as attribute `name`, tf_keras does not. Sublayers are
child groups named by the attribute that holds them (`cell`, `forward_layer`, `query_dense`, `layer`;
tf_keras: `_query_dense`) or, in models, by `layers/<snake_class_name>[_<n>]`. Paired with the model
config, the walk names every variable as the Keras that wrote it named it and hands (config entry,
slot) to `resolution`; without a config (weights-only files) names are inferred where the group name
reveals the layer class.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from initcli.errors import InitcliError
from initcli.keras.eras import UNKNOWN, Era, era_of
from initcli.keras.layers import (
    ATTENTION_SUBLAYERS,
    CONTAINERS,
    LAYER_SLOTS,
    RNN_CELLS,
    WeightSlot,
    attention_fan_axes,
)
from initcli.readers.h5snapshot import H5Dataset, H5Group
from initcli.readers.records import WeightRecord
from initcli.readers.resolution import (
    canonical_class,
    entry_name,
    layer_entries,
    mapping,
    resolve_slot,
    slots_of,
    variable_name,
)
from initcli.readers.structure import STRUCTURE_NOTE, infer
from initcli.safety.files import shown

_SNAKE_TO_CLASS = {
    re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(): name
    for name in [*LAYER_SLOTS, *RNN_CELLS, "MultiHeadAttention", "Bidirectional", "TimeDistributed"]
}
_SNAKE_TO_CLASS.update(
    {
        "conv1d": "Conv1D",
        "conv2d": "Conv2D",
        "conv3d": "Conv3D",
        "conv1d_transpose": "Conv1DTranspose",
        "conv2d_transpose": "Conv2DTranspose",
        "conv3d_transpose": "Conv3DTranspose",
        "depthwise_conv1d": "DepthwiseConv1D",
        "depthwise_conv2d": "DepthwiseConv2D",
        "separable_conv1d": "SeparableConv1D",
        "separable_conv2d": "SeparableConv2D",
        "conv_lstm1d": "ConvLSTM1D",
        "conv_lstm2d": "ConvLSTM2D",
        "conv_lstm3d": "ConvLSTM3D",
        "simple_rnn": "SimpleRNN",
        "p_re_lu": "PReLU",
        "lstm": "LSTM",
        "gru": "GRU",
    }
)


# Sublayers in the order Keras creates their variables (model.weights order).
_SUBLAYER_ORDER = {
    key: i for i, key in enumerate(("cell", "forward_layer", "backward_layer", *ATTENTION_SUBLAYERS, "layer", "layers"))
}


# MultiHeadAttention sublayer attribute -> the scope its variables are named in (`.../query/kernel`).
_ATTENTION_VARIABLE_SCOPES = {
    "query_dense": "query",
    "key_dense": "key",
    "value_dense": "value",
    "output_dense": "attention_output",
}


def _key(group_key: str) -> str:
    """A sublayer group's attribute name; tf_keras keeps MultiHeadAttention's as `_query_dense`."""
    return group_key.removeprefix("_") if group_key.removeprefix("_") in ATTENTION_SUBLAYERS else group_key


def snake_case(name: str) -> str:
    """tf_keras's `generic_utils.to_snake_case` (and Keras 3's `naming.to_snake_case`)."""
    intermediate = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    insecure = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    return insecure if not insecure.startswith("_") else "private" + insecure


def children(group: H5Group) -> list[tuple[str, H5Group | H5Dataset]]:
    return list(group.children.items())


def _vars(group: H5Group) -> tuple[str | None, list[H5Dataset]]:
    if "vars" not in group:
        return None, []
    variables = group["vars"]
    if not isinstance(variables, H5Group):
        raise InitcliError(f"Malformed weights file: {shown(variables.name)} is not a group")
    name = variables.attrs.get("name")
    if name is not None and not isinstance(name, str):
        raise InitcliError(f"Malformed weights file: the name attribute of {shown(variables.name)} is not text")
    datasets = []
    for key, item in children(variables):
        if not isinstance(item, H5Dataset):
            raise InitcliError(f"Malformed weights file: {shown(item.name)} is not a dataset")
        if not (key.isascii() and key.isdigit()) or len(key) > 9:
            raise InitcliError(f"Malformed weights file: unexpected variable {shown(item.name)}")
        datasets.append((int(key), item))
    indices = sorted(i for i, _ in datasets)
    if indices != list(range(len(indices))):
        raise InitcliError(f"Malformed weights file: {shown(variables.name)} has variables {indices[:20]}")
    return name, [item for _, item in sorted(datasets, key=lambda p: p[0])]


def _class_of(entry: Mapping[str, Any] | None) -> str | None:
    return None if entry is None else canonical_class(entry.get("class_name"))


def _config_of(entry: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if entry is None:
        return {}
    config = entry.get("config")
    return config if isinstance(config, Mapping) else {}


def tree_era(root: H5Group, config: Mapping[str, Any] | None) -> Era:
    """Which Keras wrote a weights tree: from the config's `keras_version`, else from the layout.

    Keras 3 names each `vars` group (attribute `name`); tf_keras 2.13+ writes the same tree
    without names.
    """
    if config is not None and config.get("keras_version") is not None:
        return era_of(config.get("keras_version"), config.get("backend"))
    pending = [root]
    layer_vars = 0
    while pending:
        group = pending.pop()
        for key, child in children(group):
            if not isinstance(child, H5Group):
                continue
            if key == "vars":
                if child.attrs.get("name") is not None:
                    return Era(version=None, line="keras3", numbers=None)
                layer_vars += group is not root
            else:
                pending.append(child)
    return Era(version=None, line="tf.keras", numbers=None) if layer_vars else UNKNOWN


class TreeWalker:
    """Yields the weight records of a `layers/...` tree, paired with the model config if any."""

    def __init__(self, has_config: bool, era: Era = UNKNOWN) -> None:
        self.has_config = has_config
        self.era = era
        self.unnamed = 0
        # The custom layer (class, config) whose sublayers are being walked, for each record.
        self.custom: Mapping[str, Any] | None = None

    @property
    def keras2(self) -> bool:
        """tf_keras (Keras 2) names variables by TensorFlow name scopes, not by Keras 3's paths."""
        return self.era.line in ("tf.keras", "keras2")

    def walk(self, root: H5Group, model_entry: Mapping[str, Any] | None) -> Iterator[WeightRecord]:
        self.unnamed = 0
        name, datasets = _vars(root)
        class_name = _class_of(model_entry) if model_entry else None
        # Layers a Keras 3 Sequential builds are named under its scope; a Functional's are built unscoped.
        prefix = f"{name}/" if class_name == "Sequential" and name and not self.keras2 else ""
        if datasets:
            yield from self._records(datasets, name or "model", class_name, model_entry, prefix)
        if "layers" in root:
            layers = root["layers"]
            if not isinstance(layers, H5Group):
                raise InitcliError(f"Malformed weights file: {shown(layers.name)} is not a group")
            yield from self._container(layers, model_entry, prefix)

    def _container(self, group: H5Group, entry: Mapping[str, Any] | None, prefix: str) -> Iterator[WeightRecord]:
        entries: dict[str, Mapping[str, Any]] = {}
        by_group_key: dict[str, Mapping[str, Any]] = {}
        order = []
        used: dict[str, int] = {}
        for layer_entry in layer_entries(entry):
            layer_name = entry_name(layer_entry)
            if layer_name is not None:
                entries[layer_name] = layer_entry
                order.append(layer_name)
            # tf_keras names a container's groups by snake-cased class name and a counter
            # (tf_keras/src/saving/saving_lib.py `_save_container_state`); its `vars` carry no name.
            snake = snake_case(str(layer_entry.get("class_name", "")))
            used[snake] = used.get(snake, -1) + 1
            key = f"{snake}_{used[snake]}" if used[snake] else snake
            by_group_key[key] = layer_entry
        groups = []
        for key, child in children(group):
            if not isinstance(child, H5Group):
                raise InitcliError(f"Malformed weights file: {shown(child.name)} is not a group")
            variables = _vars(child)
            child_entry = entries.get(variables[0]) if variables[0] is not None else by_group_key.get(key)
            child_name = entry_name(child_entry) if child_entry is not None else None
            position = order.index(child_name) if child_name in order else len(order)
            groups.append((position, key, child, variables, child_entry))
        for _, key, child, variables, child_entry in sorted(groups, key=lambda g: (g[0], g[1])):
            if child_entry is None and not self.has_config:
                child_entry = self._guess_entry(key)
            yield from self._layer(child, child_entry, self._scope(prefix, child_entry), variables=variables)

    def _scope(self, prefix: str, entry: Mapping[str, Any] | None) -> str:
        """The name scope a model's or wrapper's layer is built in when Keras 3 loads the file.

        `deserialize_keras_object` builds each layer whose entry has a `build_config` as it
        deserializes it (keras/src/saving/serialization_lib.py), outside every name scope: its
        variables are `dense/kernel` however deep the Sequential, Functional, TimeDistributed or
        Bidirectional that holds it. A layer without one (not built when saved) is built later, inside
        its container's scope. Layers a custom layer builds keep the file's path (`_built_elsewhere`).
        """
        if self.keras2 or self.custom is not None or not isinstance(entry, Mapping):
            return prefix
        return "" if entry.get("build_config") else prefix

    @staticmethod
    def _guess_entry(group_key: str) -> Mapping[str, Any] | None:
        class_name = _SNAKE_TO_CLASS.get(re.sub(r"_\d+$", "", group_key))
        return {"class_name": class_name, "config": {}, "guessed": True} if class_name else None

    def _layer(
        self,
        group: H5Group,
        entry: Mapping[str, Any] | None,
        prefix: str,
        class_override: str | None = None,
        slot_override: list[WeightSlot] | None = None,
        fan_axes: tuple[list[int], list[int]] | None = None,
        variables: tuple[str | None, list[H5Dataset]] | None = None,
        name_hint: str | None = None,
        unscoped_in: str | None = None,
    ) -> Iterator[WeightRecord]:
        """Records of one layer group.

        Args:
            name_hint: the layer's name when its `vars` group does not say (tf_keras).
            unscoped_in: the wrapper whose name scope the layer's variables share (tf_keras
                TimeDistributed: `time_distributed/kernel`).
        """
        name, datasets = variables if variables is not None else _vars(group)
        unknown_reason = None
        if entry is None and class_override is None and self.has_config:
            inference = _infer(group, name, datasets)
            entry = inference.entry
            unknown_reason = None if entry is not None else inference.reason
        custom_before = self.custom
        if entry is not None and not entry.get("inferred") and _is_custom(entry):
            self.custom = entry
        name = name or name_hint or (entry_name(entry) if entry is not None else None) or group.name.rsplit("/", 1)[-1]
        class_name = class_override or _class_of(entry)
        config = _config_of(entry)
        path_prefix = prefix if unscoped_in else f"{prefix}{name}/"
        if datasets:
            layer = unscoped_in or name
            yield from self._records(
                datasets, layer, class_name, entry, path_prefix, slot_override, fan_axes, unknown_reason
            )
        inner_name = entry_name(mapping(config.get("layer"))) or "layer"
        for key, child in sorted(children(group), key=lambda item: _SUBLAYER_ORDER.get(_key(item[0]), 99)):
            if key == "vars" or not isinstance(child, H5Group):
                continue
            if key == "layers":
                child_prefix = path_prefix if class_name == "Sequential" and not self.keras2 else ""
                if class_name not in CONTAINERS and class_name is not None:
                    child_prefix = path_prefix
                elif class_name is None and self.custom is not None:
                    # Sequential or Functional, the file does not say: keep the attribute path so the
                    # layers of two such blocks do not share names.
                    child_prefix = path_prefix
                records = self._container(child, entry, child_prefix)
                if class_name == "Sequential" and entry is not None and entry.get("inferred") and custom_before:
                    records = _built_elsewhere(records, child_prefix, entry_name(custom_before))
                elif class_name is None and self.custom is not None and not self.keras2:
                    records = _maybe_functional(records, child_prefix, unknown_reason)
                yield from records
            elif key == "cell" and class_name in RNN_CELLS:
                cell = RNN_CELLS[class_name]
                # tf_keras's ConvLSTM cells create their variables in the layer's own scope
                # (`conv_lstm2d/kernel:0`); its LSTM/GRU/SimpleRNN cells in the cell's (`lstm/lstm_cell/kernel:0`).
                unscoped = name if self.keras2 and class_name.startswith("ConvLSTM") else None
                yield from self._layer(
                    child, entry, path_prefix, class_override=cell, name_hint=snake_case(cell), unscoped_in=unscoped
                )
            elif key in ("forward_layer", "backward_layer") and class_name == "Bidirectional":
                backward = mapping(config.get("backward_layer"))
                inner = backward if key == "backward_layer" and backward else mapping(config.get("layer"))
                hint = f"forward_{inner_name}"
                if key == "backward_layer":
                    hint = f"backward_{entry_name(backward) or inner_name}"
                yield from self._layer(child, inner or None, self._scope(path_prefix, inner), name_hint=hint)
            elif _key(key) in ATTENTION_SUBLAYERS and class_name == "MultiHeadAttention":
                sub_variables = _vars(child)
                rank = len(sub_variables[1][0].shape) if sub_variables[1] else 3
                slots = [WeightSlot("kernel", "kernel_initializer")]
                if config.get("use_bias", True):
                    slots.append(WeightSlot("bias", "bias_initializer"))
                yield from self._layer(
                    child,
                    entry,
                    path_prefix,
                    class_override="EinsumDense",
                    slot_override=slots,
                    fan_axes=attention_fan_axes(_key(key), rank),
                    variables=sub_variables,
                    name_hint=_ATTENTION_VARIABLE_SCOPES[_key(key)],
                )
            elif key == "layer" and class_name == "Bidirectional":
                continue  # the template layer; its copies hold the weights
            elif key == "layer" and class_name is not None:
                unscoped = name if self.keras2 and class_name == "TimeDistributed" else None
                inner_entry = mapping(config.get("layer"))
                yield from self._layer(
                    child,
                    config.get("layer"),
                    self._scope(path_prefix, inner_entry),
                    name_hint=inner_name,
                    unscoped_in=unscoped,
                )
            else:
                yield from self._layer(child, None, path_prefix)
        self.custom = custom_before

    def _records(
        self,
        datasets: list[H5Dataset],
        layer: str,
        class_name: str | None,
        entry: Mapping[str, Any] | None,
        path_prefix: str,
        slot_override: list[WeightSlot] | None = None,
        fan_axes: tuple[list[int], list[int]] | None = None,
        unknown_reason: str | None = None,
    ) -> Iterator[WeightRecord]:
        config = _config_of(entry)
        guessed = bool(entry and entry.get("guessed"))
        inferred = bool(entry and entry.get("inferred"))
        slots = slot_override if slot_override is not None else slots_of(class_name, config)
        mismatch = None
        if slots is not None and len(slots) != len(datasets):
            mismatch = (
                f"{class_name} with this config should have {len(slots)} variables, the file has "
                f"{len(datasets)}: names unknown"
            )
            slots = None
        for index, dataset in enumerate(datasets):
            slot = slots[index] if slots else None
            weight = variable_name(class_name, slot.name, self.era) if slot else str(index)
            if weight == "variable" and not self.keras2:
                # Keras 3 auto-names unnamed variables `variable`, `variable_1`, ... in creation order.
                weight = f"variable_{self.unnamed}" if self.unnamed else "variable"
                self.unnamed += 1
            resolution = resolve_slot(
                entry,
                slot,
                shape=dataset.shape,
                era=self.era,
                owner_class=class_name,
                fan_axes=fan_axes if weight == "kernel" else None,
                configured=self.has_config and not guessed and not inferred,
            )
            if mismatch is not None:
                resolution.notes = [mismatch]
            elif slot is None and class_name is not None and _is_custom(entry):
                resolution.notes = [
                    f"custom layer {class_name} (a class not known to initcli): its own variable {index} "
                    "(creation order); its name and initializer are in the class's code, not in the file "
                    "(--custom-objects MODULE gives them)"
                ]
            elif slot is None and class_name is not None:
                resolution.notes = [f"layer class {class_name} is not known to initcli: names and initializers unknown"]
            elif unknown_reason is not None and self.custom is not None:
                resolution.notes = [
                    f"inside custom layer {_class_of(self.custom)}: named by index, the structure is ambiguous "
                    f"({unknown_reason})"
                ]
            if inferred and slot is not None and entry is not None:
                resolution.notes.append(
                    f"{STRUCTURE_NOTE}: {class_name} ({entry.get('inferred_from')}); judged against Keras's "
                    "defaults, not the file's config (--custom-objects MODULE gives the real one)"
                )
            if guessed and slot is not None:
                resolution.notes.append(
                    f"weights-only file: names inferred from the group name ({class_name}, default config)"
                )
            yield resolution.record(
                path=f"{path_prefix}{weight}",
                layer=layer,
                weight=weight,
                shape=dataset.shape,
                dtype=dataset.checked_dtype(),
                read=dataset.read,
                read_chunks=dataset.read_chunks,
                inferred=inferred and slot is not None,
                location=dataset.name,
                custom_layer=_custom_summary(self.custom),
            )


def _built_elsewhere(records: Iterator[WeightRecord], prefix: str, custom: str | None) -> Iterator[WeightRecord]:
    """A Sequential inside a custom layer: the path if its layers were built inside it, with the other path.

    A Sequential made with an `Input` builds its layers when it is made, in the custom layer's
    `__init__`, outside its name scope; without one it builds in the custom layer's `build`/`call`,
    inside. The file stores no InputLayer for it, so which one the file does not say.
    """
    scope = prefix.rstrip("/").rsplit("/", 1)[-1] + "/"
    for record in records:
        if prefix != scope and record.path.startswith(prefix):
            record.notes.append(
                f"Keras names it {scope}{record.path.removeprefix(prefix)} if this Sequential was made with an "
                f"Input (built then, outside {custom or 'the custom layer'}; the file does not say which)"
            )
        yield record


def _maybe_functional(records: Iterator[WeightRecord], prefix: str, reason: str | None) -> Iterator[WeightRecord]:
    """Layers of a model of unknown class inside a custom layer: a Functional builds them when made."""
    for record in records:
        if record.path.startswith(prefix):
            record.notes.append(
                f"path by the file's groups: {reason or 'a model of layers of unknown class'}; a Functional "
                f"builds its layers when made, and Keras names this {record.path.removeprefix(prefix)}"
            )
        yield record


def _is_custom(entry: Mapping[str, Any] | None) -> bool:
    """A layer of a class that is not Keras's own: its module is the user's, or it is registered."""
    if entry is None:
        return False
    module = entry.get("module")
    registered = entry.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        return True
    if module is None:  # Keras 3 writes a registered name without a module only for the user's classes
        return isinstance(registered, str)
    return isinstance(module, str) and module != "keras" and not module.startswith("keras.")


_BASE_LAYER_KEYS = ("name", "trainable", "dtype")


def _custom_summary(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The custom layer's own config from config.json, as the rows inside it show it."""
    if entry is None:
        return None
    config = _config_of(entry)
    return {
        "class_name": entry.get("class_name"),
        "registered_name": entry.get("registered_name"),
        "module": entry.get("module"),
        "name": entry_name(entry),  # Keras 3.1 keeps it beside the config, later Keras in it
        "config": {key: value for key, value in config.items() if key not in _BASE_LAYER_KEYS},
    }


def _own_shapes(group: H5Group) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in dataset.shape) for dataset in _vars(group)[1]]


def _infer(group: H5Group, layer_name: str | None, datasets: list[H5Dataset]) -> Any:
    """What the group's structure says its class is (`initcli.readers.structure`)."""
    sublayers: dict[str, list[tuple[int, ...]] | None] = {}
    for key, child in children(group):
        if key == "vars" or not isinstance(child, H5Group):
            continue
        sublayers[key] = None if key == "layers" else _own_shapes(child)
    key = group.name.rsplit("/", 1)[-1]
    return infer(key, layer_name, [tuple(int(d) for d in d_.shape) for d_ in datasets], sublayers)
