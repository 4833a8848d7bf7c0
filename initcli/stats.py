"""Sample statistics, their checks against a theory, and a verdict a person can read.

`StatsAccumulator` consumes a tensor in chunks of any size and gives exactly (bit for bit) the
result of consuming it in one piece: it regroups values into canonical blocks aligned to global
element indices and reduces each block the same way whatever the chunking. Variances are
population variances (numpy's ddof=0). Moments cover the finite values; `nonfinite` counts the rest.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from initcli.scratch import counting, thread_scratch
from initcli.theory import Theory

BLOCK_ELEMENTS = 1 << 18
KS_SAMPLE_LIMIT = 250_000
DEFAULT_ALPHA = 1e-3
SUSPICIOUS_ALPHA = 0.05


@dataclass(frozen=True)
class SampleStats:
    """Measured statistics of a tensor (mean, var, std, min, max over its finite values)."""

    count: int
    mean: float | None
    var: float | None
    std: float | None
    min: float | None
    max: float | None
    nonfinite: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class StatsAccumulator:
    """Streaming statistics whose result does not depend on how the input is chunked.

    Args:
        total: the number of elements that will be fed (fixes the KS subsample stride).
        ks_limit: at most about this many values are kept, every k-th by global index, for the
            Kolmogorov-Smirnov test and histograms.
    """

    def __init__(self, total: int, ks_limit: int = KS_SAMPLE_LIMIT) -> None:
        self.total = total
        self.ks_stride = max(1, -(-total // ks_limit))
        self._seen = 0
        self._pending: list[np.ndarray] = []
        self._pending_size = 0
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._nonfinite = 0
        self._ks_parts: list[np.ndarray] = []

    def update(self, values: np.ndarray) -> None:
        flat = np.asarray(values).reshape(-1)
        first_index = self._seen
        self._seen += flat.size
        offset = (-first_index) % self.ks_stride
        # float32 stays float32 (it sorts twice as fast; the CDF is evaluated in float64 anyway).
        keep = np.float32 if flat.dtype == np.float32 else np.float64
        self._ks_parts.append(flat[offset :: self.ks_stride].astype(keep))
        self._pending.append(flat)
        self._pending_size += flat.size
        if self._pending_size >= BLOCK_ELEMENTS:
            joined = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
            whole = (joined.size // BLOCK_ELEMENTS) * BLOCK_ELEMENTS
            for start in range(0, whole, BLOCK_ELEMENTS):
                self._reduce_block(joined[start : start + BLOCK_ELEMENTS])
            rest = joined[whole:]
            self._pending = [rest] if rest.size else []
            self._pending_size = rest.size

    def _reduce_block(self, block: np.ndarray) -> None:
        deviations = thread_scratch()("stats-deviations", np.float64, block.size)
        np.copyto(deviations, block)
        total = float(np.sum(deviations))
        if not math.isfinite(total):
            # Only a NaN or an infinity makes a float64 sum of 2^18 float32 values non-finite.
            finite = np.isfinite(block)
            self._nonfinite += int(block.size - finite.sum())
            block = block[finite]
            if block.size == 0:
                return
            deviations = deviations[: block.size]
            np.copyto(deviations, block)
            total = float(np.sum(deviations))
        block_mean = total / block.size
        deviations -= block_mean
        block_m2 = float(np.dot(deviations, deviations))
        self._min = min(self._min, float(block.min()))
        self._max = max(self._max, float(block.max()))
        # Chan et al.'s pairwise combination of (count, mean, M2).
        count = self._count + block.size
        delta = block_mean - self._mean
        self._mean += delta * block.size / count
        self._m2 += block_m2 + delta * delta * self._count * block.size / count
        self._count = count

    def result(self) -> SampleStats:
        if self._pending_size:
            self._reduce_block(np.concatenate(self._pending))
            self._pending, self._pending_size = [], 0
        if self._count == 0:
            return SampleStats(self._seen, None, None, None, None, None, self._nonfinite)
        var = max(self._m2 / self._count, 0.0)
        return SampleStats(self._seen, self._mean, var, math.sqrt(var), self._min, self._max, self._nonfinite)

    def ks_sample(self) -> np.ndarray:
        """The systematic subsample (every `ks_stride`-th element), finite values only.

        float32 for float32 tensors, float64 otherwise (every value exactly as stored).
        """
        if not self._ks_parts:
            return np.empty(0)
        sample = self._ks_parts[0] if len(self._ks_parts) == 1 else np.concatenate(self._ks_parts)
        return sample if self._nonfinite == 0 and not self._pending else sample[np.isfinite(sample)]


def describe(values: np.ndarray) -> tuple[SampleStats, np.ndarray]:
    """Statistics and KS subsample of a whole array (the same arithmetic as chunked feeding)."""
    accumulator = StatsAccumulator(int(np.asarray(values).size))
    accumulator.update(values)
    return accumulator.result(), accumulator.ks_sample()


@dataclass(frozen=True)
class Checks:
    """How the sample compares with the theory.

    Attributes:
        mean_se: standard error of the mean under the theory (std / sqrt(count)).
        mean_z: (sample mean - theoretical mean) / mean_se.
        std_ratio: sample std / theoretical std, with a (1 - alpha) interval from the theory's
            kurtosis (std_ratio_low, std_ratio_high).
        ks_statistic, ks_pvalue: Kolmogorov-Smirnov against the theoretical distribution function,
            on ks_sample_size values.
        max_abs_error: for deterministic initializers (constant, identity) the largest deviation
            from the exact values; for orthogonal, the largest deviation of QᵀQ/gain² from I.
    """

    mean_se: float | None = None
    mean_z: float | None = None
    mean_pvalue: float | None = None
    std_ratio: float | None = None
    std_ratio_low: float | None = None
    std_ratio_high: float | None = None
    std_pvalue: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    ks_sample_size: int | None = None
    max_abs_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


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


def kolmogorov_pvalue(statistic: float, n: int) -> float:
    """Asymptotic Kolmogorov p-value with Stephens' small-sample correction."""
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
    return min(max(total, 0.0), 1.0)


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
    elif dtype in ("float16", "bfloat16"):
        down, up = _rounding_neighbours(values, dtype)
        expected_after = theory.cdf((values + up) / 2.0)
        expected_before = theory.cdf((values + down) / 2.0)
    else:
        # A float32/float64 rounding interval holds under 1e-6 of the mass: far below what a KS
        # test on at most KS_SAMPLE_LIMIT values resolves, so the CDF is read at the value itself.
        expected_after = expected_before = theory.cdf(values)
    if expected_after is None or expected_before is None:
        return None
    empirical_after = np.cumsum(counts) / sample.size
    empirical_before = empirical_after - counts / sample.size
    statistic = float(
        max(np.max(np.abs(empirical_after - expected_after)), np.max(np.abs(empirical_before - expected_before)))
    )
    return statistic, kolmogorov_pvalue(statistic, int(sample.size))


def _ks_continuous(ordered: np.ndarray, theory: Theory) -> tuple[float, float] | None:
    """`ks_test` where the CDF is read at the values themselves, from the sorted sample.

    Comparing (i + 1)/n and i/n with F(x_i) at every sorted position gives the same D as going
    through the distinct values: inside a run of equal values F is constant and |t - F| is
    largest at the run's ends, which are the empirical CDF just before and at the value.
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


def compute_checks(
    stats: SampleStats,
    theory: Theory | None,
    ks_sample: np.ndarray,
    alpha: float = DEFAULT_ALPHA,
    dtype: str = "float64",
) -> Checks:
    """Compare measured statistics with the theory (random distributions only)."""
    if theory is None or stats.mean is None or theory.std is None or theory.mean is None:
        return Checks()
    if theory.distribution not in ("normal", "truncated_normal", "uniform"):
        return Checks()
    n = stats.count - stats.nonfinite
    std = theory.std
    if std == 0.0 or n == 0:
        return Checks()
    mean_se = std / math.sqrt(n)
    mean_z = (stats.mean - theory.mean) / mean_se
    # Var(sample variance) ≈ σ⁴ (κ - 1) / n with κ the (non-excess) kurtosis.
    kurtosis = (theory.excess_kurtosis or 0.0) + 3.0
    variance_se = math.sqrt((kurtosis - 1.0) / n)
    variance_ratio = (stats.var or 0.0) / (std * std)
    z_critical = normal_quantile(1.0 - alpha / 2.0)
    low_ratio = math.sqrt(max(0.0, 1.0 - z_critical * variance_se))
    high_ratio = math.sqrt(1.0 + z_critical * variance_se)
    ks = ks_test(ks_sample, theory, dtype)
    return Checks(
        mean_se=mean_se,
        mean_z=mean_z,
        mean_pvalue=normal_two_sided_pvalue(mean_z),
        std_ratio=math.sqrt(variance_ratio),
        std_ratio_low=low_ratio,
        std_ratio_high=high_ratio,
        std_pvalue=normal_two_sided_pvalue((variance_ratio - 1.0) / variance_se),
        ks_statistic=None if ks is None else ks[0],
        ks_pvalue=None if ks is None else ks[1],
        ks_sample_size=int(ks_sample.size) if ks is not None else None,
    )


def exact_error(values: np.ndarray, theory: Theory, expected: np.ndarray | None) -> float | None:
    """Largest deviation from what a deterministic or orthogonal initializer must give."""
    if theory.distribution in ("constant", "identity") and expected is not None:
        return float(np.max(np.abs(values.astype(np.float64) - expected))) if values.size else 0.0
    if theory.distribution == "orthogonal" and values.ndim >= 2 and theory.high:
        flat = values.astype(np.float64).reshape(-1, values.shape[-1])
        if flat.shape[0] < flat.shape[1]:
            flat = flat.T
        gram = flat.T @ flat / (theory.high * theory.high)
        return float(np.max(np.abs(gram - np.eye(gram.shape[0]))))
    return None


def orthogonality_tolerance(dtype: str) -> float:
    """How far QᵀQ/gain² may stray from I through rounding alone in this dtype."""
    return {"float64": 1e-8, "float32": 1e-4, "float16": 2e-2, "bfloat16": 1e-1}.get(dtype, 1e-4)


def verdict(
    stats: SampleStats, theory: Theory | None, checks: Checks, dtype: str = "float32", alpha: float = DEFAULT_ALPHA
) -> str:
    """consistent, suspicious, inconsistent, or n/a where no theory applies.

    Random distributions: the smallest of the mean, std and KS p-values, Bonferroni-corrected
    for three tests, below `alpha` is inconsistent, below 0.05 suspicious. A KS distance within
    the dtype's quantization does not count. Deterministic initializers compare exactly (with
    a rounding tolerance); orthogonal ones by the orthogonality of the matrix.
    """
    if theory is None:
        return "n/a"
    if stats.nonfinite:
        return "inconsistent"
    if stats.count == 0:
        return "n/a"
    if theory.distribution in ("constant", "identity", "orthogonal"):
        if checks.max_abs_error is None:
            return "n/a"
        if theory.distribution == "orthogonal":
            tolerance = orthogonality_tolerance(dtype)
        else:
            tolerance = {"float16": 1e-3, "bfloat16": 1e-2}.get(dtype, 1e-6) * max(
                1.0, abs(theory.high or 0), abs(theory.low or 0)
            )
        return "consistent" if checks.max_abs_error <= tolerance else "inconsistent"
    if checks.mean_pvalue is None:
        return "n/a"
    pvalues = [checks.mean_pvalue, checks.std_pvalue, checks.ks_pvalue]
    smallest = min(1.0, min(p for p in pvalues if p is not None) * 3)
    if smallest < alpha:
        return "inconsistent"
    if smallest < SUSPICIOUS_ALPHA:
        return "suspicious"
    return "consistent"
