"""`initcli check`: named checks over inspected weights, each finding an error or a warning.

Meant for freshly initialized models (a CI gate before training): trained weights have moved away
from their initial distribution and fail `distribution` by design. Coverage is part of the result:
every check says how many weights it actually tested and why it did not test the others, and a
check that tested nothing never counts as passed.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from initcli.errors import BadInputError, InitcliError
from initcli.initializers import find_kind
from initcli.safety.documents import load_document
from initcli.types import CheckName, Severity

if TYPE_CHECKING:
    from initcli.analysis.inspection import WeightRow

CHECKS: dict[CheckName, str] = {
    "distribution": "sample statistics inconsistent with the configured initializer (unlike the inferred "
    "class's default inside a custom layer: a warning unless --strict)",
    "nonfinite": "NaN or infinite values",
    "constant": "an all-zero or constant tensor where the initializer is random",
    "duplicate": "identical tensors in two layers (one unseeded initializer instance reused)",
    "fans": "Keras's fans differ from the layer's real connectivity for a fan-based initializer "
    "(a warning unless --strict)",
    "rules": "project expectations from --rules",
    "propagation": "the signal's predicted scale explodes or vanishes through the model at init (mean-field, from the "
    "config and the actual weights; no TensorFlow)",
}
# What `check` runs without --only: `propagation` judges the whole network's design, not whether the
# weights follow their initializers, so it is asked for by name.
DEFAULT_CHECKS: tuple[CheckName, ...] = ("distribution", "nonfinite", "constant", "duplicate", "fans", "rules")
# The checks `inspect` runs too, and shows as notes (fan caveats are notes of their own already).
NOTE_CHECKS: tuple[CheckName, ...] = ("nonfinite", "constant", "duplicate")
MODEL = "(model)"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One failed check on one weight (or on the whole model: path "(model)")."""

    check: CheckName
    severity: Severity
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "severity": self.severity, "path": self.path, "message": self.message}


@dataclass(frozen=True, kw_only=True)
class Coverage:
    """How many weights a check tested, and why it did not test the others."""

    check: CheckName
    tested: int
    total: int
    untested: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "tested": self.tested, "total": self.total, "untested": dict(self.untested)}

    def describe(self) -> str:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.untested.items()))
        return f"{self.check} {self.tested}/{self.total}" + (f" ({reasons})" if reasons else "")


@dataclass(frozen=True)
class Rule:
    """A project expectation for the weights whose path or layer name matches `pattern`."""

    pattern: str
    initializer: str | None = None
    max_abs_mean: float | None = None
    std_range: tuple[float, float] | None = None
    model: str | None = None
    """A glob on the model file's name (or its path as given): the rule applies to those models only."""
    required: bool = False
    """Matching no weight fails the check even in a multi-model run (where it is otherwise a warning)."""

    def matches(self, row: WeightRow) -> bool:
        record = row.record
        return fnmatch.fnmatchcase(record.path, self.pattern) or fnmatch.fnmatchcase(record.layer, self.pattern)

    def applies_to(self, model: str) -> bool:
        """Whether this rule is for the model file `model` (every model without a `model` glob)."""
        if self.model is None:
            return True
        return fnmatch.fnmatchcase(model, self.model) or fnmatch.fnmatchcase(PurePath(model).name, self.model)


def rules_for(rules: Sequence[Rule], model: str) -> list[Rule]:
    """The rules whose `model` glob takes in this model file."""
    return [rule for rule in rules if rule.applies_to(model)]


def _number(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_rules(path: Path) -> list[Rule]:
    """Read a rule file (YAML or JSON): `rules: [{layer, model, required, initializer, max_abs_mean, std_range}]`.

    Raises:
        InitcliError: unreadable file or malformed rules (the message names the rule).
    """
    document = load_document(path, "rule file")
    entries = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise InitcliError(f"{path}: expected a mapping with a `rules` list")
    if not entries:
        raise InitcliError(f"{path}: the `rules` list is empty")
    rules = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: rule {number}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("layer"), str):
            raise InitcliError(f"{where}: needs a `layer` pattern")
        unknown = set(entry) - {"layer", "model", "required", "initializer", "max_abs_mean", "std_range"}
        if unknown:
            raise InitcliError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
        initializer = entry.get("initializer")
        if initializer is not None:
            try:
                initializer = find_kind(str(initializer)).class_name
            except BadInputError as error:
                raise InitcliError(f"{where}: {error}") from None
        max_abs_mean = entry.get("max_abs_mean")
        if max_abs_mean is not None and not (_number(max_abs_mean) and max_abs_mean >= 0):
            raise InitcliError(f"{where}: `max_abs_mean` must be a finite number >= 0")
        std_range = entry.get("std_range")
        if std_range is not None:
            if (
                not isinstance(std_range, list)
                or len(std_range) != 2
                or not all(_number(v) for v in std_range)
                or std_range[0] > std_range[1]
            ):
                raise InitcliError(f"{where}: `std_range` must be [low, high] with low <= high")
            std_range = (float(std_range[0]), float(std_range[1]))
        model = entry.get("model")
        if model is not None and not isinstance(model, str):
            raise InitcliError(f"{where}: `model` must be a glob on the model file's name")
        required = entry.get("required", False)
        if not isinstance(required, bool):
            raise InitcliError(f"{where}: `required` must be true or false")
        rules.append(Rule(entry["layer"], initializer, max_abs_mean, std_range, model, required))
    return rules


# Coverage reason of a row judged against an inferred class's default (docs/custom-layers.md): the
# file configures no initializer for it, so no check counts it as tested.
INFERRED_ONLY = "inferred default only"


def _distribution_untested(row: WeightRow) -> str | None:
    if row.against_inferred_default:
        return INFERRED_ONLY
    if row.assessment.tested:
        return None
    return row.untested_reason or "no theory"


def _random_untested(row: WeightRow) -> str | None:
    if row.random:
        return None
    if row.against_inferred_default:
        return INFERRED_ONLY
    if row.initializer is not None and not row.initializer.family.random:
        return "deterministic initializer"
    return row.untested_reason or "no theory"


def _fans_untested(row: WeightRow) -> str | None:
    if row.against_inferred_default:
        return INFERRED_ONLY
    if row.initializer is None:
        return row.untested_reason or "no initializer information"
    return None if row.initializer.family.uses_fans else "initializer not fan-based"


def _rules_untested(rules: Sequence[Rule]) -> Callable[[WeightRow], str | None]:
    return lambda row: None if any(rule.matches(row) for rule in rules) else "no rule matches"


def _coverage(check: CheckName, rows: Sequence[WeightRow], untested: Callable[[WeightRow], str | None]) -> Coverage:
    reasons = Counter(reason for reason in map(untested, rows) if reason is not None)
    return Coverage(check=check, tested=len(rows) - sum(reasons.values()), total=len(rows), untested=dict(reasons))


def propagation_findings(saved: Any, rows: Sequence[WeightRow]) -> tuple[list[Finding], Coverage]:
    """The `propagation` check: the static mean-field prediction (`initcli.propagate.static`)."""
    from initcli.propagate.verdict import propagation_findings as predict_findings

    findings = [
        Finding(
            check="propagation",
            severity="error" if found.severity == "error" else "warning",
            path=found.path,
            message=found.message,
        )  # fmt: skip
        for found in predict_findings(saved)
    ]
    uncovered = [finding.message for finding in findings if finding.severity == "warning"]
    untested = {"not predicted: " + uncovered[0][:120]: len(rows)} if uncovered and rows else {}
    tested = 0 if untested else len(rows)
    return findings, Coverage(check="propagation", tested=tested, total=len(rows), untested=untested)


def coverage(rows: Sequence[WeightRow], selected: Sequence[CheckName], rules: Sequence[Rule] = ()) -> list[Coverage]:
    """What each selected check tested (`propagation` reports its own, see `propagation_findings`)."""
    testers: dict[CheckName, Callable[[WeightRow], str | None]] = {
        "distribution": _distribution_untested,
        "nonfinite": lambda row: None,
        "constant": _random_untested,
        "duplicate": _random_untested,
        "fans": _fans_untested,
        "rules": _rules_untested(rules),
    }
    return [_coverage(name, rows, testers[name]) for name in selected if name in testers]


def run_checks(
    rows: Sequence[WeightRow],
    selected: Sequence[CheckName],
    strict: bool = False,
    rules: Sequence[Rule] = (),
    *,
    many: bool = False,
) -> list[Finding]:
    """Findings of the selected checks, in model order (duplicates after the rows they name).

    A rule that matches no weight is an error, except in a run over many models (`many`) when the
    rule has neither a `model` glob nor `required: true`: there it is a warning, since a rule
    written for one model need not match the others.
    """
    findings: list[Finding] = []
    seen: dict[tuple[Any, ...], list[WeightRow]] = {}
    for row in rows:
        record, assessment = row.record, row.assessment
        sample = assessment.sample
        path = record.path
        if "nonfinite" in selected and sample.nonfinite:
            findings.append(
                Finding(
                    check="nonfinite",
                    severity="error",
                    path=path,
                    message=f"{sample.nonfinite} of {sample.count} values are NaN or infinite",
                )
            )
        if "constant" in selected and row.random and sample.count > 1 and sample.nonfinite == 0:
            if sample.min == sample.max:
                what = "all zero" if sample.max == 0 else f"constant {sample.max:g}"
                drawer = row.initializer.class_name if row.initializer else "the initializer"
                findings.append(
                    Finding(
                        check="constant",
                        severity="error",
                        path=path,
                        message=f"{what}, but {drawer} draws random values",
                    )
                )
        if "distribution" in selected and assessment.verdict == "inconsistent" and not sample.nonfinite:
            findings.append(
                Finding(check="distribution", severity="error", path=path, message=distribution_message(row))
            )
        if "distribution" in selected and assessment.verdict == "non-default":
            # The file does not configure this weight's initializer: a warning, an error with --strict.
            findings.append(
                Finding(
                    check="distribution",
                    severity="error" if strict else "warning",
                    path=path,
                    message=distribution_message(row),
                )
            )
        if (
            "fans" in selected
            and record.fan_caveat
            and row.initializer is not None
            and row.initializer.family.uses_fans
        ):
            findings.append(
                Finding(
                    check="fans",
                    severity="error" if strict else "warning",
                    path=path,
                    message=f"{row.initializer.class_name} scales by Keras's fans "
                    f"(fan_in {row.fan_in}, fan_out {row.fan_out}): {record.fan_caveat}",
                )
            )
        if "duplicate" in selected and row.random and sample.count > 1:
            # Identical tensors have identical statistics: only those are compared value by value.
            key = (record.shape, record.dtype, sample.mean, sample.var, sample.min, sample.max)
            candidates = seen.setdefault(key, [])
            twin = next((earlier for earlier in candidates if _same_values(earlier, row)), None)
            if twin is not None:
                findings.append(
                    Finding(
                        check="duplicate",
                        severity="error",
                        path=path,
                        message=f"identical to {twin.record.path}: one unseeded initializer "
                        "instance shared by both layers draws the same values",
                    )
                )
            else:
                candidates.append(row)
        if "rules" in selected:
            findings += _rule_findings(row, rules)
    if "rules" in selected:
        for rule in rules:
            if not any(rule.matches(row) for row in rows):
                lenient = many and rule.model is None and not rule.required
                findings.append(
                    Finding(
                        check="rules",
                        severity="warning" if lenient else "error",
                        path=MODEL,
                        message=f"rule {rule.pattern!r} matches no weight in this model"
                        + (
                            " (not required here; give the rule `model:` or `required: true`)"
                            if lenient
                            else ": a stale or misspelled pattern"
                        )
                        + _unscoped_hint(rule, rows),
                    )
                )
    return findings


def _unscoped_hint(rule: Rule, rows: Sequence[WeightRow]) -> str:
    """For a rule written with the model's scope (`mlp/hidden1/kernel`), the path rows now have.

    Earlier initcli put a Keras 3 Sequential's name (and a wrapper's) before its layers' paths in a
    `.keras` file; Keras 3 loads those layers unscoped (`hidden1/kernel`), and so do the rows now.
    The old form is not matched silently: the rule would mean something else in a model that has
    such a scope.
    """
    parts = rule.pattern.split("/")
    for start in range(1, len(parts) - 1):
        shorter = "/".join(parts[start:])
        if any(fnmatch.fnmatchcase(row.record.path, shorter) for row in rows):
            return f"; Keras 3 names it {shorter!r} (without the model's or wrapper's name)"
    return ""


def _same_values(first: WeightRow, second: WeightRow) -> bool:
    import itertools

    import numpy as np

    # Chunk against chunk (same shape, same chunk sizes): a weight over the per-weight budget is never held whole.
    pairs = itertools.zip_longest(first.record.chunks(1 << 22), second.record.chunks(1 << 22))
    return all(a is not None and b is not None and np.array_equal(a, b) for a, b in pairs)


def coverage_findings(
    report: Sequence[Coverage], explicit: Sequence[CheckName], allow_unchecked: bool
) -> list[Finding]:
    """Checks that tested nothing: errors unless `allow_unchecked` (then warnings).

    The distribution check, which is what verifies an initialization, must test something; so
    must every check named with --only.
    """
    findings = []
    for entry in report:
        if entry.tested or not (entry.check == "distribution" or entry.check in explicit):
            continue
        why = ", ".join(f"{count} {reason}" for reason, count in sorted(entry.untested.items())) or "no weights"
        findings.append(
            Finding(
                check=entry.check,
                severity="warning" if allow_unchecked else "error",
                path=MODEL,
                message=f"tested nothing: 0 of {entry.total} weight{'' if entry.total == 1 else 's'} ({why})"
                + ("" if allow_unchecked else "; pass --allow-unchecked to accept an untested model"),
            )
        )
    return findings


def distribution_message(row: WeightRow) -> str:
    """What an inconsistent weight's statistics say, the decisive test first."""
    checks = row.assessment.checks
    parts = []
    if checks.decisive_test is not None:
        adjusted = f", adjusted p = {checks.adjusted_pvalue:.2g}" if checks.adjusted_pvalue is not None else ""
        parts.append(f"decided by {checks.decisive_test}{adjusted}")
    if checks.mean_z is not None:
        parts.append(f"mean z = {checks.mean_z:+.2f}")
    if checks.std_ratio is not None:
        parts.append(
            f"std ratio {checks.std_ratio:.4f} (expected {checks.std_ratio_low:.4f}..{checks.std_ratio_high:.4f})"
        )
    if checks.ks_pvalue is not None:
        parts.append(f"KS p = {checks.ks_pvalue:.2g}")
    if checks.max_abs_error is not None:
        parts.append(f"max deviation {checks.max_abs_error:.3g} (tolerance {checks.tolerance:.3g})")
    if row.against_inferred_default and row.default is not None:
        return (
            f"does not look like {row.default.class_name}, the Keras default of the {row.record.layer_class} "
            "inferred from the file's structure (the custom layer may pass another initializer; "
            "--custom-objects MODULE judges the configured one): " + ", ".join(parts)
        )
    initializer = row.initializer.class_name if row.initializer else "its initializer"
    return f"inconsistent with {initializer}: " + ", ".join(parts)


def _rule_findings(row: WeightRow, rules: Sequence[Rule]) -> list[Finding]:
    findings = []
    sample = row.assessment.sample
    path = row.record.path
    for rule in rules:
        if not rule.matches(row):
            continue
        configured = row.initializer.class_name if row.initializer else None
        if rule.initializer is not None and configured != rule.initializer:
            findings.append(
                Finding(
                    check="rules",
                    severity="error",
                    path=path,
                    message=f"initializer {configured or 'unknown'}, rule {rule.pattern!r} expects {rule.initializer}",
                )
            )
        if rule.max_abs_mean is not None and sample.mean is not None and abs(sample.mean) > rule.max_abs_mean:
            findings.append(
                Finding(
                    check="rules",
                    severity="error",
                    path=path,
                    message=f"|mean| {abs(sample.mean):.4g} > {rule.max_abs_mean:g} (rule {rule.pattern!r})",
                )
            )
        if (
            rule.std_range is not None
            and sample.std is not None
            and not (rule.std_range[0] <= sample.std <= rule.std_range[1])
        ):
            findings.append(
                Finding(
                    check="rules",
                    severity="error",
                    path=path,
                    message=f"std {sample.std:.4g} outside [{rule.std_range[0]:g}, {rule.std_range[1]:g}] "
                    f"(rule {rule.pattern!r})",
                )
            )
    return findings


def github_annotation(finding: Finding, source: str) -> str:
    """A GitHub Actions workflow command for the finding (names from files cannot start another command)."""
    from initcli.safety.sanitize import github_escape_data, github_escape_property

    title = github_escape_property(f"initcli {finding.check}")
    message = github_escape_data(f"{finding.path}: {finding.message}")
    return f"::{finding.severity} file={github_escape_property(source)},title={title}::{message}"
