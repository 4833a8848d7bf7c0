"""Constant, Zeros and Ones: every element the same value, compared exactly."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from initcli.initializers.base import Family, InitializerKind, SpecLike, as_float, snippet_dtype, streamed
from initcli.rng.stateless import keras_cast
from initcli.stats.comparisons import Comparator, Exact, rounding_tolerance
from initcli.stats.theory import Theory, exact_theory


class ConstantFamily(Family):
    random = False
    kinds = (
        InitializerKind(class_name="Constant", defaults={"value": 0.0}, formula="every element = value"),
        InitializerKind(class_name="Zeros", aliases=("zero",), formula="every element = 0"),
        InitializerKind(class_name="Ones", aliases=("one",), formula="every element = 1"),
    )

    def validate(self, kind: InitializerKind, config: dict[str, Any]) -> dict[str, Any]:
        if "value" in config:
            config["value"] = as_float("value", config["value"], kind.class_name)
        return config

    @staticmethod
    def value(spec: SpecLike) -> float:
        return {"Zeros": 0.0, "Ones": 1.0}.get(spec.class_name, spec.config.get("value", 0.0))

    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        value = self.value(spec)
        count = math.prod(shape)
        return exact_theory(
            "constant", count, value * count, value * value * count, value, value, self.fans(spec, shape)
        )

    def chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int
    ) -> Iterator[np.ndarray]:
        # Constant does ops.cast(value, dtype): through float32 first.
        value = keras_cast(self.value(spec), dtype)
        return streamed(
            lambda start, stop: np.full(stop - start, value, dtype=value.dtype), math.prod(shape), chunk_elements
        )

    def comparator(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, theory: Theory, *, interval_alpha: float
    ) -> Comparator:
        value = self.value(spec)
        return Exact(lambda start, stop: np.full(stop - start, value), rounding_tolerance(dtype, value))

    def numpy_snippet(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...], dtype: str) -> str:
        return (
            "  import numpy as np\n"
            f"  w = np.full({tuple(shape)!r}, {self.value(spec)!r}, dtype={snippet_dtype(dtype)!r})"
        )
