"""Legacy `.h5` full models (`model.save("x.h5")`): `model_config` plus `model_weights/<layer>/`.

Each top-level layer group lists its variables' full paths in the attribute `weight_names`
(`sequential/dense/kernel`, `lstm/lstm_cell/kernel`). The owning layer's config is found by
walking the path up to the nearest name the model config knows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py

from initcli.errors import InitcliError
from initcli.layers import DEFAULTS, LAYER_SLOTS, RNN_CELLS, SETTINGS, WeightSlot, attention_fan_axes, einsum_fan_axes
from initcli.readers.h5tree import as_identifier, checked_child, dataset_reader
from initcli.readers.records import SavedModel, WeightRecord

_ATTENTION_NAMES = {
    "query": "query_dense",
    "key": "key_dense",
    "value": "value_dense",
    "attention_output": "output_dense",
}


def _index_layers(entry: Any, index: dict[str, Mapping[str, Any]]) -> None:
    if not isinstance(entry, Mapping):
        return
    config = entry.get("config") if isinstance(entry.get("config"), Mapping) else {}
    name = config.get("name")
    if isinstance(name, str):
        index.setdefault(name, entry)
    for child in config.get("layers", []) or []:
        _index_layers(child, index)
    for key in ("layer", "backward_layer"):
        _index_layers(config.get(key), index)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _slot_for(
    entry: Mapping[str, Any], components: list[str], rank: int
) -> tuple[str | None, WeightSlot | None, tuple[list[int], list[int]] | None]:
    """(class of the variable's owner, its slot, kernel fan axes) for a weight named by `components`."""
    class_name = entry.get("class_name")
    config = entry.get("config") or {}
    variable = components[-1]
    if class_name == "Bidirectional":
        inner = config.get("layer") or {}
        if len(components) >= 2 and components[0].startswith("backward") and config.get("backward_layer"):
            inner = config["backward_layer"]
        return _slot_for(inner, components, rank)
    if class_name == "TimeDistributed":
        return _slot_for(config.get("layer") or {}, components, rank)
    if class_name in RNN_CELLS:
        cell = RNN_CELLS[class_name]
        slots = LAYER_SLOTS[cell](config)
        return cell, next((s for s in slots if s.name == variable), None), None
    if class_name == "MultiHeadAttention" and len(components) >= 2:
        sublayer = _ATTENTION_NAMES.get(components[-2])
        if sublayer is not None:
            argument = "kernel_initializer" if variable == "kernel" else "bias_initializer"
            axes = attention_fan_axes(sublayer, rank) if variable == "kernel" else None
            return "EinsumDense", WeightSlot(variable, argument), axes
    slots = LAYER_SLOTS.get(class_name, lambda c: [])(config)
    axes = einsum_fan_axes(config.get("equation", "")) if class_name == "EinsumDense" and variable == "kernel" else None
    return class_name, next((s for s in slots if s.name == variable), None), axes


def open_legacy_h5(path: Path, weights: h5py.File) -> SavedModel:
    raw_config = weights.attrs.get("model_config")
    try:
        config = json.loads(_text(raw_config)) if raw_config is not None else None
    except json.JSONDecodeError as error:
        weights.close()
        raise InitcliError(f"{path}: model_config is not valid JSON ({error})") from None
    index: dict[str, Mapping[str, Any]] = {}
    _index_layers(config, index)
    if "model_weights" not in weights:
        weights.close()
        raise InitcliError(f"{path}: a legacy Keras file without weights (model_weights missing)")
    root = checked_child(weights, "model_weights")
    version = root.attrs.get("keras_version", weights.attrs.get("keras_version"))

    def records() -> Iterator[WeightRecord]:
        layer_names = [_text(n) for n in root.attrs.get("layer_names", list(root.keys()))]
        for layer_name in layer_names:
            if layer_name not in root:
                raise InitcliError(f"{path}: layer group {layer_name!r} listed but missing")
            group = checked_child(root, layer_name)
            for weight_name in [_text(n) for n in group.attrs.get("weight_names", [])]:
                if weight_name not in group:
                    raise InitcliError(f"{path}: weight {weight_name!r} listed but missing")
                dataset = group[weight_name]
                if not isinstance(dataset, h5py.Dataset):
                    raise InitcliError(f"{path}: {weight_name!r} is not a dataset")
                checked_child(dataset.parent, weight_name.rsplit("/", 1)[-1])
                yield _record(weight_name, dataset, index)

    return SavedModel(str(path), "h5", _text(version) if version is not None else None, records, weights.close)


def _record(weight_name: str, dataset: h5py.Dataset, index: Mapping[str, Mapping[str, Any]]) -> WeightRecord:
    components = weight_name.removesuffix(":0").split("/")
    owner_position = next((i for i in range(len(components) - 2, -1, -1) if components[i] in index), None)
    notes: list[str] = []
    initializer = argument = default = None
    class_name = None
    fan_axes = None
    settings: dict[str, Any] = {}
    fan_caveat = None
    if owner_position is None:
        notes.append("no config for this layer: initializer unknown")
    else:
        entry = index[components[owner_position]]
        class_name, slot, fan_axes = _slot_for(entry, components[owner_position + 1 :], len(dataset.shape))
        owner_config = entry.get("config") or {}
        settings = {k: owner_config[k] for k in SETTINGS.get(entry.get("class_name"), ()) if k in owner_config}
        if slot is None:
            notes.append(f"layer class {class_name} or variable {components[-1]!r} not known to initcli")
        else:
            argument = slot.argument
            source = owner_config
            if entry.get("class_name") in ("Bidirectional", "TimeDistributed"):
                source = (entry.get("config") or {}).get("layer", {}).get("config", {})
            initializer = as_identifier(source.get(argument)) if argument else None
            outer_class = entry.get("class_name")
            defaults = DEFAULTS.get(outer_class if outer_class in RNN_CELLS else class_name or "", {})
            default = defaults.get(argument) if argument else None
            if slot.note:
                notes.append(slot.note)
            if slot.fan_caveat:
                fan_caveat = slot.note
    layer = components[-2] if len(components) >= 2 else components[0]
    return WeightRecord(
        path="/".join(components),
        layer=layer,
        layer_class=class_name,
        weight=components[-1],
        shape=tuple(int(d) for d in dataset.shape),
        dtype=str(dataset.dtype),
        read=dataset_reader(dataset),
        initializer=initializer,
        argument=argument,
        default_initializer=default,
        fan_axes=fan_axes,
        notes=notes,
        settings=settings,
        fan_caveat=fan_caveat,
    )
