"""Legacy `.h5` full models (`model.save("x.h5")`): `model_config` plus `model_weights/<layer>/`.

Each top-level layer group lists its variables' full paths in the attribute `weight_names`
(`sequential/dense/kernel`, `lstm/lstm_cell/kernel`). The owning layer's config is found by
walking the path up to the nearest name the model config knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from initcli.documents import parse_json
from initcli.errors import InitcliError
from initcli.layers import DEFAULTS, LAYER_SLOTS, RNN_CELLS, SETTINGS, WeightSlot, attention_fan_axes, einsum_fan_axes
from initcli.readers.configcheck import check_model_config
from initcli.readers.files import shown
from initcli.readers.h5snapshot import H5Dataset, H5Group
from initcli.readers.h5tree import as_identifier
from initcli.readers.records import ModelFile, WeightRecord

_ATTENTION_NAMES = {
    "query": "query_dense",
    "key": "key_dense",
    "value": "value_dense",
    "attention_output": "output_dense",
}


def _index_layers(entry: Any, index: dict[str, Mapping[str, Any]]) -> None:
    if not isinstance(entry, Mapping):
        return
    config = _mapping(entry.get("config"))
    name = config.get("name")
    if isinstance(name, str):
        index.setdefault(name, entry)
    for child in config.get("layers", []) or []:
        _index_layers(child, index)
    for key in ("layer", "backward_layer"):
        _index_layers(config.get(key), index)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _texts(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _slot_for(
    entry: Mapping[str, Any], components: list[str], rank: int
) -> tuple[str | None, WeightSlot | None, tuple[list[int], list[int]] | None]:
    """(class of the variable's owner, its slot, kernel fan axes) for a weight named by `components`."""
    class_name = entry.get("class_name")
    config = _mapping(entry.get("config"))
    variable = components[-1]
    if class_name == "Bidirectional":
        inner = _mapping(config.get("layer"))
        if len(components) >= 2 and components[0].startswith("backward") and config.get("backward_layer"):
            inner = _mapping(config["backward_layer"])
        return _slot_for(inner, components, rank)
    if class_name == "TimeDistributed":
        return _slot_for(_mapping(config.get("layer")), components, rank)
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
    slots = LAYER_SLOTS.get(class_name or "", lambda c: [])(config)
    axes = einsum_fan_axes(config.get("equation", "")) if class_name == "EinsumDense" and variable == "kernel" else None
    return class_name, next((s for s in slots if s.name == variable), None), axes


def open_legacy_h5(label: str, root: H5Group, close: Callable[[], None]) -> ModelFile:
    """A ModelFile over a legacy full-model file whose HDF5 structure walk is `root`."""
    raw_config = root.attrs.get("model_config")
    config = None
    if raw_config is not None:
        if not isinstance(raw_config, str):
            raise InitcliError(f"{label}: model_config is not one text")
        config = parse_json(raw_config, f"{label}: model_config")
        check_model_config(config, label)
    index: dict[str, Mapping[str, Any]] = {}
    _index_layers(config, index)
    weights_root = root.children.get("model_weights")
    if weights_root is None:
        raise InitcliError(f"{label}: a legacy Keras file without weights (model_weights missing)")
    if not isinstance(weights_root, H5Group):
        raise InitcliError(f"{label}: model_weights is not a group")
    version = weights_root.attrs.get("keras_version", root.attrs.get("keras_version"))

    def records() -> Iterator[WeightRecord]:
        layer_names = _texts(weights_root.attrs.get("layer_names", list(weights_root.keys())))
        if len(set(layer_names)) != len(layer_names):
            raise InitcliError(f"{label}: layer_names lists a layer twice")
        seen_datasets: set[int] = set()
        for layer_name in layer_names:
            group = weights_root.resolve(layer_name) if "/" not in layer_name else None
            if not isinstance(group, H5Group):
                raise InitcliError(f"{label}: layer group {shown(layer_name)!r} listed but missing")
            weight_names = _texts(group.attrs.get("weight_names", []))
            if len(set(weight_names)) != len(weight_names):
                raise InitcliError(f"{label}: layer {shown(layer_name)!r} lists a weight twice")
            for weight_name in weight_names:
                dataset = group.resolve(weight_name)
                if dataset is None:
                    raise InitcliError(f"{label}: weight {shown(weight_name)!r} listed but missing")
                if not isinstance(dataset, H5Dataset):
                    raise InitcliError(f"{label}: {shown(weight_name)!r} is not a dataset")
                if dataset.address in seen_datasets:
                    raise InitcliError(f"{label}: weight {shown(weight_name)!r} is stored under two names")
                seen_datasets.add(dataset.address)
                yield _record(weight_name, dataset, index)

    # The model config lets `inspect --fresh` rebuild the model (Keras refuses configs it cannot read).
    model_config = config if isinstance(config, Mapping) and "class_name" in config else None
    return ModelFile(label, "h5", version if isinstance(version, str) else None, records, close, [], model_config)


def _record(weight_name: str, dataset: H5Dataset, index: Mapping[str, Mapping[str, Any]]) -> WeightRecord:
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
        owner_config = _mapping(entry.get("config"))
        settings = {k: owner_config[k] for k in SETTINGS.get(entry.get("class_name") or "", ()) if k in owner_config}
        if slot is None:
            notes.append(f"layer class {class_name} or variable {components[-1]!r} not known to initcli")
        else:
            argument = slot.argument
            source = owner_config
            if entry.get("class_name") in ("Bidirectional", "TimeDistributed"):
                source = _mapping(_mapping(owner_config.get("layer")).get("config"))
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
        dtype=dataset.checked_dtype(),
        read=dataset.read,
        initializer=initializer,
        argument=argument,
        default_initializer=default,
        fan_axes=fan_axes,
        notes=notes,
        settings=settings,
        fan_caveat=fan_caveat,
    )
