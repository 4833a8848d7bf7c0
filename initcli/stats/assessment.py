"""Theory next to sample: the record every command reports for one tensor, and the verdicts.

`assess` streams a tensor once through the statistics and the family's comparator. Verdicts are
given afterwards, by `judge`, to all the tensors of one run together, so that the statistical
ones are corrected for how many weights were tested (see `initcli.stats.significance`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from initcli.stats.comparisons import Comparator, Comparison
from initcli.stats.moments import SampleStats, StatsAccumulator
from initcli.stats.significance import holm_adjusted, verdict_for_pvalue
from initcli.stats.theory import Theory
from initcli.types import DEFAULT_ALPHA, Verdict


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """A tensor's statistics, compared with what its initializer should produce.

    `verdict` is "n/a" until `judge` has seen every tensor of the run.
    """

    theory: Theory | None
    sample: SampleStats
    checks: Comparison
    verdict: Verdict = "n/a"
    ks_sample: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "theory": None if self.theory is None else self.theory.to_dict(),
            "sample": self.sample.to_dict(),
            "checks": self.checks.to_dict(),
            "verdict": self.verdict,
        }

    @property
    def tested(self) -> bool:
        """Whether the values were compared with a theory at all (a statistical or an exact test)."""
        return self.checks.pvalue is not None or self.checks.decisive_test is not None


def assess(
    chunks: Iterable[np.ndarray], total: int, theory: Theory | None, comparator: Comparator | None
) -> Assessment:
    """Stream `chunks` (the flattened tensor, `total` elements) through statistics and comparator."""
    accumulator = StatsAccumulator(total)
    position = 0
    for chunk in chunks:
        accumulator.update(chunk)
        if comparator is not None:
            comparator.update(chunk, position)
        position += chunk.size
    stats = accumulator.result()
    ks_sample = accumulator.ks_sample()
    checks = Comparison() if comparator is None or theory is None else comparator.finish(stats, ks_sample)
    return Assessment(theory=theory, sample=stats, checks=checks, ks_sample=ks_sample)


def _exact_verdict(assessment: Assessment) -> Verdict | None:
    """The verdict that needs no multiplicity correction, or None for a statistical one."""
    if assessment.theory is None or assessment.sample.count == 0:
        return "n/a"
    if assessment.sample.nonfinite:
        return "inconsistent"
    passed = assessment.checks.exact_passed
    if passed is not None:
        return "consistent" if passed else "inconsistent"
    if assessment.checks.pvalue is None:
        return "n/a"
    return None


def judge(assessments: Sequence[Assessment], alpha: float = DEFAULT_ALPHA) -> list[Assessment]:
    """Verdicts for the tensors of one run, statistical ones corrected together (Holm).

    Non-finite values are inconsistent; exact comparisons pass within their rounding tolerance;
    a random tensor is inconsistent when its Holm-adjusted p-value is below `alpha`, suspicious
    below 0.05.
    """
    verdicts = [_exact_verdict(a) for a in assessments]
    statistical = [i for i, verdict in enumerate(verdicts) if verdict is None]
    adjusted = holm_adjusted([assessments[i].checks.pvalue or 0.0 for i in statistical])
    judged = [replace(a, verdict=v) if v is not None else a for a, v in zip(assessments, verdicts)]
    for index, pvalue in zip(statistical, adjusted):
        assessment = assessments[index]
        judged[index] = replace(
            assessment, checks=assessment.checks.adjusted(pvalue), verdict=verdict_for_pvalue(pvalue, alpha)
        )
    return judged


def moved_from_constant(assessment: Assessment) -> bool:
    """A constant-initialized weight (bias, gamma, beta, moving statistics) whose values now differ
    from each other: no fresh Keras model holds one, training moves almost every one."""
    theory = assessment.theory
    sample = assessment.sample
    return (
        theory is not None
        and theory.distribution == "constant"
        and assessment.checks.exact_passed is False
        and not sample.nonfinite
        and sample.count > 1
        and sample.min != sample.max
    )


# A model is trained on the evidence of its constant-initialized weights: one that is no longer
# constant suffices. Random weights inconsistent with their initializer are not evidence of
# training by themselves: a wrong initializer (PyTorch's default where the config says
# glorot_uniform, fan_in where it says fan_avg) makes every kernel inconsistent while every bias
# stays at its exact constant, which no optimizer step leaves. Where a model has no multi-element
# constant weight to tell, this many random weights, and at least half of them, inconsistent make
# the model `ambiguous` (see `ambiguous_model`): trained or wrongly initialized, the checks still fail.
TRAINED_RANDOM_WEIGHTS = 3


def trained_model(assessments: Sequence[Assessment]) -> bool:
    """Whether judged assessments (see `judge`) are those of a trained model rather than a fresh one:
    some constant-initialized weight of more than one element no longer holds one value.

    A fresh model's constant weights are exactly constant, and so are a wrongly initialized
    model's, so this never fires on a model Keras (or any initializer) just drew.
    """
    return any(moved_from_constant(assessment) for assessment in assessments)


def _untouched_constant(assessment: Assessment) -> bool:
    """A constant-initialized weight of more than one element that still holds exactly its constant."""
    theory = assessment.theory
    return (
        theory is not None
        and theory.distribution == "constant"
        and assessment.checks.exact_passed is True
        and assessment.sample.count > 1
    )


def ambiguous_model(assessments: Sequence[Assessment]) -> bool:
    """Not trained (`trained_model`), with no untouched multi-element constant weight to show it
    fresh, and at least TRAINED_RANDOM_WEIGHTS, and half, of the statistically tested random weights
    inconsistent: trained, or every kernel drawn by a wrong initializer; the values cannot tell."""
    if trained_model(assessments) or any(_untouched_constant(a) for a in assessments):
        return False
    statistical = [a for a in assessments if a.checks.exact_passed is None and a.checks.pvalue is not None]
    off = sum(1 for a in statistical if a.verdict == "inconsistent" and not a.sample.nonfinite)
    return off >= TRAINED_RANDOM_WEIGHTS and 2 * off >= len(statistical)


def _explained_by_training(assessment: Assessment) -> bool:
    """An inconsistent weight of a trained model that training explains: finite, and, for a constant
    initializer, no longer one constant (a weight of one value is kept: a different constant is a
    misconfiguration, not training; a weight of one element that moved is trained)."""
    if assessment.verdict != "inconsistent" or assessment.sample.nonfinite:
        return False
    theory = assessment.theory
    if theory is not None and theory.distribution == "constant" and assessment.sample.count > 1:
        return moved_from_constant(assessment)
    return True


def mark_trained(
    assessments: Sequence[Assessment], evidence: Sequence[Assessment] = (), *, trained: bool | None = None
) -> list[Assessment]:
    """In a trained model (`trained_model`), the inconsistent weights training explains become `trained`.

    In a fresh model nothing changes: `inconsistent` stays for what training cannot explain.
    `evidence`: judged assessments of the model's other weights (those `--layer` left out), which
    count towards deciding whether the model is trained but are not returned. `trained`: the
    model's state when the caller decided it (then `evidence` is not looked at).
    """
    if trained is None:
        trained = trained_model([*assessments, *evidence])
    if not trained:
        return list(assessments)
    return [replace(a, verdict="trained") if _explained_by_training(a) else a for a in assessments]


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
    "pvalue",
    "decisive_test",
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
        "pvalue": checks.adjusted_pvalue,
        "decisive_test": checks.decisive_test,
        "verdict": assessment.verdict,
    }
