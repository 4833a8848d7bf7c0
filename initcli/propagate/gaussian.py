"""Gaussian expectations of activations, by numerical integration with numpy.

E[φ(h)], E[φ(h)²] and E[φ'(h)²] for h ~ N(mean, var) are integrated on a fine grid of the standard
normal (the trapezoid rule on ±10 standard deviations, 20001 points). The grid handles the kinks of
ReLU-like functions to about 1e-6 relative, where Gauss-Hermite quadrature would converge slowly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Function = Callable[[np.ndarray], np.ndarray]

_Z = np.linspace(-10.0, 10.0, 20001)
_DENSITY = np.exp(-0.5 * _Z * _Z)
_WEIGHTS = _DENSITY / _DENSITY.sum()

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


def activation(name: str | None, *, negative_slope: float | None = None, alpha: float | None = None) -> Activation | None:
    """The activation Keras applies for `name` (its defaults unless given), or None if unknown."""
    if name is None or name == "linear":
        return Activation(name="linear", function=lambda x: x, derivative=np.ones_like)
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


def moments(phi: Activation, mean: float, var: float) -> Moments:
    """The moments of φ(h) for h ~ N(mean, var)."""
    h = mean + np.sqrt(max(var, 0.0)) * _Z
    values = phi.function(h)
    slopes = phi.derivative(h)
    return Moments(
        mean=float(_WEIGHTS @ values),
        second=float(_WEIGHTS @ (values * values)),
        derivative_second=float(_WEIGHTS @ (slopes * slopes)),
    )


def max_moments(phi: Activation, mean: float, var: float, count: int) -> tuple[float, float]:
    """E[m] and E[m²] for m = φ(max of `count` independent N(mean, var)), φ non-decreasing."""
    cdf = normal_cdf(_Z)
    weights = _WEIGHTS * count * cdf ** (count - 1)
    weights = weights / weights.sum()
    values = phi.function(mean + np.sqrt(max(var, 0.0)) * _Z)
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
    return Moments(mean=float(p.mean()), second=float((p * p).mean()), derivative_second=float(frobenius.mean() / units))
