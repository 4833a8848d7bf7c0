"""Shared machinery of the families that draw each element independently from a unit distribution.

Keras draws `unit · multiplier + offset` in the dtype, where the unit draw is TensorFlow's
stateless uniform, normal or truncated normal. These families stream any tensor in bounded memory,
are judged statistically, and explain themselves by their distribution.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from initcli.errors import BadInputError
from initcli.initializers.base import Family, SpecLike, flat_index_chunks, snippet_dtype
from initcli.initializers.seeding import tf_seed
from initcli.rng import stateless
from initcli.rng.philox import PhiloxStream
from initcli.rng.stateless import keras_uniform_bounds, numpy_dtype, unit_uniform_grid
from initcli.stats.comparisons import Comparator, Statistical
from initcli.stats.theory import Theory, normal_theory, truncated_normal_theory, uniform_theory

UnitDistribution = Literal["uniform", "normal", "truncated_normal"]
_UNIT = {"uniform": stateless.uniform, "normal": stateless.normal, "truncated_normal": stateless.truncated_normal}


@dataclass(frozen=True)
class AffineDraw:
    """The unit distribution to draw and the affine map Keras applies to it, in the dtype."""

    unit: UnitDistribution
    multiplier: np.ndarray
    offset: np.ndarray
    #: As the config gives them: (minval, maxval) of a uniform, (mean, stddev) of a normal.
    parameters: tuple[float, float] = (0.0, 1.0)


def uniform_draw(minval: float, maxval: float, dtype: str) -> AffineDraw:
    """`keras.random.uniform(minval, maxval)`: bounds float32-rounded, then `u·width + low` in the dtype."""
    low, width = keras_uniform_bounds(minval, maxval, dtype)
    return AffineDraw("uniform", width, low, (minval, maxval))


def normal_draw(unit: UnitDistribution, mean: float, stddev: float, dtype: str) -> AffineDraw:
    """`keras.random.normal`/`truncated_normal`: `z·stddev + mean` with both converted to the dtype."""
    target = numpy_dtype(dtype)
    with np.errstate(over="ignore", under="ignore"):
        return AffineDraw(unit, np.asarray(stddev, target), np.asarray(mean, target), (mean, stddev))


def as_drawn(value: float, dtype: str) -> float:
    """A normal's mean/stddev as Keras hands it to TensorFlow: converted to the dtype.

    Only float16/bfloat16 round visibly (0.05 becomes 0.0500488 in bfloat16); float32/float64
    parameters are reported as given.
    """
    if dtype in ("float16", "bfloat16"):
        return float(np.asarray(value, dtype=numpy_dtype(dtype)).astype(np.float64))
    return value


def uniform_distribution_theory(
    minval: float, maxval: float, fans: tuple[int, int], dtype: str, **extra: Any
) -> Theory:
    """U[minval, maxval) as TensorFlow draws it in the dtype.

    In float16 and bfloat16 the unit uniform has only 2^10 / 2^7 levels, which shifts the mean by
    about width/2^(m+1): a million-value sample sees it. There the theory is the exact discrete
    distribution: every level put through Keras's arithmetic in the dtype.
    """
    atoms = None
    if dtype in ("float16", "bfloat16"):
        low, width = keras_uniform_bounds(minval, maxval, dtype)
        atoms = np.sort(((unit_uniform_grid(dtype) * width).astype(low.dtype) + low).astype(np.float64))
    return uniform_theory(minval, maxval, fans, atoms=atoms, **extra)


def normal_distribution_theory(
    unit: UnitDistribution, mean: float, stddev: float, fans: tuple[int, int], dtype: str, **extra: Any
) -> Theory:
    make = truncated_normal_theory if unit == "truncated_normal" else normal_theory
    return make(as_drawn(mean, dtype), as_drawn(stddev, dtype), fans, **extra)


class ElementwiseFamily(Family):
    """A family whose values are `unit · multiplier + offset`, element by element."""

    def affine_draw(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> AffineDraw:
        raise NotImplementedError

    def check_request(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> None:
        """Refuse parameters that overflow the dtype, or a nonzero spread that rounds to 0 in it.

        Keras converts them to the weight's dtype before drawing: `stddev=1e-200` draws all zeros in
        float32 and `stddev=1e39` infinities, neither of which is what the config says.
        """
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            draw = self.affine_draw(spec, shape, dtype)
            intended = self.affine_draw(spec, shape, "float64")
        if not (np.isfinite(draw.multiplier) and np.isfinite(draw.offset)):
            raise BadInputError(f"{spec.class_name}'s parameters overflow {dtype}: {spec.config}")
        if float(draw.multiplier) == 0.0 and float(intended.multiplier) != 0.0:
            raise BadInputError(
                f"{spec.class_name}'s spread ({float(intended.multiplier):g}) rounds to 0 in {dtype}: every value "
                f"would be {float(draw.offset):g}"
            )

    def chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int
    ) -> Iterator[np.ndarray]:
        draw = self.affine_draw(spec, shape, dtype)
        stream = PhiloxStream.from_seed(*tf_seed(seed))
        unit = _UNIT[draw.unit]
        for start, stop in flat_index_chunks(math.prod(shape), chunk_elements):
            values = unit(stream, dtype, start, stop)
            # Two separately rounded ops in the dtype, as TensorFlow's `rnd * scale + offset`.
            np.multiply(values, draw.multiplier, out=values)
            np.add(values, draw.offset, out=values)
            yield values

    def draw_chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int, backend: str
    ) -> Iterator[np.ndarray]:
        if backend == "tensorflow":
            return self.chunks(spec, shape, dtype, seed, chunk_elements)
        from initcli.initializers.backends import elementwise_chunks

        return elementwise_chunks(self.affine_draw(spec, shape, dtype), shape, dtype, seed, chunk_elements, backend)

    def comparator(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, theory: Theory, *, interval_alpha: float
    ) -> Comparator:
        return Statistical(theory, dtype, interval_alpha)

    def explain(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...]) -> list[str]:
        if theory.distribution == "uniform":
            return [
                f"uniform on [{theory.low:.6g}, {theory.high:.6g}): limit (half-width) = {theory.limit:.6g}, "
                f"std = limit / sqrt(3) = {theory.std:.6g}"
            ]
        if theory.distribution == "truncated_normal":
            return [
                f"stddev_param (the underlying normal's stddev, before truncation) = {theory.stddev_param:.6g}; "
                f"values outside mean ± 2·stddev_param = ±{theory.limit:.6g} are redrawn; "
                f"std of the values = 0.87962566·stddev_param = {theory.std:.6g}"
            ]
        return [f"normal: mean {theory.mean:g}, stddev_param = std of the values = {theory.std:.6g}"]

    def exact_numpy_snippet(
        self, spec: SpecLike, theory: Theory, shape: tuple[int, ...], dtype: str, seed: int
    ) -> str | None:
        """The uniform draws: Philox and TensorFlow's float conversion fit in a short numpy program."""
        from initcli.initializers.snippets import EXACT_DTYPES, uniform_exact

        draw = self.affine_draw(spec, shape, dtype)
        if draw.unit != "uniform" or dtype not in EXACT_DTYPES or theory.low is None or theory.high is None:
            return None
        low, width = keras_uniform_bounds(theory.low, theory.high, dtype)
        if not (np.array_equal(low, draw.offset) and np.array_equal(width, draw.multiplier)):
            return None  # bounds given high to low: Keras's arithmetic is not the snippet's
        return uniform_exact(theory.low, theory.high, shape, dtype, seed, f"{spec.class_name}'s bounds for this shape")

    def exact_backend_snippet(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, backend: str
    ) -> str | None:
        """Keras-on-torch's uniforms: mt19937 (numpy has it) and torch's float conversion; Keras-on-JAX's
        float32 uniforms: threefry2x32 and XLA's fused multiply-add, in a few lines of numpy."""
        from initcli.initializers.backends import jax_uniform_exact, keras_backend
        from initcli.initializers.snippets import torch_uniform_exact

        draw = self.affine_draw(spec, shape, dtype)
        if draw.unit != "uniform":
            return None
        if keras_backend(backend) == "jax" and dtype == "float32":
            return jax_uniform_exact(*draw.parameters, shape, seed, backend)
        if backend != "torch" or dtype not in ("float32", "float64"):
            return None
        return torch_uniform_exact(*draw.parameters, shape, dtype, seed)

    def backend_program(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, backend: str
    ) -> tuple[str, bool] | None:
        """The uniforms' exact programs, and the normal families': JAX float32 (exact), torch float32
        (exact) and float64 (exact below 16 values drawn, else within `TORCH_FLOAT64_MAX_ULP`)."""
        from initcli.initializers import backend_programs as programs
        from initcli.initializers.backends import keras_backend

        draw = self.affine_draw(spec, shape, dtype)
        if draw.unit == "uniform":
            return super().backend_program(spec, shape, dtype, seed, backend)
        mean, stddev = draw.parameters
        if keras_backend(backend) == "jax" and dtype == "float32":
            return programs.jax_normal_program(draw.unit, mean, stddev, shape, seed, backend), True
        if backend == "torch" and dtype in ("float32", "float64"):
            return programs.torch_normal_program(draw.unit, mean, stddev, shape, dtype, seed)
        return None

    def why_not_exact(self, spec: SpecLike, theory: Theory, dtype: str) -> str:
        if theory.distribution == "uniform":
            return (
                f"{dtype} has no numpy type of its own (ml_dtypes has it): the bits need more than numpy; "
                "initcli sample --save writes the exact values"
            )
        return (
            "TensorFlow's normals come from Box-Muller with the C library's float logf and sincosf, whose last-bit "
            "rounding numpy's log/sin/cos do not reproduce (1.5-10% of values differ by an ulp): "
            "the exact values need ports of those routines (initcli's engine has them: initcli sample --save, "
            "or initcli.analysis.sampling.draw)"
        )

    def numpy_snippet(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...], dtype: str) -> str:
        header = "  import numpy as np\n  rng = np.random.default_rng(0)\n"
        size, np_dtype = tuple(shape), snippet_dtype(dtype)
        if theory.distribution == "uniform":
            body = f"  w = rng.uniform({theory.low!r}, {theory.high!r}, size={size!r}).astype({np_dtype!r})"
        elif theory.distribution == "normal":
            body = f"  w = rng.normal({theory.mean!r}, {theory.stddev_param!r}, size={size!r}).astype({np_dtype!r})"
        else:
            body = (
                f"  z = rng.standard_normal(size={size!r})\n"
                f"  while (bad := np.abs(z) >= 2).any():\n      z[bad] = rng.standard_normal(bad.sum())\n"
                f"  w = ({theory.mean!r} + {theory.stddev_param!r} * z).astype({np_dtype!r})"
            )
        return header + body
