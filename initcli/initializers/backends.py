"""How Keras 3 draws the elementwise families on its JAX and torch backends (CPU), without either.

- jax: key `[seed, 0]`; `jax.random.uniform(key, shape, float32, minval, maxval)`,
  `jax.random.normal(...) * stddev + mean`, `jax.random.truncated_normal(key, -2, 2, ...) * stddev + mean`
  (each operation rounded to float32). float16, bfloat16 and float32: without `jax_enable_x64` JAX
  draws float32 even when float64 is asked for.
- torch: `torch.Generator().manual_seed(seed & 0xFFFFFFFF)` per draw; uniform is
  `(maxval - minval) * torch.rand(...) + minval` (each op rounded to the dtype; see `_scale_shift`), normal is
  `torch.normal(mean, stddev, ...)`, truncated normal takes `normal(shape + (4,))` and keeps the
  first candidate inside (-2, 2) (the first when none is), then `* stddev + mean`.
- float16/bfloat16 on both: see `initcli.rng.jax` and `initcli.rng.torch` for the draws; Keras's
  scale and shift are then rounded to the dtype op by op (`_jax_reduced`, `_scale_shift`).

`initcli.rng.jax` and `initcli.rng.torch` hold the generators; this module applies Keras's arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from initcli.errors import BadInputError
from initcli.initializers.base import flat_index_chunks
from initcli.initializers.seeding import check_backend_seed
from initcli.rng import jax as rj
from initcli.rng import torch as rt


class AffineDraw(Protocol):
    """What is drawn (`initcli.initializers.elementwise.AffineDraw`, which calls this module): the unit
    distribution and Keras's affine map of it, in the dtype."""

    @property
    def unit(self) -> str: ...
    @property
    def multiplier(self) -> np.ndarray: ...
    @property
    def offset(self) -> np.ndarray: ...
    @property
    def parameters(self) -> tuple[float, float]: ...


# `--backend jax --no-jax-threefry-partitionable`: JAX with jax_threefry_partitionable=False (its
# default before 0.5), which lays the threefry counters out otherwise (`initcli.rng.jax`).
JAX_UNPARTITIONED = "jax:unpartitioned"
GENERATORS = {
    "tensorflow": "Philox4x32-10 as TensorFlow's stateless ops run it on CPU",
    "jax": "threefry2x32 with the raw key [seed, 0], jax_threefry_partitionable=True (JAX's default since 0.5)",
    JAX_UNPARTITIONED: "threefry2x32 with the raw key [seed, 0], jax_threefry_partitionable=False (JAX before 0.5)",
    "torch": "mt19937 seeded with seed & 0xFFFFFFFF, torch's CPU kernels (the AVX2 normal kernel)",
}


def keras_backend(backend: str) -> str:
    """The KERAS_BACKEND of a backend name (`jax:unpartitioned` is jax in another mode)."""
    return backend.split(":", 1)[0]


def partitionable(backend: str) -> bool:
    """JAX's jax_threefry_partitionable for a jax backend name."""
    return backend != JAX_UNPARTITIONED


def generator_line(backend: str, seed: int) -> str:
    """What draws the values on `backend`, for explanations."""
    return f"Keras 3 with KERAS_BACKEND={keras_backend(backend)}, seed {seed}: {GENERATORS[backend]}."


def backend_flags(backend: str) -> str:
    """The command-line options that name `backend`."""
    if backend == JAX_UNPARTITIONED:
        return "--backend jax --no-jax-threefry-partitionable"
    return f"--backend {backend}"


def keras_prefix(backend: str) -> str:
    """What a Keras line runs under, before the line: empty for TensorFlow."""
    if backend == "tensorflow":
        return ""
    mode = ", jax_threefry_partitionable=False" if backend == JAX_UNPARTITIONED else ""
    return f"KERAS_BACKEND={keras_backend(backend)}{mode}: "


def check_request(backend: str, unit: str, size: int, dtype: str) -> None:
    """Refuse, with the reason, what initcli does not reproduce on the backend.

    Raises:
        BadInputError: the dtype.
    """
    if keras_backend(backend) == "jax" and dtype not in (*rj.SUPPORTED_DTYPES, *rj.REDUCED_DTYPES):
        raise BadInputError(
            "--backend jax draws float16, bfloat16 and float32: without jax_enable_x64 JAX returns float32 "
            "for float64, and that mode is not reproduced."
        )
    if backend == "torch":
        if dtype not in rt.SUPPORTED_DTYPES:
            raise BadInputError(f"--backend torch reproduces float16, bfloat16, float32 and float64, not {dtype}.")


def elementwise_chunks(
    draw: AffineDraw, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int, backend: str
) -> Iterator[np.ndarray]:
    """The flattened tensor Keras draws on `backend`, about `chunk_elements` at a time."""
    size = math.prod(shape)
    check_backend_seed(seed, keras_backend(backend))
    check_request(backend, draw.unit, size, dtype)
    if keras_backend(backend) == "jax":
        if dtype in rj.REDUCED_DTYPES:
            return _jax_reduced(draw, size, dtype, seed, chunk_elements, partitionable(backend))
        return _jax(draw, size, seed, chunk_elements, partitionable(backend))
    if backend == "torch":
        return _torch(draw, size, dtype, seed, chunk_elements)
    raise BadInputError(f"Unknown backend {backend!r}; expected tensorflow, jax ({JAX_UNPARTITIONED}) or torch")


def unit_normal(shape: tuple[int, ...], dtype: str, seed: int, backend: str) -> np.ndarray:
    """`keras.random.normal(shape, seed=seed, dtype=dtype)` (mean 0, stddev 1) on `backend`, whole."""
    size = math.prod(shape)
    check_backend_seed(seed, keras_backend(backend))
    check_request(backend, "normal", size, dtype)
    if dtype in rt.REDUCED_DTYPES:
        raise BadInputError(
            f"Orthogonal in {dtype} is not reproduced off TensorFlow "
            "(Keras fails there: JAX's and torch's QR refuse it)."
        )
    if keras_backend(backend) == "jax":
        return rj.normal(rj.keras_key(seed), size, 0, size, partitionable=partitionable(backend)).reshape(shape)
    return rt.normal(seed, size, 0.0, 1.0, dtype).reshape(shape)


def _jax(draw: AffineDraw, size: int, seed: int, chunk_elements: int, mode: bool) -> Iterator[np.ndarray]:
    key = rj.keras_key(seed)
    first, second = draw.parameters
    for start, stop in flat_index_chunks(size, chunk_elements):
        if draw.unit == "uniform":
            yield rj.uniform(key, size, start, stop, first, second, partitionable=mode)
            continue
        unit = rj.normal if draw.unit == "normal" else rj.truncated_normal
        values = unit(key, size, start, stop, partitionable=mode)
        np.multiply(values, np.float32(second), out=values)
        np.add(values, np.float32(first), out=values)
        yield values


def _scale_shift(values: np.ndarray, scale: float, shift: float, dtype: str) -> np.ndarray:
    """torch's `values * scale + shift` with Python scalars, in the dtype: the product with the scale
    in the op's compute type (float32 for float16/bfloat16), the sum with the shift cast to the dtype
    first, each rounded to the dtype (measured against torch)."""
    target = rt.numpy_dtype(dtype)
    compute = np.float64 if dtype == "float64" else np.float32
    product = (values.astype(compute) * compute(scale)).astype(target)
    return (product.astype(compute) + compute(target.type(shift))).astype(target)


def _jax_reduced(
    draw: AffineDraw, size: int, dtype: str, seed: int, chunk_elements: int, mode: bool
) -> Iterator[np.ndarray]:
    """float16/bfloat16: `initcli.rng.jax`'s reduced draws, then Keras's `* stddev + mean`, each operation
    with the scalar cast to the dtype and rounded to it."""
    key = rj.keras_key(seed)
    first, second = draw.parameters
    target = rj.reduced_dtype(dtype)
    for start, stop in flat_index_chunks(size, chunk_elements):
        if draw.unit == "uniform":
            yield rj.uniform_reduced(key, size, start, stop, first, second, dtype, partitionable=mode)
            continue
        unit = rj.normal_reduced if draw.unit == "normal" else rj.truncated_normal_reduced
        values = unit(key, size, start, stop, dtype, partitionable=mode).astype(np.float32)
        scaled = (values * np.float32(target.type(second))).astype(target).astype(np.float32)
        yield (scaled + np.float32(target.type(first))).astype(target)


def _torch(draw: AffineDraw, size: int, dtype: str, seed: int, chunk_elements: int) -> Iterator[np.ndarray]:
    first, second = draw.parameters
    if draw.unit == "uniform":
        stream = rt.WordStream(seed)
        for start, stop in flat_index_chunks(size, chunk_elements):
            # Keras: (maxval - minval) * rand + minval
            yield _scale_shift(rt.units(stream, stop - start, dtype), second - first, first, dtype)
        return
    if draw.unit == "normal":
        yield from rt.NormalDraw(seed, size, first, second, dtype).chunks(chunk_elements)
        return
    # truncated: normal(shape + (4,)) in order, 4 candidates per element
    for candidates in _regrouped(rt.NormalDraw(seed, 4 * size, 0.0, 1.0, dtype).chunks(4 * chunk_elements), 4):
        inside = (candidates > -2) & (candidates < 2)
        values = candidates[np.arange(candidates.shape[0]), np.argmax(inside, axis=1)]
        yield _scale_shift(values, second, first, dtype)  # .mul_(stddev).add_(mean)


def _regrouped(chunks: Iterator[np.ndarray], width: int) -> Iterator[np.ndarray]:
    """Rows of `width` values from a stream of chunks of any size."""
    carry: np.ndarray | None = None
    for chunk in chunks:
        joined = chunk if carry is None or not carry.size else np.concatenate([carry, chunk])
        whole = joined.size // width * width
        if whole:
            yield joined[:whole].reshape(-1, width)
        carry = joined[whole:]


THREEFRY_PROGRAM = (
    "def threefry2x32(k0, k1, x0, x1):  # 20 rounds, JAX's rotations; uint32 arithmetic wraps\n"
    "    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)\n"
    "    x0, x1 = x0 + np.uint32(ks[0]), x1 + np.uint32(ks[1])\n"
    "    for i in range(1, 6):\n"
    "        for r in ((13, 15, 26, 6), (17, 29, 16, 24))[(i - 1) % 2]:\n"
    "            x0 = x0 + x1\n"
    "            x1 = ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))) ^ x0\n"
    "        x0 = x0 + np.uint32(ks[i % 3])\n"
    "        x1 = x1 + np.uint32((ks[(i + 1) % 3] + i) & 0xFFFFFFFF)\n"
    "    return x0, x1\n"
)


def threefry_counters(backend: str) -> str:
    """numpy code making `bits`, `jax.random.bits(key, (n,), uint32)` in the backend's threefry mode."""
    if partitionable(backend):
        return (
            "# jax_threefry_partitionable=True: value i hashes the counter pair (i >> 32, i & 0xFFFFFFFF)\n"
            "i = np.arange(n, dtype=np.uint64)\n"
            "a, b = threefry2x32(seed, 0, (i >> np.uint64(32)).astype(np.uint32), i.astype(np.uint32))\n"
            "bits = a ^ b\n"
        )
    return (
        "# jax_threefry_partitionable=False: the counters 0..n-1 (and a 0 if n is odd) hashed as\n"
        "# pairs (j, half + j); all first words, then all second words\n"
        "half = (n + 1) // 2\n"
        "count = np.zeros(2 * half, np.uint32)\n"
        "count[:n] = np.arange(n, dtype=np.uint32)\n"
        "a, b = threefry2x32(seed, 0, count[:half], count[half:])\n"
        "bits = np.concatenate([a, b])[:n]\n"
    )


def jax_uniform_exact(minval: float, maxval: float, shape: tuple[int, ...], seed: int, backend: str) -> str:
    """numpy code printing what Keras 3's JAX backend draws for `uniform(shape, minval, maxval, float32, seed)`:
    threefry2x32 (`initcli.rng.threefry`), the bits' layout of `initcli.rng.jax.random_bits32`, and XLA's
    fused `u * (maxval - minval) + minval` rounded once (`initcli.rng.xla.fma32`)."""
    return (
        "import numpy as np\n\n"
        f"seed, shape = {seed!r}, {tuple(shape)!r}\n"
        f"minval, maxval = np.float32({minval!r}), np.float32({maxval!r})\n"
        f"n = {math.prod(shape)}\n\n\n"
        + THREEFRY_PROGRAM
        + "\n\n"
        + threefry_counters(backend)
        + "u = ((bits >> np.uint32(9)) | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)  # [0, 1)\n"
        "# XLA fuses u * (maxval - minval) + minval into one multiply-add, rounded once to float32:\n"
        "# the product is exact in float64, the sum is rounded to odd there, then to float32\n"
        "p = u.astype(np.float64) * np.float64(maxval - minval)\n"
        "s = p + np.float64(minval)\n"
        "err = (p - (s - (s - p))) + (np.float64(minval) - (s - p))\n"
        "word = s.view(np.int64)\n"
        "step = np.where(np.signbit(err) == np.signbit(s), 1, -1)\n"
        "s = np.where((err != 0) & (word % 2 == 0), (word + step).view(np.float64), s)\n"
        "w = np.maximum(minval, s.astype(np.float32)).reshape(shape)\n"
        'print(np.array2string(w, separator=", ", floatmode="unique",\n'
        "                      threshold=w.size + 1))\n"
    )
