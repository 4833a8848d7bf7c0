"""Statistical tests and the one policy that turns p-values into verdicts for a whole model.

The policy: each weight's tests (mean, std, Kolmogorov-Smirnov) are combined into one p-value
(the smallest, Bonferroni-corrected for the three tests), and the weights of one run are corrected
together by Holm's step-down method. A weight is `inconsistent` when its adjusted p-value is below
`alpha` and `suspicious` below `SUSPICIOUS_ALPHA`, so for a model whose weights all follow their
initializers, the chance that any weight is called inconsistent is at most `alpha`, and that any is
called suspicious or worse at most `SUSPICIOUS_ALPHA`, whatever the number of weights.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from initcli.parallel.scratch import counting
from initcli.types import Verdict

if TYPE_CHECKING:
    from initcli.stats.theory import Theory

SUSPICIOUS_ALPHA = 0.05
KS_SAMPLE_LIMIT = 250_000
TESTS_PER_WEIGHT = 3
# Below this asymptotic KS p-value, the exact tail is computed instead (see kolmogorov_pvalue).
KS_EXACT_BELOW = 0.05


def normal_two_sided_pvalue(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


@functools.lru_cache(maxsize=64)
def normal_quantile(p: float) -> float:
    """Inverse of the standard normal CDF, by bisection on erfc (ample precision for intervals)."""
    low, high = -40.0, 40.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def _log_gamma_lower_regularized(a: float, x: float) -> tuple[float, float]:
    """(P(a, x), Q(a, x)), the regularized incomplete gamma functions (series or continued fraction)."""
    if x <= 0.0:
        return 0.0, 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(100_000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        lower = min(1.0, math.exp(log_prefix + math.log(total)))
        return lower, 1.0 - lower
    # Lentz's continued fraction for Q.
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        fraction *= step
        if abs(step - 1.0) < 1e-16:
            break
    upper = min(1.0, math.exp(log_prefix + math.log(fraction)))
    return 1.0 - upper, upper


def chi_square_tails(statistic: float, degrees: float) -> tuple[float, float]:
    """(P(X <= statistic), P(X > statistic)) for X ~ chi-square with `degrees` degrees of freedom."""
    if degrees > 1e5:
        # Wilson-Hilferty: ample at this many degrees of freedom, where the series would be slow.
        z = ((statistic / degrees) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * degrees))) / math.sqrt(2.0 / (9.0 * degrees))
        upper = 0.5 * math.erfc(z / math.sqrt(2.0))
        return 1.0 - upper, upper
    return _log_gamma_lower_regularized(degrees / 2.0, statistic / 2.0)


def variance_ratio_pvalue(ratio: float, n: int, fourth: float, sixth: float) -> float:
    """Two-sided p-value of a sample variance (ddof 0) over the theoretical variance.

    The null distribution is matched in mean, variance and skewness by a shifted, scaled chi-square
    (Pearson type III), from the standardized fourth and sixth moments of the element distribution:
    exact for normal elements (a chi-square with n - 1 degrees of freedom) and far closer in the
    tails than a normal approximation, which calls small normal samples inconsistent 10-100 times
    too often at the p-values a model-wide correction asks for.
    """
    if n < 2:
        return 1.0
    mean = (n - 1) / n
    variance = (n - 1) ** 2 / n**3 * (fourth - (n - 3) / (n - 1))
    third_cumulant = (sixth - 3.0 * fourth + 2.0) * (n - 1) / n**3
    if variance <= 0.0:
        return 1.0
    skewness = third_cumulant / variance**1.5
    if abs(skewness) < 1e-9:
        return normal_two_sided_pvalue((ratio - mean) / math.sqrt(variance))
    degrees = 8.0 / skewness**2
    scale = math.sqrt(variance / (2.0 * degrees))
    # X = mean + sign·scale·(Y - degrees) with Y ~ chi-square(degrees).
    statistic = degrees + math.copysign(1.0, skewness) * (ratio - mean) / scale
    lower, upper = chi_square_tails(max(statistic, 0.0), degrees)
    return min(1.0, 2.0 * min(lower, upper))


def smirnov_pvalue(statistic: float, n: int) -> float:
    """P(D+ >= statistic), the exact one-sided Kolmogorov-Smirnov tail (Birnbaum and Tingey, 1951).

    P = d·Σ_{j=0}^{⌊n(1-d)⌋} C(n, j)·(1 - d - j/n)^(n-j)·(d + j/n)^(j-1): all terms positive, summed
    in log space (no cancellation), in O(n).
    """
    d = statistic
    if n <= 0 or d <= 0.0:
        return 1.0
    if d >= 1.0:
        return 0.0
    j = np.arange(int(math.floor(n * (1.0 - d))) + 1, dtype=np.float64)
    log_binomial = np.zeros_like(j)
    np.cumsum(np.log((n - j[1:] + 1.0) / j[1:]), out=log_binomial[1:])
    with np.errstate(divide="ignore"):
        logs = log_binomial + (n - j) * np.log(np.maximum(1.0 - d - j / n, 0.0)) + (j - 1.0) * np.log(d + j / n)
    top = float(np.max(logs))
    if top == -math.inf:
        return 0.0
    return min(1.0, d * math.exp(top) * float(np.sum(np.exp(logs - top))))


def kolmogorov_pvalue(statistic: float, n: int) -> float:
    """Two-sided Kolmogorov-Smirnov p-value, P(D >= statistic) for n values from a continuous law.

    In the tail (asymptotic p < KS_EXACT_BELOW), twice the exact one-sided tail: an upper bound on
    P(D >= d) whose excess, the chance that both one-sided statistics pass d, is under 1e-5 of p
    there (against scipy's exact law, n = 2 to 250,000). Elsewhere the asymptotic Kolmogorov law
    with Stephens' small-sample correction, within a few percent; in the tail that law is 3-4% too
    small at n = 400-1000 (and 2x too large at n = 16), which the model-wide correction, working at
    p ~ 1e-6, would feel.
    """
    if n <= 0:
        return 1.0
    root_n = math.sqrt(n)
    lam = (root_n + 0.12 + 0.11 / root_n) * statistic
    if lam < 0.2:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2.0 * (-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-16:
            break
    asymptotic = min(max(total, 0.0), 1.0)
    if asymptotic >= KS_EXACT_BELOW:
        return asymptotic
    return min(1.0, 2.0 * smirnov_pvalue(statistic, n))


def _rounding_neighbours(values: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """The next representable float16/bfloat16 values below and above, as float64."""
    if dtype == "float16":
        half = values.astype(np.float16)
        return (
            np.nextafter(half, np.float16(-np.inf)).astype(np.float64),
            np.nextafter(half, np.float16(np.inf)).astype(np.float64),
        )
    if dtype == "bfloat16":
        # bfloat16 is the top half of a float32: one bfloat16 step is 2^16 float32 units.
        magnitude = np.abs(values).astype(np.float32).view(np.uint32).astype(np.int64)
        sign = np.where(values < 0, -1.0, 1.0)
        larger = (magnitude + (1 << 16)).astype(np.uint32).view(np.float32).astype(np.float64)
        smaller = np.maximum(magnitude - (1 << 16), 0).astype(np.uint32).view(np.float32).astype(np.float64)
        smaller = np.where(magnitude == 0, -larger, smaller)
        return np.where(sign > 0, smaller, -larger), np.where(sign > 0, larger, -smaller)
    raise ValueError(f"no rounding neighbours for {dtype}")


def ks_test(sample: np.ndarray, theory: Theory, dtype: str = "float64") -> tuple[float, float] | None:
    """(D, p-value) of the sample against the distribution the theory predicts in `dtype`.

    A value stored in a dtype stands for the interval that rounds to it, so the theory's CDF is
    read at the midpoints to the neighbouring representable values; a discrete theory (atoms)
    is compared at the atoms themselves. D is the largest gap between the empirical and the
    theoretical CDF just before and at each distinct value.
    """
    if sample.size == 0:
        return None
    if theory.atoms is None and dtype not in ("float16", "bfloat16"):
        return _ks_continuous(np.sort(sample), theory)
    values, counts = np.unique(sample, return_counts=True)
    if theory.atoms is not None:
        expected_after = theory.cdf(values)
        expected_before = theory.cdf(values, left=True)
    else:
        down, up = _rounding_neighbours(values, dtype)
        expected_after = theory.cdf((values + up) / 2.0)
        expected_before = theory.cdf((values + down) / 2.0)
    if expected_after is None or expected_before is None:
        return None
    empirical_after = np.cumsum(counts) / sample.size
    empirical_before = empirical_after - counts / sample.size
    statistic = float(
        max(
            np.max(np.abs(empirical_after - expected_after)),
            np.max(np.abs(empirical_before - expected_before)),
        )
    )
    return statistic, kolmogorov_pvalue(statistic, int(sample.size))


def _ks_continuous(ordered: np.ndarray, theory: Theory) -> tuple[float, float] | None:
    """`ks_test` where the CDF is read at the values themselves, from the sorted sample.

    A float32/float64 rounding interval holds under 1e-6 of the mass: far below what a KS test on
    at most KS_SAMPLE_LIMIT values resolves. Comparing (i + 1)/n and i/n with F(x_i) at every
    sorted position gives the same D as going through the distinct values: inside a run of equal
    values F is constant and |t - F| is largest at the run's ends.
    """
    expected = theory.cdf(ordered)
    if expected is None:
        return None
    n = ordered.size
    # With g_i = n F(x_i) - i: max((i + 1)/n - F) = (1 - min g) / n and max(F - i/n) = max g / n.
    expected *= n
    expected -= counting(n, np.float64, at_least=KS_SAMPLE_LIMIT + 1)
    statistic = max(1.0 - float(expected.min()), float(expected.max())) / n
    return statistic, kolmogorov_pvalue(statistic, n)


def holm_adjusted(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (each compared with alpha controls the family-wise rate)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    count = len(pvalues)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def verdict_for_pvalue(adjusted_pvalue: float, alpha: float) -> Verdict:
    if adjusted_pvalue < alpha:
        return "inconsistent"
    if adjusted_pvalue < SUSPICIOUS_ALPHA:
        return "suspicious"
    return "consistent"
