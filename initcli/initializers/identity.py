"""Identity: gain · eye(rows, cols), 2-D only, compared exactly (streamed: never materialized)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from initcli.errors import BadInputError
from initcli.initializers.base import Family, InitializerKind, SpecLike, as_float, snippet_dtype, streamed
from initcli.rng.stateless import numpy_dtype
from initcli.stats.comparisons import Comparator, Exact, rounding_tolerance
from initcli.stats.theory import Theory, exact_theory


def _eye_elements(start: int, stop: int, columns: int, gain: Any, dtype: Any) -> np.ndarray:
    """Flat elements [start, stop) of gain · eye(rows, columns)."""
    index = np.arange(start, stop, dtype=np.int64)
    on_diagonal = index // columns == index % columns
    return np.where(on_diagonal, np.asarray(gain, dtype), np.asarray(0, dtype)).astype(dtype)


class IdentityFamily(Family):
    random = False
    kinds = (
        InitializerKind(
            class_name="Identity",
            aliases=("IdentityInitializer",),
            defaults={"gain": 1.0},
            formula="gain · eye(rows, cols); 2-D shapes only",
        ),
    )

    def validate(self, kind: InitializerKind, config: dict[str, Any]) -> dict[str, Any]:
        config["gain"] = as_float("gain", config["gain"], kind.class_name)
        return config

    def check_request(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> None:
        if len(shape) != 2:
            raise BadInputError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )

    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        gain = spec.config["gain"]
        ones = min(shape)
        return exact_theory(
            "identity",
            math.prod(shape),
            gain * ones,
            gain * gain * ones,
            min(0.0, gain),
            max(0.0, gain),
            self.fans(spec, shape),
        )

    def chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int
    ) -> Iterator[np.ndarray]:
        target = numpy_dtype(dtype)
        # Keras computes gain · eye in the dtype: the gain is rounded to it.
        gain = np.asarray(spec.config["gain"], target)
        return streamed(
            lambda start, stop: _eye_elements(start, stop, shape[1], gain, target), math.prod(shape), chunk_elements
        )

    def comparator(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, theory: Theory, *, interval_alpha: float
    ) -> Comparator:
        gain = spec.config["gain"]
        return Exact(
            lambda start, stop: _eye_elements(start, stop, shape[1], gain, np.float64), rounding_tolerance(dtype, gain)
        )

    def numpy_snippet(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...], dtype: str) -> str:
        return (
            "  import numpy as np\n"
            f"  w = {spec.config['gain']!r} * np.eye(*{tuple(shape)!r}, dtype={snippet_dtype(dtype)!r})"
        )
