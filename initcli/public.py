"""initcli's public Python API: what the command line does, as functions that return reports.

    >>> import initcli
    >>> report = initcli.sample("glorot_uniform", (784, 256), seed=0)
    >>> report.assessment.verdict
    'consistent'

Each function returns a frozen report (`InspectReport`, `SampleReport`, `CheckReport`,
`ExplainReport`) with `to_dict()` (the command's `--format json` object), `to_pandas()` (pandas is
optional: `pip install 'initcli[pandas]'`), and the terminal's table for Rich (`__rich__`) and
Jupyter (`_repr_html_`).

A model `source` is a path to a saved model (`.keras`, legacy `.h5`, `.weights.h5`, a SavedModel
directory, a TF checkpoint) or a live Keras model (Keras 3 or tf_keras); `inspect` and `check` also
take a list of them (the command with several MODELs). A live model is read from memory
(`initcli.keras.live`): its config by the public `serialize_keras_object`, its weights tree by
Keras's own saver walk checked against `model.weights`, each variable's values read when the
report measures it; nothing is written (by `inspect`, `check`, `diff` and a static `propagate`). The
report equals the one for the file `model.save("x.keras")` writes, except for its `source`, which
names the model (`<keras model 'name'>`). A model whose Keras version initcli cannot walk so is
saved to a private temporary directory instead, read back as a file, and the directory removed.

Each command of the command line is one of these functions and a renderer: the keywords are its
options, and `report.to_dict()` is its `--format json` (tests/test_public_api.py).

Errors are the exceptions the command line turns into exit codes, all subclasses of `InitcliError`:
`BadInputError` (arguments no run could succeed with; exit 2), `MissingDependencyError` (Keras or
TensorFlow needed but absent; exit 1), and `InitcliError` itself (an unreadable file, a model that
cannot be built; exit 1). A failed `check` is not an exception: read `CheckReport.passed`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect as pyinspect
import itertools
import json
import os
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, Union, cast, overload, runtime_checkable

from initcli.errors import BadInputError, InitcliError, MissingDependencyError
from initcli.render import views as _report_views  # noqa: F401  (registers the reports' views)
from initcli.types import DEFAULT_ALPHA, CheckName, Engine, FloatDType

if TYPE_CHECKING:
    from initcli.analysis.diff import DiffReport
    from initcli.analysis.inspection import ProgressSink
    from initcli.initializers import InitializerSpec
    from initcli.parallel.dask import Cluster
    from initcli.propagate.report import PropagateReport
    from initcli.readers.records import ModelFile
    from initcli.reports import (
        BatchnormReport,
        CheckManyReport,
        CheckReport,
        DefaultsReport,
        ExplainReport,
        InspectManyReport,
        InspectReport,
        ListReport,
        SampleReport,
    )

__all__ = [
    "BadInputError",
    "InitcliError",
    "KerasModel",
    "MissingDependencyError",
    "Source",
    "batchnorm",
    "check",
    "defaults",
    "diff",
    "explain",
    "inspect",
    "list_initializers",
    "propagate",
    "sample",
]


@runtime_checkable
class KerasModel(Protocol):
    """What initcli needs of a live Keras model (Keras 3 or tf_keras): its config and `save()`."""

    def get_config(self) -> Any: ...

    def save(self, filepath: Any, *args: Any, **kwargs: Any) -> Any: ...


Source = Union[str, "os.PathLike[str]", KerasModel]
"""A saved model's path, or a live Keras model."""

Initializer = Union[str, Mapping[str, Any], "InitializerSpec"]
"""An initializer: a name (`"he_normal"`, `"GlorotUniform"`, `"xavier_uniform"`), a Keras config
(`{"class_name": "RandomNormal", "config": {"stddev": 0.1}}`) or a resolved `InitializerSpec`."""


def is_keras_model(source: object) -> bool:
    """Is `source` a live Keras model (anything with `get_config`, `save` and `weights`), not a path?"""
    if isinstance(source, (str, os.PathLike)):
        return False
    return isinstance(source, KerasModel) and hasattr(source, "weights")


def model_label(model: Any) -> str:
    """How a report names a live model: `<keras model 'name'>`."""
    return f"<keras model {str(getattr(model, 'name', '') or type(model).__name__)!r}>"


@contextlib.contextmanager
def opened_model(source: Source) -> Iterator[tuple[str | ModelFile, str | None]]:
    """What to read for `source`: a path, or a live model opened from memory; and the live model's label.

    A live model's config and weights are taken from memory (`initcli.readers.live`): the records
    are those of the file `model.save("x.keras")` writes. A model whose Keras initcli cannot walk
    that way is saved to a private temporary file instead (`saved_model`).
    """
    if is_keras_model(source):
        from initcli.keras.live import LiveModelUnsupported
        from initcli.readers.live import open_live

        model = cast(KerasModel, source)
        name = model_label(model)
        if not getattr(model, "built", True):
            raise InitcliError(f"{name}: the model is not built (no input shape), so its weights do not exist yet")
        try:
            opened = open_live(model, name)
        except LiveModelUnsupported:
            pass
        except InitcliError:
            raise
        except Exception as error:  # noqa: BLE001 - Keras raises many types for models it cannot serialize
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise InitcliError(f"{name}: Keras cannot serialize this model: {first}") from None
        else:
            yield opened, name
            return
    with saved_model(source) as (path, label):
        yield path, label


@contextlib.contextmanager
def saved_model(source: Source) -> Iterator[tuple[str, str | None]]:
    """The path to read for `source`, and the label of a live model (None for a path).

    A live model is saved to `model.keras` in a private temporary directory removed afterwards.

    Raises:
        InitcliError: a model that has no weights yet or that Keras cannot save.
    """
    if not is_keras_model(source):
        if not isinstance(source, (str, os.PathLike)):
            raise BadInputError(f"source must be a path or a Keras model; received a {type(source).__name__}")
        yield os.fspath(source), None
        return
    from initcli.keras.building import scratch_directory

    model = cast(KerasModel, source)
    label = model_label(model)
    if not getattr(model, "built", True):
        raise InitcliError(f"{label}: the model is not built (no input shape), so its weights do not exist yet")
    with scratch_directory() as scratch:
        path = scratch / "model.keras"
        try:
            model.save(str(path))
        except Exception as error:  # noqa: BLE001 - Keras raises many types for models it cannot save
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise InitcliError(f"{label}: Keras cannot save this model: {first}") from None
        yield str(path), label


def _patterns(layer: str | Sequence[str] | None) -> tuple[str, ...]:
    if layer is None:
        return ()
    if isinstance(layer, str):
        return (layer,)
    return tuple(layer)


CustomObjects = Union[str, "types.ModuleType", Sequence[Any], Mapping[str, Any]]
"""The user's own Keras classes, as `--custom-objects` takes them or as Keras's `load_model` does:
`MODULE[:NAME]` references (`"my_layers"`, `"path/layers.py:Gate"`), imported modules, classes, a
list of these, or a dict of classes by name (`{"Gate": Gate}`). A class is matched to the model's
config by its class name and its Keras registered name."""

ModelSpec = Union[str, "os.PathLike[str]", Mapping[str, Any]]
"""A model spec: the path of a YAML/JSON spec (or a Keras model JSON), or the spec itself as a dict."""

_GIVEN = itertools.count(1)


@contextlib.contextmanager
def _custom_references(custom_objects: CustomObjects) -> Iterator[tuple[tuple[str, ...], dict[str, str]]]:
    """`custom_objects` as the `MODULE[:NAME]` references the core imports, and how a note shows each.

    A string is a reference already, and so is a module imported under its name (importing it again
    gives the same module). Other objects (a dict of classes, a class, a module not in `sys.modules`)
    go into a private module registered in `sys.modules` for the call and removed after it.
    """
    items: list[Any]
    if isinstance(custom_objects, (str, types.ModuleType, Mapping)) or pyinspect.isclass(custom_objects):
        items = [custom_objects]
    else:
        items = list(custom_objects)
    references: list[str] = []
    shown: dict[str, str] = {}
    given: dict[str, Any] = {}
    name = f"initcli_given_objects_{next(_GIVEN)}"
    for item in items:
        if isinstance(item, str):
            references.append(item)
            continue
        if isinstance(item, types.ModuleType) and sys.modules.get(item.__name__) is item:
            references.append(item.__name__)
            continue
        if isinstance(item, types.ModuleType):
            objects = {
                key: value
                for key, value in vars(item).items()
                if pyinspect.isclass(value) and value.__module__ == item.__name__
            }
        elif pyinspect.isclass(item):
            objects = {item.__name__: item}
        elif isinstance(item, Mapping):
            objects = {str(key): value for key, value in item.items()}
        else:
            raise BadInputError(
                "custom_objects are MODULE[:NAME] strings, modules, classes or a dict of classes; "
                f"received a {type(item).__name__}"
            )
        for key, value in objects.items():
            attribute = key if key.isidentifier() else f"object_{len(given)}"
            while attribute in given:
                attribute += "_"
            given[attribute] = value
            references.append(f"{name}:{attribute}")
            shown[f"{name}:{attribute}"] = str(getattr(value, "__name__", key))
    if not given:
        yield tuple(references), shown
        return
    module = types.ModuleType(name, "The custom objects given to one initcli call, removed after it.")
    vars(module).update(given)
    sys.modules[name] = module
    try:
        yield tuple(references), shown
    finally:
        sys.modules.pop(name, None)


def _spec_path(spec: ModelSpec, stack: contextlib.ExitStack) -> tuple[Path, str | None]:
    """The spec file to build, and the label of a spec given as a dict (written to a private file)."""
    if isinstance(spec, (str, os.PathLike)):
        return Path(spec), None
    if not isinstance(spec, Mapping):
        raise BadInputError(f"spec must be a path or a dict; received a {type(spec).__name__}")
    from initcli.keras.building import scratch_directory

    path = stack.enter_context(scratch_directory()) / "spec.json"
    try:
        path.write_text(json.dumps(dict(spec)), encoding="utf-8")
    except (TypeError, ValueError) as error:
        raise BadInputError(f"spec must be a dict of plain values: {error}") from None
    return path, "<spec>"


def _rules_path(
    rules: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None, stack: contextlib.ExitStack
) -> Path | None:
    """The rule file to read: the one named, or the rules given as data written to a private file."""
    if rules is None:
        return None
    if isinstance(rules, (str, os.PathLike)):
        return Path(rules)
    from initcli.keras.building import scratch_directory

    path = stack.enter_context(scratch_directory()) / "rules.json"
    try:
        path.write_text(json.dumps({"rules": [dict(rule) for rule in rules]}), encoding="utf-8")
    except (TypeError, ValueError) as error:
        raise BadInputError(f"rules must be mappings of plain values: {error}") from None
    return path


_Report = TypeVar("_Report", "InspectReport", "CheckReport")


def _relabeled(report: _Report, label: str | None, replacements: Mapping[str, str]) -> _Report:
    """A report with `label` as its source (a live model's or a dict spec's) and private paths and
    references in its notes shown as the user gave them."""
    changes: dict[str, Any] = {}
    if label is not None:
        changes["source"] = label
        built = getattr(report, "built", None)
        if built is not None:
            changes["built"] = dataclasses.replace(built, source=label)
    notes = getattr(report, "notes", None)
    if notes is not None and replacements:
        shown = []
        for note in notes:
            for private, public in replacements.items():
                note = note.replace(private, public)
            shown.append(note)
        changes["notes"] = shown
    return dataclasses.replace(report, **changes) if changes else report


def _checked_seed(seed: Any) -> int | None:
    """None or an integer (not a bool, not a float that would be truncated), as `--seed` takes."""
    if seed is None or (isinstance(seed, int) and not isinstance(seed, bool)):
        return seed
    raise BadInputError(f"seed must be an integer or None; received {seed!r}"[:200])


def _name(source: Source) -> str:
    """How a run over several models names one: its path, or a live model's label."""
    return model_label(source) if is_keras_model(source) else os.fspath(cast("os.PathLike[str]", source))


@overload
def inspect(
    source: Source | None = None,
    *,
    spec: ModelSpec | None = None,
    layer: str | Sequence[str] | None = None,
    fresh: bool = False,
    seed: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    config: str | os.PathLike[str] | None = None,
    custom_objects: CustomObjects = (),
    timeout: float | None = None,
    progress: ProgressSink | None = None,
    scheduler: str | Cluster | None = None,
    backend: str = "tensorflow",
) -> InspectReport: ...


@overload
def inspect(
    source: list[Source] | tuple[Source, ...],
    *,
    spec: None = None,
    layer: str | Sequence[str] | None = None,
    fresh: bool = False,
    seed: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    config: None = None,
    custom_objects: CustomObjects = (),
    timeout: float | None = None,
    progress: ProgressSink | None = None,
    scheduler: str | Cluster | None = None,
    backend: str = "tensorflow",
) -> InspectManyReport: ...


def inspect(
    source: Source | list[Source] | tuple[Source, ...] | None = None,
    *,
    spec: ModelSpec | None = None,
    layer: str | Sequence[str] | None = None,
    fresh: bool = False,
    seed: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    config: str | os.PathLike[str] | None = None,
    custom_objects: CustomObjects = (),
    timeout: float | None = None,
    progress: ProgressSink | None = None,
    scheduler: str | Cluster | None = None,
    backend: str = "tensorflow",
) -> InspectReport | InspectManyReport:
    """Every weight of a model beside its initializer's theory: fans, initializer, default, verdict.

    `initcli inspect` is this function and a renderer: each keyword is the option of the same name
    (`layer` is `--layer`, `custom_objects` is `--custom-objects`...), and `report.to_dict()` is the
    command's `--format json`.

    Args:
        source: a saved model's path (`.keras`, legacy `.h5`, `.weights.h5`, a SavedModel directory, a
            TF checkpoint, a KerasHub preset), a `package.module:function` or `path/file.py:function`
            returning a Keras model (built with TensorFlow), or a live Keras model (Keras 3 or
            tf_keras). A list or tuple of these inspects each in turn (one unreadable model does not
            stop the others) and returns an `InspectManyReport`. None with `spec`.
        spec: build the model from this spec instead of `source` (needs TensorFlow): the path of a
            YAML/JSON spec or a Keras model JSON, or the spec itself as a dict
            (`{"input_shape": [784], "layers": [{"Dense": {"units": 10}}]}`; the report's source is then
            `<spec>`).
        layer: only the weights whose path or layer name matches this glob (or any of these globs).
        fresh: also rebuild the saved model from its config, freshly initialized (needs TensorFlow),
            and report each weight's fresh sample beside the saved one.
        seed: with a spec, a function or `fresh`: `keras.utils.set_random_seed(seed)` before the build
            (the command's `--seed`; not an initializer's seed).
        alpha: the false-alarm rate of the `inconsistent` verdict for the whole model.
        config: the `model.to_json()` file of a weights-only (`.weights.h5`) source.
        custom_objects: the user's own layer classes, so Keras rebuilds a saved `.keras` model with
            custom layers and the rows get their real classes and initializers (`MODULE[:NAME]`
            references as `--custom-objects` takes them, modules, classes, or a dict of classes as
            Keras's `load_model(custom_objects=...)` takes it). The only way initcli runs user code.
        timeout: give up reading after this many seconds.
        progress: told when a model begins and as each weight is measured (the command's progress
            bar); an object with `begin(source, weights, nbytes)` and `advance(row)`.
        scheduler: a Dask scheduler's address (`"tcp://host:8786"`, or `"local"`), or a connected
            `initcli.parallel.dask.Cluster`, to measure a saved model's weights on its workers, which
            open the file by the same path (the `dask` extra); several sources share one connection.
            The report is the one this process gives.
        backend: with `fresh`, `jax`, `jax:unpartitioned` or `torch`: the rebuild Keras 3 would draw on
            that backend, predicted without any framework (docs/backends.md).

    Returns:
        The report: `weights` (one row per weight), `totals`, `findings`, `notes`; for a list of
        sources, an `InspectManyReport` (`results`: a report or a `FileError` per source, `totals`).

    Raises:
        BadInputError: arguments that cannot work together (a source and a spec; a spec with
            `fresh`; several sources with `spec` or `config`), or a `layer` that matches no weight.
        InitcliError: an unreadable file, a model that cannot be built, a live model Keras cannot
            serialize, or a scheduler that cannot be reached.
        MissingDependencyError: TensorFlow is needed (a spec, a function, `fresh`) and absent.
    """
    from initcli import api
    from initcli.safety.numbers import parse_alpha

    alpha, seed = parse_alpha(alpha), _checked_seed(seed)
    options: dict[str, Any] = {
        "layer": layer,
        "fresh": fresh,
        "seed": seed,
        "alpha": alpha,
        "custom_objects": custom_objects,
        "timeout": timeout,
        "progress": progress,
        "scheduler": scheduler,
        "backend": backend,
    }
    if isinstance(source, (list, tuple)):
        if spec is not None or config is not None:
            raise BadInputError("inspect: spec and config name one model: one source with config, none with spec")
        from initcli.reports import InspectManyReport

        pending = iter(source)  # each_model runs once per source, in order
        with api.dask_cluster(scheduler) as cluster:  # one connection (or LocalCluster) for all the sources
            options["scheduler"] = cluster
            return InspectManyReport(
                results=api.each_model([_name(s) for s in source], lambda _: inspect(next(pending), **options))
            )
    if (source is None) == (spec is None):
        raise BadInputError("inspect: give a source or a spec, exactly one")
    with contextlib.ExitStack() as stack:
        references, replacements = stack.enter_context(_custom_references(custom_objects))
        label: str | None = None
        path: str | ModelFile | None = None
        spec_path: Path | None = None
        if spec is not None:
            spec_path, label = _spec_path(spec, stack)
            if label is not None:
                replacements[str(spec_path)] = label
        else:
            path, live = stack.enter_context(opened_model(cast(Source, source)))
            if live is not None and isinstance(path, str):  # saved to a private file: named as the model
                label, replacements[path] = live, live
        report = api.inspect_model(
            path,
            spec_path=spec_path,
            seed=seed,
            fresh=fresh,
            patterns=_patterns(layer),
            alpha=alpha,
            timeout=timeout,
            progress=progress,
            config_path=None if config is None else Path(config),
            scheduler=scheduler,
            backend=backend,
            custom_objects=references,
        )
        return _relabeled(report, label, replacements)


@overload
def check(
    source: Source,
    *,
    only: Sequence[CheckName] | None = None,
    skip: Sequence[CheckName] | None = None,
    rules: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
    layer: str | Sequence[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    strict: bool = False,
    allow_unchecked: bool = False,
    require: Literal["fresh"] | None = None,
    config: str | os.PathLike[str] | None = None,
    custom_objects: CustomObjects = (),
    timeout: float | None = None,
    progress: ProgressSink | None = None,
    scheduler: str | Cluster | None = None,
) -> CheckReport: ...


@overload
def check(
    source: list[Source] | tuple[Source, ...],
    *,
    only: Sequence[CheckName] | None = None,
    skip: Sequence[CheckName] | None = None,
    rules: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
    layer: str | Sequence[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    strict: bool = False,
    allow_unchecked: bool = False,
    require: Literal["fresh"] | None = None,
    config: None = None,
    custom_objects: CustomObjects = (),
    timeout: float | None = None,
    progress: ProgressSink | None = None,
    scheduler: str | Cluster | None = None,
) -> CheckManyReport: ...


def check(
    source: Source | list[Source] | tuple[Source, ...],
    *,
    only: Sequence[CheckName] | None = None,
    skip: Sequence[CheckName] | None = None,
    rules: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
    layer: str | Sequence[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    strict: bool = False,
    allow_unchecked: bool = False,
    require: Literal["fresh"] | None = None,
    config: str | os.PathLike[str] | None = None,
    custom_objects: CustomObjects = (),
    timeout: float | None = None,
    progress: ProgressSink | None = None,
    scheduler: str | Cluster | None = None,
) -> CheckReport | CheckManyReport:
    """Gate a freshly initialized model: the findings of the checks, and whether it passed.

    `initcli check` is this function and a renderer: each keyword is the option of the same name
    (`rules` is `--rules`, `require="fresh"` is `--require fresh`...), and `report.to_dict()` is the
    command's `--format json`.

    Args:
        source: a saved model's path, or a live Keras model (Keras 3 or tf_keras); a list or tuple of
            these checks each (the checks validated once) and returns a `CheckManyReport`, which
            passes only if every model was read and passed.
        only: run only these checks (`distribution`, `nonfinite`, `constant`, `duplicate`, `fans`,
            `rules`, `propagation`).
        skip: leave these checks out.
        rules: a YAML/JSON rule file, or the rules themselves: a list of mappings with a `layer` glob and
            any of `initializer`, `max_abs_mean`, `std_range` (as in a rule file's `rules` list).
        layer: only the weights whose path or layer name matches this glob (or these globs).
        alpha: the false-alarm rate of the distribution check for the whole model.
        strict: count warnings (fan caveats) as failures.
        allow_unchecked: pass even when a named check tested no weight.
        require: `"fresh"`: a trained model (weights moved from their initializers) fails.
        config: the `model.to_json()` file of a weights-only source.
        custom_objects: the user's own layer classes, as `inspect` takes them (`--custom-objects`).
        timeout: give up reading after this many seconds.
        progress: told as each weight is measured, as `inspect`'s.
        scheduler: a Dask scheduler's address (`"tcp://host:8786"`, or `"local"`), or a connected
            `initcli.parallel.dask.Cluster`: the weights are measured on its workers as `inspect`'s
            are (saved files only); several sources share one connection. The report is the one
            this process gives.

    Returns:
        The report; `report.passed` is False when a check found an error (the command exits 3).

    Raises:
        BadInputError: an unknown check, nothing left to run, or malformed arguments.
        InitcliError: an unreadable file or rule file, a live model Keras cannot serialize, or a
            scheduler that cannot be reached.
    """
    from initcli import api
    from initcli.safety.numbers import parse_alpha

    if require not in (None, "fresh"):
        raise BadInputError(f"check: require is 'fresh' or None; received {require!r}")
    alpha = parse_alpha(alpha)
    several = isinstance(source, (list, tuple))
    if several and config is not None:
        raise BadInputError("check: config names the weights of one weights-only model (one source with config)")
    with contextlib.ExitStack() as stack:
        plan = api.plan_checks(tuple(only or ()), tuple(skip or ()), _rules_path(rules, stack))
        options: dict[str, Any] = {
            "plan": plan,
            "patterns": _patterns(layer),
            "alpha": alpha,
            "strict": strict,
            "allow_unchecked": allow_unchecked,
            "require_fresh": require == "fresh",
            "timeout": timeout,
            "progress": progress,
            "scheduler": scheduler,
        }
        references, replacements = stack.enter_context(_custom_references(custom_objects))
        if not isinstance(source, (list, tuple)):
            return _check_one(source, config, references, replacements, many=False, **options)
        from initcli.reports import CheckManyReport

        pending = iter(source)  # each_model runs once per source, in order
        many = len(source) > 1
        # One connection (or LocalCluster) for all the sources.
        options["scheduler"] = stack.enter_context(api.dask_cluster(scheduler))
        return CheckManyReport(
            results=api.each_model(
                [_name(s) for s in source],
                lambda _: _check_one(next(pending), None, references, replacements, many=many, **options),
            )
        )


def _check_one(
    source: Source,
    config: str | os.PathLike[str] | None,
    references: tuple[str, ...],
    replacements: Mapping[str, str],
    **options: Any,
) -> CheckReport:
    from initcli import api

    with opened_model(source) as (path, live):
        label, shown = None, dict(replacements)
        if live is not None and isinstance(path, str):  # saved to a private file: named as the model
            label, shown[path] = live, live
        report = api.check_model(
            Path(path) if isinstance(path, str) else path,
            config_path=None if config is None else Path(config),
            custom_objects=references,
            **options,
        )
        return _relabeled(report, label, shown)


def _spec(init: Initializer, parameters: Mapping[str, Any]) -> InitializerSpec:
    from initcli.initializers import InitializerSpec, resolve

    if isinstance(init, InitializerSpec):
        if parameters:
            return resolve({"class_name": init.class_name, "config": dict(init.config)}, **parameters)
        return init
    return resolve(init, **parameters)


def sample(
    init: Initializer,
    shape: Sequence[int] | str,
    *,
    seed: int | None = 0,
    dtype: FloatDType = "float32",
    engine: Engine = "numpy",
    backend: str = "tensorflow",
    alpha: float = DEFAULT_ALPHA,
    values: bool = False,
    save: str | os.PathLike[str] | None = None,
    force: bool = False,
    **parameters: Any,
) -> SampleReport:
    """Draw exactly what a Keras initializer draws for `shape`, and compare it with the theory.

    Args:
        init: the initializer's name (`"he_normal"`), Keras config dict, or `InitializerSpec`.
        shape: the tensor's shape, e.g. `(3, 3, 64, 128)` or `"3x3x64x128"` (as `--shape` takes it).
        seed: the Keras seed (None: a random one, as Keras picks; the report says which).
        dtype: `float16`, `bfloat16`, `float32` or `float64`.
        engine: `numpy` (initcli's bit-exact reproduction, no TensorFlow) or `keras` (Keras itself).
        backend: the Keras 3 backend whose draws to reproduce: `tensorflow`, `jax` or `torch` (CPU);
            `jax:unpartitioned` is JAX with jax_threefry_partitionable=False.
        alpha: the false-alarm rate of the `inconsistent` verdict.
        values: keep the first 1000 values drawn in `report.values`.
        save: also write every value drawn to this `.npy` file as it streams by (`"-"`: standard output).
        force: let `save` replace an existing file.
        **parameters: the initializer's parameters (`stddev=0.1`, `scale=2.0`, `mode="fan_in"`...).

    Raises:
        BadInputError: an unknown initializer or parameter, or a shape it cannot fill.
    """
    from initcli import api
    from initcli.safety.numbers import parse_alpha, parse_shape

    return api.sample(
        _spec(init, parameters),
        parse_shape(shape),
        dtype,
        seed=_checked_seed(seed),
        engine=engine,
        backend=backend,
        alpha=parse_alpha(alpha),
        save_path=None if save is None else Path(save),
        force=force,
        show_values=values,
    )


def explain(
    init: Initializer,
    shape: Sequence[int] | None = None,
    *,
    seed: int | None = None,
    dtype: FloatDType = "float32",
    backend: str = "tensorflow",
    **parameters: Any,
) -> ExplainReport:
    """An initializer explained: its formula, the numbers for `shape`, the Keras call, the values for
    `seed`, numpy code (exact where short), and the PyTorch and Flax equivalents.

    Args:
        init: the initializer's name, Keras config dict, or `InitializerSpec`.
        shape: plug in the numbers for this tensor shape.
        seed: with `shape`, the values Keras draws with this seed.
        dtype: the tensor's dtype.
        backend: the Keras 3 backend whose draws to show: `tensorflow`, `jax` or `torch`.
        **parameters: the initializer's parameters.

    Raises:
        BadInputError: an unknown initializer, a seed without a shape, or a shape it cannot fill.
    """
    from initcli import api

    if seed is not None and shape is None:
        raise BadInputError("explain: a seed (--seed) needs a shape too (--shape): the values are drawn for a shape")
    return api.explain(
        _spec(init, parameters),
        None if shape is None else tuple(int(size) for size in shape),
        dtype,
        seed=seed,
        backend=backend,
    )


def propagate(
    source: Source | None = None,
    *,
    spec: str | os.PathLike[str] | None = None,
    batch: int = 32,
    input: str | os.PathLike[str] | Any = "normal",  # noqa: A002 - the command's --input
    seed: int = 0,
    backward: bool = False,
    static: bool = False,
    mode: Literal["training", "inference"] = "training",
    dtype: FloatDType = "float32",
    init: str | None = None,
    compare: Sequence[str] | None = None,
    factor: float = 10.0,
    custom_objects: Sequence[str] = (),
) -> PropagateReport:
    """Will this initialization train? The signal's scale through the model at init, layer by layer.

    One forward pass (and with `backward` one backward pass) of a random batch through the model,
    every layer's output measured (mean, std, rms, dead ReLU and saturated fractions, the first
    NaN/inf) beside the mean-field prediction; a verdict per run: stable, exploding, vanishing, nan.

    `initcli.propagate` is also the name of the subpackage that computes it (`initcli.propagate.run`,
    `.verdict`...): calling the package calls this function.

    Args:
        source: a saved `.keras`/`.h5` model, a `module:function` that builds one, or a live Keras
            model (run on a copy: the model itself is not changed). None with `spec`.
        spec: a YAML/JSON model spec to build instead of `source`.
        batch: inputs in the batch.
        input: `normal` (N(0, 1)), `uniform` (U(0, 1)), the path of a `.npy` batch, or the batch
            itself, an array (batch, *input_shape) (the report's `input` is then `array`).
        seed: seeds the build, the input batch, the redraws and the backward pass's g.
        backward: also a backward pass (gradient rms per layer output and per weight).
        static: only the mean-field prediction (no TensorFlow for a saved file).
        mode: `training` (BatchNormalization uses batch statistics, Dropout drops) or `inference`.
        dtype: the dtype of the pass.
        init: redraw every kernel with this initializer (`NAME[:param=value]...`).
        compare: run once per initializer, side by side (two or more).
        factor: exploding/vanishing when the rms changes by more than this factor.
        custom_objects: `MODULE[:NAME]` references of the user's layer code, imported to load a saved
            model file with custom layers for the measured pass (`--custom-objects`).

    Returns:
        The report: `runs` (one per initializer), each with `layers` and `verdicts`.

    Raises:
        BadInputError: arguments that cannot work together, an unknown initializer.
        InitcliError: an unreadable model, or one Keras cannot load or copy.
        MissingDependencyError: TensorFlow is needed (a measured pass) and absent.
    """
    from initcli import api
    from initcli.propagate import run

    if (source is None) == (spec is None):
        raise BadInputError("propagate: give a source or a spec, exactly one")
    if init is not None and compare is not None:
        raise BadInputError("propagate: init and compare exclude each other (compare runs each initializer in turn)")
    if mode not in ("training", "inference"):
        raise BadInputError(f"propagate: mode is 'training' or 'inference'; received {mode!r}")
    if not 1 <= batch <= 65536:
        raise BadInputError(f"propagate: batch is 1 to 65536; received {batch}")
    if not factor > 1:
        raise BadInputError(f"propagate: factor must be more than 1; received {factor}")
    if not isinstance(input, (str, os.PathLike)):
        return _propagate_array(source, spec, input, locals())
    kind = os.fspath(input)
    if kind not in run.INPUT_KINDS and not (kind.endswith(".npy") and Path(kind).is_file()):
        raise BadInputError(f"propagate: input is 'normal', 'uniform' or an existing .npy file; received {kind!r}")
    inits: tuple[run.InitChoice | None, ...] = (None,)
    if init is not None:
        inits = (run.parse_init(init),)
    elif compare is not None:
        if isinstance(compare, str) or len(compare) < 2:
            raise BadInputError("propagate: compare needs a list of at least two initializers")
        inits = tuple(run.parse_init(name) for name in compare)
    options = run.Options(
        batch=batch,
        input=kind,
        seed=seed,
        dtype=dtype,
        training=mode == "training",
        backward=backward,
        factor=factor,
        inits=inits,
    )
    if source is not None and is_keras_model(source):
        with opened_model(source) as (opened, label):
            if isinstance(opened, str):  # a Keras initcli cannot read in memory: saved, read as a file
                if static:
                    return _relabeled_run(api.propagate_model(opened, None, options, static=True), label)
                from initcli.keras.live import copy_model

                copied = copy_model(source, label or "")
                return run.measured_report(copied, label or opened, "keras", options)
            return api.propagate_live(opened, source, options, static=static)
    if source is not None and not isinstance(source, (str, os.PathLike)):
        raise BadInputError(f"source must be a path or a Keras model; received a {type(source).__name__}")
    return api.propagate_model(
        None if source is None else os.fspath(source),
        None if spec is None else Path(spec),
        options,
        static=static,
        custom_objects=tuple(custom_objects),
    )


def _propagate_array(source: Any, spec: Any, batch: Any, arguments: dict[str, Any]) -> PropagateReport:
    """`propagate` of a batch given as an array: written to a private `.npy` file, run, relabeled `array`."""
    import numpy as np

    from initcli.keras.building import scratch_directory

    try:
        values = np.asarray(batch, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadInputError("propagate: input is 'normal', 'uniform', a .npy path or an array of numbers") from None
    if values.ndim < 2:
        raise BadInputError(f"propagate: an input array is (batch, *input_shape); received shape {values.shape}")
    keep = ("batch", "seed", "backward", "static", "mode", "dtype", "init", "compare", "factor")
    options = {name: arguments[name] for name in keep}
    options["batch"] = int(values.shape[0])
    with scratch_directory() as scratch:
        path = scratch / "input.npy"
        np.save(path, values)
        report = propagate(source, spec=spec, input=str(path), **options)
    notes = [note.replace(str(path), "array") for note in report.notes]
    return dataclasses.replace(report, input="array", notes=notes)


def _relabeled_run(report: PropagateReport, label: str | None) -> PropagateReport:
    return report if label is None else dataclasses.replace(report, source=label)


def diff(
    a: Source,
    b: Source,
    *,
    threshold: float | None = None,
    timeout: float | None = None,
    scheduler: str | Cluster | None = None,
) -> DiffReport:
    """How far each weight of `b` is from the same weight of `a`: relative change, max |b-a|, cosine.

    Weights are matched by path, then by position where the names differ; totals per layer and for
    the model; weights only in one side are listed. Any mix of formats and live Keras models: a live
    model's weights are read from memory, as `inspect` reads them (nothing is saved), and equal the
    comparison of the file `model.save("x.keras")` writes.

    Args:
        a, b: saved models' paths, or live Keras models (Keras 3 or tf_keras).
        threshold: `report.exceeded` lists the weights that moved more than this relative change
            (||b-a||/||a||) or changed shape; `report.failed` is the gate (the command exits 3): a weight
            moved more, nothing was compared, or a weight is on one side only.
        timeout: give up reading after this many seconds.
        scheduler: a Dask scheduler's address (`"tcp://host:8786"`, or `"local"`), or a connected
            `initcli.parallel.dask.Cluster`: the pairs of weights are compared on its workers, which
            open both files by the same paths (saved files only; one connection for both). The
            report is the one this process gives, bit for bit.

    Raises:
        BadInputError: a negative threshold; a scheduler with a live model.
        InitcliError: an unreadable file, a live model Keras cannot serialize, or a scheduler that
            cannot be reached.
    """
    from initcli import api

    if threshold is not None and not threshold >= 0:
        raise BadInputError(f"diff: threshold must be 0 or more; received {threshold}")
    with opened_model(a) as (opened_a, label_a), opened_model(b) as (opened_b, label_b):
        report = api.diff_models(opened_a, opened_b, threshold=threshold, timeout=timeout, scheduler=scheduler)
        changes: dict[str, Any] = {}
        notes = list(report.notes)
        for label, opened, field_name in ((label_a, opened_a, "source_a"), (label_b, opened_b, "source_b")):
            if label is not None and isinstance(opened, str):  # saved to a private file: named as the model
                changes[field_name] = label
                notes = [note.replace(opened, label) for note in notes]
        return dataclasses.replace(report, **changes, notes=tuple(notes)) if changes else report


def list_initializers() -> ListReport:
    """Every Keras initializer initcli knows: names, aliases, parameters, formula, PyTorch and Flax calls."""
    from initcli import api

    return api.list_initializers()


def defaults(
    layers: Sequence[str] = (),
    *,
    frameworks: Sequence[Literal["keras", "torch", "flax"]] = ("keras",),
    source: Literal["table", "keras"] = "table",
) -> DefaultsReport:
    """The default initializer of every initializer argument of Keras layers.

    Args:
        layers: the layer classes (`"Dense"`, `"Conv2D"`...); none: every layer initcli knows.
        frameworks: also the defaults of the equivalent PyTorch (`torch`) and Flax (`flax`) layers.
        source: `table` (initcli's shipped table, no TensorFlow, tested equal to Keras) or `keras`
            (read from the installed Keras's signatures).

    Raises:
        BadInputError: an unknown framework or layer.
    """
    from initcli import api

    if isinstance(layers, str):
        layers = (layers,)
    return api.layer_defaults(tuple(layers), list(frameworks), source)


def batchnorm(
    values: Sequence[float] | Any | None = None,
    *,
    shape: Sequence[int] | None = None,
    init: str = "random_normal",
    seed: int = 0,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
    steps: int = 1,
    keras: Literal[2, 3] = 3,
    input_rank: int | None = None,
    unfused: bool = False,
) -> BatchnormReport:
    """What Keras's BatchNormalization does with a batch, step by step: moving statistics and outputs.

    Args:
        values: the batch of one feature (a list or array of finite numbers), or an array
            (batch, ..., features); or None with `shape`.
        shape: draw the batch (batch, ..., features) with `init` and `seed` instead.
        init: the initializer `shape` draws with.
        seed: its seed.
        momentum: the layer's momentum, in [0, 1].
        epsilon: the layer's epsilon, more than 0.
        steps: training steps that see this batch (1 to 10000).
        keras: 3 (Keras 3), or 2 (tf_keras, whose fused kernel on rank 4-5 input adds Bessel's n/(n-1)).
        input_rank: the rank of the layer's input for a one-feature `values` list (default 2).
        unfused: Keras 2's `fused=False`: the unfused rule on any rank.

    Raises:
        BadInputError: neither or both of `values` and `shape`, values that are not finite numbers,
            or settings out of range.
    """
    import numpy as np

    from initcli import api
    from initcli.initializers import resolve

    if (values is None) == (shape is None):
        raise BadInputError(
            "batchnorm: give the batch as values (--values) or draw one for a shape (--shape), exactly one"
        )
    if keras not in (2, 3):
        raise BadInputError(f"batchnorm: keras is 2 or 3; received {keras!r}")
    if keras == 3 and unfused:
        raise BadInputError("batchnorm: unfused (--unfused) is Keras 2's fused=False; Keras 3 has no fused kernel")
    if not 0 <= momentum <= 1 or not epsilon > 0 or not 1 <= steps <= 10_000:
        raise BadInputError("batchnorm: momentum is in [0, 1], epsilon more than 0, steps 1 to 10000")
    if input_rank is not None and not 2 <= input_rank <= 5:
        raise BadInputError(f"batchnorm: input_rank is 2 to 5; received {input_rank}")
    if values is not None:
        try:
            batch = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise BadInputError("batchnorm: values must be numbers") from None
        if batch.size == 0 or not np.all(np.isfinite(batch)):
            raise BadInputError("batchnorm: values must be finite numbers, at least one")
        if batch.ndim == 1:
            batch = batch.reshape((-1,) + (1,) * ((input_rank or 2) - 1))
        elif input_rank is not None and input_rank != batch.ndim:
            raise BadInputError(f"batchnorm: input_rank {input_rank} disagrees with the values' rank {batch.ndim}")
    else:
        dims = tuple(int(size) for size in shape or ())
        if input_rank is not None and input_rank != len(dims):
            raise BadInputError(
                f"batchnorm: input_rank (--input-rank) {input_rank} disagrees with the shape's rank {len(dims)}"
            )
        batch = api.draw_batch(resolve(init), dims, seed)
    return api.batchnorm(batch, momentum, epsilon, steps, keras=keras, fused=False if unfused else None)
