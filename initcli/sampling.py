"""Drawing the values a Keras 3 initializer produces (TensorFlow backend, CPU), without Keras.

`draw` returns a whole tensor; `iter_chunks` yields the flattened tensor piece by piece in bounded
memory for the elementwise random initializers (QR-based Orthogonal and the deterministic ones
need the whole tensor and come in one piece). The `keras` engine calls Keras itself, for
cross-checking; it imports TensorFlow.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from initcli.errors import BadInputError
from initcli.initializers import InitializerSpec, check_request
from initcli.rng import stateless
from initcli.rng.philox import PhiloxStream
from initcli.rng.stateless import keras_cast, keras_uniform_bounds, numpy_dtype
from initcli.theory import KERAS_TRUNCATED_STD_FACTOR, theory_for

ENGINES = ("numpy", "keras")
DEFAULT_CHUNK_ELEMENTS = 1 << 22
_SEED_MODULUS = 2147483646  # Keras's _cast_seed: floormod(seed, int32.max - 1)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def tf_seed(seed: int, draw_index: int = 0) -> tuple[int, int]:
    """The stateless TensorFlow seed pair Keras uses for an int seed (draw k of a SeedGenerator).

    Raises:
        BadInputError: the seed does not fit in int64 (Keras cannot convert it either).
    """
    if not _INT64_MIN <= seed <= _INT64_MAX:
        raise BadInputError(f"Seed {seed} does not fit in a 64-bit integer, which Keras requires.")
    return seed % _SEED_MODULUS, draw_index % _SEED_MODULUS


def keras_default_seed() -> int:
    """What Keras does for seed=None: a fresh seed from Python's `random` at construction."""
    return random.randint(1, 10**9)


@dataclass(frozen=True)
class _Draw:
    """The unit distribution to draw and the affine map Keras applies to it, in the dtype."""

    kind: str  # uniform | normal | truncated_normal
    multiplier: np.ndarray
    offset: np.ndarray


def _affine_draw(spec: InitializerSpec, shape: tuple[int, ...], dtype_name: str) -> _Draw | None:
    config = spec.config
    dtype = numpy_dtype(dtype_name)
    variance_scaling = spec.variance_scaling()
    if variance_scaling is not None:
        theory = theory_for(spec, shape)
        scale = theory.scale / theory.n  # type: ignore[operator]
        distribution = variance_scaling[2]
        if distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            return _uniform_draw(-limit, limit, dtype_name)
        stddev = math.sqrt(scale)
        if distribution == "truncated_normal":
            stddev /= KERAS_TRUNCATED_STD_FACTOR
            return _Draw("truncated_normal", np.asarray(stddev, dtype), np.asarray(0.0, dtype))
        return _Draw("normal", np.asarray(stddev, dtype), np.asarray(0.0, dtype))
    if spec.class_name == "RandomUniform":
        return _uniform_draw(config["minval"], config["maxval"], dtype_name)
    if spec.class_name in ("RandomNormal", "TruncatedNormal"):
        kind = "normal" if spec.class_name == "RandomNormal" else "truncated_normal"
        return _Draw(kind, np.asarray(config["stddev"], dtype), np.asarray(config["mean"], dtype))
    return None


def _uniform_draw(minval: float, maxval: float, dtype: str) -> _Draw:
    low, width = keras_uniform_bounds(minval, maxval, dtype)
    return _Draw("uniform", width, low)


_UNIT = {"uniform": stateless.uniform, "normal": stateless.normal, "truncated_normal": stateless.truncated_normal}


def _resolve_seed(spec: InitializerSpec, seed: int | None) -> int:
    if seed is None:
        seed = spec.seed
    return keras_default_seed() if seed is None else seed


def iter_chunks(
    spec: InitializerSpec,
    shape: tuple[int, ...],
    dtype: str = "float32",
    seed: int | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> Iterator[np.ndarray]:
    """Yield the flattened tensor Keras would draw, in order, `chunk_elements` at a time.

    Args:
        spec: the initializer.
        shape: the tensor shape.
        dtype: float16, bfloat16, float32 or float64.
        seed: overrides the spec's seed; with neither, a random seed as Keras picks one.
        chunk_elements: size of each chunk for elementwise initializers.
    """
    check_request(spec, shape, dtype)
    total = math.prod(shape)
    draw = _affine_draw(spec, shape, dtype)
    if draw is None:
        yield draw_whole(spec, shape, dtype, seed).reshape(-1)
        return
    stream = PhiloxStream.from_seed(*tf_seed(_resolve_seed(spec, seed)))
    unit = _UNIT[draw.kind]
    for start in range(0, total, chunk_elements):
        stop = min(total, start + chunk_elements)
        values = unit(stream, dtype, start, stop)
        # Two separately rounded ops in the dtype, as TensorFlow's `rnd * scale + offset`.
        np.multiply(values, draw.multiplier, out=values)
        np.add(values, draw.offset, out=values)
        yield values


def draw_whole(
    spec: InitializerSpec, shape: tuple[int, ...], dtype: str = "float32", seed: int | None = None
) -> np.ndarray:
    """The whole tensor, for any initializer."""
    check_request(spec, shape, dtype)
    target = numpy_dtype(dtype)
    name = spec.class_name
    if name in ("Zeros", "Ones", "Constant"):
        value = {"Zeros": 0.0, "Ones": 1.0}.get(name, spec.config.get("value", 0.0))
        # Constant does ops.cast(value, dtype).
        return np.full(shape, keras_cast(value, dtype), dtype=target)
    if name == "Identity":
        return np.eye(*shape, dtype=target) * np.asarray(spec.config["gain"], target)
    if name == "Orthogonal":
        return _orthogonal(spec, shape, target, dtype, seed)
    total = math.prod(shape)
    parts = list(iter_chunks(spec, shape, dtype, seed, chunk_elements=max(total, 1)))
    return parts[0].reshape(shape) if parts else np.empty(shape, dtype=target)


def _orthogonal(
    spec: InitializerSpec, shape: tuple[int, ...], target: np.dtype, dtype: str, seed: int | None
) -> np.ndarray:
    rows, cols = math.prod(shape[:-1]), shape[-1]
    flat_shape = (max(rows, cols), min(rows, cols))
    stream = PhiloxStream.from_seed(*tf_seed(_resolve_seed(spec, seed)))
    normal = stateless.normal(stream, dtype, 0, math.prod(flat_shape)).reshape(flat_shape)
    # Keras runs the QR in the dtype; numpy's LAPACK has float32/float64 only.
    work = np.float64 if dtype == "float64" else np.float32
    q, r = np.linalg.qr(normal.astype(work))
    q = (q * np.sign(np.diag(r))).astype(target)
    if rows < cols:
        q = q.T
    return np.asarray(spec.config["gain"], target) * q.reshape(shape)


def draw(
    spec: InitializerSpec,
    shape: tuple[int, ...],
    dtype: str = "float32",
    seed: int | None = None,
    engine: str = "numpy",
) -> np.ndarray:
    """The tensor `spec` produces at `shape`, through the numpy engine or Keras itself."""
    if engine == "keras":
        from initcli import keras_bridge

        check_request(spec, shape, dtype)
        return keras_bridge.draw(spec, shape, dtype, _resolve_seed(spec, seed))
    if engine != "numpy":
        raise BadInputError(f"Unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return draw_whole(spec, shape, dtype, seed)
