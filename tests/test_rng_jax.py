"""initcli.rng.jax / threefry / xla against JAX itself (CPU) and Random123's known answers.

JAX is a test oracle only (the `backends` extra); without it these tests are skipped.
"""

from __future__ import annotations

import numpy as np
import pytest

from initcli.rng import jax as rj
from initcli.rng import threefry, xla


class _Imported:
    """JAX, imported by the first test that uses it (skipping it if JAX is absent), not at collection.

    JAX starts threads and warns at every later `os.fork`, so it must not be imported while the
    suite's forking tests still run: conftest.py runs this module's tests last.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        return getattr(pytest.importorskip(self._name), attribute)


jax = _Imported("jax")
jnp = _Imported("jax.numpy")
lax = _Imported("jax.lax")

SEEDS = (0, 1, 7, 42, 1337, 2**31 - 1, 2**32 - 1, 123456789)
SIZES = (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1023, 4097)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


# The default mode (JAX >= 0.5) in the core suite; the original mode is slow-marked (CI runs both).
@pytest.fixture(params=[True, pytest.param(False, marks=pytest.mark.slow)], ids=["partitionable", "original"])
def mode(request):
    previous = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", request.param)
    yield request.param
    jax.config.update("jax_threefry_partitionable", previous)


def test_default_mode_is_jaxs_default():
    assert jax.config.jax_threefry_partitionable is rj.DEFAULT_PARTITIONABLE


@pytest.mark.parametrize(
    ("key", "counter", "expected"),
    [  # Random123's kat_vectors for threefry2x32_20
        ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ],
)
def test_threefry_known_answers(key, counter, expected):
    a, b = threefry.threefry2x32(key, np.array([counter[0]], np.uint32), np.array([counter[1]], np.uint32))
    assert (int(a[0]), int(b[0])) == expected


def test_threefry_matches_jax_on_random_counters():
    from jax._src.random.threefry2x32 import threefry2x32_p

    rng = np.random.default_rng(5)
    for _ in range(5):
        k0, k1 = (int(v) for v in rng.integers(0, 2**32, 2))
        x0, x1 = (rng.integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32) for _ in range(2))
        want = threefry2x32_p.bind(jnp.uint32(k0), jnp.uint32(k1), jnp.asarray(x0), jnp.asarray(x1))
        got = threefry.threefry2x32((k0, k1), x0, x1)
        assert np.array_equal(np.asarray(want[0]), got[0]) and np.array_equal(np.asarray(want[1]), got[1])


@pytest.mark.parametrize("seed", SEEDS)
def test_draws_match_jax(mode, seed):
    key = jnp.array([seed, 0], dtype=jnp.uint32)
    ours = rj.keras_key(seed)
    for n in SIZES:
        assert _same_bits(jax.random.bits(key, (n,), jnp.uint32), rj.random_bits32(ours, n, 0, n, partitionable=mode))
        want = jax.random.uniform(key, (n,), jnp.float32, -0.05, 0.05)
        assert _same_bits(want, rj.uniform(ours, n, 0, n, -0.05, 0.05, partitionable=mode)), ("uniform", n)
        want = jax.random.normal(key, (n,), jnp.float32)
        assert _same_bits(want, rj.normal(ours, n, 0, n, partitionable=mode)), ("normal", n)
        want = jax.random.truncated_normal(key, -2.0, 2.0, (n,), jnp.float32)
        assert _same_bits(want, rj.truncated_normal(ours, n, 0, n, partitionable=mode)), ("truncated", n)


def test_large_draw_and_chunks(mode):
    n = 3 * 2**18 + 5
    key = jnp.array([99, 0], dtype=jnp.uint32)
    want = np.asarray(jax.random.normal(key, (n,), jnp.float32))
    pieces = [
        rj.normal((99, 0), n, start, min(start + 100_003, n), partitionable=mode) for start in range(0, n, 100_003)
    ]
    assert _same_bits(want, np.concatenate(pieces))
    want = np.asarray(jax.random.truncated_normal(key, -2.0, 2.0, (n,), jnp.float32))
    assert _same_bits(want, rj.truncated_normal((99, 0), n, 0, n, partitionable=mode))


def test_uniform_bounds_vary():
    key = jnp.array([3, 0], dtype=jnp.uint32)
    for low, high in ((-1.0, 1.0), (0.0, 1.0), (-0.3, 0.7), (1e-3, 2.5), (-7.25, -7.0)):
        want = jax.random.uniform(key, (513,), jnp.float32, low, high)
        assert _same_bits(want, rj.uniform((3, 0), 513, 0, 513, low, high)), (low, high)


def _reachable_normal_inputs() -> np.ndarray:
    """Every float32 jax.random.normal hands to erf_inv: the 2^23 uniforms on (-1, 1)."""
    k = np.arange(1 << 23, dtype=np.uint32)
    unit = (k | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)
    low = np.nextafter(np.float32(-1), np.float32(0))
    return np.maximum(low, xla.fma32(unit, np.float32(1) - low, low))


@pytest.mark.slow
def test_erfinv_exhaustive_over_normal_inputs():
    u = _reachable_normal_inputs()
    want = np.asarray(jax.jit(lax.erf_inv)(u))
    assert _same_bits(want, xla.erfinv_f32(u))


def test_erfinv_random_inputs_every_branch():
    rng = np.random.default_rng(11)
    # uniform on (-1, 1), values near ±1 (w >= 5 branch), tiny values (log1p's small branch), and ±1
    near_one = (np.float32(1) - rng.uniform(0, 1e-3, 200_000).astype(np.float32)) * rng.choice([-1, 1], 200_000)
    u = np.concatenate(
        [
            rng.uniform(-1, 1, 1_000_000).astype(np.float32),
            near_one.astype(np.float32),
            rng.uniform(-1e-3, 1e-3, 100_000).astype(np.float32),
            np.float32([0.0, -0.0, 1.0, -1.0, 0.5, -0.5]),
        ]
    )
    w = -(u * u)
    small = np.abs(w) < np.float32(0.41421356)
    assert small.any() and (~small).any()
    with np.errstate(divide="ignore"):
        assert (np.log1p(w.astype(np.float64)) <= -5).any()  # the sqrt branch of erf_inv
    want = np.asarray(jax.jit(lax.erf_inv)(u))
    assert _same_bits(want, xla.erfinv_f32(u))


def test_erf_of_scaled_bounds():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 3, 500_000).astype(np.float32), np.float32([-2, 2, 0, -6, 6])])
    half_sqrt2 = np.float32(0.707106769)
    want = np.asarray(jax.jit(lambda v: lax.erf(v * half_sqrt2))(x))
    assert _same_bits(want, xla.erf_f32(x * half_sqrt2))


def test_fma32_is_single_rounding():
    from fractions import Fraction

    rng = np.random.default_rng(4)
    a, b = (rng.standard_normal(20_000).astype(np.float32) for _ in range(2))
    c = -(a * b) * rng.uniform(0.5, 1.5, 20_000).astype(np.float32)  # cancellation: the rounding shows
    got = xla.fma32(a, b, c)
    for x, y, z, value in zip(a.tolist(), b.tolist(), c.tolist(), got.tolist()):
        exact = Fraction(x) * Fraction(y) + Fraction(z)
        # value is the float32 nearest to exact (ties to even): check its neighbours are not nearer
        v = np.float32(value)
        below, above = np.nextafter(v, np.float32(-np.inf)), np.nextafter(v, np.float32(np.inf))
        error = abs(Fraction(float(v)) - exact)
        assert error <= abs(Fraction(float(below)) - exact) and error <= abs(Fraction(float(above)) - exact)


def test_unsupported_dtype_is_refused():
    with pytest.raises(ValueError, match="float32"):
        rj.check_dtype("float64")
