"""Typed reports: what each command computed, in one object the renderers and the tests both read.

Every report gives `to_json()` (the JSON contract in `schemas/output.schema.json`, without
`schema_version`, which the renderer adds), `flat_rows()` (flat records for CSV and Markdown, keyed by
`columns`), and the fields the Rich tables in `initcli.render.tables` read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from initcli.initializers import InitializerSpec
from initcli.initializers.seeding import Seed
from initcli.report_views import ReportViews as ReportViews  # the views every report has (a dict, pandas, Rich, HTML)
from initcli.report_views import Views as Views
from initcli.report_views import register_views as register_views
from initcli.stats.assessment import FLAT_COLUMNS, Assessment, flat_fields
from initcli.types import BuiltFrom, CheckName

SCHEMA_VERSION = 1  # of the JSON output contract; the renderers add it to every document


if TYPE_CHECKING:
    from initcli.analysis.checks import Coverage, Finding
    from initcli.analysis.diff import Drift
    from initcli.analysis.inspection import WeightRow
    from initcli.initializers import InitializerKind
    from initcli.initializers.equivalents import Equivalent
    from initcli.initializers.explanation import Code
    from initcli.stats.theory import Theory


def initializer_label(spec: InitializerSpec | dict[str, Any] | None) -> str | None:
    """`GlorotUniform(seed=3)` for a spec; the class name of an unresolved config; None for none."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        return spec.get("class_name")
    shown = {k: v for k, v in spec.config.items() if v is not None}
    return f"{spec.class_name}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


VALUES_SHOWN = 1000


@dataclass(frozen=True, kw_only=True)
class ShownValues:
    """The values of a tensor, or its first `VALUES_SHOWN` in C order, exactly as drawn.

    Each value is written with the fewest digits that read back as the same value in the tensor's
    dtype (`-0.7078647` for a float32), so printed values can be compared exactly.
    """

    shape: tuple[int, ...]
    dtype: str
    first: np.ndarray
    total: int

    @property
    def complete(self) -> bool:
        return self.first.size == self.total

    def texts(self) -> list[str]:
        """The shortest round-tripping decimal of each shown value."""
        if self.dtype == "float64":
            return [repr(float(value)) for value in self.first.tolist()]
        return [str(value) for value in self.first]

    def to_json(self) -> Any:
        """The values nested in the tensor's shape when all are shown, else the first ones, flat."""
        numbers = np.array([float(text) for text in self.texts()], dtype=np.float64)
        return numbers.reshape(self.shape).tolist() if self.complete else numbers.tolist()

    @property
    def columns(self) -> tuple[str, ...]:
        return (*(f"i{axis}" for axis in range(len(self.shape))), "value")

    def flat_rows(self) -> list[dict[str, Any]]:
        """One row per shown value: its index on each axis, and the value."""
        indices = np.unravel_index(np.arange(self.first.size), self.shape) if self.shape else ()
        return [
            {**{f"i{axis}": int(index[position]) for axis, index in enumerate(indices)}, "value": text}
            for position, text in enumerate(self.texts())
        ]

    def note(self) -> str | None:
        if self.complete:
            return None
        return f"values: the first {self.first.size} of {self.total} in C order (--save writes them all)"


@dataclass(frozen=True, kw_only=True)
class SampleReport(ReportViews):
    """`initcli sample`: one tensor drawn as Keras draws it, theory beside sample."""

    spec: InitializerSpec
    shape: tuple[int, ...]
    dtype: str
    seed: Seed
    engine: str
    assessment: Assessment
    notes: list[str] = field(default_factory=list)
    values: ShownValues | None = None

    summary_columns = ("initializer", "config", "shape", "dtype", "seed", *FLAT_COLUMNS)

    @property
    def columns(self) -> tuple[str, ...]:
        """The summary's columns, or with `--values` the values' (an index per axis, and the value)."""
        return self.values.columns if self.values is not None else self.summary_columns

    @property
    def markdown_columns(self) -> tuple[str, ...]:
        """Markdown's default (a PR comment's width); `--wide` or `--columns` for the others."""
        if self.values is not None:
            return self.values.columns
        return ("initializer", "shape", "dtype", "seed", "theory_std", "std", "std_ratio", "verdict")

    def to_json(self) -> dict[str, Any]:
        theory = self.assessment.theory
        values = self.values
        return {
            "initializer": self.spec.to_dict(),
            "shape": list(self.shape),
            "dtype": self.dtype,
            "seed": self.seed.value,
            "reproducible": self.seed.reproducible,
            "engine": self.engine,
            "fan_in": theory.fan_in if theory else None,
            "fan_out": theory.fan_out if theory else None,
            **self.assessment.to_dict(),
            "notes": self.notes,
            "values": None if values is None else values.to_json(),
            "values_shown": None if values is None else values.first.size,
            "values_total": None if values is None else values.total,
        }

    def flat_rows(self) -> list[dict[str, Any]]:
        if self.values is not None:
            return self.values.flat_rows()
        return [
            {
                "initializer": self.spec.class_name,
                "config": self.spec.config,
                "shape": list(self.shape),
                "dtype": self.dtype,
                "seed": self.seed.value,
                **flat_fields(self.assessment),
            }
        ]


@dataclass(frozen=True, kw_only=True)
class Built:
    """Where a model that was built rather than read came from."""

    kind: BuiltFrom
    source: str
    seed: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "seed": self.seed, "reproducible": self.seed is not None}


@dataclass(frozen=True, kw_only=True)
class InspectReport(ReportViews):
    """`initcli inspect`: one row per weight of a model, with the model-level findings as notes.

    Attributes:
        format: the file format read (a built model is saved to a `.keras` file and read as one).
        fresh: with --fresh, each weight of the model rebuilt from its config, by path.
        drift: each weight's drift from its initializer, by path (`initcli.analysis.diff.Drift`):
            std ratio to theory, and with --fresh the change from the re-drawn init.
    """

    source: str
    format: str
    keras_version: str | None
    weights: list[WeightRow]
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    built: Built | None = None
    fresh: dict[str, WeightRow] | None = None
    drift: dict[str, Drift] | None = None

    BASE_COLUMNS = (
        "path",
        "layer",
        "layer_class",
        "weight",
        "shape",
        "dtype",
        "initializer",
        "default_initializer",
        "is_default",
        "inferred",
        *FLAT_COLUMNS,
    )
    """`inferred`: true on a standard sublayer of a custom layer that the file's structure names
    (docs/custom-layers.md): its `initializer` is empty and `default_initializer` is the inferred
    class's Keras default, which its verdict judges against."""
    FRESH_COLUMNS = (
        "fresh_std",
        "std_ratio_fresh",
        "init",
        "relative_change",
        "max_abs_diff",
        "cosine",
        "correlation",
    )
    """With --fresh: the re-drawn init's std, the weight's std over it, and the drift from it (JSON's
    `fresh` and `drift`); `init` says what the re-drawn init is to the file (`exact`, `global-seed`,
    `independent`: the change and correlation are then statistical)."""
    BASE_MARKDOWN_COLUMNS = ("path", "shape", "initializer", "theory_std", "std", "verdict")
    FRESH_MARKDOWN_COLUMNS = ("fresh_std", "init", "relative_change", "correlation")
    INFERRED_MARKDOWN_COLUMN = "inferred"
    """Markdown's default columns gain `inferred` after `path` when a row is inferred (a custom layer's
    standard sublayer named from the file's structure)."""

    @property
    def any_inferred(self) -> bool:
        return any(row.record.inferred for row in self.weights)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every CSV column (and `--columns` choice); the drift columns with --fresh."""
        return self.BASE_COLUMNS + (self.FRESH_COLUMNS if self.fresh is not None else ())

    @property
    def markdown_columns(self) -> tuple[str, ...]:
        """Markdown's default, the compact table's columns (a PR comment's width), with --fresh the
        change and correlation, with an inferred row `inferred`; `--wide` for all."""
        base: tuple[str, ...] = self.BASE_MARKDOWN_COLUMNS
        if self.any_inferred:
            base = (base[0], self.INFERRED_MARKDOWN_COLUMN, *base[1:])
        return base + (self.FRESH_MARKDOWN_COLUMNS if self.fresh is not None else ())

    @property
    def totals(self) -> dict[str, Any]:
        verdicts = Counter(row.assessment.verdict for row in self.weights)
        return {
            "weights": len(self.weights),
            "parameters": sum(math.prod(row.record.shape) for row in self.weights),
            "verdicts": dict(verdicts),
        }

    @property
    def state(self) -> dict[str, Any]:
        """Trained or fresh (`initcli.analysis.inspection.model_state`)."""
        from initcli.analysis.inspection import model_state

        return model_state(self.weights)

    def to_json(self) -> dict[str, Any]:
        weights = []
        for row in self.weights:
            entry = row.to_dict()
            if self.fresh is not None:
                fresh_row = self.fresh.get(row.record.path)
                entry["fresh"] = (
                    None
                    if fresh_row is None
                    else {"sample": fresh_row.assessment.sample.to_dict(), "verdict": fresh_row.assessment.verdict}
                )
            drift = None if self.drift is None else self.drift.get(row.record.path)
            if drift is not None:
                entry["drift"] = drift.to_json()
            weights.append(entry)
        payload: dict[str, Any] = {
            "source": self.source,
            "format": self.format,
            "keras_version": self.keras_version,
            "weights": weights,
            "totals": self.totals,
            "state": self.state,
            "findings": [finding.to_dict() for finding in self.findings],
            "notes": self.notes,
        }
        if self.built is not None:
            payload["built"] = self.built.to_dict()
        return payload

    def flat_rows(self) -> list[dict[str, Any]]:
        out = []
        for row in self.weights:
            record = row.record
            configured = row.initializer if row.initializer is not None else record.initializer
            out.append(
                {
                    **record.identity(),
                    "initializer": initializer_label(configured),  # type: ignore[arg-type]
                    "default_initializer": initializer_label(row.default),
                    "is_default": row.is_default,
                    "inferred": record.inferred,
                    **flat_fields(row.assessment),
                    "fan_in": row.fan_in,
                    "fan_out": row.fan_out,
                    **self._fresh_fields(row),
                }
            )
        return out

    def markdown_rows(self) -> list[dict[str, Any]]:
        """The CSV records, with an inferred row's `initializer` worded as the terminal's table words
        it (`unknown (inferred class's default GlorotUniform)`): Markdown is read, not parsed."""
        out = self.flat_rows()
        for flat, row in zip(out, self.weights):
            if row.against_inferred_default and row.default is not None:
                flat["initializer"] = f"unknown (inferred class's default {row.default.class_name})"
        return out

    def _fresh_fields(self, row: WeightRow) -> dict[str, Any]:
        if self.fresh is None:
            return {}
        fresh_row = self.fresh.get(row.record.path)
        fresh_std = None if fresh_row is None else fresh_row.assessment.sample.std
        std = row.assessment.sample.std
        drift = None if self.drift is None else self.drift.get(row.record.path)
        measured = {} if drift is None or drift.fresh is None else drift.to_json()
        return {
            "fresh_std": fresh_std,
            "std_ratio_fresh": std / fresh_std if fresh_std and std is not None else None,
            "init": None if drift is None or drift.fresh is None else drift.init,
            **{key: measured.get(key) for key in ("relative_change", "max_abs_diff", "cosine", "correlation")},
        }


@dataclass(frozen=True, kw_only=True)
class CheckReport(ReportViews):
    """`initcli check`: the findings, what each check covered, and whether the gate passed."""

    source: str
    checks: list[CheckName]
    alpha: float
    strict: bool
    weights: int
    findings: list[Finding]
    coverage: list[Coverage]
    state: dict[str, Any] | None = None
    """Trained or fresh (`initcli.analysis.inspection.model_state`)."""

    @property
    def errors(self) -> int:
        return sum(1 for finding in self.findings if finding.severity == "error")

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    @property
    def passed(self) -> bool:
        return self.errors == 0

    columns = ("check", "severity", "path", "message")

    def flat_rows(self) -> list[dict[str, Any]]:
        """One row per finding."""
        return [finding.to_dict() for finding in self.findings]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "checks": list(self.checks),
            "alpha": self.alpha,
            "strict": self.strict,
            "weights": self.weights,
            "errors": self.errors,
            "warnings": self.warnings,
            "passed": self.passed,
            "coverage": [entry.to_dict() for entry in self.coverage],
            "findings": [finding.to_dict() for finding in self.findings],
            **({} if self.state is None else {"state": self.state}),
        }


@dataclass(frozen=True, kw_only=True)
class FileError:
    """A model of a several-model run that could not be read or checked."""

    source: str
    message: str
    exit_code: int

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "message": self.message, "exit_code": self.exit_code}


def worst_exit_code(errors: list[FileError], failed: bool) -> int:
    """A several-model run's exit code: 2 if a model was a usage error, else 1 if one could not be
    read, else 3 if a check failed, else 0."""
    codes = {error.exit_code for error in errors}
    for code in (2, 1):
        if code in codes:
            return code
    if codes:
        return max(codes)
    return 3 if failed else 0


class _SeveralModels:
    """A run over several models: a result per model, in the order given, some of them errors."""

    results: Sequence[object]

    @property
    def errors(self) -> list[FileError]:
        return [result for result in self.results if isinstance(result, FileError)]


@dataclass(frozen=True, kw_only=True)
class InspectManyReport(_SeveralModels, ReportViews):
    """`initcli inspect` of several models: each model's report or error, in the order given, and totals."""

    results: list[InspectReport | FileError]

    @property
    def reports(self) -> list[InspectReport]:
        return [result for result in self.results if isinstance(result, InspectReport)]

    @property
    def columns(self) -> tuple[str, ...]:
        fresh = any(report.fresh is not None for report in self.reports)
        return ("source", *InspectReport.BASE_COLUMNS, *(InspectReport.FRESH_COLUMNS if fresh else ()))

    @property
    def markdown_columns(self) -> tuple[str, ...]:
        fresh = any(report.fresh is not None for report in self.reports)
        extra = InspectReport.FRESH_MARKDOWN_COLUMNS if fresh else ()
        base: tuple[str, ...] = InspectReport.BASE_MARKDOWN_COLUMNS
        if any(report.any_inferred for report in self.reports):
            base = (base[0], InspectReport.INFERRED_MARKDOWN_COLUMN, *base[1:])
        return ("source", *base, *extra)

    @property
    def totals(self) -> dict[str, Any]:
        verdicts: Counter[str] = Counter()
        for report in self.reports:
            verdicts.update(report.totals["verdicts"])
        return {
            "models": len(self.reports) + len(self.errors),
            "read": len(self.reports),
            "failed": len(self.errors),
            "weights": sum(report.totals["weights"] for report in self.reports),
            "parameters": sum(report.totals["parameters"] for report in self.reports),
            "verdicts": dict(verdicts),
        }

    @property
    def exit_code(self) -> int:
        return worst_exit_code(self.errors, failed=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [{"schema_version": SCHEMA_VERSION, **report.to_json()} for report in self.reports],
            "errors": [error.to_dict() for error in self.errors],
            "totals": self.totals,
        }

    def flat_rows(self) -> list[dict[str, Any]]:
        return [{"source": report.source, **row} for report in self.reports for row in report.flat_rows()]

    def markdown_rows(self) -> list[dict[str, Any]]:
        return [{"source": report.source, **row} for report in self.reports for row in report.markdown_rows()]


@dataclass(frozen=True, kw_only=True)
class CheckManyReport(_SeveralModels, ReportViews):
    """`initcli check` of several models: the gate passes only if every model was read and passed."""

    results: list[CheckReport | FileError]

    columns = ("source", *CheckReport.columns)

    def flat_rows(self) -> list[dict[str, Any]]:
        """One row per finding, with its model's source."""
        return [{"source": report.source, **row} for report in self.reports for row in report.flat_rows()]

    @property
    def reports(self) -> list[CheckReport]:
        return [result for result in self.results if isinstance(result, CheckReport)]

    @property
    def passed(self) -> bool:
        return not self.errors and all(report.passed for report in self.reports)

    @property
    def exit_code(self) -> int:
        return worst_exit_code(self.errors, failed=not self.passed)

    @property
    def totals(self) -> dict[str, Any]:
        return {
            "models": len(self.reports) + len(self.errors),
            "passed": sum(1 for report in self.reports if report.passed),
            "failed": sum(1 for report in self.reports if not report.passed),
            "unreadable": len(self.errors),
            "weights": sum(report.weights for report in self.reports),
            "errors": sum(report.errors for report in self.reports),
            "warnings": sum(report.warnings for report in self.reports),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [{"schema_version": SCHEMA_VERSION, **report.to_json()} for report in self.reports],
            "errors": [error.to_dict() for error in self.errors],
            "passed": self.passed,
            "totals": self.totals,
        }


@dataclass(frozen=True, kw_only=True)
class ListReport(ReportViews):
    """`initcli list`: every built-in initializer."""

    kinds: tuple[InitializerKind, ...]

    columns = ("class_name", "name", "aliases", "parameters", "formula", "keras", "pytorch", "flax")

    def flat_rows(self) -> list[dict[str, Any]]:
        from initcli.initializers.equivalents import equivalents

        rows = []
        for kind in self.kinds:
            calls = {equivalent.framework: equivalent for equivalent in equivalents(kind.class_name)}
            rows.append(
                {
                    "class_name": kind.class_name,
                    "name": kind.snake_name,
                    "aliases": ", ".join(kind.aliases),
                    "parameters": ", ".join(f"{k}={v!r}" for k, v in kind.defaults.items()),
                    "formula": kind.formula,
                    "keras": f"keras.initializers.{kind.class_name}()",
                    "pytorch": _call_and_difference(calls.get("pytorch")),
                    "flax": _call_and_difference(calls.get("flax")),
                }
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        return {"initializers": self.flat_rows()}


def _call_and_difference(equivalent: Equivalent | None) -> str | None:
    if equivalent is None:
        return None
    return f"{equivalent.call} ({equivalent.differences})"


@dataclass(frozen=True, kw_only=True)
class ExplainReport(ReportViews):
    """`initcli explain`: the formula, the numbers for a shape, the Keras call, values, numpy code, and
    the PyTorch/Flax equivalents."""

    spec: InitializerSpec
    shape: tuple[int, ...] | None
    dtype: str
    theory: Theory | None
    lines: list[str]
    keras: str
    seed: int | None = None
    values: ShownValues | None = None
    values_note: str | None = None
    code: list[Code] = field(default_factory=list)
    not_exact: str | None = None
    equivalents: list[Equivalent] = field(default_factory=list)

    columns = (
        "initializer",
        "shape",
        "fan_in",
        "fan_out",
        "formula",
        "distribution",
        "theory_mean",
        "theory_std",
        "theory_limit",
        "stddev_param",
        "keras",
        "pytorch",
        "flax",
    )

    @property
    def exact_code(self) -> str | None:
        """The code that prints the exact values, if there is one."""
        return next((code.code for code in self.code if code.exact and self.spec.family.random), None)

    def text_lines(self) -> list[str]:
        """The whole explanation as text, in reading order (values aside)."""
        lines = [*self.lines, "", "Keras 3 (TensorFlow backend, CPU):", f"  {self.keras}"]
        for code in self.code:
            lines += code.lines()
        if self.not_exact:
            lines.append(f"exact values: {self.not_exact}")
        for equivalent in self.equivalents:
            lines.append(f"{equivalent.label}: {equivalent.call}  ({equivalent.differences})")
        return lines

    def to_json(self) -> dict[str, Any]:
        theory = self.theory
        values = self.values
        return {
            "initializer": self.spec.to_dict(),
            "formula": self.spec.kind.formula,
            "shape": None if self.shape is None else list(self.shape),
            "dtype": self.dtype,
            "fan_in": theory.fan_in if theory else None,
            "fan_out": theory.fan_out if theory else None,
            "theory": theory.to_dict() if theory else None,
            "explanation": self.text_lines(),
            "keras": self.keras,
            "seed": self.seed,
            "values": None if values is None else values.to_json(),
            "values_shown": None if values is None else values.first.size,
            "values_total": None if values is None else values.total,
            "numpy_exact": self.exact_code,
            "numpy_exact_unavailable": self.not_exact,
            "equivalents": {equivalent.framework: equivalent.to_dict() for equivalent in self.equivalents},
        }

    def flat_rows(self) -> list[dict[str, Any]]:
        theory = self.theory
        calls = {equivalent.framework: equivalent.call for equivalent in self.equivalents}
        return [
            {
                "initializer": self.spec.class_name,
                "shape": None if self.shape is None else list(self.shape),
                "fan_in": theory.fan_in if theory else None,
                "fan_out": theory.fan_out if theory else None,
                "formula": self.spec.kind.formula,
                "distribution": theory.distribution if theory else None,
                "theory_mean": theory.mean if theory else None,
                "theory_std": theory.std if theory else None,
                "theory_limit": theory.limit if theory else None,
                "stddev_param": theory.stddev_param if theory else None,
                "keras": self.keras,
                "pytorch": calls.get("pytorch"),
                "flax": calls.get("flax"),
            }
        ]


@dataclass(frozen=True, kw_only=True)
class DefaultsReport(ReportViews):
    """`initcli defaults`: the default initializer of every initializer argument of Keras layers."""

    source: str
    frameworks: list[str]
    entries: list[dict[str, Any]]

    @property
    def columns(self) -> tuple[str, ...]:
        return ("layer", "argument", "default", "formula", "settings", *[f for f in self.frameworks if f != "keras"])

    def flat_rows(self) -> list[dict[str, Any]]:
        return self.entries

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "defaults": self.entries}


@dataclass(frozen=True, kw_only=True)
class BatchnormReport(ReportViews):
    """`initcli batchnorm`: the moving statistics step by step and the outputs."""

    momentum: float
    epsilon: float
    steps: int
    features: int
    batch: list[float]
    history: list[dict[str, Any]]
    moving_mean: list[float]
    moving_variance: list[float]
    training_output: list[Any]
    inference_output: list[Any]
    notes: list[str] = field(default_factory=list)
    keras: int = 3
    fused: bool = False
    bessel: float = 1.0

    columns = ("step", "feature", "batch_mean", "batch_variance", "moving_mean", "moving_variance")

    def flat_rows(self) -> list[dict[str, Any]]:
        return self.history

    def to_json(self) -> dict[str, Any]:
        return {
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "steps": self.steps,
            "features": self.features,
            "batch": self.batch,
            "history": self.history,
            "moving_mean": self.moving_mean,
            "moving_variance": self.moving_variance,
            "training_output": self.training_output,
            "inference_output": self.inference_output,
            "notes": self.notes,
            "keras": self.keras,
            "fused": self.fused,
            "bessel": self.bessel,
        }
