"""Drawing the values a Keras 3 initializer produces (TensorFlow backend, CPU), without Keras.

`iter_chunks` yields the flattened tensor piece by piece from the initializer's family (in bounded
memory for everything but Orthogonal, whose QR needs the whole matrix); `draw` returns the whole
tensor, through the numpy engine or, for cross-checking, Keras itself (which imports TensorFlow).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from initcli.errors import BadInputError
from initcli.initializers import DEFAULT_CHUNK_ELEMENTS, InitializerSpec
from initcli.initializers.seeding import keras_default_seed, tf_seed
from initcli.rng.stateless import numpy_dtype
from initcli.types import ENGINES

__all__ = ["ENGINES", "draw", "draw_whole", "iter_chunks", "keras_default_seed", "tf_seed"]


def iter_chunks(
    spec: InitializerSpec,
    shape: tuple[int, ...],
    dtype: str = "float32",
    seed: int | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    backend: str = "tensorflow",
) -> Iterator[np.ndarray]:
    """Yield the flattened tensor Keras would draw, in order, about `chunk_elements` at a time.

    Args:
        spec: the initializer.
        shape: the tensor shape.
        dtype: float16, bfloat16, float32 or float64.
        seed: overrides the spec's seed; with neither, a random seed as Keras picks one.
        chunk_elements: size of each chunk for initializers that stream.
        backend: the Keras 3 backend whose draws to reproduce (tensorflow, jax or torch; CPU).
    """
    spec.check_request(shape, dtype)
    return spec.family.draw_chunks(spec, shape, dtype, spec.draw_seed(seed).value, chunk_elements, backend)


def draw_whole(
    spec: InitializerSpec,
    shape: tuple[int, ...],
    dtype: str = "float32",
    seed: int | None = None,
    backend: str = "tensorflow",
) -> np.ndarray:
    """The whole tensor, for any initializer."""
    parts = list(iter_chunks(spec, shape, dtype, seed, max(math.prod(shape), 1), backend))
    if not parts:
        return np.empty(shape, dtype=numpy_dtype(dtype))
    flat = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return flat.reshape(shape)


def draw(
    spec: InitializerSpec,
    shape: tuple[int, ...],
    dtype: str = "float32",
    seed: int | None = None,
    engine: str = "numpy",
    backend: str = "tensorflow",
) -> np.ndarray:
    """The tensor `spec` produces at `shape`, through the numpy engine or Keras itself (TensorFlow)."""
    if engine == "keras":
        from initcli.keras import bridge as keras_bridge

        spec.check_request(shape, dtype)
        return keras_bridge.draw(spec, shape, dtype, spec.draw_seed(seed).value)
    if engine != "numpy":
        raise BadInputError(f"Unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return draw_whole(spec, shape, dtype, seed, backend)
