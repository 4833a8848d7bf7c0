"""What each Keras 1 layer created: weights `<layer>_W`, `<layer>_b`, ... and the argument that drew each.

From the `build` methods of keras/layers/*.py@1.2.2 (`add_weight(shape, initializer=..., name=
'{}_W'.format(self.name))`). Biases were always `'zero'`; recurrent layers in their split modes
(`consume_less='cpu'` or `'mem'`) drew their per-gate `U_*` with `init`, not `inner_init`
(keras/layers/recurrent.py@1.2.2); Convolution1D passed dim_ordering 'th' to the initializer for its
4-D kernel `(filter_length, 1, input_dim, nb_filter)` (keras/layers/convolutional.py@1.2.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Keras1Weight:
    """One Keras 1 weight.

    Attributes:
        suffix: the name after `<layer>_` ("W", "U_f", "running_std").
        argument: the layer argument naming its initializer ("init"), or None for a fixed one.
        default: the argument's default, or the fixed initializer ("zero").
        dim_ordering: the ordering passed to the initializer: "th", "tf", or "config" (the layer's).
        note: what a user should know about it.
    """

    suffix: str
    argument: str | None
    default: str
    dim_ordering: str = "th"
    note: str | None = None


def _w(suffix: str, argument: str | None, default: str, **kwargs: Any) -> Keras1Weight:
    return Keras1Weight(suffix=suffix, argument=argument, default=default, **kwargs)


_BIAS = _w("b", None, "zero")
_SPLIT_NOTE = "Keras 1 split-gate weights (consume_less cpu/mem) drew U_* with `init`, not `inner_init`"
_LSTM_BIAS_NOTE = "Keras 1 LSTM bias: zeros with forget_bias_init in the forget-gate quarter (gate order i, f, c, o)"


def _recurrent(gates: str) -> list[Keras1Weight]:
    out = [_w("W", "init", "glorot_uniform"), _w("U", "inner_init", "orthogonal")]
    if gates == "ifco":
        out.append(_w("b", "forget_bias_init", "one", note=_LSTM_BIAS_NOTE))
    else:
        out.append(_BIAS)
    for gate in gates if len(gates) > 1 else "":
        out.append(_w(f"W_{gate}", "init", "glorot_uniform"))
        out.append(_w(f"U_{gate}", "init", "glorot_uniform", note=_SPLIT_NOTE))
        if gates == "ifco" and gate == "f":
            out.append(_w("b_f", "forget_bias_init", "one"))
        else:
            out.append(_w(f"b_{gate}", None, "zero"))
    return out


_CONV_CONFIG = [_w("W", "init", "glorot_uniform", dim_ordering="config"), _BIAS]
KERAS1_WEIGHTS: dict[str, list[Keras1Weight]] = {
    "Dense": [_w("W", "init", "glorot_uniform"), _BIAS],
    "TimeDistributedDense": [_w("W", "init", "glorot_uniform"), _BIAS],
    "MaxoutDense": [_w("W", "init", "glorot_uniform"), _BIAS],
    "Highway": [
        _w("W", "init", "glorot_uniform"),
        _w("W_carry", "init", "glorot_uniform"),
        _BIAS,
        _w("b_carry", None, "one"),
    ],
    "Embedding": [_w("W", "init", "uniform")],
    "Convolution1D": [_w("W", "init", "glorot_uniform", dim_ordering="th"), _BIAS],
    "AtrousConvolution1D": [_w("W", "init", "glorot_uniform", dim_ordering="th"), _BIAS],
    "Convolution2D": _CONV_CONFIG,
    "AtrousConvolution2D": _CONV_CONFIG,
    "Deconvolution2D": _CONV_CONFIG,
    "Convolution3D": _CONV_CONFIG,
    "SeparableConvolution2D": [
        _w("depthwise_kernel", "init", "glorot_uniform", dim_ordering="config"),
        _w("pointwise_kernel", "init", "glorot_uniform", dim_ordering="config"),
        _BIAS,
    ],
    "LocallyConnected1D": [_w("W", "init", "glorot_uniform"), _BIAS],
    "LocallyConnected2D": [_w("W", "init", "glorot_uniform"), _BIAS],
    "SimpleRNN": _recurrent("h"),
    "GRU": _recurrent("zrh"),
    "LSTM": _recurrent("ifco"),
    "BatchNormalization": [
        _w("gamma", "gamma_init", "one"),
        _w("beta", "beta_init", "zero"),
        _w("running_mean", None, "zero", note="updated in training (moving average of batch means)"),
        _w("running_std", None, "one", note="updated in training (moving average of batch variances)"),
    ],
    "PReLU": [_w("alphas", "init", "zero")],
}


def keras1_weight(class_name: str | None, suffix: str) -> Keras1Weight | None:
    """The Keras 1 weight of `class_name` named `<layer>_<suffix>`, if Keras 1 had it."""
    return next((w for w in KERAS1_WEIGHTS.get(class_name or "", []) if w.suffix == suffix), None)


def dim_ordering_of(weight: Keras1Weight, config: Mapping[str, Any]) -> str:
    """The dim_ordering the layer passed to the weight's initializer."""
    if weight.dim_ordering != "config":
        return weight.dim_ordering
    ordering = config.get("dim_ordering")
    return ordering if ordering in ("th", "tf") else "th"
