"""What an initializer should produce for a shape: fans, distribution, moments, limits.

Pure functions of an `InitializerSpec` and a shape; no sampling and no TensorFlow. Two different
sigmas appear and are kept apart by name: `std` is the standard deviation of the values actually
drawn, `stddev_param` is the `stddev` handed to the normal generator (for a truncated normal, the
stddev of the underlying normal before the ±2·stddev_param truncation).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from initcli.fans import compute_fans
from initcli.initializers import InitializerSpec
from initcli.rng.stateless import keras_uniform_bounds, numpy_dtype, unit_uniform_grid

TRUNCATION_SIGMAS = 2.0
# Keras divides by this constant: the std of a standard normal truncated to (-2, 2).
KERAS_TRUNCATED_STD_FACTOR = 0.87962566103423978


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _truncated_moments(bound: float) -> tuple[float, float]:
    """(variance, excess kurtosis) of a standard normal truncated to (-bound, bound)."""
    mass = math.erf(bound / math.sqrt(2.0))
    variance = 1.0 - 2.0 * bound * _phi(bound) / mass
    fourth = 3.0 - 2.0 * _phi(bound) * (bound**3 + 3.0 * bound) / mass
    return variance, fourth / variance**2 - 3.0


TRUNCATED_VARIANCE, TRUNCATED_EXCESS_KURTOSIS = _truncated_moments(TRUNCATION_SIGMAS)


@dataclass(frozen=True)
class Theory:
    """The distribution an initializer draws from, for one shape.

    Attributes:
        distribution: normal, truncated_normal, uniform, constant, identity or orthogonal.
        mean: expected value of an element.
        std: standard deviation of the drawn values (after truncation).
        var: std squared.
        limit: uniform half-width around the mean, or the truncation bound's distance from the
            mean (2·stddev_param); None where values are unbounded or the notion does not apply.
        stddev_param: the stddev given to the normal generator (underlying normal for truncated).
        low, high: support bounds where they exist.
        atoms: for distributions with finitely many equally likely values (uniform in float16 and
            bfloat16), every value, sorted.
        excess_kurtosis: of the element distribution; sizes confidence intervals for the std.
        fan_in, fan_out: as Keras computes them for the shape.
        n: the fan VarianceScaling divides by (max(1, fan)), for VarianceScaling and its presets.
        scale, mode: the VarianceScaling parameters in effect.
    """

    distribution: str
    mean: float | None
    std: float | None
    var: float | None
    limit: float | None
    stddev_param: float | None
    low: float | None
    high: float | None
    excess_kurtosis: float | None
    fan_in: int
    fan_out: int
    n: float | None = None
    scale: float | None = None
    mode: str | None = None
    atoms: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        del out["fan_in"], out["fan_out"], out["atoms"]
        return out

    def cdf(self, x: np.ndarray, left: bool = False) -> np.ndarray | None:
        """P(X <= x) (with `left`, P(X < x)) for the random distributions; None otherwise."""
        if self.atoms is not None:
            side = "left" if left else "right"
            return np.searchsorted(self.atoms, x, side=side) / self.atoms.size
        if self.distribution == "uniform" and self.low is not None and self.high is not None:
            width = self.high - self.low
            # In place, and np.minimum/np.maximum: several times faster than np.clip on large arrays.
            if width <= 0:
                return None
            position = np.subtract(x, self.low, dtype=np.float64)
            position /= width
            np.maximum(position, 0.0, out=position)
            return np.minimum(position, 1.0, out=position)
        if self.distribution in ("normal", "truncated_normal") and self.stddev_param:
            z = (np.asarray(x, dtype=np.float64) - self.mean) / abs(self.stddev_param)
            standard = _normal_cdf(z)
            if self.distribution == "normal":
                return standard
            mass = math.erf(TRUNCATION_SIGMAS / math.sqrt(2.0))
            return np.minimum(np.maximum((standard - (1.0 - mass) / 2.0) / mass, 0.0), 1.0)
        return None


# The standard normal CDF by cubic Hermite interpolation between nodes 1/256 apart on [-10, 10],
# where Φ and its derivative φ are exact: the error is at most h^4/384 times the largest fourth
# derivative of Φ (0.55), under 1e-12: far below what a KS test resolves, at a fraction of the cost
# of calling math.erf once per value.
_CDF_STEP = 1.0 / 256.0
_CDF_LIMIT = 10.0


@functools.lru_cache(maxsize=1)
def _cdf_nodes() -> tuple[np.ndarray, np.ndarray]:
    nodes = np.arange(-_CDF_LIMIT, _CDF_LIMIT + _CDF_STEP / 2, _CDF_STEP)
    values = np.array([0.5 * math.erfc(-x / math.sqrt(2.0)) for x in nodes.tolist()])
    slopes = np.exp(-0.5 * nodes * nodes) / math.sqrt(2.0 * math.pi) * _CDF_STEP
    return values, slopes


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Φ(z) elementwise (absolute error below 1e-12; 0 and 1 beyond ±10; NaN stays NaN)."""
    values, slopes = _cdf_nodes()
    position = np.asarray(z, dtype=np.float64) + _CDF_LIMIT
    position /= _CDF_STEP
    np.clip(position, 0.0, values.size - 1.0, out=position)
    undefined = np.isnan(position)
    if undefined.any():
        position[undefined] = 0.0
    index = np.minimum(position.astype(np.intp), values.size - 2)
    t = position - index
    # Hermite basis on [0, 1] with s = t^2 (3 - 2t): values weighted (1 - s) and s, slopes (already
    # times the node step) weighted t (1 - t)^2 and t^2 (t - 1).
    one_minus = 1.0 - t
    s = t * t * (3.0 - 2.0 * t)
    low, high = values[index], values[index + 1]
    result = low + s * (high - low)
    result += t * one_minus * (one_minus * slopes[index] - t * slopes[index + 1])
    result[undefined] = np.nan
    return result


def _as_drawn(value: float, dtype: str) -> float:
    """A normal's mean/stddev as Keras hands it to TensorFlow: converted to the dtype.

    Only float16/bfloat16 round visibly (0.05 becomes 0.0500488 in bfloat16); float32/float64
    parameters are reported as given.
    """
    if dtype in ("float16", "bfloat16"):
        return float(np.asarray(value, dtype=numpy_dtype(dtype)).astype(np.float64))
    return value


def _normal(mean: float, stddev: float, fans: tuple[int, int], **extra: Any) -> Theory:
    std = abs(stddev)
    return Theory("normal", mean, std, std * std, None, stddev, None, None, 0.0, *fans, **extra)


def _truncated(mean: float, stddev: float, fans: tuple[int, int], **extra: Any) -> Theory:
    underlying = abs(stddev)
    var = TRUNCATED_VARIANCE * underlying**2
    bound = TRUNCATION_SIGMAS * underlying
    return Theory(
        "truncated_normal",
        mean,
        math.sqrt(var),
        var,
        bound,
        stddev,
        mean - bound,
        mean + bound,
        TRUNCATED_EXCESS_KURTOSIS,
        *fans,
        **extra,
    )


def _uniform(low: float, high: float, fans: tuple[int, int], dtype: str, **extra: Any) -> Theory:
    """U[low, high) as TensorFlow draws it in the dtype.

    In float16 and bfloat16 the unit uniform has only 2^10 / 2^7 levels, which shifts the mean by
    about width/2^(m+1): a million-value sample sees it. There the theory is the exact discrete
    distribution: every level put through Keras's arithmetic in the dtype (`atoms`).
    """
    width = abs(high - low)
    if dtype in ("float16", "bfloat16"):
        low_t, width_t = keras_uniform_bounds(low, high, dtype)
        atoms = np.sort(((unit_uniform_grid(dtype) * width_t).astype(low_t.dtype) + low_t).astype(np.float64))
        var = float(np.var(atoms))
        return Theory(
            "uniform",
            float(np.mean(atoms)),
            math.sqrt(var),
            var,
            width / 2.0,
            None,
            min(low, high),
            max(low, high),
            -1.2,
            *fans,
            atoms=atoms,
            **extra,
        )
    var = width * width / 12.0
    return Theory(
        "uniform",
        (low + high) / 2.0,
        math.sqrt(var),
        var,
        width / 2.0,
        None,
        min(low, high),
        max(low, high),
        -1.2,
        *fans,
        **extra,
    )


def _constant(value: float, fans: tuple[int, int]) -> Theory:
    return Theory("constant", value, 0.0, 0.0, None, None, value, value, None, *fans)


def theory_for(spec: InitializerSpec, shape: tuple[int, ...], dtype: str = "float32") -> Theory:
    """The theory of `spec` drawn at `shape` in `dtype` (validity is checked by `check_request`)."""
    config = spec.config
    fans = compute_fans(shape, config.get("input_axes"), config.get("output_axes"))
    fan_in, fan_out = fans
    name = spec.class_name
    variance_scaling = spec.variance_scaling()
    if variance_scaling is not None:
        scale, mode, distribution = variance_scaling
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
        n = max(1.0, float(n))
        s = scale / n
        extra = {"n": n, "scale": scale, "mode": mode}
        if distribution == "truncated_normal":
            return _truncated(0.0, _as_drawn(math.sqrt(s) / KERAS_TRUNCATED_STD_FACTOR, dtype), fans, **extra)
        if distribution == "untruncated_normal":
            return _normal(0.0, _as_drawn(math.sqrt(s), dtype), fans, **extra)
        limit = math.sqrt(3.0 * s)
        return _uniform(-limit, limit, fans, dtype, **extra)
    if name == "RandomNormal":
        return _normal(_as_drawn(config["mean"], dtype), _as_drawn(config["stddev"], dtype), fans)
    if name == "TruncatedNormal":
        return _truncated(_as_drawn(config["mean"], dtype), _as_drawn(config["stddev"], dtype), fans)
    if name == "RandomUniform":
        return _uniform(config["minval"], config["maxval"], fans, dtype)
    if name == "Constant":
        return _constant(config["value"], fans)
    if name in ("Zeros", "Ones"):
        return _constant(0.0 if name == "Zeros" else 1.0, fans)
    if name == "Identity":
        gain = config["gain"]
        rows, cols = shape
        ones = min(rows, cols)
        count = rows * cols
        mean = gain * ones / count
        var = gain * gain * ones / count - mean * mean
        return Theory(
            "identity",
            mean,
            math.sqrt(max(var, 0.0)),
            max(var, 0.0),
            None,
            None,
            min(0.0, gain),
            max(0.0, gain),
            None,
            *fans,
        )
    if name == "Orthogonal":
        gain = abs(config["gain"])
        rows, cols = math.prod(shape[:-1]), shape[-1]
        rms = gain / math.sqrt(max(rows, cols))
        return Theory("orthogonal", 0.0, rms, rms * rms, None, None, -gain, gain, None, *fans)
    raise AssertionError(f"no theory for {name}")
