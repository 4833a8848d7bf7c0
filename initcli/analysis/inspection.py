"""Inspect a saved model: each weight record checked against its configured initializer."""

from __future__ import annotations

import fnmatch
import functools
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from initcli.errors import BadInputError, InitcliError
from initcli.initializers import InitializerSpec, resolve
from initcli.initializers.fans import compute_fans
from initcli.parallel.fanout import map_in_order, worker_count
from initcli.readers import WeightRecord
from initcli.stats.assessment import (
    Assessment,
    ambiguous_model,
    assess,
    judge,
    mark_trained,
    moved_from_constant,
    trained_model,
)
from initcli.stats.comparisons import Comparator, Exact, rounding_tolerance
from initcli.stats.theory import Theory, exact_theory
from initcli.types import DEFAULT_ALPHA, FLOAT_DTYPES

_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


class ProgressSink(Protocol):
    """What `api` reports while it measures: a model begins, a weight is done."""

    def begin(self, source: str, weights: int, nbytes: int) -> None: ...

    def advance(self, row: WeightRow) -> None: ...


def weight_bytes(shape: tuple[int, ...], dtype: str) -> int:
    """Bytes a weight's values take (4 per value for a dtype outside the float types)."""
    return math.prod(shape) * _ITEMSIZE.get(dtype, 4)


_IGNORED_FOR_DEFAULT = ("seed", "input_axes", "output_axes")
_STATS_CHUNK = 1 << 22


@dataclass(kw_only=True)
class WeightRow:
    """One inspected weight: the record, the resolved initializers, and the assessment.

    Attributes:
        untested_reason: why the values were not compared with a theory, when they were not.
    """

    record: WeightRecord
    initializer: InitializerSpec | None
    default: InitializerSpec | None
    fan_in: int
    fan_out: int
    assessment: Assessment
    notes: list[str] = field(default_factory=list)
    untested_reason: str | None = None

    @property
    def is_default(self) -> bool | None:
        if self.initializer is None or self.default is None:
            return None
        return self.initializer.class_name == self.default.class_name and _comparable(self.initializer) == _comparable(
            self.default
        )

    @property
    def against_inferred_default(self) -> bool:
        """Judged against the Keras default of the class the file's structure shows (a standard
        sublayer of a custom layer whose config the file does not hold), not a configured initializer."""
        return self.record.inferred and self.initializer is None and self.default is not None

    @property
    def random(self) -> bool:
        """Drawn at random by its initializer (so duplicates and constant values are findings)."""
        return self.initializer is not None and self.initializer.family.random and self.assessment.theory is not None

    def to_dict(self) -> dict[str, Any]:
        record = self.record
        initializer = (
            self.initializer.to_dict()
            if self.initializer
            else (dict(record.initializer) if record.initializer else None)
        )
        if initializer is not None:
            initializer = {"class_name": initializer.get("class_name"), "config": initializer.get("config")}
        out = {
            **record.identity(),
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "initializer": initializer,
            "default_initializer": self.default.to_dict() if self.default else None,
            "is_default": self.is_default,
            **self.assessment.to_dict(),
            "untested_reason": self.untested_reason,
            "settings": record.settings,
            "notes": self.notes,
        }
        # Only on rows inside custom layers (docs/custom-layers.md), so other reports stay as they were.
        if record.inferred:
            out["inferred"] = True
            if self.against_inferred_default:
                out["judged_against"] = "inferred_default"
        if record.custom_layer is not None:
            out["custom_layer"] = dict(record.custom_layer)
        return out


def _comparable(spec: InitializerSpec) -> dict[str, Any]:
    return {k: v for k, v in spec.config.items() if k not in _IGNORED_FOR_DEFAULT}


def _theory_dtype(dtype: str) -> str:
    return dtype if dtype in FLOAT_DTYPES else "float32"


def _resolve(identifier: Any, notes: list[str], what: str) -> InitializerSpec | None:
    if identifier is None:
        return None
    try:
        return resolve(identifier)
    except BadInputError as error:
        notes.append(f"{what}: {error} (not a Keras built-in; no theory)")
        return None


def _forget_bias(spec: InitializerSpec, shape: tuple[int, ...]) -> tuple[Theory, Comparator] | None:
    """LSTM unit_forget_bias: bias = [init(units), ones(units), init(2·units)] for constant inits."""
    if spec.family.random or len(shape) != 1 or shape[0] % 4:
        return None
    units = shape[0] // 4
    value = float(spec.family.theory(spec, (1,), "float64").mean or 0.0)
    expected = np.concatenate([np.full(units, value), np.ones(units), np.full(2 * units, value)])
    theory = exact_theory(
        "constant",
        expected.size,
        float(expected.sum()),
        float(np.square(expected).sum()),
        float(expected.min()),
        float(expected.max()),
        compute_fans(shape),
    )
    return theory, Exact(lambda start, stop: expected[start:stop], rounding_tolerance("float32", max(1.0, value)))


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """What measuring one weight found (plain data: a worker process sends it back pickled)."""

    assessment: Assessment
    fan_in: int
    fan_out: int
    notes: list[str]
    untested_reason: str | None


def _initializers(record: WeightRecord, notes: list[str]) -> tuple[InitializerSpec | None, InitializerSpec | None]:
    """The record's initializer (with its fan axes) and its layer's default, as resolved specs."""
    spec = _resolve(record.initializer, notes, "initializer")
    default = _resolve(record.default_initializer, notes, "default") if record.default_initializer else None
    if spec is not None:
        spec = spec.with_fan_axes(record.fan_axes)
    return spec, default


def _judged_against(record: WeightRecord, notes: list[str]) -> InitializerSpec | None:
    """The initializer a weight's values are compared with: the configured one, or, for a standard
    sublayer the file's structure shows inside a custom layer (`record.inferred`, no config), the
    Keras default of the inferred class (its verdicts then say whether the values look like it)."""
    spec, default = _initializers(record, notes)
    if spec is None and record.inferred and record.initializer is None and default is not None:
        return default.with_fan_axes(record.fan_axes)
    return spec


def measure_record(record: WeightRecord, interval_alpha: float = DEFAULT_ALPHA) -> Measurement:
    """Read one weight and compare it with its initializer (the verdict comes from `judge_rows`)."""
    notes = list(record.notes)
    spec = _judged_against(record, notes)
    dtype = _theory_dtype(record.dtype)
    theory: Theory | None = None
    comparator: Comparator | None = None
    untested = None
    if spec is None:
        untested = "unknown initializer" if record.initializer is not None else "no initializer information"
    else:
        try:
            spec.check_request(record.shape, dtype)
            theory = spec.theory(record.shape, dtype)
            comparator = spec.family.comparator(spec, record.shape, dtype, theory, interval_alpha=interval_alpha)
        except BadInputError as error:
            notes.append(f"initializer cannot produce this shape: {error}")
            untested = "initializer cannot produce this shape"
        if record.forget_gate_bias:
            special = _forget_bias(spec, record.shape)
            if special is not None:
                theory, comparator = special
            else:
                theory, comparator = None, None
                notes.append("unit_forget_bias with a random bias initializer: no single theory")
                untested = "unit_forget_bias with a random bias initializer"
    if theory is not None:
        fan_in, fan_out = theory.fan_in, theory.fan_out
    else:
        axes = record.fan_axes or (None, None)
        fan_in, fan_out = compute_fans(record.shape, *axes)
    assessment = assess(record.chunks(_STATS_CHUNK), math.prod(record.shape), theory, comparator)
    if untested is None and not assessment.tested and theory is not None:
        untested = "nothing to compare (empty or zero-variance theory)"
    # The KS subsample served the tests; a model's rows do not keep up to 1 MB each of it.
    assessment = replace(assessment, ks_sample=_NO_SAMPLE)
    return Measurement(assessment=assessment, fan_in=fan_in, fan_out=fan_out, notes=notes, untested_reason=untested)


_NO_SAMPLE = np.empty(0, dtype=np.float32)


def weight_row(record: WeightRecord, measurement: Measurement) -> WeightRow:
    """The report row of a measured weight."""
    spec, default = _initializers(record, [])
    return WeightRow(
        record=record,
        initializer=spec,
        default=default,
        fan_in=measurement.fan_in,
        fan_out=measurement.fan_out,
        assessment=measurement.assessment,
        notes=list(measurement.notes),
        untested_reason=measurement.untested_reason,
    )


def inspect_record(record: WeightRecord, interval_alpha: float = DEFAULT_ALPHA) -> WeightRow:
    """Measure one weight against its initializer (the verdict comes from `judge_rows`)."""
    return weight_row(record, measure_record(record, interval_alpha))


def judge_rows(
    rows: Sequence[WeightRow],
    alpha: float = DEFAULT_ALPHA,
    evidence: Sequence[Assessment] = (),
    inferred_evidence: Sequence[Assessment] = (),
) -> list[WeightRow]:
    """The rows with their verdicts, decided together for the whole model (Holm); in a trained
    model, the weights that training explains are `trained` (`mark_trained`, which also weighs the
    `evidence` of `training_evidence`).

    Rows judged against an inferred default (`WeightRow.against_inferred_default`) are a family of
    their own (Holm over them alone: they leave the configured rows' verdicts as they were), and
    where the values do not look like the default their verdict is `non-default`, not
    `inconsistent`: the custom layer's code may pass another initializer. Whether the model is
    trained is decided on the configured rows (and `evidence`); only when none of them was tested
    do the inferred rows decide, by their constant defaults alone (`inferred_evidence`: the
    unselected ones) — a bias, gamma or beta that is no longer one constant — since a kernel's
    non-default initializer cannot be told from training.
    """
    inferred = [index for index, row in enumerate(rows) if row.against_inferred_default]
    configured = sorted(set(range(len(rows))) - set(inferred))
    judged_configured = judge([rows[index].assessment for index in configured], alpha)
    judged_inferred = judge([rows[index].assessment for index in inferred], alpha)
    basis = [*judged_configured, *evidence]
    if any(assessment.verdict != "n/a" for assessment in basis):
        trained = trained_model(basis)
    else:
        trained = any(moved_from_constant(assessment) for assessment in [*judged_inferred, *inferred_evidence])
    judged: dict[int, Assessment] = dict(zip(configured, mark_trained(judged_configured, trained=trained)))
    for index, assessment in zip(inferred, mark_trained(judged_inferred, trained=trained)):
        if assessment.verdict == "inconsistent" and not assessment.sample.nonfinite:
            assessment = replace(assessment, verdict="non-default")
        judged[index] = assessment
    return [replace(row, assessment=judged[index]) for index, row in enumerate(rows)]


EVIDENCE_ELEMENTS = 1 << 20
"""The largest unselected weight `training_evidence` reads (biases and normalization are far smaller)."""


def training_evidence(records: Sequence[WeightRecord], inferred: bool = False) -> list[Assessment]:
    """The judged assessments of the constant-initialized weights among `records` (biases, gammas,
    moving statistics): the weights `--layer` left out still show whether the model was trained.

    Only constant-initialized weights of at most EVIDENCE_ELEMENTS values are read: they are
    compared value by value, so no multiplicity correction links them to the selected weights.
    `inferred`: the weights judged against an inferred class's default instead (see `judge_rows`).
    """
    assessments = []
    for record in records:
        configured, _ = _initializers(record, [])
        if inferred == (configured is not None):
            continue
        spec = _judged_against(record, [])
        if spec is None or spec.family.random or math.prod(record.shape) > EVIDENCE_ELEMENTS:
            continue
        assessments.append(measure_record(record).assessment)
    return judge(assessments)


AMBIGUOUS_NOTE = " (trained, or a wrong initializer: no constant-initialized weight shows which)"
"""Ends the fresh model line when `ambiguous_model`: the values cannot tell training from a wrong draw."""


def model_state_note(state: dict[str, Any] | None) -> str | None:
    """The model line `check` prints in every format, or None: trained (its moved weights pass),
    or ambiguous (`AMBIGUOUS_NOTE`)."""
    if state is None:
        return None
    if state["state"] == "trained":
        return f"model: {state['line']}: the initialization checks do not apply to its moved weights"
    if state["line"].endswith(AMBIGUOUS_NOTE):
        return f"model: {state['line']}"
    return None


def model_state(rows: Sequence[WeightRow]) -> dict[str, Any]:
    """Trained or fresh, from judged rows (`judge_rows`): the state, the counts and one line.

    "trained" when some weight is `trained` (see `initcli.stats.assessment.trained_model`),
    "unknown" when no weight was compared with an initializer, else "fresh".
    """
    counts = Counter(row.assessment.verdict for row in rows)
    tested = sum(count for verdict, count in counts.items() if verdict != "n/a")
    trained, inconsistent = counts.get("trained", 0), counts.get("inconsistent", 0)
    unlike = counts.get("non-default", 0)
    if trained:
        state, line = "trained", f"trained ({trained} of {tested} weights moved from their initializer)"
    elif not tested:
        state, line = "unknown", "unknown (no weight could be compared with its initializer)"
    else:
        state = "fresh"
        line = "fresh at init" + (
            f"; {inconsistent} of {tested} weights inconsistent with their initializer" if inconsistent else ""
        )
        if unlike:
            line += f"; {unlike} of {tested} weights do not look like their inferred class's default"
        if ambiguous_model([row.assessment for row in rows]):
            line += AMBIGUOUS_NOTE
    return {"state": state, "trained": trained, "tested": tested, "line": line}


def matches(record: WeightRecord, patterns: Sequence[str]) -> bool:
    """--layer filter: a glob against the weight path or the layer name (plain text matches inside)."""
    if not patterns:
        return True
    for pattern in patterns:
        glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
        if fnmatch.fnmatchcase(record.path, glob) or fnmatch.fnmatchcase(record.layer, glob):
            return True
    return False


def inspect_records(
    records: Sequence[WeightRecord],
    patterns: Sequence[str] = (),
    interval_alpha: float = DEFAULT_ALPHA,
    workers: int | None = None,
) -> Iterator[WeightRow]:
    """Measure the records `patterns` select, in order (verdicts: `judge_rows` on them all).

    Models with more than a little to read are measured by `workers` processes (default: one per
    CPU, see `initcli.parallel.fanout`); the rows and any error are the same as one process gives.
    """
    selected = [record for record in records if matches(record, patterns)]
    if workers is None:
        workers = worker_count()  # checks INITCLI_WORKERS even for a small model
        if sum(weight_bytes(record.shape, record.dtype) for record in selected) < FAN_OUT_BYTES:
            workers = 1
    measure = functools.partial(measure_record, interval_alpha=interval_alpha)
    # A file's refusal (InitcliError) is the same whoever reads: not read again by the parent.
    measurements = map_in_order(measure, selected, workers=workers, passed_on=(InitcliError,))
    for record, measurement in zip(selected, measurements):
        yield weight_row(record, measurement)


# Below this many bytes a model is measured in one process: forking costs a few milliseconds.
FAN_OUT_BYTES = 4 << 20


def parameter_count(rows: Sequence[WeightRow]) -> int:
    return sum(math.prod(row.record.shape) for row in rows)
