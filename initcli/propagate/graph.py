"""A saved model's layer graph, read from its Keras config (no TensorFlow).

Sequential and Functional models of Keras 3 (`.keras`) and of Keras 2 / tf.keras (an `.h5`'s
`model_config`: Sequential as a list or a dict of layers, `Model`/`Functional` with Keras 2's
`[[name, node, tensor, kwargs], ...]` inbound nodes) are understood; each layer is called once and
has one output (shared layers and nested models are left to the measurement).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from initcli.errors import InitcliError
from initcli.safety import budget


@dataclass(kw_only=True)
class LayerNode:
    """One layer call: its name, class, config and the names of the layers feeding it."""

    name: str
    class_name: str
    config: Mapping[str, Any]
    inputs: list[str] = field(default_factory=list)


def activation_name(value: Any) -> str | None:
    """The activation's name from a layer config value: "relu", a serialized function dict, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        config = value.get("config")
        if isinstance(config, str):
            return config
        if isinstance(value.get("class_name"), str) and value.get("class_name") != "function":
            return str(value["class_name"])
    return "unknown"


def layer_activation(class_name: str, config: Mapping[str, Any]) -> str | None:
    """The activation a layer applies to its output, or None for layers that apply none."""
    if class_name == "Activation":
        return activation_name(config.get("activation"))
    if class_name == "ReLU":
        return "relu" if not config.get("negative_slope") else "leaky_relu"
    if class_name == "LeakyReLU":
        return "leaky_relu"
    if class_name == "ELU":
        return "elu"
    if class_name == "Softmax":
        return "softmax"
    if "activation" in config:
        name = activation_name(config.get("activation"))
        return None if name == "linear" else name
    return None


def _tensor_sources(value: Any) -> list[str]:
    """Layer names in a Keras 3 inbound-node argument structure (`__keras_tensor__` histories)."""
    found: list[str] = []
    if _keras2_inbound(value):
        return [str(value[0])]
    if isinstance(value, Mapping):
        if value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                found.append(history[0])
            return found
        for item in value.values():
            found += _tensor_sources(item)
    elif isinstance(value, list):
        for item in value:
            found += _tensor_sources(item)
    return found


def _keras2_inbound(value: Any) -> bool:
    """Keras 2's reference to a layer's output: [name, node_index, tensor_index(, kwargs)]."""
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and isinstance(value[2], int)
    )


def read_graph(config: Mapping[str, Any] | None) -> list[LayerNode]:
    """The model's layers in graph order, each with the layers it reads from.

    Raises:
        InitcliError: no config, or a model class other than Sequential/Functional.
        BudgetError: more layers than the command's budget allows (`Budget.max_layers`).
    """
    if not isinstance(config, Mapping):
        raise InitcliError("the file has no model config (a .weights.h5 or legacy .h5): nothing to propagate through")
    class_name = config.get("class_name")
    inner = config.get("config") or {}
    # Keras 2.0-2.2.2 wrote a Sequential's config as the list of its layers.
    layers = inner if isinstance(inner, list) else inner.get("layers") if isinstance(inner, Mapping) else None
    if not isinstance(layers, list):
        raise InitcliError(f"cannot read the layers of a {class_name} model from its config")
    budget.active().check_layers(len(layers), "the model config")
    nodes: list[LayerNode] = []
    if class_name == "Sequential":
        previous: str | None = None
        for entry in layers:
            node = _node(entry)
            if previous is not None:
                node.inputs = [previous]
            nodes.append(node)
            previous = node.name
        if nodes and nodes[0].class_name != "InputLayer":
            batch_shape = nodes[0].config.get("batch_shape") or nodes[0].config.get("batch_input_shape")
            if batch_shape is not None:
                nodes.insert(0, LayerNode(name="input", class_name="InputLayer", config={"batch_shape": batch_shape}))
                nodes[1].inputs = ["input"]
        return nodes
    if class_name in ("Functional", "Model"):
        for entry in layers:
            node = _node(entry)
            inbound = entry.get("inbound_nodes") or []
            if len(inbound) > 1:
                node.config = {**node.config, "_shared": True}
            node.inputs = _tensor_sources(inbound[0]) if inbound else []
            nodes.append(node)
        return nodes
    raise InitcliError(f"cannot propagate through a {class_name} model from its config")


def _node(entry: Any) -> LayerNode:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("class_name"), str):
        raise InitcliError("a layer entry of the model config has no class_name")
    config = entry.get("config")
    config = dict(config) if isinstance(config, Mapping) else {}
    name = config.get("name") or entry.get("name") or entry["class_name"]
    return LayerNode(name=str(name), class_name=str(entry["class_name"]), config=config)


def output_names(config: Mapping[str, Any] | None, nodes: list[LayerNode]) -> list[str]:
    """The names of the layers whose outputs are the model's outputs."""
    inner = (config or {}).get("config") or {}
    declared = inner.get("output_layers") if isinstance(inner, Mapping) else None
    names: list[str] = []
    if isinstance(declared, list):
        entries = declared if declared and isinstance(declared[0], list) else [declared]
        names = [str(entry[0]) for entry in entries if isinstance(entry, list) and entry]
    if not names and nodes:
        consumed = {source for node in nodes for source in node.inputs}
        names = [node.name for node in nodes if node.name not in consumed and node.class_name != "InputLayer"]
    return names
