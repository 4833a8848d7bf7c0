"""RandomNormal, TruncatedNormal and RandomUniform: fixed parameters, no fans."""

from __future__ import annotations

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
from initcli.stats.theory import Theory


class _Normal(ElementwiseFamily):
    def validate(self, kind: InitializerKind, config: dict[str, Any]) -> dict[str, Any]:
        for key in ("mean", "stddev"):
            config[key] = as_float(key, config[key], kind.class_name)
        return config

    def check_asked(self, kind: InitializerKind, asked: dict[str, Any]) -> None:
        stddev = asked.get("stddev")
        if stddev is not None and stddev < 0:
            raise BadInputError(
                f"{kind.class_name} stddev must be >= 0; received stddev={stddev:g} (Keras accepts it and draws "
                f"the mirrored values, -1 times those of stddev={-stddev:g})"
            )


class RandomNormalFamily(_Normal):
    kinds = (
        InitializerKind(
            class_name="RandomNormal",
            aliases=("normal",),
            defaults={"mean": 0.0, "stddev": 0.05, "seed": None},
            formula="N(mean, stddev)",
        ),
    )

    def affine_draw(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> AffineDraw:
        return normal_draw("normal", spec.config["mean"], spec.config["stddev"], dtype)

    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        config = spec.config
        return normal_distribution_theory("normal", config["mean"], config["stddev"], self.fans(spec, shape), dtype)


class TruncatedNormalFamily(_Normal):
    kinds = (
        InitializerKind(
            class_name="TruncatedNormal",
            defaults={"mean": 0.0, "stddev": 0.05, "seed": None},
            formula="N(mean, stddev) redrawn outside mean ± 2·stddev; actual std = 0.8796·stddev",
        ),
    )

    def affine_draw(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> AffineDraw:
        return normal_draw("truncated_normal", spec.config["mean"], spec.config["stddev"], dtype)

    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        config = spec.config
        fans = self.fans(spec, shape)
        return normal_distribution_theory("truncated_normal", config["mean"], config["stddev"], fans, dtype)


class RandomUniformFamily(ElementwiseFamily):
    kinds = (
        InitializerKind(
            class_name="RandomUniform",
            aliases=("uniform",),
            defaults={"minval": -0.05, "maxval": 0.05, "seed": None},
            formula="U[minval, maxval)",
        ),
    )

    def validate(self, kind: InitializerKind, config: dict[str, Any]) -> dict[str, Any]:
        for key in ("minval", "maxval"):
            config[key] = as_float(key, config[key], kind.class_name)
        return config

    def affine_draw(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> AffineDraw:
        return uniform_draw(spec.config["minval"], spec.config["maxval"], dtype)

    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        config = spec.config
        return uniform_distribution_theory(config["minval"], config["maxval"], self.fans(spec, shape), dtype)
