"""The one mapping every reader uses: (layer config entry, variable) -> what a weight record says.

Readers only turn bytes into (layer config entry, variable) pairs: the `.keras`/`.weights.h5` walk
by variable index, the legacy `.h5` and TF readers by variable name. This module names the slot,
finds the configured initializer (translated from the Keras that wrote the file, `initcli.keras.eras`),
the layer's default, the fan axes, the settings users ask about, and the notes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initcli.keras.eras import UNKNOWN, Era, translate, translate_keras1
from initcli.keras.keras1 import _LSTM_BIAS_NOTE, KERAS1_WEIGHTS, dim_ordering_of, keras1_weight
from initcli.keras.layers import (
    DEFAULTS,
    FORGET_GATE_CELLS,
    LAYER_ALIASES,
    LAYER_SLOTS,
    RNN_CELLS,
    SETTINGS,
    WeightSlot,
    attention_fan_axes,
    einsum_fan_axes,
)
from initcli.readers.records import WeightRecord

# Models: their variables belong to the layers inside them.
CONTAINER_CLASSES = ("Functional", "Sequential", "Model")
# MultiHeadAttention's sublayers: weight-name component (Keras 2 and 3) -> attribute name.
ATTENTION_NAMES = {
    "query": "query_dense",
    "key": "key_dense",
    "value": "value_dense",
    "attention_output": "output_dense",
}
# Variable names of tf_keras that Keras 3 (initcli.keras.layers) names differently.
_SLOT_NAMES = {
    ("DepthwiseConv1D", "depthwise_kernel"): "kernel",
    ("DepthwiseConv2D", "depthwise_kernel"): "kernel",
    ("LayerScale", "gamma"): "variable",
}
# Layers whose variable's initializer is built from other config values, not held by an argument.
_DERIVED: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "LayerScale": lambda config: {"class_name": "Constant", "config": {"value": config.get("init_values")}},
}
# Cells whose defaults are those of the layer that builds them.
_CELL_DEFAULTS = {"ConvLSTMCell": "ConvLSTM2D", "SimpleRNNCell": "SimpleRNN", "LSTMCell": "LSTM", "GRUCell": "GRU"}
# Keras 2 and 3 say a Keras 2 era uses the plain `compute_fans` of the kernel shape for these.
_EINSUM_OWNERS = ("EinsumDense", "MultiHeadAttention")
# EinsumDense.build passes its equation's input/output axes to a VarianceScaling kernel initializer
# from Keras 3.15.0 (keras-team/keras#22789); Keras 3.0-3.14 used `compute_fans` of the kernel shape
# (a rank-3 attention kernel as a convolution kernel), as the wheels' einsum_dense.py show.
_EINSUM_FANS_FROM = "3.15"


def _before_einsum_fans(era: Era) -> bool:
    return era.line == "keras3" and era.numbers is not None and era.numbers < (3, 15, 0)


def variable_name(class_name: str | None, slot_name: str, era: Era) -> str:
    """The name the Keras of `era` gave a slot's variable (tf_keras: `depthwise_kernel`, Keras 3: `kernel`)."""
    if era.line in ("tf.keras", "keras2"):
        renamed = [old for (owner, old), new in _SLOT_NAMES.items() if owner == class_name and new == slot_name]
        return renamed[0] if renamed else slot_name
    return slot_name


def canonical_class(class_name: Any) -> str | None:
    """The Keras 3 class initcli knows for a saved class name (aliases, TF1 `...V1`/`...V2` names)."""
    if not isinstance(class_name, str):
        return None
    class_name = LAYER_ALIASES.get(class_name, class_name)
    known = (*LAYER_SLOTS, *RNN_CELLS, "Bidirectional", "TimeDistributed", "MultiHeadAttention")
    if class_name not in known and class_name[-2:] in ("V1", "V2") and class_name[:-2] in known:
        return class_name[:-2]
    if re.fullmatch(r"ConvLSTM[123]DCell", class_name):
        return "ConvLSTMCell"
    return class_name


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def class_of(entry: Mapping[str, Any] | None) -> str | None:
    return canonical_class(entry.get("class_name")) if entry else None


def config_of(entry: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return mapping(entry.get("config")) if entry else {}


def layer_entries(entry: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The layers of a model config entry: `config.layers`, or the list Keras 1-2.2 Sequential stored."""
    raw = entry.get("config") if entry else None
    layers = raw if isinstance(raw, list) else mapping(raw).get("layers")
    return [layer for layer in layers or [] if isinstance(layer, Mapping)]


def entry_name(entry: Mapping[str, Any]) -> str | None:
    name = config_of(entry).get("name", entry.get("name"))
    return name if isinstance(name, str) else None


def index_layers(entry: Any, index: dict[str, Mapping[str, Any]]) -> None:
    """Every layer config entry of a model config by layer name, nested models and wrappers included."""
    if not isinstance(entry, Mapping):
        return
    name = entry_name(entry)
    if name is not None:
        index.setdefault(name, entry)
    for child in layer_entries(entry):
        index_layers(child, index)
    config = entry.get("config")
    if isinstance(config, Mapping):
        for key in ("layer", "backward_layer"):
            index_layers(config.get(key), index)


def slots_of(class_name: str | None, config: Mapping[str, Any]) -> list[WeightSlot] | None:
    """The variables a (Keras 2 or 3) layer class creates with this config, in order; None if unknown."""
    maker = LAYER_SLOTS.get(class_name or "")
    return maker(config) if maker is not None else None


@dataclass(kw_only=True)
class Resolution:
    """What the config says about one variable (see WeightRecord for the fields)."""

    layer_class: str | None = None
    argument: str | None = None
    initializer: Mapping[str, Any] | None = None
    default_initializer: str | Mapping[str, Any] | None = None
    fan_axes: tuple[list[int], list[int]] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fan_caveat: str | None = None
    layer_config: Mapping[str, Any] | None = None
    forget_gate_bias: bool = False

    def record(
        self,
        *,
        path: str,
        layer: str,
        weight: str,
        shape: Sequence[int],
        dtype: str,
        read: Callable[[], np.ndarray],
        read_chunks: Callable[[int], Iterator[np.ndarray]] | None = None,
        inferred: bool = False,
        custom_layer: Mapping[str, Any] | None = None,
        location: str | None = None,
    ) -> WeightRecord:
        """A weight record for this resolution."""
        return WeightRecord(
            path=path,
            layer=layer,
            layer_class=self.layer_class,
            weight=weight,
            shape=tuple(int(d) for d in shape),
            dtype=dtype,
            read=read,
            read_chunks=read_chunks,
            initializer=self.initializer,
            argument=self.argument,
            default_initializer=self.default_initializer,
            fan_axes=self.fan_axes,
            notes=list(self.notes),
            settings=dict(self.settings),
            fan_caveat=self.fan_caveat,
            layer_config=self.layer_config,
            forget_gate_bias=self.forget_gate_bias,
            inferred=inferred,
            custom_layer=custom_layer,
            location=location,
        )


def resolve_slot(
    entry: Mapping[str, Any] | None,
    slot: WeightSlot | None,
    *,
    shape: Sequence[int],
    era: Era = UNKNOWN,
    owner_class: str | None = None,
    fan_axes: tuple[list[int], list[int]] | None = None,
    configured: bool = True,
) -> Resolution:
    """Resolve one variable of a Keras 2 or 3 layer.

    Args:
        entry: the config entry whose config holds the variable's initializer argument (for a cell,
            its recurrent layer; for a MultiHeadAttention sublayer, the attention layer).
        slot: the variable's slot, or None when its name is unknown.
        shape: the variable's shape (old Keras's initializers depend on it through the fans).
        era: the Keras that wrote the file.
        owner_class: the class of the layer that owns the variable when it is not `entry`'s.
        fan_axes: the kernel's fan axes when the owner derives them (EinsumDense).
        configured: False for a weights-only file whose entry was only guessed (no initializer).
    """
    entry_class = class_of(entry)
    class_name = owner_class or entry_class
    config = config_of(entry)
    out = Resolution(layer_class=class_name, layer_config=config)
    if entry is None:
        out.notes.append("no config for this layer: names and initializers unknown")
        return out
    out.settings = {key: config[key] for key in SETTINGS.get(entry_class or "", ()) if key in config}
    if slot is None:
        out.notes.append(f"layer class {class_name} is not known to initcli: initializer unknown")
        return out
    if slot.note:
        out.notes.append(slot.note)
    if slot.fan_caveat:
        out.fan_caveat = slot.note
    out.argument = slot.argument
    out.forget_gate_bias = (
        slot.name == "bias" and class_name in FORGET_GATE_CELLS and bool(out.settings.get("unit_forget_bias"))
    )
    if slot.name == "kernel" and class_name in _EINSUM_OWNERS and _before_einsum_fans(era):
        out.notes.append(f"{era.label}: fans of the kernel shape (einsum axes count from Keras {_EINSUM_FANS_FROM})")
    elif slot.name == "kernel" and era.line not in ("keras2", "tf.keras"):
        if fan_axes is None and class_name == "EinsumDense":
            fan_axes = einsum_fan_axes(config.get("equation", ""))
        out.fan_axes = fan_axes
        if fan_axes is not None and era.numbers is None and len(shape) > 2:
            out.notes.append(
                f"Keras version not recorded: fans by the einsum axes, as Keras {_EINSUM_FANS_FROM}+ draws them "
                "(Keras 3.0-3.14 used the kernel shape's)"
            )
    elif slot.name == "kernel" and class_name in _EINSUM_OWNERS:
        out.notes.append(f"{era.label}: fans of the kernel shape (Keras 2 ignores the einsum axes)")
    defaults = DEFAULTS.get(entry_class or "") or DEFAULTS.get(
        _CELL_DEFAULTS.get(class_name or "", class_name or ""), {}
    )
    default = defaults.get(slot.argument) if slot.argument else None
    if default is not None:
        out.default_initializer = default
        if era.line == "keras2" and default == "glorot_uniform":
            # Multi-backend Keras 2 serialized its default as what it is (keras/initializers.py@2.1.6).
            glorot = {
                "class_name": "VarianceScaling",
                "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"},
            }
            out.default_initializer = translate(glorot, shape, era).identifier
    if configured and slot.argument is None and class_name in _DERIVED:
        out.initializer = _DERIVED[class_name](config)
        out.default_initializer = out.initializer
    if configured and slot.argument:
        translated = translate(config.get(slot.argument), shape, era)
        out.initializer = _without_saving_keys(translated.identifier)
        if translated.note:
            out.notes.append(translated.note)
        if era.backend == "theano" and _theano_clipped(out.initializer, era):
            out.notes.append(
                f"{era.label} with Theano clipped its truncated normal at ±2 stddev (values piled at the bounds): "
                "no Keras 3 equivalent, not tested"
            )
            out.initializer = None
    return out


def _theano_clipped(identifier: Mapping[str, Any] | None, era: Era) -> bool:
    """Keras 2.0-2.1 on Theano clipped instead of truncating (keras/backend/theano_backend.py@2.1.6)."""
    if era.line != "keras2" or (era.numbers or (0, 0, 0)) >= (2, 2, 0) or identifier is None:
        return False
    config = mapping(identifier.get("config"))
    return identifier.get("class_name") == "TruncatedNormal" or config.get("distribution") == "truncated_normal"


def _without_saving_keys(identifier: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    # tf_keras's SavedModel serialization adds `shared_object_id`; it is not part of the initializer.
    if identifier is None or "shared_object_id" not in identifier:
        return identifier
    return {k: v for k, v in identifier.items() if k != "shared_object_id"}


def find_by_name(
    entry: Mapping[str, Any], components: Sequence[str], rank: int
) -> tuple[Mapping[str, Any], str | None, WeightSlot | None, tuple[list[int], list[int]] | None]:
    """For a variable named by `components` under the layer `entry`: (config entry, owner class, slot, fan axes).

    The config entry is the one whose config holds the variable's initializer argument.
    """
    class_name = class_of(entry)
    config = config_of(entry)
    variable = components[-1] if components else ""
    if class_name == "Bidirectional":
        inner = mapping(config.get("layer"))
        if len(components) >= 2 and components[0].startswith("backward") and config.get("backward_layer"):
            inner = mapping(config["backward_layer"])
        return find_by_name(inner, components, rank)
    if class_name == "TimeDistributed":
        return find_by_name(mapping(config.get("layer")), components, rank)
    if class_name in RNN_CELLS:
        cell = RNN_CELLS[class_name]
        slots = slots_of(cell, config) or []
        return entry, cell, next((s for s in slots if s.name == variable), None), None
    if class_name == "MultiHeadAttention" and len(components) >= 2:
        sublayer = ATTENTION_NAMES.get(components[-2])
        if sublayer is not None:
            argument = "kernel_initializer" if variable == "kernel" else "bias_initializer"
            axes = attention_fan_axes(sublayer, rank) if variable == "kernel" else None
            return entry, "EinsumDense", WeightSlot(variable, argument), axes
    slot_name = _SLOT_NAMES.get((class_name or "", variable), variable)
    if re.fullmatch(r"variable_\d+", slot_name):
        slot_name = "variable"  # Keras 3's auto-named variables are numbered across the model
    slots = slots_of(class_name, config) or []
    return entry, class_name, next((s for s in slots if s.name == slot_name), None), None


def resolve_keras1(entry: Mapping[str, Any], suffix: str, shape: Sequence[int], era: Era) -> Resolution:
    """Resolve a Keras 1 weight `<layer>_<suffix>` of the layer `entry` (keras/layers/*.py@1.2.2)."""
    class_name = entry.get("class_name") if isinstance(entry.get("class_name"), str) else None
    config = config_of(entry)
    out = Resolution(layer_class=class_name, layer_config=config)
    weight = keras1_weight(class_name, suffix)
    if weight is None:
        known = "" if class_name in KERAS1_WEIGHTS else f"layer class {class_name} is not known to initcli; "
        out.notes.append(f"{known}Keras 1 weight {suffix!r}: initializer unknown")
        return out
    out.argument = weight.argument
    if weight.note:
        out.notes.append(weight.note)
    version = era.version or "1"
    ordering = dim_ordering_of(weight, config)
    name = config.get(weight.argument, weight.default) if weight.argument else weight.default
    if weight.note == _LSTM_BIAS_NOTE:
        # A fused LSTM bias is zeros with forget_bias_init's values in the forget quarter.
        out.settings = {"forget_bias_init": name}
        if name in ("zero", "one"):
            out.initializer = {"class_name": "Zeros", "config": {}}
            out.forget_gate_bias = name == "one"
        else:
            out.notes.append(f"forget_bias_init {name!r} fills one quarter: no single initializer, not tested")
        return out
    translated = translate_keras1(name, shape, ordering, version, era.numbers)
    out.initializer = translated.identifier
    default = translate_keras1(weight.default, shape, ordering, version, era.numbers).identifier
    out.default_initializer = default
    if translated.note:
        out.notes.append(translated.note)
    if class_name == "BatchNormalization":
        out.settings = {key: config[key] for key in ("momentum", "epsilon", "axis", "mode") if key in config}
    return out
