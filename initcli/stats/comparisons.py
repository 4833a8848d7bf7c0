"""How a tensor's values are compared with what its initializer should give.

A family picks its comparator: `Statistical` tests a random tensor's mean, std and distribution;
`Exact` compares a deterministic one value by value (streamed, so a huge Identity or Constant
costs no memory); `Orthogonality` checks QᵀQ = gain²·I. Each gives a `Comparison`, the record
that reports list under `checks`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from initcli.stats.moments import SampleStats
from initcli.stats.significance import (
    TESTS_PER_WEIGHT,
    ks_test,
    normal_quantile,
    normal_two_sided_pvalue,
    variance_ratio_pvalue,
)
from initcli.stats.theory import Theory
from initcli.types import DecisiveTest


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """How the sample compares with the theory.

    Attributes:
        mean_se: standard error of the mean under the theory (std / sqrt(count)).
        mean_z: (sample mean - theoretical mean) / mean_se.
        std_ratio: sample std / theoretical std, with an interval from the theory's kurtosis
            (std_ratio_low, std_ratio_high).
        ks_statistic, ks_pvalue: Kolmogorov-Smirnov against the theoretical distribution function,
            on ks_sample_size values.
        max_abs_error: for deterministic initializers the largest deviation from the exact values;
            for orthogonal ones, the largest deviation of QᵀQ/gain² from I.
        tolerance: how large max_abs_error may be from rounding alone.
        pvalue: the weight's p-value: its smallest test p-value times the number of tests.
        adjusted_pvalue: `pvalue` corrected for every weight of the run (Holm).
        decisive_test: the test behind the verdict (the smallest p-value, or the exact comparison).
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
    tolerance: float | None = None
    pvalue: float | None = None
    adjusted_pvalue: float | None = None
    decisive_test: DecisiveTest | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def exact_passed(self) -> bool | None:
        """For exact comparisons, whether the deviation is within rounding; None otherwise."""
        if self.max_abs_error is None or self.tolerance is None:
            return None
        return self.max_abs_error <= self.tolerance

    def adjusted(self, adjusted_pvalue: float) -> Comparison:
        return replace(self, adjusted_pvalue=adjusted_pvalue)


class Comparator(ABC):
    """Sees a tensor's flattened values chunk by chunk, then compares."""

    def update(self, chunk: np.ndarray, start: int) -> None:  # noqa: B027 - most comparators need no values
        """Values [start, start + chunk.size) of the flattened tensor."""

    @abstractmethod
    def finish(self, stats: SampleStats, ks_sample: np.ndarray) -> Comparison:
        """The comparison, once every value was seen."""


class Statistical(Comparator):
    """Mean z-test, std ratio with a kurtosis-based interval, and KS against the theory's CDF.

    Args:
        theory: a random distribution.
        dtype: the tensor's dtype (float16/bfloat16 values stand for their rounding interval).
        interval_alpha: the two-sided rate of the std ratio interval shown beside the ratio.
    """

    def __init__(self, theory: Theory, dtype: str, interval_alpha: float) -> None:
        self.theory, self.dtype, self.interval_alpha = theory, dtype, interval_alpha

    def finish(self, stats: SampleStats, ks_sample: np.ndarray) -> Comparison:
        theory = self.theory
        n = stats.count - stats.nonfinite
        if stats.mean is None or theory.std is None or theory.mean is None or theory.std == 0.0 or n == 0:
            return Comparison()
        std = theory.std
        mean_se = std / math.sqrt(n)
        mean_z = (stats.mean - theory.mean) / mean_se
        # Var(sample variance) ≈ σ⁴ (κ - 1) / n with κ the (non-excess) kurtosis.
        kurtosis = (theory.excess_kurtosis or 0.0) + 3.0
        variance_se = math.sqrt((kurtosis - 1.0) / n)
        variance_ratio = (stats.var or 0.0) / (std * std)
        z_critical = normal_quantile(1.0 - self.interval_alpha / 2.0)
        ks = ks_test(ks_sample, theory, self.dtype)
        moments = theory.standardized_moments()
        std_pvalue = (
            variance_ratio_pvalue(variance_ratio, n, *moments)
            if moments is not None
            else normal_two_sided_pvalue((variance_ratio - 1.0) / variance_se)
        )
        pvalues: dict[DecisiveTest, float] = {"mean": normal_two_sided_pvalue(mean_z), "std": std_pvalue}
        if ks is not None:
            pvalues["ks"] = ks[1]
        decisive = min(pvalues, key=lambda name: pvalues[name])
        if stats.nonfinite:
            decisive, combined = "nonfinite", 0.0
        else:
            combined = min(1.0, pvalues[decisive] * TESTS_PER_WEIGHT)
        return Comparison(
            mean_se=mean_se,
            mean_z=mean_z,
            mean_pvalue=pvalues["mean"],
            std_ratio=math.sqrt(variance_ratio),
            std_ratio_low=math.sqrt(max(0.0, 1.0 - z_critical * variance_se)),
            std_ratio_high=math.sqrt(1.0 + z_critical * variance_se),
            std_pvalue=pvalues["std"],
            ks_statistic=None if ks is None else ks[0],
            ks_pvalue=None if ks is None else ks[1],
            ks_sample_size=int(ks_sample.size) if ks is not None else None,
            pvalue=combined,
            decisive_test=decisive,
        )


class Exact(Comparator):
    """Value-by-value comparison with the exact result, computed for each chunk from its indices.

    Args:
        expected: `expected(start, stop)` gives flat elements [start, stop) in float64.
        tolerance: the largest deviation rounding alone explains.
    """

    def __init__(self, expected: Callable[[int, int], np.ndarray], tolerance: float) -> None:
        self.expected, self.tolerance = expected, tolerance
        self.error = 0.0

    def update(self, chunk: np.ndarray, start: int) -> None:
        if chunk.size == 0:
            return
        difference = np.abs(chunk.astype(np.float64) - self.expected(start, start + chunk.size))
        largest = float(np.max(difference))
        self.error = max(self.error, largest if math.isfinite(largest) else math.inf)

    def finish(self, stats: SampleStats, ks_sample: np.ndarray) -> Comparison:
        if stats.nonfinite:
            return Comparison(max_abs_error=None, tolerance=self.tolerance, decisive_test="nonfinite")
        return Comparison(max_abs_error=self.error, tolerance=self.tolerance, decisive_test="exact")


class Orthogonality(Comparator):
    """max |QᵀQ/gain² − I| of the tensor flattened to (prod(shape[:-1]), shape[-1])."""

    def __init__(self, shape: tuple[int, ...], gain: float, tolerance: float) -> None:
        self.columns = shape[-1] if shape else 1
        self.gain, self.tolerance = gain, tolerance
        self.parts: list[np.ndarray] = []

    def update(self, chunk: np.ndarray, start: int) -> None:
        self.parts.append(chunk.astype(np.float64))

    def finish(self, stats: SampleStats, ks_sample: np.ndarray) -> Comparison:
        if stats.nonfinite:
            return Comparison(tolerance=self.tolerance, decisive_test="nonfinite")
        if not self.parts or self.gain == 0.0:
            return Comparison()
        flat = np.concatenate(self.parts).reshape(-1, self.columns)
        if flat.shape[0] < flat.shape[1]:
            flat = flat.T
        gram = flat.T @ flat / (self.gain * self.gain)
        error = float(np.max(np.abs(gram - np.eye(gram.shape[0]))))
        return Comparison(max_abs_error=error, tolerance=self.tolerance, decisive_test="orthogonality")


def rounding_tolerance(dtype: str, magnitude: float) -> float:
    """How far a deterministic value may stray from its exact value through rounding in `dtype`."""
    relative = {"float16": 1e-3, "bfloat16": 1e-2}.get(dtype, 1e-6)
    return relative * max(1.0, abs(magnitude))
