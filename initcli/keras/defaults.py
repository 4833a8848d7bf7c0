"""Per-layer default initializers, and the PyTorch / Flax defaults of the equivalent layers.

The Keras table is shipped (`initcli.keras.layers.DEFAULTS`) so it needs no TensorFlow; a test keeps it
equal to Keras's signatures, and `keras_defaults()` derives it from an installed Keras.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from initcli.errors import BadInputError
from initcli.initializers import find_kind
from initcli.keras.layers import DEFAULTS, LAYER_ALIASES

FRAMEWORKS = ("keras", "torch", "flax")
_TORCH_LINEAR = "weight and bias U(±1/sqrt(fan_in)) (kaiming_uniform, a=sqrt(5)); weight layout (out, in, *k)"
_FLAX_KERNEL = "kernel lecun_normal (truncated normal, std sqrt(1/fan_in)), bias zeros"
# (class, argument) -> text; a class key alone covers all its arguments.
EQUIVALENTS: dict[str, dict[str, str]] = {
    "torch": {
        "Dense": f"nn.Linear: {_TORCH_LINEAR}",
        "Conv1D": f"nn.Conv1d: {_TORCH_LINEAR}",
        "Conv2D": f"nn.Conv2d: {_TORCH_LINEAR}",
        "Conv3D": f"nn.Conv3d: {_TORCH_LINEAR}",
        "Embedding": "nn.Embedding: weight N(0, 1)",
        "SimpleRNN": "nn.RNN: every weight and bias U(±1/sqrt(hidden_size))",
        "LSTM": "nn.LSTM: every weight and bias U(±1/sqrt(hidden_size))",
        "GRU": "nn.GRU: every weight and bias U(±1/sqrt(hidden_size))",
        "BatchNormalization": "nn.BatchNorm*d: weight 1, bias 0, running_mean 0, running_var 1; eps 1e-5, "
        "momentum 0.1 (torch momentum = 1 - Keras momentum: Keras 0.99 is torch 0.01)",
    },
    "flax": {
        "Dense": f"nn.Dense: {_FLAX_KERNEL}",
        "Conv1D": f"nn.Conv: {_FLAX_KERNEL}",
        "Conv2D": f"nn.Conv: {_FLAX_KERNEL}",
        "Conv3D": f"nn.Conv: {_FLAX_KERNEL}",
        "Embedding": "nn.Embed: N(0, variance 1/features)",
        "BatchNormalization": "nn.BatchNorm: scale ones, bias zeros; momentum 0.99 (same convention as Keras), "
        "epsilon 1e-5",
        "LayerNormalization": "nn.LayerNorm: scale ones, bias zeros; epsilon 1e-6",
    },
}
# Non-initializer defaults users compare across frameworks.
KERAS_SETTINGS = {
    "BatchNormalization": "momentum 0.99, epsilon 1e-3",
    "LayerNormalization": "epsilon 1e-3",
    "GroupNormalization": "epsilon 1e-3",
}


def canonical_layer(name: str) -> str:
    """A Keras layer class name, accepting aliases and any capitalization.

    Raises:
        BadInputError: the class has no initializer arguments initcli knows of.
    """
    lookup = {key.lower(): key for key in [*DEFAULTS, *LAYER_ALIASES]}
    key = lookup.get(name.lower())
    if key is None:
        raise BadInputError(
            f"Unknown layer class {name!r} (or it has no initializer arguments). Known: {', '.join(sorted(DEFAULTS))}"
        )
    return LAYER_ALIASES.get(key, key)


def keras_defaults() -> dict[str, dict[str, Any]]:
    """The default of every `*_initializer` argument of every layer in `keras.layers` (imports Keras)."""
    from initcli.keras.bridge import import_keras

    keras = import_keras()
    found: dict[str, dict[str, Any]] = {}
    for name in dir(keras.layers):
        layer = getattr(keras.layers, name)
        if inspect.isclass(layer) and issubclass(layer, keras.layers.Layer) and name not in LAYER_ALIASES:
            parameters = inspect.signature(layer.__init__).parameters
            initializers = {k: p.default for k, p in parameters.items() if k.endswith("_initializer")}
            if initializers:
                found[name] = initializers
    return found


def default_rows(
    layers: Iterable[str] = (), frameworks: Iterable[str] = ("keras",), source: str = "table"
) -> list[dict[str, Any]]:
    """One row per (layer, initializer argument): the default, its formula, and other frameworks'."""
    table = keras_defaults() if source == "keras" else DEFAULTS
    names = [canonical_layer(name) for name in layers] or sorted(table)
    rows = []
    for layer in names:
        for argument, default in table.get(layer, {}).items():
            kind = find_kind(default) if isinstance(default, str) else None
            row: dict[str, Any] = {
                "layer": layer,
                "argument": argument,
                "default": default,
                "formula": kind.formula if kind else None,
                "settings": KERAS_SETTINGS.get(layer),
            }
            for framework in frameworks:
                if framework != "keras":
                    row[framework] = EQUIVALENTS[framework].get(layer)
            rows.append(row)
    return rows
