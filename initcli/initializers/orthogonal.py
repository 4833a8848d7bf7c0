"""Orthogonal: gain · Q of the QR decomposition of a standard normal matrix."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from initcli.errors import BadInputError
from initcli.initializers.base import Family, InitializerKind, SpecLike, as_float, snippet_dtype
from initcli.initializers.seeding import tf_seed
from initcli.rng import stateless
from initcli.rng.philox import PhiloxStream
from initcli.rng.stateless import numpy_dtype
from initcli.stats.comparisons import Comparator, Orthogonality
from initcli.stats.theory import Theory

# The QR needs the whole matrix and LAPACK's workspace: refuse what would not fit a few GB.
MAX_ELEMENTS = 1 << 27
_TOLERANCE = {"float64": 1e-8, "float32": 1e-4, "float16": 2e-2, "bfloat16": 1e-1}


class OrthogonalFamily(Family):
    kinds = (
        InitializerKind(
            class_name="Orthogonal",
            aliases=("OrthogonalInitializer",),
            defaults={"gain": 1.0, "seed": None},
            formula="gain · Q of the QR of a standard normal (prod(shape[:-1]), shape[-1]) matrix; "
            "element RMS = gain / sqrt(max(rows, cols))",
        ),
    )

    def validate(self, kind: InitializerKind, config: dict[str, Any]) -> dict[str, Any]:
        config["gain"] = as_float("gain", config["gain"], kind.class_name)
        return config

    def check_request(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> None:
        if dtype == "bfloat16":
            raise BadInputError(
                "Orthogonal cannot draw bfloat16 tensors: TensorFlow's QR (which Keras calls) has no "
                "bfloat16 kernel. Use float16, float32 or float64."
            )
        if len(shape) < 2:
            raise BadInputError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        if math.prod(shape) > MAX_ELEMENTS:
            raise BadInputError(
                f"Orthogonal of shape {shape} needs the whole {math.prod(shape)}-element matrix for its QR; "
                f"initcli draws at most {MAX_ELEMENTS} elements this way."
            )

    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        gain = abs(spec.config["gain"])
        rows, cols = math.prod(shape[:-1]), shape[-1]
        rms = gain / math.sqrt(max(rows, cols))
        fan_in, fan_out = self.fans(spec, shape)
        return Theory(
            distribution="orthogonal",
            mean=0.0,
            std=rms,
            var=rms * rms,
            low=-gain,
            high=gain,
            fan_in=fan_in,
            fan_out=fan_out,
        )

    def chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int
    ) -> Iterator[np.ndarray]:
        return self.draw_chunks(spec, shape, dtype, seed, chunk_elements, "tensorflow")

    def draw_chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int, backend: str
    ) -> Iterator[np.ndarray]:
        """The normal matrix exactly as the backend draws it; the QR is numpy's (LAPACK), not the backend's."""
        target = numpy_dtype(dtype)
        rows, cols = math.prod(shape[:-1]), shape[-1]
        flat_shape = (max(rows, cols), min(rows, cols))
        if backend == "tensorflow":
            stream = PhiloxStream.from_seed(*tf_seed(seed))
            normal = stateless.normal(stream, dtype, 0, math.prod(flat_shape)).reshape(flat_shape)
        else:
            from initcli.initializers.backends import unit_normal

            normal = unit_normal(flat_shape, dtype, seed, backend)
        # Keras runs the QR in the dtype; numpy's LAPACK has float32/float64 only.
        work = np.float64 if dtype == "float64" else np.float32
        q, r = np.linalg.qr(normal.astype(work))
        q = (q * np.sign(np.diag(r))).astype(target)
        if rows < cols:
            q = q.T
        yield (np.asarray(spec.config["gain"], target) * q).reshape(-1)

    def comparator(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, theory: Theory, *, interval_alpha: float
    ) -> Comparator:
        return Orthogonality(shape, abs(spec.config["gain"]), _TOLERANCE.get(dtype, 1e-4))

    def explain(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...]) -> list[str]:
        rows, cols = math.prod(shape[:-1]), shape[-1]
        return [f"flattened to ({rows}, {cols}); element RMS = gain / sqrt(max(rows, cols)) = {theory.std:.6g}"]

    def why_not_exact(self, spec: SpecLike, theory: Theory, dtype: str) -> str:
        return (
            "Keras takes the QR decomposition of a normal matrix: TensorFlow's QR (Eigen) and numpy's (LAPACK) "
            "round differently, so no numpy code, initcli's included, gives the same bits (they agree to about 1e-6; "
            "on the jax and torch backends too, whose normal matrix initcli draws exactly)"
        )

    def numpy_snippet(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...], dtype: str) -> str:
        rows, cols = math.prod(shape[:-1]), shape[-1]
        return (
            "  import numpy as np\n  rng = np.random.default_rng(0)\n"
            f"  q, r = np.linalg.qr(rng.standard_normal(({max(rows, cols)}, {min(rows, cols)})))\n"
            f"  q *= np.sign(np.diag(r))\n"
            f"  w = {theory.high!r} * ({'q.T' if rows < cols else 'q'}).reshape({tuple(shape)!r})"
            f".astype({snippet_dtype(dtype)!r})"
        )
