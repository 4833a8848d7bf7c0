"""The mean-field prediction of signal propagation, from a saved model's config and weights alone.

No TensorFlow: each layer's output is described by the mean and second moment of its elements
(treated as identically distributed, and Gaussian after a weight layer), and pushed through the
layers in graph order (Schoenholz et al. 2017; Pennington et al. 2017):

- Dense/Conv: h = W x + b with the kernel's actual second moment v_w = mean(W²) and its actual fan_in
  n (for convolutions, the average number of taps inside the input, so 'same' padding's zeros count):
  E[h²] = n · v_w · E[x²] + mean(b²); then the layer's activation φ: E[φ(h)²] by numerical integration.
- Backward, for L = Σ y · g with g ~ N(0, 1) at the model outputs: E[(∂L/∂x)²] = χ · E[(∂L/∂y)²] with
  χ = fan_out · v_w · E[φ'(h)²] (fan_out: the average number of outputs each input reaches).
- BatchNormalization (training mode: batch statistics; inference mode: moving statistics), residual
  Add (branches uncorrelated), Dropout, pooling (positions treated as independent), padding and
  shape-only layers. Other layers end the prediction (a note says where).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from initcli.errors import InitcliError
from initcli.propagate import gaussian
from initcli.propagate.graph import LayerNode, layer_activation, output_names, read_graph
from initcli.propagate.report import Predicted

KERNEL_WEIGHTS = ("kernel", "depthwise_kernel")
_SHAPE_ONLY = {"Flatten", "Reshape", "Permute", "Identity", "InputLayer", "Cropping1D", "Cropping2D", "Cropping3D"}
_DENSE = {"Dense"}
_CONV = {"Conv1D", "Conv2D", "Conv3D"}
_DEPTHWISE = {"DepthwiseConv1D", "DepthwiseConv2D"}
_TRANSPOSE = {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}


class Unsupported(Exception):
    """This layer is not modelled; the prediction stops here."""


@dataclass(frozen=True, kw_only=True)
class InputSignal:
    """The input batch's elements: their mean and second moment, and how they were made."""

    kind: str
    mean: float
    second: float

    @classmethod
    def named(cls, kind: str) -> InputSignal:
        """`normal`: N(0, 1); `uniform`: U(0, 1), like pixel intensities scaled to [0, 1]."""
        if kind == "normal":
            return cls(kind="normal", mean=0.0, second=1.0)
        if kind == "uniform":
            return cls(kind="uniform", mean=0.5, second=1.0 / 3.0)
        raise InitcliError(f"unknown input kind {kind!r}")

    @classmethod
    def of_array(cls, kind: str, values: np.ndarray) -> InputSignal:
        data = np.asarray(values, dtype=np.float64)
        return cls(kind=kind, mean=float(data.mean()), second=float(np.mean(data * data)))


@dataclass(kw_only=True)
class _State:
    """What is known about one layer's output: moments, shape (without batch), and its source."""

    mean: float
    second: float
    shape: tuple[int | None, ...]
    # When the elements are φ(h) with h ~ N(pre_mean, pre_var): lets pooling take maxima exactly.
    source: tuple[gaussian.Activation, float, float] | None = None

    @property
    def var(self) -> float:
        return max(self.second - self.mean * self.mean, 0.0)


@dataclass(kw_only=True)
class _Step:
    state: _State
    forward_gain: float | None
    chi: list[float]  # one backward gain per input


@dataclass(kw_only=True)
class StaticPrediction:
    """Per-layer predictions by layer name (None past the first unmodelled layer), and notes."""

    nodes: list[LayerNode]
    predicted: dict[str, Predicted | None]
    shapes: dict[str, tuple[int | None, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stopped_at: str | None = None


def _as_tuple(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    return tuple(int(v) for v in value)


def _valid_taps(length: int | None, kernel: int, stride: int, dilation: int, padding: str) -> tuple[float, int | None]:
    """The average count of kernel taps inside the input per output position, and the output length."""
    if length is None:
        return float(kernel), None
    span = dilation * (kernel - 1) + 1
    if padding == "valid":
        out = (length - span) // stride + 1
        before = 0
    elif padding == "same":
        out = -(-length // stride)
        before = max((out - 1) * stride + span - length, 0) // 2
    elif padding == "causal":
        out = -(-length // stride)
        before = span - 1
    else:
        raise Unsupported(f"padding {padding!r}")
    if out <= 0:
        raise Unsupported("the kernel is larger than its input")
    positions = np.arange(out)[:, None] * stride - before + np.arange(kernel)[None, :] * dilation
    inside = (positions >= 0) & (positions < length)
    return float(inside.sum(axis=1).mean()), out


def _activation_of(node: LayerNode) -> gaussian.Activation | None:
    """The layer's elementwise activation; None for softmax (over the last axis)."""
    name = layer_activation(node.class_name, node.config)
    if name == "softmax":
        if node.class_name == "Softmax" and node.config.get("axis", -1) not in (-1, [-1]):
            raise Unsupported("softmax over an axis other than the last")
        return None
    slope = node.config.get("negative_slope") if node.class_name in ("LeakyReLU", "ReLU") else None
    alpha = node.config.get("alpha") if node.class_name == "ELU" else None
    if node.class_name == "ReLU" and (node.config.get("max_value") is not None or node.config.get("threshold")):
        raise Unsupported("ReLU with max_value or threshold")
    phi = gaussian.activation(name, negative_slope=slope, alpha=alpha)
    if phi is None:
        raise Unsupported(f"activation {name!r}")
    return phi


def _activate(node: LayerNode, pre_mean: float, pre_second: float, shape: tuple[int | None, ...]) -> tuple[_State, float]:
    """Apply the layer's activation to a Gaussian pre-activation; returns the state and E[φ'(h)²]."""
    phi = _activation_of(node)
    pre_var = max(pre_second - pre_mean * pre_mean, 0.0)
    if phi is None:
        units = shape[-1] if shape else None
        if units is None or not (math.isfinite(pre_mean) and math.isfinite(pre_var)):
            raise Unsupported("softmax over an unknown number of units")
        m = gaussian.softmax_moments(pre_mean, pre_var, units)
        return _State(mean=m.mean, second=m.second, shape=shape), m.derivative_second
    if phi.name == "linear":
        return _State(mean=pre_mean, second=pre_second, shape=shape, source=(phi, pre_mean, pre_var)), 1.0
    if not (math.isfinite(pre_mean) and math.isfinite(pre_var)):
        return _State(mean=math.nan, second=math.inf, shape=shape), math.nan
    m = gaussian.moments(phi, pre_mean, pre_var)
    return _State(mean=m.mean, second=m.second, shape=shape, source=(phi, pre_mean, pre_var)), m.derivative_second


def _weight_layer(node: LayerNode, state: _State, weights: Mapping[str, np.ndarray]) -> _Step:
    kernel = weights.get("kernel", weights.get("depthwise_kernel"))
    if kernel is None:
        raise Unsupported("no kernel among the saved weights")
    kernel = np.asarray(kernel, dtype=np.float64)
    weight_second = float(np.mean(kernel * kernel))
    bias = weights.get("bias")
    bias_mean = float(np.mean(bias)) if bias is not None else 0.0
    bias_second = float(np.mean(np.asarray(bias, dtype=np.float64) ** 2)) if bias is not None else 0.0
    shape = state.shape
    if node.class_name in _DENSE:
        fan_in, fan_out_effective = kernel.shape[0], kernel.shape[-1]
        out_shape = (*shape[:-1], kernel.shape[-1])
    elif node.class_name in _TRANSPOSE:
        # Kernel (*k, out_channels, in_channels); each output position sums about prod(k)/prod(strides)
        # taps of every input channel (borders neglected).
        rank = kernel.ndim - 2
        if node.config.get("data_format", "channels_last") != "channels_last" or len(shape) != rank + 1:
            raise Unsupported("channels_first data or an unexpected input shape")
        strides = _as_tuple(node.config.get("strides", 1), rank)
        if any(d not in (1, None) for d in _as_tuple(node.config.get("dilation_rate", 1), rank)):
            raise Unsupported("dilated transposed convolution")
        taps = math.prod(kernel.shape[:rank])
        fan_in = taps / math.prod(strides) * kernel.shape[-1]
        fan_out_effective = taps * kernel.shape[-2]
        out_shape = (*_transposed_spatial(node, shape[:rank], kernel.shape[:rank], strides), kernel.shape[-2])
    else:
        if node.config.get("data_format", "channels_last") != "channels_last":
            raise Unsupported("channels_first data")
        rank = kernel.ndim - 2
        if len(shape) != rank + 1:
            raise Unsupported(f"input shape {shape} for a {rank}D convolution")
        sizes = _as_tuple(node.config.get("kernel_size", kernel.shape[:rank]), rank)
        strides = _as_tuple(node.config.get("strides", 1), rank)
        dilations = _as_tuple(node.config.get("dilation_rate", 1), rank)
        padding = str(node.config.get("padding", "valid")).lower()
        taps, out_spatial = 1.0, []
        for axis in range(rank):
            mean_taps, out_length = _valid_taps(shape[axis], sizes[axis], strides[axis], dilations[axis], padding)
            taps *= mean_taps
            out_spatial.append(out_length)
        positions_in = math.prod(d for d in shape[:rank] if d is not None) if None not in shape[:rank] else None
        positions_out = math.prod(d for d in out_spatial if d is not None) if None not in out_spatial else None
        ratio = positions_out / positions_in if positions_in and positions_out else 1.0 / math.prod(strides)
        if node.class_name in _DEPTHWISE:
            fan_in = taps
            fan_out_effective = taps * kernel.shape[-1] * ratio
            out_shape = (*out_spatial, kernel.shape[-2] * kernel.shape[-1])
        else:
            fan_in = taps * kernel.shape[-2]
            fan_out_effective = taps * kernel.shape[-1] * ratio
            out_shape = (*out_spatial, kernel.shape[-1])
    pre_second = fan_in * weight_second * state.second + bias_second
    out, derivative_second = _activate(node, bias_mean, pre_second, out_shape)
    chi = fan_out_effective * weight_second * derivative_second
    return _Step(state=out, forward_gain=_ratio(out.second, state.second), chi=[chi])


def _transposed_spatial(
    node: LayerNode, spatial: Sequence[int | None], sizes: Sequence[int], strides: Sequence[int]
) -> list[int | None]:
    padding = str(node.config.get("padding", "valid")).lower()
    out: list[int | None] = []
    for length, size, stride in zip(spatial, sizes, strides):
        if length is None:
            out.append(None)
        elif padding == "same":
            out.append(length * stride)
        else:
            out.append(length * stride + max(size - stride, 0))
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 and math.isfinite(b) else None


def _batch_norm(node: LayerNode, state: _State, weights: Mapping[str, np.ndarray], training: bool) -> _Step:
    axis = node.config.get("axis", -1)
    if axis not in (-1, len(state.shape)) and axis != [-1]:
        raise Unsupported(f"BatchNormalization on axis {axis}")
    channels = state.shape[-1] or 1
    epsilon = float(node.config.get("epsilon", 1e-3))
    gamma = np.asarray(weights.get("gamma", np.ones(channels)), dtype=np.float64)
    beta = np.asarray(weights.get("beta", np.zeros(channels)), dtype=np.float64)
    if training:
        scale = gamma / np.sqrt(state.var + epsilon)
        channel_mean = beta
    else:
        moving_mean = np.asarray(weights.get("moving_mean", np.zeros(channels)), dtype=np.float64)
        moving_var = np.asarray(weights.get("moving_variance", np.ones(channels)), dtype=np.float64)
        scale = gamma / np.sqrt(moving_var + epsilon)
        channel_mean = scale * (state.mean - moving_mean) + beta
    second = float(np.mean(scale * scale * state.var + channel_mean * channel_mean))
    out = _State(mean=float(np.mean(channel_mean)), second=second, shape=state.shape)
    return _Step(state=out, forward_gain=_ratio(out.second, state.second), chi=[float(np.mean(scale * scale))])


def _pool(node: LayerNode, state: _State) -> _Step:
    rank = len(state.shape) - 1
    if node.class_name.startswith("Global"):
        count = math.prod(d or 1 for d in state.shape[:-1])
        out_shape: tuple[int | None, ...] = (state.shape[-1],)
        if node.config.get("keepdims"):
            out_shape = (*(1,) * rank, state.shape[-1])
        ratio = 1.0 / count
    else:
        sizes = _as_tuple(node.config.get("pool_size", 2), rank)
        strides = _as_tuple(node.config.get("strides") or sizes, rank)
        padding = str(node.config.get("padding", "valid")).lower()
        out_spatial = []
        taps = 1.0
        for axis in range(rank):
            mean_taps, out_length = _valid_taps(state.shape[axis], sizes[axis], strides[axis], 1, padding)
            out_spatial.append(out_length)
            taps *= mean_taps
        out_shape = (*out_spatial, state.shape[-1])
        count = max(round(taps), 1)
        positions_in = math.prod(d or 1 for d in state.shape[:-1])
        positions_out = math.prod(d or 1 for d in out_spatial)
        ratio = positions_out / positions_in
    if "Max" in node.class_name:
        if state.source is None or not state.source[0].monotone:
            raise Unsupported("max pooling of a non-Gaussian signal")
        phi, pre_mean, pre_var = state.source
        mean, second = gaussian.max_moments(phi, pre_mean, pre_var, count)
        # The gradient goes to one input of each window.
        chi = ratio
    else:
        mean, second = state.mean, state.mean * state.mean + state.var / count
        chi = ratio / count
    out = _State(mean=mean, second=second, shape=out_shape)
    return _Step(state=out, forward_gain=_ratio(second, state.second), chi=[chi])


def _step(node: LayerNode, inputs: list[_State], weights: Mapping[str, np.ndarray], training: bool) -> _Step:
    name = node.class_name
    if node.config.get("_shared"):
        raise Unsupported("a layer called more than once")
    if name == "Add":
        mean = sum(s.mean for s in inputs)
        second = sum(s.var for s in inputs) + mean * mean
        out = _State(mean=mean, second=second, shape=inputs[0].shape)
        return _Step(state=out, forward_gain=_ratio(second, inputs[0].second), chi=[1.0] * len(inputs))
    if len(inputs) != 1:
        raise Unsupported(f"{len(inputs)} inputs")
    state = inputs[0]
    if name in _DENSE | _CONV | _DEPTHWISE | _TRANSPOSE:
        return _weight_layer(node, state, weights)
    if name == "BatchNormalization":
        return _batch_norm(node, state, weights, training)
    if name in ("Activation", "ReLU", "LeakyReLU", "ELU"):
        out, derivative_second = _activate(node, state.mean, state.second, state.shape)
        return _Step(state=out, forward_gain=_ratio(out.second, state.second), chi=[derivative_second])
    if name == "Dropout":
        rate = float(node.config.get("rate", 0.0)) if training else 0.0
        keep = 1.0 - rate
        out = replace(state, second=state.second / keep, source=None)
        return _Step(state=out, forward_gain=1.0 / keep, chi=[1.0 / keep])
    if name in _SHAPE_ONLY:
        shape = _reshaped(node, state.shape)
        return _Step(state=replace(state, shape=shape), forward_gain=1.0, chi=[1.0])
    if name.startswith("ZeroPadding"):
        padded = _padded(node, state.shape)
        inside = math.prod(d or 1 for d in state.shape[:-1]) / math.prod(d or 1 for d in padded[:-1])
        out = _State(mean=state.mean * inside, second=state.second * inside, shape=padded)
        return _Step(state=out, forward_gain=inside, chi=[1.0])
    if "Pooling" in name:
        return _pool(node, state)
    raise Unsupported(f"{name} is not modelled")


def _reshaped(node: LayerNode, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
    if node.class_name == "Flatten":
        return (math.prod(d or 1 for d in shape),)
    if node.class_name == "Reshape":
        target = tuple(node.config.get("target_shape") or shape)
        total = math.prod(d or 1 for d in shape)
        known = math.prod(d for d in target if d not in (-1, None))
        return tuple(total // known if d in (-1, None) else d for d in target)
    if node.class_name == "Permute":
        dims = node.config.get("dims") or []
        return tuple(shape[d - 1] for d in dims) if dims else shape
    return shape


def _padded(node: LayerNode, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
    rank = len(shape) - 1
    padding = node.config.get("padding", 1)
    if isinstance(padding, int):
        pairs = [(padding, padding)] * rank
    else:
        pairs = [(p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in padding]
    return (*(None if d is None else d + a + b for d, (a, b) in zip(shape[:-1], pairs)), shape[-1])


def _input_shape(node: LayerNode) -> tuple[int | None, ...]:
    shape = node.config.get("batch_shape") or node.config.get("batch_input_shape")
    if not isinstance(shape, (list, tuple)) or not shape:
        raise InitcliError(f"input layer {node.name} has no shape in the config")
    return tuple(shape[1:])


def predict(
    *,
    config: Mapping[str, Any] | None,
    weights: Mapping[str, Mapping[str, np.ndarray]],
    signal: InputSignal,
    training: bool = True,
) -> StaticPrediction:
    """Mean-field prediction for every layer of the model described by `config` and `weights`.

    Args:
        config: the Keras model config (SavedModel.config).
        weights: per layer name, its weights by name ("kernel", "bias", "gamma", ...).
        signal: the input's mean and second moment (the same at every input layer).
        training: BatchNormalization with batch statistics and Dropout active (as in a training step).
    """
    nodes = read_graph(config)
    states: dict[str, _State | None] = {}
    steps: dict[str, _Step | None] = {}
    notes: list[str] = []
    stopped_at = None
    for node in nodes:
        if node.class_name == "InputLayer":
            states[node.name] = _State(mean=signal.mean, second=signal.second, shape=_input_shape(node))
            steps[node.name] = None
            continue
        inputs = [states.get(source) for source in node.inputs]
        if not inputs or any(state is None for state in inputs):
            states[node.name] = steps[node.name] = None
            continue
        try:
            step = _step(node, [s for s in inputs if s is not None], weights.get(node.name, {}), training)
        except Unsupported as reason:
            states[node.name] = steps[node.name] = None
            if stopped_at is None:
                stopped_at = node.name
                notes.append(f"static prediction stops at layer {node.name} ({node.class_name}: {reason})")
            continue
        states[node.name], steps[node.name] = step.state, step
    gradients = _backward(nodes, steps, output_names(config, nodes))
    predicted: dict[str, Predicted | None] = {}
    for node in nodes:
        state, step = states.get(node.name), steps.get(node.name)
        if state is None:
            predicted[node.name] = None
            continue
        gradient = gradients.get(node.name)
        predicted[node.name] = Predicted(
            mean=state.mean,
            var=state.var if math.isfinite(state.second) else math.inf,
            forward_gain=step.forward_gain if step else None,
            chi=(step.chi[0] if step and len(step.chi) == 1 else None),
            grad_rms=math.sqrt(gradient) if gradient is not None else None,
        )
    shapes = {name: state.shape for name, state in states.items() if state is not None}
    return StaticPrediction(nodes=nodes, predicted=predicted, shapes=shapes, notes=notes, stopped_at=stopped_at)


def _backward(nodes: Sequence[LayerNode], steps: Mapping[str, _Step | None], outputs: Iterable[str]) -> dict[str, float]:
    """E[(∂L/∂y)²] at each layer output for L = Σ y · g, g ~ N(0, 1) at the outputs; absent when unknown."""
    known: dict[str, float | None] = {name: 1.0 for name in outputs}
    for node in reversed(nodes):
        gradient = known.get(node.name)
        step = steps.get(node.name)
        for index, source in enumerate(node.inputs):
            if gradient is None or step is None:
                known[source] = None
                continue
            if source in known and known[source] is None:
                continue
            known[source] = (known.get(source) or 0.0) + step.chi[index] * gradient
    return {name: value for name, value in known.items() if value is not None}


def saved_weights(records: Iterable[Any], replacement: Any = None, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Each layer's weights by name from WeightRecords; `replacement(record, index)` may redraw kernels."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    for index, record in enumerate(records):
        if replacement is not None and record.weight in KERNEL_WEIGHTS:
            values = replacement(record, seed + index)
        else:
            values = record.read()
        weights.setdefault(record.layer, {})[str(record.weight)] = np.asarray(values)
    return weights


@dataclass(frozen=True, kw_only=True)
class PropagationFinding:
    """A finding for `initcli check`'s `propagation` check."""

    path: str
    message: str
    severity: str  # "error" | "warning"


def propagation_findings(saved_model: Any, *, factor: float = 10.0) -> list[PropagationFinding]:
    """Findings of the static prediction (no TensorFlow) for `initcli check`'s `propagation` check.

    An error when the predicted activation or gradient rms changes by more than `factor` from the
    first to the last weight layer (exploding/vanishing) or becomes non-finite; a warning when the
    prediction cannot cover the model (no config, or a layer it does not model). Inputs are N(0, 1)
    and BatchNormalization uses batch statistics, as in a training step.
    """
    from initcli.propagate.verdict import judge_predicted

    try:
        prediction = predict(
            config=saved_model.config,
            weights=saved_weights(saved_model.records()),
            signal=InputSignal.named("normal"),
        )
    except InitcliError as error:
        return [PropagationFinding(path=str(saved_model.source), message=f"no prediction: {error}", severity="warning")]
    findings = []
    for verdict in judge_predicted(prediction, factor=factor):
        if verdict.kind in ("exploding", "vanishing", "nan"):
            path = verdict.layer or verdict.last_layer or str(saved_model.source)
            findings.append(PropagationFinding(path=path, message=verdict.message, severity="error"))
    if prediction.stopped_at is not None:
        findings.append(
            PropagationFinding(path=prediction.stopped_at, message="; ".join(prediction.notes), severity="warning")
        )
    return findings
