"""The measurement: one forward (and backward) pass through a Keras model, every layer's output at once.

One multi-output model (the model's inputs to every layer's output) is called once; each output is
reduced to its statistics in TensorFlow (float32, two-pass: the mean first, then centred squares).
Eager execution: tracing a graph of a large model costs more than its forward pass; every output is
held until it is summarized (ResNet50, batch 8: see benchmarks/bench_propagate.py for the memory).
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
from initcli.safety import budget

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
    """Per channel (last axis): the mean and the centred variance (two passes, float32; float64 for
    float64 outputs); the scalars are combined from these in float64 by `_summarize`."""
    compute = tf.float64 if y.dtype == tf.float64 else tf.float32
    values = tf.cast(y, compute)
    channels = values.shape[-1] if len(values.shape) > 1 else 1
    flat = tf.reshape(values, [-1, channels])
    channel_mean = tf.reduce_mean(flat, axis=0)
    stats = {
        "channel_mean": channel_mean,
        "channel_var": tf.reduce_mean(tf.square(flat - channel_mean), axis=0),
    }
    if kind == "relu":
        stats["dead"] = tf.reduce_mean(tf.cast(tf.reduce_max(flat, axis=0) <= 0, compute))
    elif kind == "tanh":
        stats["saturated"] = tf.reduce_mean(tf.cast(tf.abs(flat) > SATURATION, compute))
    elif kind == "sigmoid":
        saturated = tf.logical_or(flat < 1.0 - SATURATION, flat > SATURATION)
        stats["saturated"] = tf.reduce_mean(tf.cast(saturated, compute))
    return stats


def _count_nonfinite(tf: Any, y: Any) -> int:
    return int(tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(y)), tf.int64)).numpy())


def _summarize(stats: Mapping[str, Any], nonfinite: int, grad_rms: float | None) -> Measured:
    channel_mean = np.asarray(stats["channel_mean"].numpy(), dtype=np.float64)
    channel_var = np.asarray(stats["channel_var"].numpy(), dtype=np.float64)
    with np.errstate(all="ignore"):
        mean = float(np.mean(channel_mean))
        channel_sq_mean = float(np.mean(channel_mean * channel_mean))
        within = float(np.mean(channel_var))
        # Var over all elements = average within-channel variance + variance of the channel means.
        var = within + channel_sq_mean - mean * mean
        second = within + channel_sq_mean
    return Measured(
        mean=mean,
        std=math.sqrt(var) if var >= 0 else math.nan,
        rms=math.sqrt(second) if second >= 0 else math.nan,
        channel_sq_mean=channel_sq_mean,
        channel_var=within,
        dead_fraction=float(stats["dead"].numpy()) if "dead" in stats else None,
        saturated_fraction=float(stats["saturated"].numpy()) if "saturated" in stats else None,
        nonfinite=nonfinite,
        grad_rms=grad_rms,
    )


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
    from initcli.keras.bridge import import_keras

    keras = import_keras()
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise InitcliError(f"the model has {len(model.inputs)} inputs; initcli propagate feeds models with one")
    infos, outputs = layer_infos(model)
    if not infos:
        raise InitcliError("the model has no layers to measure")
    budget.active().check_layers(len(infos), "the model")
    probe = keras.Model(model.inputs, outputs)
    kinds = [_activation_kind(info.activation) for info in infos]
    final = _model_output_indices(model, outputs)
    weights = list(model.trainable_weights) if backward else []

    # Eagerly: tracing a graph of a large model costs more than its forward pass.
    x = tf.constant(inputs, dtype=model.inputs[0].dtype)
    with tf.GradientTape(watch_accessed_variables=backward) as tape:
        outputs_now = probe(x, training=training)
        ys = list(outputs_now) if isinstance(outputs_now, (list, tuple)) else [outputs_now]
        loss = tf.constant(0.0, tf.float64)
        if backward:
            for number, index in enumerate(final):
                target = tf.random.stateless_normal(tf.shape(ys[index]), seed=[seed, number], dtype=tf.float64)
                loss += tf.reduce_sum(tf.cast(ys[index], tf.float64) * target)
    layer_grads: list[Any] = []
    weight_grads: list[Any] = []
    if backward:
        gradients = tape.gradient(loss, ys + weights)
        missing = tf.constant(math.nan, tf.float64)
        layer_grads = [_rms(tf, g) if g is not None else missing for g in gradients[: len(ys)]]
        weight_grads = [_rms(tf, g) if g is not None else missing for g in gradients[len(ys) :]]
        del gradients
    measured = {}
    for index, (info, kind) in enumerate(zip(infos, kinds)):
        stats = _reduce(tf, ys[index], kind)
        finite = np.all(np.isfinite(stats["channel_mean"].numpy())) and np.all(
            np.isfinite(stats["channel_var"].numpy())
        )
        nonfinite = 0 if finite else _count_nonfinite(tf, ys[index])
        grad_rms = float(layer_grads[index].numpy()) if backward else None
        measured[info.name] = _summarize(stats, nonfinite, grad_rms)
        ys[index] = None  # let TensorFlow free it
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
        if len(parts) > 2:  # `lstm/lstm_cell/kernel` is also the LSTM `lstm`'s
            weights.setdefault(parts[0], {}).setdefault(parts[-1], weights[layer_name][parts[-1]])
        if len(parts) > 3:  # tf_keras: `bidirectional/forward_lstm/lstm_cell/kernel`
            weights.setdefault(f"{parts[0]}/{parts[1]}", {}).setdefault(parts[-1], weights[layer_name][parts[-1]])
    return weights


def model_config(model: Any) -> Mapping[str, Any]:
    """The model's config as a saved `.keras` file holds it."""
    from initcli.keras.bridge import import_keras

    keras = import_keras()
    # Through JSON, so tuples become lists exactly as in a saved file.
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model), default=str))


def reinitialize(model: Any, initializer: Mapping[str, Any], seed: int) -> int:
    """Redraw every kernel of the model with `initializer` (a Keras config dict); returns how many."""
    from initcli.keras.bridge import import_keras

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
    from initcli.keras.bridge import import_keras

    keras = import_keras()
    config = _set_dtype(keras.saving.serialize_keras_object(model), dtype)
    try:
        clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:  # custom layers Keras cannot rebuild
        raise InitcliError(f"cannot rebuild the model in {dtype}: {error}") from None
    clone.set_weights([np.asarray(w).astype(dtype) for w in model.get_weights()])
    return clone
