"""The mean-field prediction of signal propagation, from a saved model's config and weights alone.

No TensorFlow. Each layer's output is described per channel (the last axis) by the mean and the
variance of its elements within the channel, and pushed through the layers in graph order
(Schoenholz et al. 2017; Pennington et al. 2017), with the model's actual weights:

- Dense/Conv: h = W x + b. Channel means go through exactly (m_out = Wᵀ m_in + b) and variances as
  independent sums (v_out = (W²)ᵀ v_in), so for zero-mean inputs E[h²] = fan_in · mean(W²) · E[x²];
  for convolutions each tap is weighted by the fraction of output positions where it lies inside the
  input ('same' padding's zeros count). Then the layer's activation φ per channel, h ~ N(m, v):
  E[φ(h)], E[φ(h)²] and E[φ'(h)²] by numerical integration (initcli.propagate.gaussian).
- Backward, for L = Σ y · g with g ~ N(0, 1) at the model outputs: per channel,
  E[(∂L/∂h)²] = E[φ'(h)²] · E[(∂L/∂y)²] and E[(∂L/∂x_i)²] = Σ_j W_ij² E[(∂L/∂h_j)²]. The reported
  chi is the backward gain of the layer for a unit gradient at its output (Pennington et al.'s
  χ = fan_out · v_w · E[φ'(h)²] for a square Dense layer).
- BatchNormalization (training mode: each channel's batch statistics; inference mode: the moving
  statistics), residual Add (branches uncorrelated), Concatenate (on the channels), Dropout,
  pooling (positions treated as independent; max pooling of φ(h), h Gaussian, exactly, and of any
  other signal as if Gaussian per channel, said in a note), padding and shape-only layers; PReLU
  (alpha per channel), Embedding (ids uniform over the vocabulary), and LSTM/GRU/SimpleRNN by
  `initcli.propagate.recurrent` (a sampled forward pass, a mean-field gradient; said in a note).
  Other layers end the prediction (a note says where).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from initcli.errors import InitcliError, WeightTooLargeError
from initcli.propagate import gaussian
from initcli.propagate.graph import LayerNode, layer_activation, output_names, read_graph
from initcli.propagate.recurrent import RECURRENT, RecurrentUnsupported, predict_recurrent
from initcli.propagate.report import Predicted
from initcli.safety.files import shown

KERNEL_WEIGHTS = ("kernel", "depthwise_kernel")
_SHAPE_ONLY = {"Flatten", "Reshape", "Permute"}
_IDENTITY = {"Identity", "InputLayer", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise"}
_DENSE = {"Dense"}
_CONV = {"Conv1D", "Conv2D", "Conv3D"}
_DEPTHWISE = {"DepthwiseConv1D", "DepthwiseConv2D"}
_TRANSPOSE = {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}
MAX_CHANNELS = 1_000_000

Vector = np.ndarray
Backward = Callable[[Vector], list[Vector]]


class Unsupported(Exception):
    """This layer is not modelled; the prediction stops here."""


@dataclass(frozen=True, kw_only=True)
class InputSignal:
    """The input batch: per feature (last axis) the mean and variance, or one value for all features."""

    kind: str
    means: Vector
    variances: Vector

    @classmethod
    def named(cls, kind: str) -> InputSignal:
        """`normal`: N(0, 1); `uniform`: U(0, 1), like pixel intensities scaled to [0, 1]."""
        if kind == "normal":
            return cls(kind="normal", means=np.zeros(1), variances=np.ones(1))
        if kind == "uniform":
            return cls(kind="uniform", means=np.full(1, 0.5), variances=np.full(1, 1.0 / 12.0))
        raise InitcliError(f"unknown input kind {kind!r}")

    @classmethod
    def of_array(cls, kind: str, values: np.ndarray) -> InputSignal:
        data = np.asarray(values, dtype=np.float64)
        flat = data.reshape(-1, data.shape[-1] if data.ndim > 1 else 1)
        return cls(kind=kind, means=flat.mean(axis=0), variances=flat.var(axis=0))


@dataclass(kw_only=True)
class _State:
    """One layer's output: per channel the mean and within-channel variance; its shape (no batch)."""

    means: Vector
    variances: Vector
    shape: tuple[int | None, ...]
    # When the elements are φ(h) with h ~ N(pre_means, pre_variances): lets max pooling be exact.
    source: tuple[gaussian.Activation, Vector, Vector] | None = None
    # A recurrent layer's sampled output sequences (samples, steps, units), for the next recurrent layer.
    sequence: np.ndarray | None = None

    @property
    def second(self) -> float:
        return float(np.mean(self.variances + self.means * self.means))

    @property
    def mean(self) -> float:
        return float(np.mean(self.means))


@dataclass(kw_only=True)
class _Step:
    state: _State
    backward: Backward  # E[(dL/dy)²] per output channel -> per input, E[(dL/dx)²] per input channel
    approximation: str | None = None  # said in the notes: where the prediction assumes more than usual


def _per_channel(phi: gaussian.Activation, scale: Vector, shift: Vector) -> gaussian.Activation:
    """x -> scale[c]·φ(x) + shift[c] on rows of channels (the (channels, points) grids of `gaussian`)."""

    def function(x: np.ndarray) -> np.ndarray:
        return scale[:, None] * phi.function(x) + shift[:, None]

    def derivative(x: np.ndarray) -> np.ndarray:
        return scale[:, None] * phi.derivative(x)

    return gaussian.Activation(
        name=f"affine {phi.name}", function=function, derivative=derivative, monotone=phi.monotone
    )


def _stacked(parts: Sequence[tuple[gaussian.Activation, int]]) -> gaussian.Activation:
    """The activations of concatenated channel blocks, each on its own rows."""
    bounds = np.cumsum([0, *(count for _, count in parts)])

    def apply(x: np.ndarray, derivative: bool) -> np.ndarray:
        pieces = [
            (phi.derivative if derivative else phi.function)(x[low:high])
            for (phi, _), low, high in zip(parts, bounds, bounds[1:])
        ]
        return np.concatenate(
            [np.broadcast_to(piece, x[low:high].shape) for piece, low, high in zip(pieces, bounds, bounds[1:])]
        )

    return gaussian.Activation(
        name="concatenated",
        function=lambda x: apply(x, False),
        derivative=lambda x: apply(x, True),
        monotone=all(phi.monotone for phi, _ in parts),
    )


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


def _tap_mask(
    length: int | None, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[np.ndarray, int | None]:
    """Per output position and kernel tap, whether the tap lies inside the input (1.0) or not."""
    if length is None:
        return np.ones((1, kernel)), None
    fractions, out = _tap_fractions(length, kernel, stride, dilation, padding)
    span = dilation * (kernel - 1) + 1
    before = {"valid": 0, "causal": span - 1}.get(padding, max(((out or 1) - 1) * stride + span - length, 0) // 2)
    positions = np.arange(out or 1)[:, None] * stride - before + np.arange(kernel)[None, :] * dilation
    return ((positions >= 0) & (positions < length)).astype(np.float64), out


def _border_spread(kernel: np.ndarray, means: Vector, masks: list[np.ndarray]) -> Vector:
    """Per output channel, the variance over output positions of the output's mean."""
    if not np.any(means):
        return np.zeros(kernel.shape[-1])
    mean_map = np.tensordot(kernel, means, axes=([kernel.ndim - 2], [0]))  # (*k, out_channels)
    for mask in masks:
        # Contract the leading tap axis with (positions, taps); the position axis goes to the back.
        mean_map = np.moveaxis(np.tensordot(mask, mean_map, axes=([1], [0])), 0, -1)
    flat = mean_map.reshape(mean_map.shape[0], -1)  # (out_channels, positions)
    return flat.var(axis=1)


def _tap_fractions(
    length: int | None, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[Vector, int | None]:
    """Per kernel tap, the fraction of output positions where it lies inside the input; the output length."""
    if length is None:
        return np.ones(kernel), None
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
    return inside.mean(axis=0), out


def _activation_of(node: LayerNode) -> gaussian.Activation | None:
    """The layer's elementwise activation; None for softmax (over the last axis)."""
    name = layer_activation(node.class_name, node.config)
    if name == "softmax":
        if node.class_name == "Softmax" and node.config.get("axis", -1) not in (-1, [-1]):
            raise Unsupported("softmax over an axis other than the last")
        return None
    slope = node.config.get("negative_slope") if node.class_name in ("LeakyReLU", "ReLU") else None
    alpha = node.config.get("alpha") if node.class_name == "ELU" else None
    max_value = node.config.get("max_value") if node.class_name == "ReLU" else None
    if node.class_name == "ReLU" and (node.config.get("threshold") or (max_value is not None and slope)):
        raise Unsupported("ReLU with a threshold, or with both max_value and negative_slope")
    phi = gaussian.activation(name, negative_slope=slope, alpha=alpha, max_value=max_value)
    if phi is None:
        raise Unsupported(f"activation {name!r}")
    return phi


def _activate(node: LayerNode, pre: _State) -> tuple[_State, Backward]:
    """Apply the layer's activation per channel to Gaussian pre-activations."""
    phi = _activation_of(node)
    if not (np.all(np.isfinite(pre.means)) and np.all(np.isfinite(pre.variances))):
        nan = np.full_like(pre.means, math.nan)
        return _State(means=nan, variances=np.full_like(nan, math.inf), shape=pre.shape), lambda g: [g * math.nan]
    if phi is None:
        means, seconds = pre.means, pre.variances

        def softmax_backward(g: Vector) -> list[Vector]:
            return [gaussian.softmax_per_unit(means, seconds, g)[2]]

        p_mean, p_second, _ = gaussian.softmax_per_unit(pre.means, pre.variances, np.ones_like(pre.means))
        return _State(means=p_mean, variances=p_second - p_mean**2, shape=pre.shape), softmax_backward
    if phi.name == "linear":
        return replace(pre, source=(phi, pre.means, pre.variances)), lambda g: [g]
    mean, second, slope_second = gaussian.moments_per_channel(phi, pre.means, pre.variances)
    out = _State(
        means=mean,
        variances=np.maximum(second - mean * mean, 0.0),
        shape=pre.shape,
        source=(phi, pre.means, pre.variances),
    )
    return out, lambda g: [slope_second * g]


def _broadcast(vector: Vector, size: int) -> Vector:
    return np.full(size, vector[0]) if vector.size == 1 and size != 1 else vector


def _weight_layer(node: LayerNode, state: _State, weights: Mapping[str, np.ndarray]) -> _Step:
    kernel = weights.get("kernel", weights.get("depthwise_kernel"))
    if kernel is None:
        raise Unsupported("no kernel among the saved weights")
    kernel = np.asarray(kernel, dtype=np.float64)
    bias = weights.get("bias")
    bias = np.zeros(1) if bias is None else np.asarray(bias, dtype=np.float64)
    shape = state.shape
    rank = kernel.ndim - 2
    if node.class_name not in _DENSE and (
        node.config.get("data_format", "channels_last") != "channels_last" or len(shape) != rank + 1
    ):
        raise Unsupported(f"channels_first data or input shape {shape} for a {rank}D convolution")
    ratio = 1.0  # output positions per input position
    masks: list[np.ndarray] = []
    if node.class_name in _DENSE:
        summed, squared = kernel, kernel * kernel
        back_squared = squared
        out_shape = (*shape[:-1], kernel.shape[-1])
    elif node.class_name in _TRANSPOSE:
        # Kernel (*k, out_channels, in_channels); each output position sums about prod(k)/prod(strides)
        # taps of every input channel (borders neglected).
        strides = _as_tuple(node.config.get("strides", 1), rank)
        if any(d != 1 for d in _as_tuple(node.config.get("dilation_rate", 1), rank)):
            raise Unsupported("dilated transposed convolution")
        per_position = 1.0 / math.prod(strides)
        flat = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1])
        summed = flat.sum(axis=0).T * per_position
        squared = (flat * flat).sum(axis=0).T * per_position
        back_squared = (flat * flat).sum(axis=0).T
        out_shape = (*_transposed_spatial(node, shape[:rank], kernel.shape[:rank], strides), kernel.shape[-2])
    else:
        sizes = _as_tuple(node.config.get("kernel_size", kernel.shape[:rank]), rank)
        strides = _as_tuple(node.config.get("strides", 1), rank)
        dilations = _as_tuple(node.config.get("dilation_rate", 1), rank)
        padding = str(node.config.get("padding", "valid")).lower()
        fractions = np.ones(())
        out_spatial: list[int | None] = []
        masks = []
        for axis in range(rank):
            axis_mask, out_length = _tap_mask(shape[axis], sizes[axis], strides[axis], dilations[axis], padding)
            masks.append(axis_mask)
            fractions = np.multiply.outer(fractions, axis_mask.mean(axis=0))
            out_spatial.append(out_length)
        weighted = kernel * fractions.reshape(*fractions.shape, 1, 1)
        summed = weighted.reshape(-1, *kernel.shape[-2:]).sum(axis=0)
        squared = (weighted * kernel).reshape(-1, *kernel.shape[-2:]).sum(axis=0)
        if None not in shape[:rank] and None not in out_spatial:
            ratio = math.prod(d for d in out_spatial if d is not None) / math.prod(
                d for d in shape[:rank] if d is not None
            )
        else:
            ratio = 1.0 / math.prod(strides)
        back_squared = squared * ratio
        if node.class_name in _DEPTHWISE:
            out_shape = (*out_spatial, kernel.shape[-2] * kernel.shape[-1])
        else:
            out_shape = (*out_spatial, kernel.shape[-1])
    channels_in = kernel.shape[-2] if node.class_name not in _TRANSPOSE else kernel.shape[-1]
    means = _broadcast(state.means, channels_in)
    variances = _broadcast(state.variances, channels_in)
    if means.size != channels_in:
        raise Unsupported(f"{means.size} input channels for a kernel of shape {kernel.shape}")
    if node.class_name in _DEPTHWISE:
        # (channels, multiplier): output channel c·multiplier + j reads input channel c only.
        pre_means = (means[:, None] * summed).reshape(-1)
        pre_variances = (variances[:, None] * squared).reshape(-1)

        def linear_backward(g: Vector) -> list[Vector]:
            return [(back_squared * g.reshape(back_squared.shape)).sum(axis=1)]

    else:
        pre_means = means @ summed
        pre_variances = variances @ squared

        def linear_backward(g: Vector) -> list[Vector]:
            return [back_squared @ g]

    if node.class_name in _CONV and masks:
        # Near the borders fewer taps are inside, so with non-zero input means the output's mean
        # differs from position to position; that spread is part of the channel's variance.
        pre_variances = pre_variances + _border_spread(kernel, means, masks)
    pre = _State(means=pre_means + bias, variances=pre_variances, shape=out_shape)
    out, activation_backward = _activate(node, pre)

    def backward(g: Vector) -> list[Vector]:
        return linear_backward(activation_backward(g)[0])

    return _Step(state=out, backward=backward)


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


def _batch_norm(node: LayerNode, state: _State, weights: Mapping[str, np.ndarray], training: bool) -> _Step:
    axis = node.config.get("axis", -1)
    if axis not in (-1, len(state.shape), [-1], [len(state.shape)]):
        raise Unsupported(f"BatchNormalization on axis {axis}")
    channels = state.shape[-1] or state.means.size
    epsilon = float(node.config.get("epsilon", 1e-3))
    gamma = np.asarray(weights.get("gamma", np.ones(channels)), dtype=np.float64)
    beta = np.asarray(weights.get("beta", np.zeros(channels)), dtype=np.float64)
    means, variances = _broadcast(state.means, channels), _broadcast(state.variances, channels)
    if training:
        scale = gamma / np.sqrt(variances + epsilon)
        out_means = beta + 0.0 * means
    else:
        moving_mean = np.asarray(weights.get("moving_mean", np.zeros(channels)), dtype=np.float64)
        moving_var = np.asarray(weights.get("moving_variance", np.ones(channels)), dtype=np.float64)
        scale = gamma / np.sqrt(moving_var + epsilon)
        out_means = scale * (means - moving_mean) + beta
    source = None
    if state.source is not None and np.all(scale > 0) and state.source[1].size == channels:
        # BN is an increasing affine map per channel: its output is still a function of a Gaussian.
        phi, pre_means, pre_variances = state.source
        shift = out_means - scale * means
        source = (_per_channel(phi, scale, shift), pre_means, pre_variances)
    out = _State(means=out_means, variances=scale * scale * variances, shape=state.shape, source=source)
    return _Step(state=out, backward=lambda g: [scale * scale * g])


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
        out_spatial: list[int | None] = []
        taps = 1.0
        for axis in range(rank):
            fractions, out_length = _tap_fractions(state.shape[axis], sizes[axis], strides[axis], 1, padding)
            out_spatial.append(out_length)
            taps *= float(fractions.sum())
        out_shape = (*out_spatial, state.shape[-1])
        count = max(round(taps), 1)
        ratio = math.prod(d or 1 for d in out_spatial) / math.prod(d or 1 for d in state.shape[:-1])
    if "Max" in node.class_name:
        approximation = None
        if state.source is not None and state.source[0].monotone and state.source[1].size == state.means.size:
            phi, pre_means, pre_variances = state.source
        else:
            # Not known as φ(Gaussian) (after an Add, a pooling, dropout...): each channel's elements
            # are taken as Gaussian with the channel's mean and variance.
            linear = gaussian.activation("linear")
            assert linear is not None  # always known
            phi, pre_means, pre_variances = linear, state.means, state.variances
            approximation = "its input taken as Gaussian per channel"
        mean, second = gaussian.max_moments_per_channel(phi, pre_means, pre_variances, count)
        out = _State(means=mean, variances=np.maximum(second - mean * mean, 0.0), shape=out_shape)
        # The gradient goes to one input of each window.
        return _Step(state=out, backward=lambda g: [ratio * g], approximation=approximation)
    out = _State(means=state.means, variances=state.variances / count, shape=out_shape)
    return _Step(state=out, backward=lambda g: [ratio / count * g])


def _elements(state: _State) -> tuple[np.ndarray, np.ndarray]:
    shape = tuple(state.shape)
    if None in shape or math.prod(shape) > MAX_CHANNELS * 8:  # type: ignore[arg-type]
        raise Unsupported(f"a reshape of an output of shape {shape}")
    channels = shape[-1]
    means = np.broadcast_to(_broadcast(state.means, channels), shape)  # type: ignore[arg-type]
    variances = np.broadcast_to(_broadcast(state.variances, channels), shape)  # type: ignore[arg-type]
    return means, variances


def _reshape_layer(node: LayerNode, state: _State) -> _Step:
    """Flatten/Reshape/Permute: rearrange the elements, then summarize per new last axis."""
    means, variances = _elements(state)
    seconds = variances + means * means
    if node.class_name == "Permute":
        dims = [int(d) - 1 for d in node.config.get("dims") or []]
        means, seconds = means.transpose(dims), seconds.transpose(dims)
    elif node.class_name == "Flatten":
        means, seconds = means.reshape(-1), seconds.reshape(-1)
    else:
        target = [int(d) if d is not None else -1 for d in (node.config.get("target_shape") or [])]
        try:
            means, seconds = means.reshape(target), seconds.reshape(target)
        except ValueError:
            raise Unsupported(f"target_shape {target}") from None
    new_shape = tuple(int(d) for d in means.shape)
    flat_means = means.reshape(-1, new_shape[-1]).mean(axis=0)
    flat_seconds = seconds.reshape(-1, new_shape[-1]).mean(axis=0)
    out = _State(means=flat_means, variances=np.maximum(flat_seconds - flat_means**2, 0.0), shape=new_shape)
    return _Step(state=out, backward=lambda g: [np.full(state.shape[-1] or 1, float(np.mean(g)))])


def _step(
    node: LayerNode,
    inputs: list[_State],
    weights: Mapping[str, np.ndarray],
    training: bool,
    all_weights: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> _Step:
    name = node.class_name
    if node.config.get("_shared"):
        raise Unsupported("a layer called more than once")
    if name == "Add":
        channels = max(s.means.size for s in inputs)
        means = sum(_broadcast(s.means, channels) for s in inputs)
        variances = sum(_broadcast(s.variances, channels) for s in inputs)
        out = _State(means=np.asarray(means), variances=np.asarray(variances), shape=inputs[0].shape)
        return _Step(state=out, backward=lambda g: [g] * len(inputs))
    if name == "Concatenate":
        return _concatenate(node, inputs)
    if len(inputs) != 1:
        raise Unsupported(f"{len(inputs)} inputs")
    state = inputs[0]
    if name in _DENSE | _CONV | _DEPTHWISE | _TRANSPOSE:
        return _weight_layer(node, state, weights)
    if name == "BatchNormalization":
        return _batch_norm(node, state, weights, training)
    if name in ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"):
        out, backward = _activate(node, state)
        return _Step(state=out, backward=backward)
    if name == "Dropout":
        keep = 1.0 - (float(node.config.get("rate", 0.0)) if training else 0.0)
        seconds = (state.variances + state.means**2) / keep
        out = _State(means=state.means, variances=seconds - state.means**2, shape=state.shape)
        return _Step(state=out, backward=lambda g: [g / keep])
    if name in _IDENTITY:
        return _Step(state=state, backward=lambda g: [g])
    if name in _SHAPE_ONLY:
        return _reshape_layer(node, state)
    if name.startswith("ZeroPadding"):
        padded = _padded(node, state.shape)
        inside = math.prod(d or 1 for d in state.shape[:-1]) / math.prod(d or 1 for d in padded[:-1])
        seconds = inside * (state.variances + state.means**2)
        means = inside * state.means
        # A max over a window of φ(h) ≥ 0 = φ(-∞) with padded zeros in it is the max of its φ(h) alone:
        # ReLU-like outputs keep their source for max pooling (a border window's count is overstated).
        keeps = state.source is not None and state.source[0].name.startswith("relu")
        out = _State(
            means=means,
            variances=np.maximum(seconds - means**2, 0.0),
            shape=padded,
            source=state.source if keeps else None,
        )
        return _Step(state=out, backward=lambda g: [g])
    if "Pooling" in name:
        return _pool(node, state)
    if name in RECURRENT:
        return _recurrent(node, state, weights)
    if name == "Bidirectional":
        return _bidirectional(node, state, all_weights or {})
    if name == "Embedding":
        return _embedding(node, state, weights)
    if name == "PReLU":
        return _prelu(node, state, weights)
    raise Unsupported(f"{name} is not modelled")


def _bidirectional(node: LayerNode, state: _State, weights: Mapping[str, Mapping[str, np.ndarray]]) -> _Step:
    """A forward and a backward recurrent layer on the same input, their outputs concatenated (or summed)."""
    forward_entry = node.config.get("layer")
    backward_entry = node.config.get("backward_layer") or forward_entry
    if not isinstance(forward_entry, Mapping) or not isinstance(backward_entry, Mapping):
        raise Unsupported("no wrapped layer in the config")
    merge = node.config.get("merge_mode", "concat")
    if merge not in ("concat", "sum", "ave"):
        raise Unsupported(f"merge_mode {merge!r}")
    steps: list[_Step] = []
    for entry, side in ((forward_entry, "forward"), (backward_entry, "backward")):
        config = dict(entry.get("config") or {})
        inner = str(config.get("name", ""))
        scoped = inner if inner.startswith(f"{side}_") else f"{side}_{inner}"
        found = weights.get(f"{node.name}/{scoped}") or weights.get(scoped) or {}
        if side == "backward" and not node.config.get("backward_layer"):
            # Made from the forward layer's config, reversed (a saved backward_layer is already).
            config["go_backwards"] = not config.get("go_backwards", False)
        layer = LayerNode(name=scoped, class_name=str(entry.get("class_name")), config=config)
        if layer.class_name not in RECURRENT:
            raise Unsupported(f"a wrapped {layer.class_name}")
        step = _recurrent(layer, state, found)
        if side == "backward" and step.state.sequence is not None:
            # Keras reverses the backward layer's sequence back into time order.
            step.state.sequence = step.state.sequence[:, ::-1, :]
        steps.append(step)
    first, second = steps[0].state, steps[1].state
    units = first.means.size
    if merge == "concat":
        means = np.concatenate([first.means, second.means])
        variances = np.concatenate([first.variances, second.variances])
        shape = (*first.shape[:-1], 2 * units)
        sequence = None
        if first.sequence is not None and second.sequence is not None:
            sequence = np.concatenate([first.sequence, second.sequence], axis=-1)

        def backward(g: Vector) -> list[Vector]:
            return [steps[0].backward(g[:units])[0] + steps[1].backward(g[units:])[0]]

    else:
        scale = 1.0 if merge == "sum" else 0.5
        means = scale * (first.means + second.means)
        sequence = None
        if first.sequence is not None and second.sequence is not None:
            sequence = scale * (first.sequence + second.sequence)
        shape = first.shape
        if sequence is not None:
            flat = sequence.reshape(-1, units)
            means, variances = flat.mean(axis=0), flat.var(axis=0)
        else:
            variances = scale * scale * (first.variances + second.variances)  # the two taken as independent

        def backward(g: Vector) -> list[Vector]:
            return [scale * scale * (steps[0].backward(g)[0] + steps[1].backward(g)[0])]

    return _Step(
        state=_State(means=means, variances=variances, shape=shape, sequence=sequence),
        backward=backward,
        approximation=steps[0].approximation,
    )


def _recurrent(node: LayerNode, state: _State, weights: Mapping[str, np.ndarray]) -> _Step:
    """LSTM/GRU/SimpleRNN by `initcli.propagate.recurrent` (an approximation: said in a note)."""
    try:
        means, variances, shape, backward, sequence = predict_recurrent(
            node.class_name, node.config, weights, state.shape, state.means, state.variances, state.sequence
        )
    except RecurrentUnsupported as reason:
        raise Unsupported(str(reason)) from None
    taken = "its input sequences sampled" if state.sequence is not None else "Gaussian inputs, independent over time"
    return _Step(
        state=_State(means=means, variances=variances, shape=shape, sequence=sequence),
        backward=backward,
        approximation=f"a sampled forward pass ({taken}); the gradient by mean field "
        "(gates, states and time steps independent)",
    )


def _embedding(node: LayerNode, state: _State, weights: Mapping[str, np.ndarray]) -> _Step:
    """Each id picks a row: with ids uniform over the vocabulary, a channel's statistics are its column's."""
    table = weights.get("embeddings")
    if table is None:
        raise Unsupported("no embeddings among the saved weights")
    table = np.asarray(table, dtype=np.float64)
    out = _State(means=table.mean(axis=0), variances=table.var(axis=0), shape=(*state.shape, table.shape[-1]))
    channels = state.means.size
    return _Step(
        state=out,
        backward=lambda g: [np.zeros(channels)],  # ids have no gradient
        approximation="ids taken uniform over the vocabulary (give --input ids.npy to measure yours)",
    )


def _prelu(node: LayerNode, state: _State, weights: Mapping[str, np.ndarray]) -> _Step:
    """x for x > 0, alpha·x else, with alpha per channel (averaged over the other axes if it varies)."""
    alpha = weights.get("alpha")
    if alpha is None:
        raise Unsupported("no alpha among the saved weights")
    alpha = np.asarray(alpha, dtype=np.float64)
    channels = state.shape[-1] or state.means.size
    flat = alpha.reshape(-1, alpha.shape[-1]) if alpha.ndim else alpha.reshape(1, 1)
    slopes = np.broadcast_to(flat.mean(axis=0), (channels,)).copy()
    approximation = None
    if flat.shape[0] > 1 and not np.all(flat == flat[:1]):
        approximation = "alpha averaged over the positions of each channel"

    def function(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, slopes[:, None] * x)

    def derivative(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1.0, slopes[:, None] * np.ones_like(x))

    phi = gaussian.Activation(
        name="prelu", function=function, derivative=derivative, monotone=bool(np.all(slopes >= 0))
    )
    means, variances = _broadcast(state.means, channels), _broadcast(state.variances, channels)
    mean, second, slope_second = gaussian.moments_per_channel(phi, means, variances)
    out = _State(
        means=mean,
        variances=np.maximum(second - mean * mean, 0.0),
        shape=state.shape,
        source=(phi, means, variances) if phi.monotone else None,
    )
    return _Step(state=out, backward=lambda g: [slope_second * g], approximation=approximation)


def _concatenate(node: LayerNode, inputs: list[_State]) -> _Step:
    """Channels side by side (the last axis): each keeps its statistics; the gradient splits back."""
    rank = len(inputs[0].shape)
    if node.config.get("axis", -1) not in (-1, rank) or any(len(s.shape) != rank for s in inputs):
        raise Unsupported(f"concatenation on axis {node.config.get('axis')}")
    counts = [int(s.shape[-1] or s.means.size) for s in inputs]
    means = np.concatenate([_broadcast(s.means, n) for s, n in zip(inputs, counts)])
    variances = np.concatenate([_broadcast(s.variances, n) for s, n in zip(inputs, counts)])
    source = None
    if all(s.source is not None and s.source[1].size == n for s, n in zip(inputs, counts)):
        sources = [s.source for s in inputs if s.source is not None]
        source = (
            _stacked([(found[0], n) for found, n in zip(sources, counts)]),
            np.concatenate([found[1] for found in sources]),
            np.concatenate([found[2] for found in sources]),
        )
    out = _State(means=means, variances=variances, shape=(*inputs[0].shape[:-1], sum(counts)), source=source)
    bounds = np.cumsum([0, *counts])
    return _Step(state=out, backward=lambda g: [g[low:high] for low, high in zip(bounds, bounds[1:])])


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


def _input_state(node: LayerNode, signal: InputSignal) -> _State:
    shape = _input_shape(node)
    channels = shape[-1] if shape and shape[-1] is not None else 1
    if signal.means.size not in (1, channels):
        raise InitcliError(f"the input has {signal.means.size} features; the model's input has {channels}")
    return _State(
        means=_broadcast(signal.means, channels), variances=_broadcast(signal.variances, channels), shape=shape
    )


def predict(
    *,
    config: Mapping[str, Any] | None,
    weights: Mapping[str, Mapping[str, np.ndarray]],
    signal: InputSignal,
    training: bool = True,
) -> StaticPrediction:
    """Mean-field prediction for every layer of the model described by `config` and `weights`.

    Args:
        config: the Keras model config (ModelFile.config).
        weights: per layer name, its weights by name ("kernel", "bias", "gamma", ...).
        signal: the input's per-feature mean and variance (the same at every input layer).
        training: BatchNormalization with batch statistics and Dropout active (as in a training step).
    """
    nodes = read_graph(config)
    states: dict[str, _State | None] = {}
    steps: dict[str, _Step | None] = {}
    notes: list[str] = []
    stopped_at = None
    for node in nodes:
        if node.class_name == "InputLayer":
            states[node.name] = _input_state(node, signal)
            steps[node.name] = None
            continue
        inputs = [states.get(source) for source in node.inputs]
        if not inputs or any(state is None for state in inputs):
            states[node.name] = steps[node.name] = None
            continue
        try:
            step = _step(node, [s for s in inputs if s is not None], weights.get(node.name, {}), training, weights)
        except Unsupported as reason:
            states[node.name] = steps[node.name] = None
            if stopped_at is None:
                stopped_at = node.name
                notes.append(f"static prediction stops at layer {node.name} ({node.class_name}: {reason})")
            continue
        states[node.name], steps[node.name] = step.state, step
        if step.approximation:
            notes.append(f"static prediction of {node.name} ({node.class_name}): {step.approximation}")
    gradients = _backward(nodes, states, steps, output_names(config, nodes))
    predicted: dict[str, Predicted | None] = {}
    for node in nodes:
        state, found = states.get(node.name), steps.get(node.name)
        if state is None:
            predicted[node.name] = None
            continue
        inputs = [states.get(source) for source in node.inputs]
        chi = forward_gain = None
        if found is not None and len(inputs) == 1 and inputs[0] is not None:
            with np.errstate(all="ignore"):
                chi = float(np.mean(found.backward(np.ones_like(state.means))[0]))
                forward_gain = _ratio(state.second, inputs[0].second)
        gradient = gradients.get(node.name)
        channel_sq = float(np.mean(state.means * state.means))
        predicted[node.name] = Predicted(
            mean=state.mean,
            var=state.second - state.mean**2 if math.isfinite(state.second) else math.inf,
            channel_sq_mean=channel_sq,
            channel_var=float(np.mean(state.variances)),
            forward_gain=forward_gain,
            chi=chi,
            grad_rms=math.sqrt(float(np.mean(gradient))) if gradient is not None else None,
        )
    shapes = {name: state.shape for name, state in states.items() if state is not None}
    return StaticPrediction(nodes=nodes, predicted=predicted, shapes=shapes, notes=notes, stopped_at=stopped_at)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 and math.isfinite(b) else None


def _backward(
    nodes: Sequence[LayerNode],
    states: Mapping[str, _State | None],
    steps: Mapping[str, _Step | None],
    outputs: Iterable[str],
) -> dict[str, Vector]:
    """Per channel E[(∂L/∂y)²] at each layer output for L = Σ y · g, g ~ N(0, 1) at the outputs."""
    known: dict[str, Vector | None] = {}
    for name in outputs:
        state = states.get(name)
        known[name] = np.ones_like(state.means) if state is not None else None
    with np.errstate(all="ignore"):
        for node in reversed(nodes):
            gradient = known.get(node.name)
            step = steps.get(node.name)
            if step is None or gradient is None:
                for source in node.inputs:
                    known[source] = None
                continue
            for source, contribution in zip(node.inputs, step.backward(gradient)):
                if source in known and known[source] is None:
                    continue
                previous = known.get(source)
                known[source] = contribution if previous is None else previous + contribution
    return {name: value for name, value in known.items() if value is not None}


def saved_weights(records: Iterable[Any], replacement: Any = None, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Each layer's weights by name from WeightRecords; `replacement(record, index)` may redraw kernels.

    Raises:
        InitcliError: a weight over the per-weight budget. The prediction is refused, not streamed:
            it multiplies each kernel whole in float64 (8 bytes an element, several copies), so a
            weight over the 1 GiB budget would need many GB; the statistics that do stream are
            `inspect`'s and `check`'s.
    """
    weights: dict[str, dict[str, np.ndarray]] = {}
    for index, record in enumerate(records):
        if replacement is not None and record.weight in KERNEL_WEIGHTS:
            values = replacement(record, seed + index)
        else:
            try:
                values = record.read()
            except WeightTooLargeError as error:
                raise InitcliError(
                    f"propagate: weight {shown(record.path)} is {error.nbytes:,} bytes, over the {error.budget:,}-byte "
                    "budget for one weight held whole, and the prediction multiplies each weight whole in float64; "
                    "use inspect or check (they stream it), or propagate a smaller model of the same architecture"
                ) from None
        weights.setdefault(record.layer, {})[str(record.weight)] = np.asarray(values)
        _by_scope(weights, str(record.path), str(record.weight), values)
    return weights


def _by_scope(weights: dict[str, dict[str, np.ndarray]], path: str, weight: str, values: Any) -> None:
    """A sublayer's weight also under the layer that holds it: `lstm/lstm_cell/kernel` is the LSTM `lstm`'s."""
    parts = path.split("/")
    if len(parts) > 2:
        weights.setdefault(parts[0], {}).setdefault(weight, np.asarray(values))
    if len(parts) > 3:  # tf_keras: `bidirectional/forward_lstm/lstm_cell/kernel`
        weights.setdefault(f"{parts[0]}/{parts[1]}", {}).setdefault(weight, np.asarray(values))
