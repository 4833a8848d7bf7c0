"""Gaussian expectations of activations, by numerical integration with numpy.

E[φ(h)], E[φ(h)²] and E[φ'(h)²] for h ~ N(mean, var) are integrated over ±12 standard deviations
with Gauss-Legendre quadrature (96 nodes per piece), split where h = 0 so that the kinks of
ReLU-like functions (and the jumps of their derivatives) fall on a piece boundary: the error is
then at the level of float64 rounding, where Gauss-Hermite quadrature would converge slowly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Function = Callable[[np.ndarray], np.ndarray]

_BOUND = 12.0
_NODES, _NODE_WEIGHTS = np.polynomial.legendre.leggauss(96)


def _standard_grid(kink: float) -> tuple[np.ndarray, np.ndarray]:
    """Points z and weights w with Σ w f(z) ≈ E[f(Z)], Z ~ N(0, 1), split at `kink`."""
    edges = [-_BOUND, _BOUND]
    if -_BOUND < kink < _BOUND:
        edges.insert(1, kink)
    points, weights = [], []
    for low, high in zip(edges, edges[1:]):
        half = 0.5 * (high - low)
        z = low + half * (_NODES + 1.0)
        points.append(z)
        weights.append(half * _NODE_WEIGHTS * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi))
    return np.concatenate(points), np.concatenate(weights)


# Keras's defaults for the string activations and the activation layers.
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, to about 1e-7 absolute (Abramowitz and Stegun 7.1.26)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + erf(x / np.sqrt(2.0)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass(frozen=True, kw_only=True)
class Activation:
    """An activation φ and its derivative φ', vectorized."""

    name: str
    function: Function
    derivative: Function
    monotone: bool = True


def _leaky(slope: float) -> Activation:
    return Activation(
        name="leaky_relu",
        function=lambda x: np.where(x > 0, x, slope * x),
        derivative=lambda x: np.where(x > 0, 1.0, slope),
        monotone=slope >= 0,
    )


def _elu(alpha: float, scale: float = 1.0, name: str = "elu") -> Activation:
    return Activation(
        name=name,
        function=lambda x: scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
        derivative=lambda x: scale * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))),
    )


def _gelu(x: np.ndarray) -> np.ndarray:
    return x * normal_cdf(x)


def _gelu_derivative(x: np.ndarray) -> np.ndarray:
    return normal_cdf(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _silu(x: np.ndarray) -> np.ndarray:
    return x * _sigmoid(x)


def _silu_derivative(x: np.ndarray) -> np.ndarray:
    s = _sigmoid(x)
    return s + x * s * (1.0 - s)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _capped_relu(cap: float) -> Activation:
    """min(max(x, 0), cap): ReLU(max_value=cap), relu6. The kink at `cap` is not a piece boundary of the
    quadrature; for MobileNetV2's cap of 6 on a unit-variance input its weight is below 1e-8."""
    return Activation(
        name="relu6" if cap == 6 else f"relu(max_value={cap:g})",
        function=lambda x: np.clip(x, 0.0, cap),
        derivative=lambda x: ((x > 0) & (x < cap)) * 1.0,
    )


def activation(
    name: str | None, *, negative_slope: float | None = None, alpha: float | None = None, max_value: float | None = None
) -> Activation | None:
    """The activation Keras applies for `name` (its defaults unless given), or None if unknown."""
    if name is None or name == "linear":
        return Activation(name="linear", function=lambda x: x, derivative=np.ones_like)
    if name == "relu6" or (name == "relu" and max_value is not None):
        return _capped_relu(6.0 if max_value is None else float(max_value))
    if name == "relu":
        return Activation(name="relu", function=lambda x: np.maximum(x, 0.0), derivative=lambda x: (x > 0) * 1.0)
    if name == "leaky_relu":
        # keras.activations.leaky_relu defaults to 0.2; the LeakyReLU layer passes its own (0.3).
        return _leaky(0.2 if negative_slope is None else negative_slope)
    if name == "elu":
        return _elu(1.0 if alpha is None else alpha)
    if name == "selu":
        return _elu(SELU_ALPHA, SELU_SCALE, "selu")
    if name == "gelu":
        return Activation(name="gelu", function=_gelu, derivative=_gelu_derivative, monotone=False)
    if name in ("silu", "swish"):
        return Activation(name="silu", function=_silu, derivative=_silu_derivative, monotone=False)
    if name == "tanh":
        return Activation(name="tanh", function=np.tanh, derivative=lambda x: 1.0 - np.tanh(x) ** 2)
    if name == "sigmoid":
        return Activation(name="sigmoid", function=_sigmoid, derivative=lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)))
    if name == "softplus":
        return Activation(name="softplus", function=_softplus, derivative=_sigmoid)
    return None


@dataclass(frozen=True, kw_only=True)
class Moments:
    """E[φ(h)], E[φ(h)²] and E[φ'(h)²] for one Gaussian h."""

    mean: float
    second: float
    derivative_second: float


def _grid(mean: float, var: float) -> tuple[np.ndarray, np.ndarray]:
    sd = np.sqrt(max(var, 0.0))
    kink = -mean / sd if sd > 0 else np.inf
    z, weights = _standard_grid(kink)
    return mean + sd * z, weights


def moments(phi: Activation, mean: float, var: float) -> Moments:
    """The moments of φ(h) for h ~ N(mean, var)."""
    if var <= 0.0:
        value, slope = phi.function(np.array([mean]))[0], phi.derivative(np.array([mean]))[0]
        return Moments(mean=float(value), second=float(value * value), derivative_second=float(slope * slope))
    h, weights = _grid(mean, var)
    values = phi.function(h)
    slopes = phi.derivative(h)
    return Moments(
        mean=float(weights @ values),
        second=float(weights @ (values * values)),
        derivative_second=float(weights @ (slopes * slopes)),
    )


def _split_grid(kinks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, standard-normal points and weights on ±12 split at that row's kink (clipped)."""
    kinks = np.clip(kinks, -_BOUND, _BOUND)[:, None]
    pieces = [(np.full_like(kinks, -_BOUND), kinks), (kinks, np.full_like(kinks, _BOUND))]
    points, weights = [], []
    for low, high in pieces:
        half = 0.5 * (high - low)
        z = low + half * (_NODES + 1.0)
        points.append(z)
        weights.append(half * _NODE_WEIGHTS * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi))
    return np.concatenate(points, axis=1), np.concatenate(weights, axis=1)


def moments_per_channel(phi: Activation, means: np.ndarray, variances: np.ndarray) -> tuple[np.ndarray, ...]:
    """E[φ(h)], E[φ(h)²], E[φ'(h)²] for h ~ N(means[c], variances[c]), one value per channel."""
    means = np.asarray(means, dtype=np.float64)
    sds = np.sqrt(np.maximum(np.asarray(variances, dtype=np.float64), 0.0))
    safe = np.where(sds > 0, sds, 1.0)
    z, w = _split_grid(np.where(sds > 0, -means / safe, _BOUND))
    h = means[:, None] + sds[:, None] * z
    values, slopes = phi.function(h), phi.derivative(h)
    return (
        np.einsum("ij,ij->i", w, values),
        np.einsum("ij,ij->i", w, values * values),
        np.einsum("ij,ij->i", w, slopes * slopes),
    )


def max_moments_per_channel(
    phi: Activation, means: np.ndarray, variances: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """E[m] and E[m²] per channel for m = φ(max of `count` independent N(means[c], variances[c]))."""
    means = np.asarray(means, dtype=np.float64)
    sds = np.sqrt(np.maximum(np.asarray(variances, dtype=np.float64), 0.0))
    safe = np.where(sds > 0, sds, 1.0)
    z, w = _split_grid(np.where(sds > 0, -means / safe, _BOUND))
    w = w * count * normal_cdf(z) ** (count - 1)
    w = w / w.sum(axis=1, keepdims=True)
    values = phi.function(means[:, None] + sds[:, None] * z)
    return np.einsum("ij,ij->i", w, values), np.einsum("ij,ij->i", w, values * values)


def channel_mean_second(phi: Activation, mean: float, between_var: float, within_var: float) -> float:
    """E_m[(E[φ(m + √within · Z)])²] for channel means m ~ N(mean, between_var): the average squared
    channel mean of φ's output when each channel's pre-activation is N(m, within_var)."""
    if within_var <= 0.0:
        return moments(phi, mean, between_var).second
    sd = np.sqrt(within_var)
    if between_var <= 0.0:
        inner = moments(phi, mean, within_var).mean
        return inner * inner
    outer_m, outer_w = _grid(mean, between_var)
    inner_means = np.empty_like(outer_m)
    for index, m in enumerate(outer_m):
        z, w = _standard_grid(-m / sd)
        inner_means[index] = w @ phi.function(m + sd * z)
    return float(outer_w @ (inner_means * inner_means))


def max_moments(phi: Activation, mean: float, var: float, count: int) -> tuple[float, float]:
    """E[m] and E[m²] for m = φ(max of `count` independent N(mean, var)), φ non-decreasing."""
    h, weights = _grid(mean, var)
    sd = np.sqrt(max(var, 0.0))
    if sd == 0.0:
        value = float(phi.function(np.array([mean]))[0])
        return value, value * value
    weights = weights * count * normal_cdf((h - mean) / sd) ** (count - 1)
    weights = weights / weights.sum()
    values = phi.function(h)
    return float(weights @ values), float(weights @ (values * values))


def softmax_moments(mean: float, var: float, units: int, samples: int = 4096) -> Moments:
    """Softmax over `units` independent N(mean, var) logits, by Monte Carlo with a fixed seed.

    `derivative_second` is the backward gain E[‖Jᵀg‖²] / units for g ~ N(0, I), where J is the
    softmax Jacobian diag(p) − ppᵀ: E_g‖Jᵀg‖² = ‖J‖²_F = Σp² − 2Σp³ + (Σp²)².
    """
    generator = np.random.default_rng(0)
    count = max(1, min(samples, 4_000_000 // max(units, 1)))
    logits = mean + np.sqrt(max(var, 0.0)) * generator.standard_normal((count, units))
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    squares = (p * p).sum(axis=1)
    frobenius = squares - 2.0 * (p**3).sum(axis=1) + squares * squares
    return Moments(
        mean=float(p.mean()), second=float((p * p).mean()), derivative_second=float(frobenius.mean() / units)
    )


def softmax_per_unit(
    means: np.ndarray, variances: np.ndarray, gradient_second: np.ndarray, samples: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax over independent logits N(means[j], variances[j]), by Monte Carlo with a fixed seed.

    Returns per unit E[p], E[p²] and the backward second moment E[(Jᵀg)_i²] for independent g_j with
    E[g_j²] = gradient_second[j], where J = diag(p) − ppᵀ: E[(Jᵀg)_i²] = p_i²((1 − 2p_i)G_i + Σ_j p_j²G_j).
    """
    means = np.asarray(means, dtype=np.float64)
    units = means.size
    generator = np.random.default_rng(0)
    count = max(1, min(samples, 4_000_000 // max(units, 1)))
    logits = means + np.sqrt(np.maximum(variances, 0.0)) * generator.standard_normal((count, units))
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    weighted = (p * p) @ gradient_second
    backward = (p * p) * ((1.0 - 2.0 * p) * gradient_second + weighted[:, None])
    return p.mean(axis=0), (p * p).mean(axis=0), backward.mean(axis=0)
