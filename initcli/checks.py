"""`initcli check`: named checks over inspected weights, each finding an error or a warning.

Meant for freshly initialized models (a CI gate before training): trained weights have moved away
from their initial distribution and fail `distribution` by design.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initcli.documents import load_document
from initcli.errors import BadInputError, InitcliError
from initcli.initializers import find_kind

if TYPE_CHECKING:
    from initcli.inspection import WeightRow

CHECKS: dict[str, str] = {
    "distribution": "sample statistics inconsistent with the configured initializer",
    "nonfinite": "NaN or infinite values",
    "constant": "an all-zero or constant tensor where the initializer is random",
    "duplicate": "identical tensors in two layers (one unseeded initializer instance reused)",
    "fans": "Keras's fans differ from the layer's real connectivity for a fan-based initializer "
    "(a warning unless --strict)",
    "rules": "project expectations from --rules",
}
_RANDOM = ("normal", "truncated_normal", "uniform", "orthogonal")


@dataclass(frozen=True)
class Finding:
    """One failed check on one weight."""

    check: str
    severity: str  # error | warning
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "severity": self.severity, "path": self.path, "message": self.message}


@dataclass(frozen=True)
class Rule:
    """A project expectation for the weights whose path or layer name matches `pattern`."""

    pattern: str
    initializer: str | None = None
    max_abs_mean: float | None = None
    std_range: tuple[float, float] | None = None

    def matches(self, row: WeightRow) -> bool:
        record = row.record
        return fnmatch.fnmatchcase(record.path, self.pattern) or fnmatch.fnmatchcase(record.layer, self.pattern)


def load_rules(path: Path) -> list[Rule]:
    """Read a rule file (YAML or JSON): `rules: [{layer, initializer, max_abs_mean, std_range}]`.

    Raises:
        InitcliError: unreadable file or malformed rules (the message names the rule).
    """
    document = load_document(path, "rule file")
    entries = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise InitcliError(f"{path}: expected a mapping with a `rules` list")
    rules = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: rule {number}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("layer"), str):
            raise InitcliError(f"{where}: needs a `layer` pattern")
        unknown = set(entry) - {"layer", "initializer", "max_abs_mean", "std_range"}
        if unknown:
            raise InitcliError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        initializer = entry.get("initializer")
        if initializer is not None:
            try:
                initializer = find_kind(str(initializer)).class_name
            except BadInputError as error:
                raise InitcliError(f"{where}: {error}") from None
        max_abs_mean = entry.get("max_abs_mean")
        if max_abs_mean is not None and not isinstance(max_abs_mean, (int, float)):
            raise InitcliError(f"{where}: `max_abs_mean` must be a number")
        std_range = entry.get("std_range")
        if std_range is not None:
            if (
                not isinstance(std_range, list)
                or len(std_range) != 2
                or not all(isinstance(v, (int, float)) for v in std_range)
                or std_range[0] > std_range[1]
            ):
                raise InitcliError(f"{where}: `std_range` must be [low, high] with low <= high")
            std_range = (float(std_range[0]), float(std_range[1]))
        rules.append(Rule(entry["layer"], initializer, max_abs_mean, std_range))
    return rules


def run_checks(
    rows: Sequence[WeightRow], selected: Sequence[str], strict: bool = False, rules: Sequence[Rule] = ()
) -> list[Finding]:
    """Findings of the selected checks, in model order (duplicates after the rows they name)."""
    findings: list[Finding] = []
    first_seen: dict[str, str] = {}
    for row in rows:
        record, assessment = row.record, row.assessment
        theory, sample = assessment.theory, assessment.sample
        path = record.path
        if "nonfinite" in selected and sample.nonfinite:
            findings.append(
                Finding("nonfinite", "error", path, f"{sample.nonfinite} of {sample.count} values are NaN or infinite")
            )
        random = theory is not None and theory.distribution in _RANDOM
        if (
            "constant" in selected
            and random
            and sample.count > 1
            and sample.nonfinite == 0
            and sample.min == sample.max
        ):
            what = "all zero" if sample.max == 0 else f"constant {sample.max:g}"
            drawer = row.initializer.class_name if row.initializer else "the initializer"
            findings.append(Finding("constant", "error", path, f"{what}, but {drawer} draws random values"))
        if "distribution" in selected and assessment.verdict == "inconsistent" and not sample.nonfinite:
            findings.append(Finding("distribution", "error", path, _distribution_message(row)))
        if (
            "fans" in selected
            and record.fan_caveat
            and row.initializer is not None
            and row.initializer.variance_scaling() is not None
        ):
            findings.append(
                Finding(
                    "fans",
                    "error" if strict else "warning",
                    path,
                    f"{row.initializer.class_name} scales by Keras's fans "
                    f"(fan_in {row.fan_in}, fan_out {row.fan_out}): {record.fan_caveat}",
                )
            )
        if "duplicate" in selected and row.digest is not None and random and sample.count > 1:
            if row.digest in first_seen:
                findings.append(
                    Finding(
                        "duplicate",
                        "error",
                        path,
                        f"identical to {first_seen[row.digest]}: one unseeded initializer "
                        "instance shared by both layers draws the same values",
                    )
                )
            else:
                first_seen[row.digest] = path
        if "rules" in selected:
            findings += _rule_findings(row, rules)
    return findings


def _distribution_message(row: WeightRow) -> str:
    checks = row.assessment.checks
    parts = []
    if checks.mean_z is not None:
        parts.append(f"mean z = {checks.mean_z:+.2f}")
    if checks.std_ratio is not None:
        parts.append(
            f"std ratio {checks.std_ratio:.4f} (expected {checks.std_ratio_low:.4f}..{checks.std_ratio_high:.4f})"
        )
    if checks.ks_pvalue is not None:
        parts.append(f"KS p = {checks.ks_pvalue:.2g}")
    if checks.max_abs_error is not None:
        parts.append(f"max deviation {checks.max_abs_error:.3g}")
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
                    "rules",
                    "error",
                    path,
                    f"initializer {configured or 'unknown'}, rule {rule.pattern!r} expects {rule.initializer}",
                )
            )
        if rule.max_abs_mean is not None and sample.mean is not None and abs(sample.mean) > rule.max_abs_mean:
            findings.append(
                Finding(
                    "rules",
                    "error",
                    path,
                    f"|mean| {abs(sample.mean):.4g} > {rule.max_abs_mean:g} (rule {rule.pattern!r})",
                )
            )
        if (
            rule.std_range is not None
            and sample.std is not None
            and not (rule.std_range[0] <= sample.std <= rule.std_range[1])
        ):
            findings.append(
                Finding(
                    "rules",
                    "error",
                    path,
                    f"std {sample.std:.4g} outside [{rule.std_range[0]:g}, {rule.std_range[1]:g}] "
                    f"(rule {rule.pattern!r})",
                )
            )
    return findings


def github_annotation(finding: Finding, source: str) -> str:
    """A GitHub Actions workflow command for the finding."""

    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    title = f"initcli {finding.check}".replace(",", "%2C").replace("::", "%3A%3A")
    file = source.replace(",", "%2C").replace(":", "%3A")
    return f"::{finding.severity} file={file},title={title}::{escape(finding.path + ': ' + finding.message)}"


def summary(rows: Sequence[WeightRow], findings: Sequence[Finding]) -> dict[str, Any]:
    errors = sum(1 for f in findings if f.severity == "error")
    return {"weights": len(rows), "errors": errors, "warnings": len(findings) - errors, "passed": errors == 0}
