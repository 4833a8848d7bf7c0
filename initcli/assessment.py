"""Theory next to sample: the record every command reports for one tensor."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from initcli.stats import (
    DEFAULT_ALPHA,
    Checks,
    SampleStats,
    StatsAccumulator,
    compute_checks,
    exact_error,
    verdict,
)
from initcli.theory import Theory


@dataclass(frozen=True)
class Assessment:
    """A tensor's statistics, checked against what its initializer should produce."""

    theory: Theory | None
    sample: SampleStats
    checks: Checks
    verdict: str
    ks_sample: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "theory": None if self.theory is None else self.theory.to_dict(),
            "sample": self.sample.to_dict(),
            "checks": self.checks.to_dict(),
            "verdict": self.verdict,
        }


def assess(
    chunks: Iterable[np.ndarray],
    total: int,
    theory: Theory | None,
    dtype: str,
    expected: np.ndarray | None = None,
    whole: np.ndarray | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> Assessment:
    """Stream `chunks` (the flattened tensor, `total` elements) and judge them against `theory`.

    Args:
        chunks: pieces of the flattened tensor, in order.
        total: number of elements.
        theory: what the initializer should produce, or None when unknown.
        dtype: the tensor's dtype name (quantization and rounding tolerances depend on it).
        expected: exact values for deterministic initializers (constant, identity).
        whole: the whole tensor, for checks that need it (orthogonality).
        alpha: false-alarm rate of the `inconsistent` verdict.
    """
    accumulator = StatsAccumulator(total)
    for chunk in chunks:
        accumulator.update(chunk)
    stats = accumulator.result()
    ks_sample = accumulator.ks_sample()
    checks = compute_checks(stats, theory, ks_sample, alpha, dtype)
    if theory is not None and whole is not None:
        error = exact_error(whole, theory, expected)
        if error is not None:
            checks = Checks(**{**checks.to_dict(), "max_abs_error": error})
    return Assessment(theory, stats, checks, verdict(stats, theory, checks, dtype, alpha), ks_sample)


FLAT_COLUMNS = (
    "fan_in",
    "fan_out",
    "distribution",
    "theory_mean",
    "theory_std",
    "theory_limit",
    "stddev_param",
    "count",
    "mean",
    "var",
    "std",
    "min",
    "max",
    "nonfinite",
    "mean_z",
    "std_ratio",
    "ks_statistic",
    "ks_pvalue",
    "verdict",
)


def flat_fields(assessment: Assessment) -> dict[str, Any]:
    """The assessment as flat columns (CSV, Markdown); names are a stable contract."""
    theory = assessment.theory
    sample = assessment.sample
    checks = assessment.checks
    return {
        "fan_in": None if theory is None else theory.fan_in,
        "fan_out": None if theory is None else theory.fan_out,
        "distribution": None if theory is None else theory.distribution,
        "theory_mean": None if theory is None else theory.mean,
        "theory_std": None if theory is None else theory.std,
        "theory_limit": None if theory is None else theory.limit,
        "stddev_param": None if theory is None else theory.stddev_param,
        "count": sample.count,
        "mean": sample.mean,
        "var": sample.var,
        "std": sample.std,
        "min": sample.min,
        "max": sample.max,
        "nonfinite": sample.nonfinite,
        "mean_z": checks.mean_z,
        "std_ratio": checks.std_ratio,
        "ks_statistic": checks.ks_statistic,
        "ks_pvalue": checks.ks_pvalue,
        "verdict": assessment.verdict,
    }
