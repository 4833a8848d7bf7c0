"""What each Keras layer class creates: its variables in order, and which argument initializes each.

A `.keras` weights file stores a layer's variables only by index (`vars/0`, `vars/1`, ...); Keras
names them (`kernel`, `bias`, ...) in creation order, which depends on the layer's config
(`use_bias`, `center`, `scale`). This module knows that order for every weight-bearing built-in
layer, the default initializer of each argument (a test keeps the table equal to Keras's
signatures), and where Keras's fans differ from the layer's real connectivity.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WeightSlot:
    """One variable a layer creates.

    Attributes:
        name: the variable's name (the last part of `variable.path`).
        argument: the constructor argument holding its initializer, e.g. "kernel_initializer".
        note: a remark on the fans Keras uses for it, or on how it is initialized.
        fan_caveat: the note says Keras's fans differ from the layer's real connectivity.
    """

    name: str
    argument: str | None
    note: str | None = None
    fan_caveat: bool = False


# Default initializer of every initializer argument, per layer class (Keras 3.15 signatures).
DEFAULTS: dict[str, dict[str, str]] = {}
_KERNEL_BIAS = {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}
for _name in (
    "Dense",
    "EinsumDense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
):
    DEFAULTS[_name] = dict(_KERNEL_BIAS)
for _name in ("DepthwiseConv1D", "DepthwiseConv2D"):
    DEFAULTS[_name] = {"depthwise_initializer": "glorot_uniform", "bias_initializer": "zeros"}
for _name in ("SeparableConv1D", "SeparableConv2D"):
    DEFAULTS[_name] = {
        "depthwise_initializer": "glorot_uniform",
        "pointwise_initializer": "glorot_uniform",
        "bias_initializer": "zeros",
    }
for _name in (
    "SimpleRNN",
    "LSTM",
    "GRU",
    "SimpleRNNCell",
    "LSTMCell",
    "GRUCell",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
):
    DEFAULTS[_name] = {
        "kernel_initializer": "glorot_uniform",
        "recurrent_initializer": "orthogonal",
        "bias_initializer": "zeros",
    }
DEFAULTS["Embedding"] = {"embeddings_initializer": "uniform"}
DEFAULTS["BatchNormalization"] = {
    "beta_initializer": "zeros",
    "gamma_initializer": "ones",
    "moving_mean_initializer": "zeros",
    "moving_variance_initializer": "ones",
}
DEFAULTS["LayerNormalization"] = {"beta_initializer": "zeros", "gamma_initializer": "ones"}
DEFAULTS["GroupNormalization"] = {"beta_initializer": "zeros", "gamma_initializer": "ones"}
DEFAULTS["PReLU"] = {"alpha_initializer": "Zeros"}
DEFAULTS["MultiHeadAttention"] = dict(_KERNEL_BIAS)
DEFAULTS["GroupQueryAttention"] = dict(_KERNEL_BIAS)
DEFAULTS["ReversibleEmbedding"] = {"embeddings_initializer": "uniform"}
# Other names Keras exports for the same classes.
LAYER_ALIASES = {
    "Convolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "Convolution3D": "Conv3D",
    "Convolution1DTranspose": "Conv1DTranspose",
    "Convolution2DTranspose": "Conv2DTranspose",
    "Convolution3DTranspose": "Conv3DTranspose",
    "SeparableConvolution1D": "SeparableConv1D",
    "SeparableConvolution2D": "SeparableConv2D",
}

# Settings users ask about next to the weights (shown in each row's `settings`).
SETTINGS = {
    "BatchNormalization": ("momentum", "epsilon", "axis"),
    "LayerNormalization": ("epsilon", "axis"),
    "GroupNormalization": ("groups", "epsilon"),
    "LSTM": ("unit_forget_bias",),
    "LSTMCell": ("unit_forget_bias",),
    "ConvLSTM1D": ("unit_forget_bias",),
    "ConvLSTM2D": ("unit_forget_bias",),
    "ConvLSTM3D": ("unit_forget_bias",),
    "GRU": ("reset_after",),
    "GRUCell": ("reset_after",),
}

_TRANSPOSE_NOTE = (
    "Conv*Transpose kernels are (*kernel_size, filters, in_channels): Keras's fan_in/fan_out "
    "are the real fan_out/fan_in, swapped"
)
_DEPTHWISE_NOTE = (
    "depthwise kernel (*kernel_size, in_channels, depth_multiplier): Keras's fan_in counts all "
    "input channels, though each output sees only prod(kernel_size) inputs"
)
_RECURRENT_NOTE = "fans computed on the fused gates ({gates}·units columns), not per gate"


def _conditional(config: Mapping[str, Any], key: str, default: bool = True) -> bool:
    value = config.get(key, default)
    return bool(value) if value is not None else False


def _kernel_bias(kernel_note: str | None = None) -> Callable[[Mapping[str, Any]], list[WeightSlot]]:
    def slots(config: Mapping[str, Any]) -> list[WeightSlot]:
        out = [WeightSlot("kernel", "kernel_initializer", kernel_note, fan_caveat=kernel_note is not None)]
        if _conditional(config, "use_bias"):
            out.append(WeightSlot("bias", "bias_initializer"))
        return out

    return slots


def _einsum_dense(config: Mapping[str, Any]) -> list[WeightSlot]:
    out = [WeightSlot("kernel", "kernel_initializer")]
    if config.get("bias_axes"):
        out.append(WeightSlot("bias", "bias_initializer"))
    return out


def _depthwise(config: Mapping[str, Any]) -> list[WeightSlot]:
    out = [WeightSlot("kernel", "depthwise_initializer", _DEPTHWISE_NOTE, fan_caveat=True)]
    if _conditional(config, "use_bias"):
        out.append(WeightSlot("bias", "bias_initializer"))
    return out


def _separable(config: Mapping[str, Any]) -> list[WeightSlot]:
    out = [
        WeightSlot("depthwise_kernel", "depthwise_initializer", _DEPTHWISE_NOTE, fan_caveat=True),
        WeightSlot("pointwise_kernel", "pointwise_initializer"),
    ]
    if _conditional(config, "use_bias"):
        out.append(WeightSlot("bias", "bias_initializer"))
    return out


def _recurrent(gates: int) -> Callable[[Mapping[str, Any]], list[WeightSlot]]:
    def slots(config: Mapping[str, Any]) -> list[WeightSlot]:
        note = _RECURRENT_NOTE.format(gates=gates) if gates > 1 else None
        out = [
            WeightSlot("kernel", "kernel_initializer", note, fan_caveat=note is not None),
            WeightSlot("recurrent_kernel", "recurrent_initializer", note, fan_caveat=note is not None),
        ]
        if _conditional(config, "use_bias"):
            bias_note = None
            if gates == 4 and _conditional(config, "unit_forget_bias"):
                bias_note = "unit_forget_bias: the forget-gate quarter (gate order i, f, c, o) starts at 1"
            if gates == 3 and _conditional(config, "reset_after"):
                bias_note = "reset_after=True: bias shape (2, 3·units), input and recurrent biases"
            out.append(WeightSlot("bias", "bias_initializer", bias_note))
        return out

    return slots


def _normalization(config: Mapping[str, Any]) -> list[WeightSlot]:
    out = []
    if _conditional(config, "scale"):
        out.append(WeightSlot("gamma", "gamma_initializer"))
    if _conditional(config, "center"):
        out.append(WeightSlot("beta", "beta_initializer"))
    return out


def _batch_normalization(config: Mapping[str, Any]) -> list[WeightSlot]:
    return [
        *_normalization(config),
        WeightSlot(
            "moving_mean",
            "moving_mean_initializer",
            "updated in training: moving = moving·momentum + batch_mean·(1 - momentum)",
        ),
        WeightSlot(
            "moving_variance", "moving_variance_initializer", "updated in training with the batch's biased variance"
        ),
    ]


LAYER_SLOTS: dict[str, Callable[[Mapping[str, Any]], list[WeightSlot]]] = {
    "Dense": _kernel_bias(),
    "EinsumDense": _einsum_dense,
    "Embedding": lambda config: [WeightSlot("embeddings", "embeddings_initializer")],
    "BatchNormalization": _batch_normalization,
    "LayerNormalization": _normalization,
    "GroupNormalization": _normalization,
    "PReLU": lambda config: [WeightSlot("alpha", "alpha_initializer")],
    "Normalization": lambda config: [
        WeightSlot(name, None, "set by adapt() or the mean/variance arguments, not by an initializer")
        for name in ("mean", "variance", "count")
    ],
    "DepthwiseConv1D": _depthwise,
    "DepthwiseConv2D": _depthwise,
    "SeparableConv1D": _separable,
    "SeparableConv2D": _separable,
    "SimpleRNNCell": _recurrent(1),
    "LSTMCell": _recurrent(4),
    "GRUCell": _recurrent(3),
    "ConvLSTMCell": _recurrent(4),
}
# keras.applications' ConvNeXt LayerScale (keras/src/applications/convnext.py): one unnamed variable
# (Keras 3 auto-names it `variable`, `variable_1`, ...; tf_keras names it `gamma`) drawn by
# Constant(init_values), an initializer the config does not hold as an argument.
LAYER_SLOTS["LayerScale"] = lambda config: [
    WeightSlot("variable", None, "keras.applications LayerScale: initialized with Constant(init_values)")
]
for _name in ("Conv1D", "Conv2D", "Conv3D"):
    LAYER_SLOTS[_name] = _kernel_bias()
# tf_keras only (Keras 3 removed them): kernel (output positions, receptive field · channels, filters), bias.
for _name in ("LocallyConnected1D", "LocallyConnected2D"):
    LAYER_SLOTS[_name] = _kernel_bias()
for _name in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
    LAYER_SLOTS[_name] = _kernel_bias(_TRANSPOSE_NOTE)

# Cells whose bias has a forget-gate quarter set to one when unit_forget_bias is on.
FORGET_GATE_CELLS = ("LSTMCell", "ConvLSTMCell")
# Recurrent layers keep their variables in a `cell` sublayer configured by the layer's own config.
RNN_CELLS = {
    "SimpleRNN": "SimpleRNNCell",
    "LSTM": "LSTMCell",
    "GRU": "GRUCell",
    "ConvLSTM1D": "ConvLSTMCell",
    "ConvLSTM2D": "ConvLSTMCell",
    "ConvLSTM3D": "ConvLSTMCell",
}
CONTAINERS = ("Functional", "Sequential", "Model")
# MultiHeadAttention's EinsumDense sublayers (attribute name in the weights file).
ATTENTION_SUBLAYERS = ("query_dense", "key_dense", "value_dense", "output_dense")


def einsum_fan_axes(equation: str) -> tuple[list[int], list[int]] | None:
    """Kernel axes counted in fan_in / fan_out, as EinsumDense derives them from its equation.

    A kernel letter that appears in the output is an output axis; any other is an input axis.
    """
    match = re.fullmatch(r"\s*([\w.]+)\s*,\s*([\w.]+)\s*->\s*([\w.]+)\s*", equation or "")
    if match is None:
        return None
    kernel, output = match.group(2).replace(".", ""), match.group(3).replace(".", "")
    output_axes = [i for i, letter in enumerate(kernel) if letter in output]
    input_axes = [i for i, letter in enumerate(kernel) if letter not in output]
    return input_axes, output_axes


def attention_fan_axes(sublayer: str, kernel_rank: int) -> tuple[list[int], list[int]]:
    """Fan axes of MultiHeadAttention's sublayer kernels, from the equations Keras builds.

    query/key/value kernels are (input_dim, num_heads, key_dim): input axis 0, output axes 1, 2.
    The output kernel is (num_heads, value_dim, *output_shape): input axes 0, 1, output the rest.
    """
    if sublayer == "output_dense":
        return [0, 1], list(range(2, kernel_rank))
    return [0], list(range(1, kernel_rank))
