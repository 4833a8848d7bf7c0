"""The measurement: one forward (and backward) pass through a Keras model, every layer's output at once.

One multi-output model (the model's inputs to every layer's output) is called once inside one
`tf.function`; each output is reduced to its statistics inside the graph, so TensorFlow frees each
activation as soon as it is summarized and memory stays near that of one ordinary forward pass.
The backward pass differentiates L = Σ y · g with g ~ N(0, 1) (a fixed stateless draw) at the
model's outputs, w.r.t. every layer output and every trainable weight.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initcli.errors import InitcliError
from initcli.propagate.graph import layer_activation
from initcli.propagate.report import Measured, WeightGradient

_RELU_FAMILY = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "relu6")
SATURATION = 0.99


@dataclass(kw_only=True)
class LayerInfo:
    """A layer of the live model, in graph order."""

    name: str
    class_name: str
    activation: str | None
    output_shape: tuple[int | None, ...] | None


@dataclass(kw_only=True)
class Measurement:
    """What one pass measured: per layer (by name) statistics, and per weight its gradient."""

    layers: list[LayerInfo]
    measured: dict[str, Measured]
    weights: dict[str, list[WeightGradient]] = field(default_factory=dict)


def _activation_kind(activation: str | None) -> str | None:
    if activation in _RELU_FAMILY:
        return "relu"
    if activation in ("tanh", "sigmoid"):
        return activation
    return None


def layer_infos(model: Any) -> tuple[list[LayerInfo], list[Any]]:
    """The model's layers (inputs excluded) in graph order, with their symbolic outputs."""
    infos, outputs = [], []
    # A loaded Sequential's layers were called more than once while Keras rebuilt it; only the
    # nodes of the model's own graph lead to its outputs, so take those.
    graph = getattr(model, "_functional", None) or model
    own_outputs: dict[int, list[Any]] = {}
    for nodes in (getattr(graph, "_nodes_by_depth", None) or {}).values():
        for node in nodes:
            own_outputs.setdefault(id(node.operation), []).append(node.outputs)
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        calls = own_outputs.get(id(layer))
        if calls is not None and len(calls) > 1:
            raise InitcliError(f"layer {layer.name} is called {len(calls)} times; initcli measures layers called once")
        try:
            output = calls[0][0] if calls is not None and len(calls[0]) == 1 else layer.output
        except (AttributeError, ValueError) as error:
            raise InitcliError(f"layer {layer.name} has no single output to measure ({error})") from None
        if not hasattr(output, "shape"):
            raise InitcliError(f"layer {layer.name} has several outputs; initcli measures single-output layers")
        config = layer.get_config() if hasattr(layer, "get_config") else {}
        infos.append(
            LayerInfo(
                name=layer.name,
                class_name=type(layer).__name__,
                activation=layer_activation(type(layer).__name__, config),
                output_shape=tuple(output.shape[1:]),
            )
        )
        outputs.append(output)
    return infos, outputs


def _reduce(tf: Any, y: Any, kind: str | None) -> dict[str, Any]:
    """Statistics of one output, inside the graph, in float64."""
    values = tf.cast(y, tf.float64)
    channels = tf.shape(values)[-1] if len(values.shape) > 1 else 1
    flat = tf.reshape(values, [-1, channels])
    finite = tf.math.is_finite(flat)
    mean = tf.reduce_mean(flat)
    channel_mean = tf.reduce_mean(flat, axis=0)
    stats = {
        "mean": mean,
        "var": tf.reduce_mean(tf.square(flat - mean)),
        "second": tf.reduce_mean(tf.square(flat)),
        "channel_sq_mean": tf.reduce_mean(tf.square(channel_mean)),
        "channel_var": tf.reduce_mean(tf.square(flat - channel_mean)),
        "nonfinite": tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.int64)),
    }
    if kind == "relu":
        never_positive = tf.reduce_all(tf.logical_not(flat > 0), axis=0)
        stats["dead"] = tf.reduce_mean(tf.cast(never_positive, tf.float64))
    elif kind == "tanh":
        stats["saturated"] = tf.reduce_mean(tf.cast(tf.abs(flat) > SATURATION, tf.float64))
    elif kind == "sigmoid":
        saturated = tf.logical_or(flat < 1.0 - SATURATION, flat > SATURATION)
        stats["saturated"] = tf.reduce_mean(tf.cast(saturated, tf.float64))
    return stats


def _rms(tf: Any, value: Any) -> Any:
    return tf.sqrt(tf.reduce_mean(tf.square(tf.cast(value, tf.float64))))


def _model_output_indices(model: Any, outputs: list[Any]) -> list[int]:
    indices = []
    for tensor in model.outputs:
        for index, candidate in enumerate(outputs):
            if candidate is tensor:
                indices.append(index)
                break
        else:
            raise InitcliError("cannot find the model's outputs among its layers' outputs")
    return indices


def measure(
    model: Any, inputs: np.ndarray, *, training: bool = True, backward: bool = False, seed: int = 0
) -> Measurement:
    """One pass of `inputs` through `model`, summarized per layer output (and per weight, backward)."""
    from initcli.keras_bridge import import_keras

    keras = import_keras()
    import tensorflow as tf  # type: ignore[import-untyped]

    if len(model.inputs) != 1:
        raise InitcliError(f"the model has {len(model.inputs)} inputs; initcli propagate feeds models with one")
    infos, outputs = layer_infos(model)
    if not infos:
        raise InitcliError("the model has no layers to measure")
    probe = keras.Model(model.inputs, outputs)
    kinds = [_activation_kind(info.activation) for info in infos]
    final = _model_output_indices(model, outputs)
    weights = list(model.trainable_weights) if backward else []

    @tf.function(reduce_retracing=True)
    def run(x: Any) -> Any:
        with tf.GradientTape(watch_accessed_variables=backward) as tape:
            ys = probe(x, training=training)
            ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
            loss = tf.constant(0.0, tf.float64)
            if backward:
                for number, index in enumerate(final):
                    target = tf.random.stateless_normal(tf.shape(ys[index]), seed=[seed, number], dtype=tf.float64)
                    loss += tf.reduce_sum(tf.cast(ys[index], tf.float64) * target)
        stats = [_reduce(tf, y, kind) for y, kind in zip(ys, kinds)]
        if not backward:
            return stats, [], []
        gradients = tape.gradient(loss, ys + weights)
        layer_grads = [
            _rms(tf, g) if g is not None else tf.constant(math.nan, tf.float64) for g in gradients[: len(ys)]
        ]
        weight_grads = [
            _rms(tf, g) if g is not None else tf.constant(math.nan, tf.float64) for g in gradients[len(ys) :]
        ]
        return stats, layer_grads, weight_grads

    dtype = model.inputs[0].dtype
    stats, layer_grads, weight_grads = run(tf.constant(inputs, dtype=dtype))
    measured = {}
    for position, (info, stat) in enumerate(zip(infos, stats)):
        values = {key: value.numpy().item() for key, value in stat.items()}
        measured[info.name] = Measured(
            mean=values["mean"],
            std=math.sqrt(values["var"]) if values["var"] >= 0 else math.nan,
            rms=math.sqrt(values["second"]) if values["second"] >= 0 else math.nan,
            channel_sq_mean=values["channel_sq_mean"],
            channel_var=values["channel_var"],
            dead_fraction=values.get("dead"),
            saturated_fraction=values.get("saturated"),
            nonfinite=int(values["nonfinite"]),
            grad_rms=float(layer_grads[position].numpy()) if backward else None,
        )
    gradients_by_layer: dict[str, list[WeightGradient]] = {}
    for variable, gradient in zip(weights, weight_grads):
        path = str(variable.path)
        layer_name = path.split("/")[-2] if "/" in path else path
        weight_rms = float(np.sqrt(np.mean(np.square(np.asarray(variable.numpy(), dtype=np.float64)))))
        grad = float(gradient.numpy())
        gradients_by_layer.setdefault(layer_name, []).append(
            WeightGradient(path=path, weight_rms=weight_rms, grad_rms=grad if math.isfinite(grad) else None)
        )
    return Measurement(layers=infos, measured=measured, weights=gradients_by_layer)


def model_weights(model: Any) -> dict[str, dict[str, np.ndarray]]:
    """Each layer's weights by name ("kernel", "bias", "moving_mean", ...), as the static prediction reads them."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    for variable in model.weights:
        parts = str(variable.path).split("/")
        layer_name = parts[-2] if len(parts) > 1 else parts[0]
        weights.setdefault(layer_name, {})[parts[-1]] = np.asarray(variable.numpy())
    return weights


def model_config(model: Any) -> Mapping[str, Any]:
    """The model's config as a saved `.keras` file holds it."""
    from initcli.keras_bridge import import_keras

    keras = import_keras()
    # Through JSON, so tuples become lists exactly as in a saved file.
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model), default=str))


def reinitialize(model: Any, initializer: Mapping[str, Any], seed: int) -> int:
    """Redraw every kernel of the model with `initializer` (a Keras config dict); returns how many."""
    from initcli.keras_bridge import import_keras

    keras = import_keras()
    count = 0
    for index, variable in enumerate(model.weights):
        if str(variable.path).rsplit("/", 1)[-1] not in ("kernel", "depthwise_kernel"):
            continue
        config = dict(initializer.get("config") or {})
        if "seed" in config:
            config["seed"] = seed + index
        drawn = keras.initializers.get({"class_name": initializer["class_name"], "config": config})
        variable.assign(drawn(shape=tuple(variable.shape), dtype=variable.dtype))
        count += 1
    return count


def _set_dtype(value: Any, dtype: str) -> Any:
    if isinstance(value, dict):
        updated = {}
        for key, item in value.items():
            if key == "dtype" and (
                isinstance(item, str) or (isinstance(item, dict) and "Policy" in str(item.get("class_name")))
            ):
                updated[key] = dtype
            else:
                updated[key] = _set_dtype(item, dtype)
        return updated
    if isinstance(value, list):
        return [_set_dtype(item, dtype) for item in value]
    return value


def cast_model(model: Any, dtype: str) -> Any:
    """A copy of the model computing in `dtype` (every layer's dtype policy), with the same weights."""
    from initcli.keras_bridge import import_keras

    keras = import_keras()
    config = _set_dtype(keras.saving.serialize_keras_object(model), dtype)
    try:
        clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:  # custom layers Keras cannot rebuild
        raise InitcliError(f"cannot rebuild the model in {dtype}: {error}") from None
    clone.set_weights([np.asarray(w).astype(dtype) for w in model.get_weights()])
    return clone
