"""The catalogue of Keras 3 built-in initializers, and resolving names and configs against it.

An `InitializerSpec` is what a user or a saved model asked for: a canonical Keras class name and
a complete config (every parameter present, defaults filled in). Resolving checks parameters the
way Keras's constructors check them and raises `BadInputError` with Keras's reason.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from initcli.errors import BadInputError

_VS_AXES = {"seed": None, "input_axes": None, "output_axes": None}


@dataclass(frozen=True)
class InitializerKind:
    """One Keras initializer class.

    Attributes:
        class_name: Keras's class name, e.g. "GlorotUniform".
        aliases: other names `keras.initializers.get` (or common usage) accepts.
        defaults: every constructor parameter with its Keras default.
        formula: a one-line description of the distribution.
        variance_scaling: for the VarianceScaling presets (Glorot, Lecun, He), their fixed
            (scale, mode, distribution).
    """

    class_name: str
    aliases: tuple[str, ...]
    defaults: Mapping[str, Any]
    formula: str
    variance_scaling: tuple[float, str, str] | None = None

    @property
    def snake_name(self) -> str:
        return "".join("_" + c.lower() if c.isupper() else c for c in self.class_name).lstrip("_")


def _preset(
    class_name: str, scale: float, mode: str, distribution: str, aliases: tuple[str, ...], formula: str
) -> InitializerKind:
    return InitializerKind(class_name, aliases, dict(_VS_AXES), formula, (scale, mode, distribution))


KINDS: tuple[InitializerKind, ...] = (
    InitializerKind("RandomNormal", ("normal",), {"mean": 0.0, "stddev": 0.05, "seed": None}, "N(mean, stddev)"),
    InitializerKind(
        "TruncatedNormal",
        (),
        {"mean": 0.0, "stddev": 0.05, "seed": None},
        "N(mean, stddev) redrawn outside mean ± 2·stddev; actual std = 0.8796·stddev",
    ),
    InitializerKind(
        "RandomUniform", ("uniform",), {"minval": -0.05, "maxval": 0.05, "seed": None}, "U[minval, maxval)"
    ),
    InitializerKind(
        "VarianceScaling",
        (),
        {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", **_VS_AXES},
        "s = scale / max(1, n), n = fan_in | fan_out | (fan_in + fan_out)/2; "
        "truncated_normal: std sqrt(s) (underlying stddev sqrt(s)/0.8796); "
        "untruncated_normal: N(0, sqrt(s)); uniform: U(±sqrt(3s))",
    ),
    _preset(
        "GlorotUniform",
        1.0,
        "fan_avg",
        "uniform",
        ("xavier_uniform",),
        "U(±limit), limit = sqrt(6 / (fan_in + fan_out))",
    ),
    _preset(
        "GlorotNormal",
        1.0,
        "fan_avg",
        "truncated_normal",
        ("xavier_normal",),
        "truncated N, std = sqrt(2 / (fan_in + fan_out))",
    ),
    _preset("LecunUniform", 1.0, "fan_in", "uniform", (), "U(±limit), limit = sqrt(3 / fan_in)"),
    _preset("LecunNormal", 1.0, "fan_in", "truncated_normal", (), "truncated N, std = sqrt(1 / fan_in)"),
    _preset("HeUniform", 2.0, "fan_in", "uniform", ("kaiming_uniform",), "U(±limit), limit = sqrt(6 / fan_in)"),
    _preset("HeNormal", 2.0, "fan_in", "truncated_normal", ("kaiming_normal",), "truncated N, std = sqrt(2 / fan_in)"),
    InitializerKind(
        "Orthogonal",
        ("OrthogonalInitializer",),
        {"gain": 1.0, "seed": None},
        "gain · Q of the QR of a standard normal (prod(shape[:-1]), shape[-1]) matrix; "
        "element RMS = gain / sqrt(max(rows, cols))",
    ),
    InitializerKind("Identity", ("IdentityInitializer",), {"gain": 1.0}, "gain · eye(rows, cols); 2-D shapes only"),
    InitializerKind("Constant", (), {"value": 0.0}, "every element = value"),
    InitializerKind("Zeros", ("zero",), {}, "every element = 0"),
    InitializerKind("Ones", ("one",), {}, "every element = 1"),
)

_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
_MODES = ("fan_in", "fan_out", "fan_avg")


def _normalize(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


_BY_NAME: dict[str, InitializerKind] = {}
for _kind in KINDS:
    for _name in (_kind.class_name, _kind.snake_name, *_kind.aliases):
        _BY_NAME[_normalize(_name)] = _kind


def all_names() -> list[str]:
    """Every accepted spelling (snake names, class names and aliases), for suggestions."""
    names = []
    for kind in KINDS:
        names += [kind.snake_name, kind.class_name, *kind.aliases]
    return names


def find_kind(name: str) -> InitializerKind:
    """Look an initializer up by snake name, class name or alias (case and `_` insensitive).

    Raises:
        BadInputError: the name is unknown; the message suggests the closest names.
    """
    kind = _BY_NAME.get(_normalize(name))
    if kind is None:
        close = difflib.get_close_matches(name, all_names(), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else " Run `initcli list` to see them."
        raise BadInputError(f"Unknown initializer {name!r}.{hint}")
    return kind


@dataclass(frozen=True)
class InitializerSpec:
    """A resolved initializer: canonical class name and a complete config."""

    class_name: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> InitializerKind:
        return find_kind(self.class_name)

    def to_dict(self) -> dict[str, Any]:
        """The Keras serialization form `{"class_name", "config"}`."""
        return {"class_name": self.class_name, "config": dict(self.config)}

    @property
    def seed(self) -> int | None:
        """The integer seed, also when the config holds a serialized SeedGenerator."""
        return seed_from_config(self.config.get("seed"))

    def variance_scaling(self) -> tuple[float, str, str] | None:
        """(scale, mode, distribution) for VarianceScaling and its presets, else None."""
        if self.kind.variance_scaling is not None:
            return self.kind.variance_scaling
        if self.class_name == "VarianceScaling":
            return (float(self.config["scale"]), self.config["mode"], self.config["distribution"])
        return None


def seed_from_config(seed: Any) -> int | None:
    """An int seed from a config value: an int, None, or a serialized keras SeedGenerator."""
    if seed is None or isinstance(seed, bool):
        return None
    if isinstance(seed, int):
        return seed
    if isinstance(seed, Mapping) and seed.get("class_name") == "SeedGenerator":
        inner = seed.get("config", {}).get("seed")
        return inner if isinstance(inner, int) else None
    raise BadInputError(
        "`seed` argument should be an instance of `keras.random.SeedGenerator()` or an integer. "
        f"Received: seed={seed!r}"
    )


def _as_float(name: str, value: Any, initializer: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"Argument `{name}` of {initializer} must be a number. Received: {name}={value!r}")
    if not math.isfinite(value):
        raise BadInputError(f"Argument `{name}` of {initializer} must be finite. Received: {name}={value!r}")
    return float(value)


def _as_axes(name: str, value: Any, initializer: str) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(a, int) and not isinstance(a, bool) for a in value):
        return list(value)
    raise BadInputError(f"Argument `{name}` of {initializer} must be a list of ints. Received: {name}={value!r}")


def resolve(identifier: str | Mapping[str, Any], **overrides: Any) -> InitializerSpec:
    """Resolve a name or a Keras `{"class_name", "config"}` dict into a validated spec.

    Args:
        identifier: a name (`glorot_uniform`, `GlorotUniform`, `xavier_uniform`, ...) or a dict
            as found in a saved model's config.json.
        **overrides: parameters to set (None values are ignored).

    Raises:
        BadInputError: unknown name, unknown parameter, or a value Keras would reject.
    """
    if isinstance(identifier, Mapping):
        if "class_name" not in identifier:
            raise BadInputError(f"An initializer dict needs a `class_name`. Received: {dict(identifier)!r}")
        kind = find_kind(str(identifier["class_name"]))
        given = dict(identifier.get("config") or {})
    elif isinstance(identifier, str):
        kind = find_kind(identifier)
        given = {}
    else:
        raise BadInputError(f"Cannot interpret initializer {identifier!r}")
    given.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(given) - set(kind.defaults))
    if unknown:
        accepted = ", ".join(f"`{p}`" for p in kind.defaults) or "no parameters"
        raise BadInputError(
            f"{kind.class_name} does not take {', '.join(f'`{p}`' for p in unknown)} (it takes {accepted})."
        )
    config = {**kind.defaults, **given}
    name = kind.class_name
    for key in ("mean", "stddev", "minval", "maxval", "gain", "value", "scale"):
        if key in config:
            config[key] = _as_float(key, config[key], name)
    for key in ("input_axes", "output_axes"):
        if key in config:
            config[key] = _as_axes(key, config[key], name)
    if "seed" in config:
        seed_from_config(config["seed"])
    if name == "VarianceScaling":
        if config["scale"] <= 0.0:
            raise BadInputError(f"Argument `scale` must be positive float. Received: scale={config['scale']:g}")
        if config["mode"] not in _MODES:
            raise BadInputError(f"Invalid `mode` argument: {config['mode']}. Please use one of {', '.join(_MODES)}")
        distribution = str(config["distribution"]).lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in _DISTRIBUTIONS:
            raise BadInputError(
                f"Invalid `distribution` argument: {config['distribution']}. "
                f"Please use one of {', '.join(_DISTRIBUTIONS)}"
            )
        config["distribution"] = distribution
    return InitializerSpec(name, config)


def check_request(spec: InitializerSpec, shape: tuple[int, ...], dtype: str = "float32") -> None:
    """Raise BadInputError, with Keras's reason, when the initializer cannot fill this tensor."""
    if spec.class_name == "Orthogonal" and dtype == "bfloat16":
        raise BadInputError(
            "Orthogonal cannot draw bfloat16 tensors: TensorFlow's QR (which Keras calls) has no "
            "bfloat16 kernel. Use float16, float32 or float64."
        )
    if spec.class_name == "Identity" and len(shape) != 2:
        raise BadInputError(
            "Identity matrix initializer can only be used for 2D matrices. "
            f"Received: shape={shape} of rank {len(shape)}."
        )
    if spec.class_name == "Orthogonal" and len(shape) < 2:
        raise BadInputError(
            f"The tensor to initialize must be at least two-dimensional. Received: shape={shape} of rank {len(shape)}."
        )
    for key in ("input_axes", "output_axes"):
        axes = spec.config.get(key)
        if axes and any(not -len(shape) <= a < len(shape) for a in axes):
            raise BadInputError(f"Argument `{key}`={axes} does not fit shape {shape} of rank {len(shape)}.")
