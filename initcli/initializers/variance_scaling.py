"""VarianceScaling and its presets (Glorot, Lecun, He): a distribution scaled by Keras's fans."""

from __future__ import annotations

import math
from typing import Any

from initcli.errors import BadInputError
from initcli.initializers.base import InitializerKind, SpecLike, as_float
from initcli.initializers.elementwise import (
    AffineDraw,
    ElementwiseFamily,
    normal_distribution_theory,
    normal_draw,
    uniform_distribution_theory,
    uniform_draw,
)
from initcli.stats.theory import KERAS_TRUNCATED_STD_FACTOR, Theory

DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
MODES = ("fan_in", "fan_out", "fan_avg")
_AXES = {"seed": None, "input_axes": None, "output_axes": None}


def _preset(
    class_name: str, scale: float, mode: str, distribution: str, aliases: tuple[str, ...], formula: str
) -> InitializerKind:
    return InitializerKind(
        class_name=class_name,
        aliases=aliases,
        defaults=dict(_AXES),
        formula=formula,
        preset=(scale, mode, distribution),
    )


def _as_axes(name: str, value: Any, initializer: str) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(a, int) and not isinstance(a, bool) for a in value):
        return list(value)
    raise BadInputError(f"Argument `{name}` of {initializer} must be a list of ints. Received: {name}={value!r}")


class VarianceScalingFamily(ElementwiseFamily):
    """s = scale / max(1, n) with n the mode's fan; truncated normal, untruncated normal or uniform."""

    uses_fans = True
    kinds = (
        InitializerKind(
            class_name="VarianceScaling",
            defaults={"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", **_AXES},
            formula="s = scale / max(1, n), n = fan_in | fan_out | (fan_in + fan_out)/2; "
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
        _preset(
            "HeNormal", 2.0, "fan_in", "truncated_normal", ("kaiming_normal",), "truncated N, std = sqrt(2 / fan_in)"
        ),
    )

    def validate(self, kind: InitializerKind, config: dict[str, Any]) -> dict[str, Any]:
        name = kind.class_name
        for key in ("input_axes", "output_axes"):
            config[key] = _as_axes(key, config[key], name)
        if kind.preset is not None:
            return config
        config["scale"] = as_float("scale", config["scale"], name)
        if config["scale"] <= 0.0:
            raise BadInputError(f"Argument `scale` must be positive float. Received: scale={config['scale']:g}")
        if config["mode"] not in MODES:
            raise BadInputError(f"Invalid `mode` argument: {config['mode']}. Please use one of {', '.join(MODES)}")
        distribution = str(config["distribution"]).lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in DISTRIBUTIONS:
            raise BadInputError(
                f"Invalid `distribution` argument: {config['distribution']}. "
                f"Please use one of {', '.join(DISTRIBUTIONS)}"
            )
        config["distribution"] = distribution
        return config

    def check_request(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> None:
        for key in ("input_axes", "output_axes"):
            axes = spec.config.get(key)
            if axes and any(not -len(shape) <= a < len(shape) for a in axes):
                raise BadInputError(f"Argument `{key}`={axes} does not fit shape {shape} of rank {len(shape)}.")
        super().check_request(spec, shape, dtype)

    @staticmethod
    def parameters(spec: SpecLike) -> tuple[float, str, str]:
        """(scale, mode, distribution) in effect."""
        preset = spec.kind.preset
        if preset is not None:
            return preset
        config = spec.config
        return float(config["scale"]), config["mode"], config["distribution"]

    def _variance(self, spec: SpecLike, shape: tuple[int, ...]) -> tuple[float, dict[str, Any]]:
        scale, mode, _ = self.parameters(spec)
        fan_in, fan_out = self.fans(spec, shape)
        n = max(1.0, float({"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]))
        return scale / n, {"n": n, "scale": scale, "mode": mode}

    def affine_draw(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> AffineDraw:
        s, _ = self._variance(spec, shape)
        distribution = self.parameters(spec)[2]
        if distribution == "uniform":
            limit = math.sqrt(3.0 * s)
            return uniform_draw(-limit, limit, dtype)
        if distribution == "truncated_normal":
            return normal_draw("truncated_normal", 0.0, math.sqrt(s) / KERAS_TRUNCATED_STD_FACTOR, dtype)
        return normal_draw("normal", 0.0, math.sqrt(s), dtype)

    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        s, extra = self._variance(spec, shape)
        fans = self.fans(spec, shape)
        distribution = self.parameters(spec)[2]
        if distribution == "uniform":
            limit = math.sqrt(3.0 * s)
            return uniform_distribution_theory(-limit, limit, fans, dtype, **extra)
        if distribution == "truncated_normal":
            stddev = math.sqrt(s) / KERAS_TRUNCATED_STD_FACTOR
            return normal_distribution_theory("truncated_normal", 0.0, stddev, fans, dtype, **extra)
        return normal_distribution_theory("normal", 0.0, math.sqrt(s), fans, dtype, **extra)

    def explain(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...]) -> list[str]:
        mode_expression = {
            "fan_in": f"fan_in = {theory.fan_in}",
            "fan_out": f"fan_out = {theory.fan_out}",
            "fan_avg": f"(fan_in + fan_out) / 2 = ({theory.fan_in} + {theory.fan_out}) / 2",
        }[theory.mode or "fan_in"]
        assert theory.scale is not None and theory.n is not None
        s = theory.scale / theory.n
        return [
            f"mode {theory.mode}: n = max(1, {mode_expression}) = {theory.n:g}; "
            f"s = scale / n = {theory.scale:g} / {theory.n:g} = {s:.6g}",
            *super().explain(spec, theory, shape),
        ]
