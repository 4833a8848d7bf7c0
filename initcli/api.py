"""The typed core under the command line: each command's work, returning a report.

The CLI parses options, calls one of these, and renders the report; tests call them directly.
The checks (`initcli.analysis.checks`, with its rules files' parser) are imported by the functions
that check: `sample` and `list` do not load them (4 ms CPU of their start-up, measured 2026-12-07).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from initcli.errors import BadInputError, ExitCode, InitcliError, debugging, internal_error_message, out_of_memory
from initcli.initializers import DEFAULT_CHUNK_ELEMENTS, KINDS, InitializerSpec
from initcli.render.wording import counted, plural
from initcli.reports import (
    VALUES_SHOWN,
    BatchnormReport,
    Built,
    CheckReport,
    DefaultsReport,
    ExplainReport,
    FileError,
    InspectReport,
    ListReport,
    SampleReport,
    ShownValues,
)
from initcli.stats.assessment import assess, judge
from initcli.types import DEFAULT_ALPHA, CheckName

if TYPE_CHECKING:
    from initcli.analysis.checks import Finding, Rule

    # Reading models needs h5py: commands that only draw or explain do not import it.
    from initcli.analysis.diff import DiffReport, Drift
    from initcli.analysis.inspection import ProgressSink, WeightRow
    from initcli.initializers.explanation import Code
    from initcli.parallel.dask import Cluster
    from initcli.propagate.report import PropagateReport
    from initcli.propagate.run import Options as PropagateOptions
    from initcli.readers import ModelFile, WeightRecord


def sample(
    spec: InitializerSpec,
    shape: tuple[int, ...],
    dtype: str = "float32",
    *,
    seed: int | None = None,
    engine: str = "numpy",
    backend: str = "tensorflow",
    alpha: float = DEFAULT_ALPHA,
    save_path: Path | None = None,
    force: bool = False,
    show_values: bool = False,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> SampleReport:
    """Draw what Keras draws for `spec` at `shape` and compare it with the theory.

    Args:
        save_path: also write the values to this `.npy` file as they stream by ("-": standard output).
        force: let `save_path` replace an existing regular file.
        show_values: keep the values (the first `VALUES_SHOWN`) for the report.
        backend: the Keras 3 backend whose draws to reproduce (tensorflow, jax or torch; CPU).
    """
    _check_backend(backend, engine)
    spec.check_request(shape, dtype)
    family = spec.family
    theory = family.theory(spec, shape, dtype)
    used = spec.draw_seed(seed)
    notes = []
    if family.random and not used.reproducible:
        notes.append(
            f"No --seed: values are not reproducible. Keras would pick a random seed; this run used {used.value} "
            f"(pass --seed {used.value} to draw them again)."
        )
    if engine == "keras":
        from initcli.analysis.sampling import draw

        chunks: Iterator[np.ndarray] = iter([draw(spec, shape, dtype, used.value, "keras").reshape(-1)])
    else:
        chunks = family.draw_chunks(spec, shape, dtype, used.value, chunk_elements, backend)
        if backend != "tensorflow" and family.random:
            notes.append(f"Drawn as Keras 3 draws with KERAS_BACKEND={backend} (CPU).")
    if save_path is not None:
        from initcli.render.npy_writer import write_npy

        chunks = write_npy(save_path, shape, dtype, chunks, force=force)
        stored = " as float32 (exact for bfloat16)" if dtype == "bfloat16" else ""
        where = "standard output" if str(save_path) == "-" else str(save_path)
        notes.append(f"Saved {math.prod(shape)} values to {where}{stored}.")
    kept: list[np.ndarray] = []
    if show_values:
        chunks = _keeping_first(chunks, VALUES_SHOWN, kept)
    comparator = family.comparator(spec, shape, dtype, theory, interval_alpha=alpha)
    (assessment,) = judge([assess(chunks, math.prod(shape), theory, comparator)], alpha)
    values = None
    if show_values:
        values = _shown(kept, shape, dtype)
        if (note := values.note()) is not None:
            notes.append(note)
    return SampleReport(
        spec=spec,
        shape=shape,
        dtype=dtype,
        seed=used,
        engine=engine,
        assessment=assessment,
        notes=notes,
        values=values,
    )


def _keeping_first(chunks: Iterable[np.ndarray], limit: int, kept: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Pass `chunks` on, copying their first `limit` values into `kept`."""
    room = limit
    for chunk in chunks:
        if room > 0:
            part = chunk.reshape(-1)[:room].copy()
            kept.append(part)
            room -= part.size
        yield chunk


def _first_values(chunks: Iterable[np.ndarray], shape: tuple[int, ...], dtype: str) -> ShownValues:
    """The first `VALUES_SHOWN` values of a stream, drawing no further chunk than they need."""
    kept: list[np.ndarray] = []
    for _ in _keeping_first(chunks, VALUES_SHOWN, kept):
        if sum(part.size for part in kept) >= VALUES_SHOWN:
            break
    return _shown(kept, shape, dtype)


def _shown(kept: list[np.ndarray], shape: tuple[int, ...], dtype: str) -> ShownValues:
    from initcli.rng.stateless import numpy_dtype

    first = np.concatenate(kept) if kept else np.zeros(0, dtype=numpy_dtype(dtype))
    return ShownValues(shape=shape, dtype=dtype, first=first, total=math.prod(shape))


def list_initializers() -> ListReport:
    return ListReport(kinds=KINDS)


def _check_backend(backend: str, engine: str = "numpy") -> None:
    from initcli.initializers.seeding import BACKENDS

    if backend not in BACKENDS and backend != "jax:unpartitioned":  # initializers.backends.JAX_UNPARTITIONED
        raise BadInputError(f"Invalid value for '--backend': {backend!r}; expected one of {', '.join(BACKENDS)}")
    if engine == "keras" and backend != "tensorflow":
        raise BadInputError("--engine keras runs Keras on TensorFlow: use --backend tensorflow with it")


def explain(
    spec: InitializerSpec,
    shape: tuple[int, ...] | None,
    dtype: str = "float32",
    seed: int | None = None,
    backend: str = "tensorflow",
) -> ExplainReport:
    """The formula with the numbers for `shape` plugged in, the Keras call, the values for `seed`, numpy
    code (exact where short), and the PyTorch/Flax equivalents.

    Raises:
        BadInputError: a seed without a shape, or a shape the initializer cannot fill.
    """
    from initcli.initializers.equivalents import equivalents
    from initcli.initializers.explanation import formula_lines, keras_call, numpy_code

    if seed is not None and shape is None:
        raise BadInputError("Invalid value for '--seed': the values need a shape too (--shape)")
    _check_backend(backend)
    theory = values = None
    code: list[Code] = []
    not_exact = None
    seed_value = spec.draw_seed(seed).value if seed is not None or spec.seed is not None else None
    if shape is not None:
        spec.check_request(shape, dtype)
        theory = spec.theory(shape, dtype)
        code, not_exact = numpy_code(spec, theory, shape, dtype, seed_value, backend)
        if seed_value is not None or not spec.family.random:
            chunks = spec.family.draw_chunks(spec, shape, dtype, seed_value or 0, VALUES_SHOWN, backend)
            values = _first_values(chunks, shape, dtype)
    return ExplainReport(
        spec=spec,
        shape=shape,
        dtype=dtype,
        theory=theory,
        lines=formula_lines(spec, theory, shape),
        keras=keras_call(spec, shape, dtype, seed_value, backend),
        seed=seed_value if spec.family.random else None,
        values=values,
        values_note=None if values is None else values.note(),
        code=code,
        not_exact=not_exact,
        equivalents=equivalents(spec.class_name, spec.config),
    )


def layer_defaults(layers: Sequence[str], frameworks: Sequence[str], source: str) -> DefaultsReport:
    from initcli.keras.defaults import FRAMEWORKS, default_rows

    unknown = [name for name in frameworks if name not in FRAMEWORKS]
    if unknown or not frameworks:
        raise BadInputError(
            f"Invalid value for '--framework': unknown framework(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(FRAMEWORKS)}"
        )
    return DefaultsReport(source=source, frameworks=list(frameworks), entries=default_rows(layers, frameworks, source))


def draw_batch(spec: InitializerSpec, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A batch (batch, ..., features) drawn with an initializer, for `batchnorm`."""
    from initcli.analysis.sampling import draw

    if len(shape) < 1:
        raise BadInputError("Invalid value for '--shape': a batch needs at least one dimension")
    return draw(spec, shape, "float32", seed).astype(np.float64)


def batchnorm(
    batch: np.ndarray, momentum: float, epsilon: float, steps: int, *, keras: int = 3, fused: bool | None = None
) -> BatchnormReport:
    """BatchNormalization's statistics step by step; the batch and outputs shown up to VALUES_SHOWN values.

    `keras` 2 follows tf_keras: its fused kernel (rank 4 or 5 input unless `fused` is False) adds
    Bessel's correction to the batch variance in the moving update.
    """
    from initcli.keras.batchnorm import explain as explain_batchnorm

    result = explain_batchnorm(batch, momentum, epsilon, steps, keras=keras, fused=fused)
    notes = [_batchnorm_rule_note(result.keras, result.fused, result.bessel, batch.ndim)]
    if result.steps_omitted or result.features_omitted:
        notes.append(
            f"history: {plural(result.steps_omitted, 'middle step')} and {plural(result.features_omitted, 'feature')} "
            f"not shown "
            f"(every step and feature is computed; moving_mean/moving_variance list every feature)"
        )
    if batch.size > VALUES_SHOWN:
        notes.append(f"batch and outputs: the first {VALUES_SHOWN} of {batch.size} values")
    return BatchnormReport(
        momentum=result.momentum,
        epsilon=result.epsilon,
        steps=result.steps,
        features=result.features,
        batch=batch.reshape(-1)[:VALUES_SHOWN].tolist(),
        history=result.rows(),
        moving_mean=result.moving_mean.tolist(),
        moving_variance=result.moving_variance.tolist(),
        training_output=result.training.reshape(-1)[:VALUES_SHOWN].tolist(),
        inference_output=result.inference.reshape(-1)[:VALUES_SHOWN].tolist(),
        notes=notes,
        keras=result.keras,
        fused=result.fused,
        bessel=result.bessel,
    )


def _batchnorm_rule_note(keras: int, fused: bool, bessel: float, rank: int) -> str:
    """Which update rule applied, in one line."""
    rank = max(rank, 2)
    if keras == 3:
        return "rule: Keras 3 (no fused kernel): moving_variance takes the biased batch variance"
    if fused:
        return (
            f"rule: Keras 2 fused kernel (rank-{rank} input): moving_variance takes the batch variance "
            f"times n/(n-1) = {bessel:.6g} (Bessel); outputs use the biased variance"
        )
    return f"rule: Keras 2 unfused (rank-{rank} input): moving_variance takes the biased batch variance, as Keras 3"


# --- models -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_source(
    model: str | ModelFile | None,
    spec_path: Path | None,
    seed: int | None,
    timeout: float | None = None,
    config_path: Path | None = None,
    custom_objects: Sequence[str] = (),
    backend: str = "tensorflow",
) -> Iterator[tuple[ModelFile, Built | None, _LazyScratch]]:
    """The model to inspect: a file read as it is, or a spec or function built with Keras and saved.

    Yields (the opened model, how it was built or None, a scratch folder made on first `.path()` and
    removed afterwards). An already opened model (a live one, `initcli.readers.live`) is yielded as it
    is, and closed after. A spec with `backend` jax or torch is predicted without Keras
    (`initcli.analysis.predicted`).
    """
    from initcli.readers.records import ModelFile

    if isinstance(model, ModelFile):
        with _LazyScratch() as scratch:
            try:
                yield model, None, scratch
            finally:
                model.close()
        return
    if (model is None) == (spec_path is None):
        raise BadInputError("Give a MODEL (file or module:function) or --spec FILE, exactly one.")
    from initcli.readers import open_model

    with _LazyScratch() as scratch:
        built = None
        if spec_path is not None and backend != "tensorflow":
            from initcli.analysis.predicted import open_predicted

            saved = open_predicted(spec_path, seed, backend)
            built = Built(kind="spec", source=str(spec_path), seed=seed)
        elif spec_path is not None or _is_function_reference(str(model)):
            from initcli.keras import building

            if spec_path is not None:
                keras_model = building.build_from_spec(spec_path, seed)
                built = Built(kind="spec", source=str(spec_path), seed=seed)
            else:
                keras_model = building.build_from_function(str(model), seed)
                built = Built(kind="function", source=str(model), seed=seed)
            saved = open_model(building.save_temporary(keras_model, scratch.path()), timeout=timeout)
            saved.source = built.source
        else:
            saved = open_model(
                Path(str(model)), timeout=timeout, config=_model_json(config_path), background_checks=True
            )
        try:
            if custom_objects:
                from initcli.analysis.custom import use_custom_objects

                use_custom_objects(saved, Path(str(model)), custom_objects)
            yield saved, built, scratch
        finally:
            saved.close()


class _LazyScratch:
    """The scratch folder of `open_source`, made (by `keras.building.scratch_directory`) only when asked for.

    Reading a saved file needs none: it then imports neither the building code nor tempfile and shutil.
    """

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._path: Path | None = None

    def path(self) -> Path:
        if self._path is None:
            from initcli.keras.building import scratch_directory

            self._path = self._stack.enter_context(scratch_directory())
        return self._path

    def __enter__(self) -> _LazyScratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _model_json(config_path: Path | None) -> Mapping[str, Any] | None:
    """The `--config` model.to_json() file, if one was given."""
    if config_path is None:
        return None
    from initcli.readers.open import read_model_json

    return read_model_json(config_path)


def _is_function_reference(text: str) -> bool:
    if ":" not in text:  # not `module:function`: a file, read without importing the building code
        return False
    from initcli.keras.building import is_function_reference

    return is_function_reference(text)


def _select(saved: ModelFile, patterns: Sequence[str]) -> list[WeightRecord]:
    from initcli.analysis.inspection import matches

    records = list(saved.records())
    selected = [record for record in records if matches(record, patterns)]
    if patterns and records and not selected:
        examples = ", ".join(record.path for record in records[:3])
        raise BadInputError(
            f"--layer {' '.join(repr(p) for p in patterns)} matches no weight of {saved.source} "
            f"(its {plural(len(records), 'weight')} {counted(len(records), 'is')} named like {examples})"
        )
    return selected


def _measure(
    records: Sequence[WeightRecord],
    alpha: float,
    progress: ProgressSink | None,
    source: str = "",
    unselected: Sequence[WeightRecord] = (),
    remote: Callable[..., list[WeightRow]] | None = None,
) -> list[WeightRow]:
    from initcli.analysis.inspection import inspect_records, judge_rows, training_evidence, weight_bytes

    if progress is not None:
        progress.begin(source, len(records), sum(weight_bytes(r.shape, r.dtype) for r in records))
    rows = []
    if remote is not None:  # --scheduler: the same rows, measured on Dask workers (analysis/remote.py)
        rows = remote(records, alpha / max(1, len(records)), progress.advance if progress is not None else None)
    else:
        for row in inspect_records(records, (), alpha / max(1, len(records))):
            rows.append(row)
            if progress is not None:
                progress.advance(row)
    # Trained or fresh is the whole model's state: the weights --layer left out count as evidence.
    return judge_rows(rows, alpha, training_evidence(unselected), training_evidence(unselected, inferred=True))


def _measured(
    saved: ModelFile,
    patterns: Sequence[str],
    alpha: float,
    progress: ProgressSink | None,
    remote: Callable[..., list[WeightRow]] | None = None,
) -> list[WeightRow]:
    """The selected weights measured, once the file's background checks (`ModelFile.finish`) passed."""
    try:
        selected = _select(saved, patterns)
        unselected = []
        if patterns:
            chosen = {record.path for record in selected}
            unselected = [record for record in saved.records() if record.path not in chosen]
        rows = _measure(selected, alpha, progress, saved.source, unselected, remote)
    except InitcliError:
        saved.finish()  # a failed integrity check explains a failed read best
        raise
    saved.finish()
    return rows


def _note_findings(rows: Sequence[WeightRow], findings: Iterable[Finding]) -> list[Finding]:
    by_path = {row.record.path: row for row in rows}
    found = list(findings)
    for finding in found:
        row = by_path.get(finding.path)
        if row is not None:
            row.notes.append(f"{finding.check}: {finding.message}")
    return found


def inspect_model(
    model: str | ModelFile | None = None,
    *,
    spec_path: Path | None = None,
    seed: int | None = None,
    fresh: bool = False,
    patterns: Sequence[str] = (),
    alpha: float = DEFAULT_ALPHA,
    timeout: float | None = None,
    progress: ProgressSink | None = None,
    config_path: Path | None = None,
    custom_objects: Sequence[str] = (),
    scheduler: str | Cluster | None = None,
    backend: str = "tensorflow",
) -> InspectReport:
    """Every weight of a model beside its initializer's theory, with cheap check findings as notes.

    `scheduler`: a Dask scheduler's address (`tcp://host:8786`, or `local` for a LocalCluster), or a
    connected `initcli.parallel.dask.Cluster`: the weights are measured on its workers, which open the
    saved file by the same path (`initcli.analysis.remote`); the report is the one this process gives.

    `backend` jax or torch (with a spec or `fresh`): the weights Keras 3 draws on that backend,
    predicted without any framework (see `initcli.analysis.predicted`).
    """
    from initcli.readers.records import ModelFile

    # Checked before anything is built: a usage error needs no TensorFlow.
    if isinstance(model, ModelFile) and (spec_path is not None or config_path is not None or custom_objects):
        raise BadInputError("a live model has its own config: it takes no spec, config or custom objects")
    if fresh and (spec_path is not None or (isinstance(model, str) and _is_function_reference(model))):
        raise BadInputError("--fresh compares a saved model with a rebuilt one; a spec or function is already fresh.")
    if config_path is not None and (spec_path is not None or fresh):
        raise BadInputError("--config names the weights of a weights-only MODEL file; it takes no --spec or --fresh.")
    if custom_objects and (spec_path is not None or config_path is not None or _is_function_reference(str(model))):
        raise BadInputError("--custom-objects rebuilds a saved .keras MODEL; it takes no --spec, --config or function.")
    if scheduler is not None and (
        isinstance(model, ModelFile) or spec_path is not None or model is None or _is_function_reference(str(model))
    ):
        raise BadInputError("--scheduler measures a saved MODEL file on Dask workers; it takes no --spec or function.")
    if scheduler is not None and custom_objects:
        raise BadInputError("--scheduler does not take --custom-objects (not yet: the workers read the file as it is).")
    if backend != "tensorflow" and (custom_objects or not (spec_path is not None or fresh)):
        raise BadInputError(
            f"--backend {backend} predicts a --spec's or a --fresh rebuild's weights; a saved file is read as it is."
        )
    with open_source(model, spec_path, seed, timeout, config_path, custom_objects, backend) as (
        saved,
        built,
        scratch,
    ):
        with dask_cluster(scheduler) as cluster:
            remote = None
            if cluster is not None:
                from initcli.analysis.remote import measure_on_cluster

                config = _model_json(config_path)
                remote = functools.partial(measure_on_cluster, cluster, saved, str(model), config)
            rows = _measured(saved, patterns, alpha, progress, remote)
        from initcli.analysis.checks import NOTE_CHECKS, run_checks

        findings = _note_findings(rows, run_checks(rows, NOTE_CHECKS))
        from initcli.analysis.custom import custom_layer_notes

        notes = [*saved.notes, *custom_layer_notes([row.record for row in rows])]
        if built is not None:
            notes.append(
                f"Built freshly from {built.kind} {built.source}; "
                + (
                    f"seed {seed} (keras.utils.set_random_seed): reproducible."
                    if seed is not None
                    else "no --seed: the values are not reproducible."
                )
            )
        from initcli.analysis.diff import drift_rows

        if fresh:
            fresh_rows, drift, era_notes = _fresh_rows(
                saved, rows, seed, patterns, alpha, scratch, timeout, custom_objects, backend
            )
            notes.append(
                "fresh: the model rebuilt from its config and re-initialized"
                + (f" with seed {seed}" if seed is not None else " (no --seed: not reproducible)")
                + (
                    f", as Keras 3 on {backend.split(':')[0]} would, predicted without Keras"
                    if backend != "tensorflow"
                    else ""
                )
            )
            notes.extend(era_notes)
            from initcli.analysis.diff import drift_note

            line = drift_note(drift)
            if line is not None:
                notes.append(line)
        else:
            fresh_rows, drift = None, drift_rows(rows)
        return InspectReport(
            source=saved.source,
            format=saved.format,
            keras_version=saved.keras_version,
            weights=rows,
            notes=notes,
            findings=findings,
            built=built,
            fresh=fresh_rows,
            drift=drift,
        )


@contextlib.contextmanager
def dask_cluster(scheduler: str | Cluster | None) -> Iterator[Cluster | None]:
    """No cluster, the one given, or a connection to the scheduler at the address given (closed after)."""
    if scheduler is None or not isinstance(scheduler, str):
        yield scheduler
        return
    from initcli.parallel.dask import connected
    from initcli.safety.budget import active

    with connected(scheduler, remaining=active().remaining()) as cluster:
        yield cluster


def _fresh_rows(
    saved: ModelFile,
    rows: Sequence[WeightRow],
    seed: int | None,
    patterns: Sequence[str],
    alpha: float,
    scratch: _LazyScratch,
    timeout: float | None,
    custom_objects: Sequence[str] = (),
    backend: str = "tensorflow",
) -> tuple[dict[str, WeightRow], dict[str, Drift], list[str]]:
    """The rebuilt model's rows and each saved weight's drift from them, by the saved weight's path, and
    notes on the inits re-drawn as the file's Keras 2 drew them (`initcli.analysis.fresh`)."""
    from initcli.analysis.diff import drift_rows, pair_fresh
    from initcli.analysis.fresh import era_redrawn, rebuild_source
    from initcli.analysis.inspection import matches
    from initcli.keras import building
    from initcli.readers import open_model

    if backend != "tensorflow":  # predicted without Keras (initcli.analysis.predicted)
        from initcli.analysis.predicted import fresh_records

        predicted = {r.path: (r, "path") for r in fresh_records(saved, seed, backend) if matches(r, patterns)}
        paths = [row.record.path for row in rows if row.record.path in predicted]
        measured = _measure([predicted[path][0] for path in paths], alpha, None)
        return dict(zip(paths, measured)), drift_rows(rows, predicted, seed), []

    config, keras_version = rebuild_source(saved)  # its Keras 1/2 or SavedModel config too
    if custom_objects:
        from initcli.analysis.custom import rebuild_fresh_with

        rebuilt = rebuild_fresh_with(config, seed, custom_objects, scratch.path(), timeout)
    else:
        fresh_model = building.rebuild_fresh(config, seed, keras_version)
        rebuilt = open_model(building.save_temporary(fresh_model, scratch.path()), timeout=timeout)
    try:
        records = [record for record in rebuilt.records() if matches(record, patterns)]
        if custom_objects:
            # Rebuilt, Keras may auto-name nested custom layers differently: paired by weights-file location.
            by_location = {record.location: record for record in records if record.location}
            pairs = {
                row.record.path: (by_location[row.record.location], "location")
                for row in rows
                if row.record.location in by_location
            }
        else:
            # By path, then layer/weight name, then position: a file of another Keras may scope paths otherwise.
            pairs = pair_fresh([row.record for row in rows], records)
        pairs, redrawn, dropped = era_redrawn(rows, pairs, keras_version, seed)
        paths = list(pairs)
        measured = _measure([pairs[path][0] for path in paths], alpha, None)
        era_notes = []
        if redrawn:
            era_notes.append(
                f"fresh: {redrawn} init(s) re-drawn as Keras {keras_version} drew them (tf_keras, which rebuilt "
                "the model, draws them otherwise)"
            )
        if dropped:
            era_notes.append(f"fresh: {dropped} weight(s) not compared: Keras {keras_version}'s draw has no equivalent")
        return dict(zip(paths, measured)), drift_rows(rows, pairs, seed, keras_version=keras_version), era_notes
    finally:
        rebuilt.close()


@dataclass(frozen=True, kw_only=True)
class CheckPlan:
    """The checks a `check` run makes, validated once for all its models."""

    selected: list[CheckName]
    named: list[CheckName]
    rules: list[Rule]


def plan_checks(only: Sequence[str] = (), skip: Sequence[str] = (), rules_path: Path | None = None) -> CheckPlan:
    """The checks `--only`/`--skip`/`--rules` select.

    Raises:
        BadInputError: an unknown check, nothing left to run, or `--only rules` without rules.
    """
    from initcli.analysis.checks import CHECKS, DEFAULT_CHECKS, load_rules

    unknown = [name for name in (*only, *skip) if name not in CHECKS]
    if unknown:
        raise BadInputError(f"Unknown check(s) {', '.join(unknown)}; the checks are {', '.join(CHECKS)}")
    named: list[CheckName] = [name for name in CHECKS if name in only]
    selected: list[CheckName] = [
        name for name in (CHECKS if only else DEFAULT_CHECKS) if (not only or name in only) and name not in skip
    ]
    if not selected:
        raise BadInputError("No checks selected: --skip removed every check --only named.")
    rules: list[Rule] = []
    if rules_path is not None:
        rules = load_rules(rules_path)
    elif "rules" in selected:
        if "rules" in only:
            raise BadInputError("--only rules needs --rules FILE: without rules the check tests nothing.")
        selected.remove("rules")
    if not selected:
        raise BadInputError("No checks selected.")
    return CheckPlan(selected=selected, named=named, rules=rules)


def check_model(
    model: Path | ModelFile,
    *,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    alpha: float = DEFAULT_ALPHA,
    strict: bool = False,
    rules_path: Path | None = None,
    patterns: Sequence[str] = (),
    allow_unchecked: bool = False,
    timeout: float | None = None,
    config_path: Path | None = None,
    plan: CheckPlan | None = None,
    progress: ProgressSink | None = None,
    custom_objects: Sequence[str] = (),
    require_fresh: bool = False,
    many: bool = False,
    scheduler: str | Cluster | None = None,
) -> CheckReport:
    """Run the checks; the report passes only when they found no error and tested something.

    `scheduler`: the weights are measured on Dask workers, as `inspect_model`'s (the checks run here
    on the rows, which equal this process's).

    A trained model's moved weights are `trained`, which no check counts as an error, unless
    `require_fresh` (`check --require fresh`): then a trained model is one error.
    `many`: one of several models in a run (a rule matching nothing here is then a warning unless it
    is `required`); rules with a `model` glob apply only to the models it takes in.
    """
    from initcli.analysis.checks import (
        Finding,
        coverage,
        coverage_findings,
        propagation_findings,
        rules_for,
        run_checks,
    )
    from initcli.readers.records import ModelFile

    plan = plan or plan_checks(only, skip, rules_path)
    selected = list(plan.selected)
    model_rules = rules_for(plan.rules, model.source if isinstance(model, ModelFile) else str(model))
    from initcli.readers import open_model

    if scheduler is not None and (isinstance(model, ModelFile) or _is_function_reference(str(model))):
        raise BadInputError("--scheduler measures a saved MODEL file on Dask workers; a live model is in this process.")
    if scheduler is not None and custom_objects:
        raise BadInputError("--scheduler does not take --custom-objects (not yet: the workers read the file as it is).")
    config = None
    if isinstance(model, ModelFile):
        saved = model  # a live model, opened from memory (`initcli.readers.live`)
    else:
        config = _model_json(config_path)
        saved = open_model(model, timeout=timeout, config=config, background_checks=True)
    try:
        if custom_objects and not isinstance(model, ModelFile):
            from initcli.analysis.custom import use_custom_objects

            use_custom_objects(saved, model, custom_objects)
        with dask_cluster(scheduler) as cluster:
            remote = None
            if cluster is not None:
                from initcli.analysis.remote import measure_on_cluster

                remote = functools.partial(measure_on_cluster, cluster, saved, str(model), config)
            rows = _measured(saved, patterns, alpha, progress, remote)
        findings = run_checks(rows, selected, strict, model_rules, many=many)
        covered = coverage(rows, selected, model_rules)
        if "propagation" in selected:
            predicted, predicted_coverage = propagation_findings(saved, rows)
            findings += predicted
            covered.append(predicted_coverage)
    finally:
        saved.close()
    findings += coverage_findings(covered, plan.named, allow_unchecked)
    from initcli.analysis.inspection import model_state

    state = model_state(rows)
    if require_fresh and state["state"] == "trained":
        findings.append(
            Finding(check="distribution", severity="error", path="(model)", message=f"{state['line']}; --require fresh")
        )
    return CheckReport(
        source=saved.source,
        checks=selected,
        alpha=alpha,
        strict=strict,
        weights=len(rows),
        findings=findings,
        coverage=covered,
        state=state,
    )


Result = TypeVar("Result")


def each_model(models: Sequence[str], run: Callable[[str], Result]) -> list[Result | FileError]:
    """`run` on every model in turn; a model that fails is recorded (one line, its exit code) and the
    run goes on, so one unreadable file does not hide the others' results."""
    from initcli.safety.sanitize import one_line

    results: list[Result | FileError] = []
    for model in models:
        try:
            results.append(run(model))
        except InitcliError as error:
            results.append(FileError(source=model, message=one_line(str(error)), exit_code=int(error.exit_code)))
        except (OSError, MemoryError) as error:  # the system refused a read of this file
            results.append(
                FileError(source=model, message=_refused(model, error), exit_code=int(ExitCode.RUNTIME_ERROR))
            )
        except Exception as error:  # noqa: BLE001 - a bug of ours, met on this file: said as one, the others still run
            if out_of_memory(error):  # a SystemError that a MemoryError caused
                message = one_line(f"{model}: not enough memory to read it")
                results.append(FileError(source=model, message=message, exit_code=int(ExitCode.RUNTIME_ERROR)))
                continue
            if debugging():
                raise
            message = one_line(f"{model}: {internal_error_message(error)}")
            results.append(FileError(source=model, message=message, exit_code=int(ExitCode.RUNTIME_ERROR)))
    return results


def _refused(model: str, error: OSError | MemoryError) -> str:
    """One line, said of the file, for a read the system refused that no reader turned into an InitcliError."""
    from initcli.safety.sanitize import one_line

    if isinstance(error, MemoryError):
        return one_line(f"{model}: not enough memory to read it")
    if error.strerror:
        return one_line(f"{model}: cannot read ({error.strerror})")
    return one_line(f"{model}: cannot read ({type(error).__name__}: {error})")


def diff_models(
    path_a: str | ModelFile,
    path_b: str | ModelFile,
    *,
    threshold: float | None = None,
    timeout: float | None = None,
    scheduler: str | Cluster | None = None,
) -> DiffReport:
    """`initcli diff`: compare every weight of two model files (see `initcli.analysis.diff`).

    Either side may be a model already opened (a live one, `initcli.readers.live`): it is read as it
    is, and closed after. `scheduler`: the pairs are compared on Dask workers, which open both files
    by the same paths (`initcli.analysis.remote.diff_on_cluster`); the report is this process's.
    """
    from initcli.analysis.diff import diff_files
    from initcli.analysis.diff import diff_models as compute
    from initcli.readers.records import ModelFile

    if scheduler is not None and (isinstance(path_a, ModelFile) or isinstance(path_b, ModelFile)):
        raise BadInputError("--scheduler compares saved MODEL files on Dask workers; a live model is in this process.")
    if scheduler is None and not isinstance(path_a, ModelFile) and not isinstance(path_b, ModelFile):
        return compute(path_a, path_b, threshold=threshold, timeout=timeout)
    from initcli.readers import open_model

    with contextlib.ExitStack() as stack:
        opened = []
        for model in (path_a, path_b):
            saved = model if isinstance(model, ModelFile) else open_model(model, timeout=timeout)
            stack.callback(saved.close)
            opened.append(saved)
        cluster = stack.enter_context(dask_cluster(scheduler))
        compare_pairs = None
        if cluster is not None:
            from initcli.analysis.remote import diff_on_cluster

            sides = ((opened[0], str(path_a)), (opened[1], str(path_b)))
            compare_pairs = functools.partial(diff_on_cluster, cluster, sides)
        report = diff_files(opened[0], opened[1], threshold, compare_pairs=compare_pairs)
        for saved in opened:
            saved.finish()
        return report


def propagate_model(
    model: str | None,
    spec_path: Path | None,
    options: PropagateOptions,
    *,
    static: bool = False,
    custom_objects: tuple[str, ...] = (),
) -> PropagateReport:
    """`initcli propagate`: the signal's scale through a saved model, a spec or a `module:function`.

    Measured (one TensorFlow pass, the model loaded with Keras) unless `static` (the mean-field
    prediction from the file alone, no TensorFlow for a saved file).

    Raises:
        BadInputError: neither or both of a model and a spec.
        InitcliError: an unreadable file, a `.weights.h5` file (no model to run), or a model Keras cannot load.
    """
    if (model is None) == (spec_path is None):
        raise BadInputError("Give a MODEL (file or module:function) or --spec FILE, exactly one.")
    from initcli.keras.building import is_function_reference, scratch_directory
    from initcli.propagate import run
    from initcli.readers import open_model

    with scratch_directory() as scratch:
        if spec_path is not None or is_function_reference(str(model)):
            from initcli.keras import building

            if spec_path is not None:
                built, source, kind = building.build_from_spec(spec_path, options.seed), str(spec_path), "spec"
            else:
                built, source, kind = building.build_from_function(str(model), options.seed), str(model), "function"
            if not static:
                return run.measured_report(built, source, kind, options)
            saved = open_model(building.save_temporary(built, scratch))
            saved.source, saved.format = source, kind
        else:
            saved = open_model(Path(str(model)))
        try:
            if saved.format == "weights.h5":
                raise InitcliError(f"{saved.source}: a .weights.h5 file has no model to run; use the .keras file")
            if static:
                return run.static_report(saved, options)
        finally:
            saved.close()
        loaded = _load_keras_model(Path(str(model)), saved.config, custom_objects)
        return run.measured_report(loaded, saved.source, saved.format, options)


def propagate_live(
    opened: ModelFile, keras_model: Any, options: PropagateOptions, *, static: bool = False
) -> PropagateReport:
    """`propagate_model` for a live Keras model: `opened` is it read from memory (`initcli.readers.live`).

    The measured pass runs on a copy of the model (`initcli.keras.live.copy_model`): redrawing the
    kernels (`inits`) and a training-mode pass (BatchNormalization's moving statistics) leave the
    user's model as it was.
    """
    from initcli.keras.live import copy_model
    from initcli.propagate import run

    try:
        if static:
            return run.static_report(opened, options)
    finally:
        opened.close()
    return run.measured_report(copy_model(keras_model, opened.source), opened.source, opened.format, options)


def _load_keras_model(path: Path, config: Any = None, custom_objects: tuple[str, ...] = ()) -> Any:
    """The saved model loaded by Keras for a measured pass, with the user's layer code when given."""
    import warnings

    from initcli.keras.bridge import import_keras

    objects: dict[str, Any] = {}
    if custom_objects:
        # The user's own layer code, imported because the command line names it (docs/custom-layers.md).
        from initcli.keras import custom_objects as user_code

        objects = user_code.load_custom_objects(custom_objects)
        user_code.refuse_unprovided(config, objects)
    keras = import_keras()
    try:
        with warnings.catch_warnings(), keras.saving.custom_object_scope(objects):
            # Keras warns about custom layers without a build(); initcli's stderr is for its own messages.
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, custom_objects=objects or None, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for models it cannot rebuild
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        hint = "" if custom_objects else " (a model with custom layers needs their code: --custom-objects MODULE)"
        raise InitcliError(f"{path}: Keras cannot load this model: {first}{hint}") from None
