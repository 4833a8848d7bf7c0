"""Legacy HDF5 files of every Keras: `model.save("x.h5")` and `model.save_weights("w.h5")`.

A full model has the root attribute `model_config` (JSON) and the group `model_weights`; a weights
file has the same layout at its root. Either way a group per layer is listed in `layer_names`, and
each lists its variables' dataset paths in `weight_names`: `dense_1/kernel:0` (Keras 2),
`sequential/dense/kernel` (Keras 3), `dense_1_W` (Keras 1). The layer that owns a variable is found
from the name's components the model config knows, else from the group that holds it: tf.keras
name scopes can store layer `conv2d_1`'s kernel as `conv2d_1_1/kernel:0`. `keras_version` and
`backend` say which Keras's initializer semantics apply (`initcli.keras.eras`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from initcli.errors import BadInputError, InitcliError
from initcli.keras.eras import Era, era_of
from initcli.readers.configcheck import check_model_config
from initcli.readers.h5snapshot import H5Dataset, H5Group
from initcli.readers.records import ModelFile, WeightRecord
from initcli.readers.resolution import (
    CONTAINER_CLASSES,
    Resolution,
    class_of,
    find_by_name,
    index_layers,
    resolve_keras1,
    resolve_slot,
)
from initcli.safety.documents import parse_json
from initcli.safety.files import shown


def _texts(value: Any) -> list[str]:
    if isinstance(value, (str, bytes)):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        return []
    return [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in items]


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def read_config(raw: Any, label: str, what: str) -> Mapping[str, Any] | None:
    """A model config attribute or document (JSON text), type-checked; None when absent."""
    if raw is None:
        return None
    text = _text(raw)
    if text is None:
        raise InitcliError(f"{label}: {what} is not one text")
    config = parse_json(text, f"{label}: {what}")
    check_model_config(config, label)
    return config if isinstance(config, Mapping) else None


def open_legacy_h5(
    label: str, root: H5Group, close: Callable[[], None], config_override: Mapping[str, Any] | None = None
) -> ModelFile:
    """A ModelFile over a legacy full-model or weights file whose HDF5 structure walk is `root`.

    Args:
        config_override: a model config from `--config` (a `model.to_json()` file), used in place
            of the file's own.
    """
    if config_override is not None and root.attrs.get("model_config") is not None:
        raise BadInputError(f"--config is for weights-only files; {label} holds its own model_config")
    config = config_override or read_config(root.attrs.get("model_config"), label, "model_config")
    weights_only = "model_weights" not in root.children and "layer_names" in root.attrs
    weights_root = root if weights_only else root.children.get("model_weights")
    if weights_root is None:
        raise InitcliError(f"{label}: a legacy Keras file without weights (model_weights missing)")
    if not isinstance(weights_root, H5Group):
        raise InitcliError(f"{label}: model_weights is not a group")
    era = era_of(
        weights_root.attrs.get("keras_version", root.attrs.get("keras_version")),
        weights_root.attrs.get("backend", root.attrs.get("backend")),
    )
    if era.version is None and config is not None:
        # `model.to_json()` records the Keras that wrote it (keras/engine/topology.py@1.2.2 _updated_config).
        era = era_of(config.get("keras_version"), config.get("backend") or era.backend)
    index: dict[str, Mapping[str, Any]] = {}
    index_layers(config, index)
    if era.line == "unknown" and _looks_like_keras1(index):
        era = Era(version=None, line="keras1", numbers=None, backend=era.backend)
    notes = []
    if weights_only and config is None:
        notes.append("weights-only file: no initializer information (pass --config model.json for it)")

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
                yield _record(layer_name, weight_name, dataset, index, era, config is not None)

    # The model config lets `inspect --fresh` rebuild the model (Keras refuses configs it cannot read).
    model_config = config if isinstance(config, Mapping) and "class_name" in config else None
    return ModelFile(
        label,
        "weights.h5" if weights_only else "h5",
        era.version,
        records,
        close,
        notes,
        model_config if era.line not in ("keras1", "keras2") else None,
        older_config=config if era.line in ("keras1", "keras2") and isinstance(config, Mapping) else None,
    )


def _looks_like_keras1(index: Mapping[str, Mapping[str, Any]]) -> bool:
    """A config without `keras_version` whose layers take Keras 1 arguments (`output_dim`, `nb_filter`, `init`)."""
    keras1_arguments = ("output_dim", "nb_filter", "init", "inner_init", "dim_ordering")
    return any(
        isinstance(entry.get("config"), Mapping) and any(key in entry["config"] for key in keras1_arguments)
        for entry in index.values()
    )


def _owner(
    layer_name: str, components: list[str], index: Mapping[str, Mapping[str, Any]]
) -> tuple[Mapping[str, Any] | None, list[str], list[str]]:
    """The config entry owning a variable named by `components`, the components below it, and its name.

    The nearest component the config names wins (`model/dense/kernel`); a first component that is
    the group's layer with a name-scope suffix (`conv2d_1_1` in group `conv2d_1`) means that layer,
    and the variable is named as Keras names it (`conv2d_1/kernel`).
    """
    for position in range(len(components) - 2, -1, -1):
        if components[position] in index:
            return index[components[position]], components[position + 1 :], components
    entry = index.get(layer_name)
    if entry is None or class_of(entry) in CONTAINER_CLASSES:
        return None, components, components
    if len(components) >= 2 and re.fullmatch(re.escape(layer_name) + r"(_\d+)+", components[0]):
        return entry, components[1:], [layer_name, *components[1:]]
    return entry, components[1:] if len(components) >= 2 else components, components


def _record(
    layer_name: str,
    weight_name: str,
    dataset: H5Dataset,
    index: Mapping[str, Mapping[str, Any]],
    era: Era,
    has_config: bool,
) -> WeightRecord:
    shape = tuple(int(d) for d in dataset.shape)
    path = weight_name.removesuffix(":0")
    components = path.split("/")
    keras1_name = components[-1].startswith(f"{layer_name}_") and (era.line == "keras1" or len(components) == 1)
    if keras1_name and era.line in ("keras1", "unknown"):
        # Keras 1: `<layer>_<suffix>` (keras/engine/topology.py@1.2.2 save_weights_to_hdf5_group), under
        # whatever TensorFlow name scope the model was built in (`global/shared/dense_1_W:0`).
        path = components[-1]
        suffix = path[len(layer_name) + 1 :]
        entry = index.get(layer_name)
        if entry is None:
            resolution = Resolution(notes=_no_config(has_config))
        else:
            resolution = resolve_keras1(entry, suffix, shape, era)
        return resolution.record(
            path=path,
            layer=layer_name,
            weight=suffix,
            shape=shape,
            dtype=dataset.checked_dtype(),
            read=dataset.read,
            read_chunks=dataset.read_chunks,
        )
    entry, below, components = _owner(layer_name, components, index)
    if era.line == "keras3":
        components = _as_keras3_loads(components, index)
    if entry is None:
        resolution = Resolution(notes=_no_config(has_config))
    else:
        config_entry, owner_class, slot, fan_axes = find_by_name(entry, below, len(shape))
        resolution = resolve_slot(config_entry, slot, shape=shape, era=era, owner_class=owner_class, fan_axes=fan_axes)
        if slot is None:
            resolution.notes = [f"layer class {owner_class} or variable {components[-1]!r} not known to initcli"]
    layer = components[-2] if len(components) >= 2 else layer_name
    return resolution.record(
        path="/".join(components),
        layer=layer,
        weight=components[-1],
        shape=shape,
        dtype=dataset.checked_dtype(),
        read=dataset.read,
        read_chunks=dataset.read_chunks,
    )


_WRAPPERS = ("TimeDistributed", "Bidirectional")


def _as_keras3_loads(components: list[str], index: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A Keras 3 `weight_names` path (the saving process's) as Keras 3 names it after loading the file.

    Loading deserializes each Sequential with a `build_input_shape` and builds its layers under its
    own scope only (`unbuilt_inner/nb/kernel`, not `called_outer/unbuilt_inner/nb/kernel`); a
    Functional's layers are built unscoped; a wrapper's layer, deserialized with its `build_config`,
    unscoped too (`tdd/kernel`, not `s/time_distributed/tdd/kernel`).
    """
    names = components[:-1]
    owners = [i for i, name in enumerate(names) if name in index and class_of(index[name]) not in CONTAINER_CLASSES]
    if not owners:
        return components
    position = owners[0]
    if class_of(index[names[position]]) in _WRAPPERS and position + 1 < len(names):
        return components[position + 1 :]
    if position >= 1 and class_of(index.get(names[position - 1])) == "Sequential":
        return components[position - 1 :]
    return components[position:]


def _no_config(has_config: bool) -> list[str]:
    return ["no config for this layer: initializer unknown" if has_config else "weights-only file: initializer unknown"]
