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
directory, a TF checkpoint) or a live Keras model (Keras 3 or tf_keras). A live model is saved with
`model.save()` to a private temporary directory, read back exactly as a saved file is, and the
directory removed: the report equals the one for the file `model.save("x.keras")` writes, except for
its `source`, which names the model (`<keras model 'name'>`).

Errors are the exceptions the command line turns into exit codes, all subclasses of `InitcliError`:
`BadInputError` (arguments no run could succeed with; exit 2), `MissingDependencyError` (Keras or
TensorFlow needed but absent; exit 1), and `InitcliError` itself (an unreadable file, a model that
cannot be built; exit 1). A failed `check` is not an exception: read `CheckReport.passed`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Union, cast, runtime_checkable

from initcli.errors import BadInputError, InitcliError, MissingDependencyError
from initcli.render import views as _report_views  # noqa: F401  (registers the reports' views)
from initcli.types import DEFAULT_ALPHA, CheckName, Engine, FloatDType

if TYPE_CHECKING:
    from initcli.initializers import InitializerSpec
    from initcli.reports import CheckReport, ExplainReport, InspectReport, SampleReport

__all__ = [
    "BadInputError",
    "InitcliError",
    "KerasModel",
    "MissingDependencyError",
    "Source",
    "check",
    "explain",
    "inspect",
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


_Report = TypeVar("_Report", "InspectReport", "CheckReport")


def _relabeled(report: _Report, label: str | None, path: str) -> _Report:
    """A report of a saved live model, with the model's label where the temporary path was."""
    if label is None:
        return report
    changes: dict[str, Any] = {"source": label}
    notes = getattr(report, "notes", None)
    if notes is not None:
        changes["notes"] = [note.replace(path, label) for note in notes]
    return dataclasses.replace(report, **changes)


def inspect(
    source: Source,
    *,
    layer: str | Sequence[str] | None = None,
    fresh: bool = False,
    seed: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    config: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> InspectReport:
    """Every weight of a model beside its initializer's theory: fans, initializer, default, verdict.

    Args:
        source: a saved model's path, or a live Keras model (Keras 3 or tf_keras).
        layer: only the weights whose path or layer name matches this glob (or any of these globs).
        fresh: also rebuild the model from its config, freshly initialized (needs TensorFlow), and
            report each weight's fresh sample beside the saved one.
        seed: with `fresh`, `keras.utils.set_random_seed(seed)` before the rebuild.
        alpha: the false-alarm rate of the `inconsistent` verdict for the whole model.
        config: the `model.to_json()` file of a weights-only (`.weights.h5`) source.
        timeout: give up reading after this many seconds.

    Returns:
        The report: `weights` (one row per weight), `totals`, `findings`, `notes`.

    Raises:
        BadInputError: arguments that cannot work together, or a `layer` that matches no weight.
        InitcliError: an unreadable file, or a live model Keras cannot save.
    """
    from initcli import api

    with saved_model(source) as (path, label):
        report = api.inspect_model(
            path,
            seed=seed,
            fresh=fresh,
            patterns=_patterns(layer),
            alpha=alpha,
            timeout=timeout,
            config_path=None if config is None else Path(config),
        )
        return _relabeled(report, label, path)


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
    config: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> CheckReport:
    """Gate a freshly initialized model: the findings of the checks, and whether it passed.

    Args:
        source: a saved model's path, or a live Keras model (Keras 3 or tf_keras).
        only: run only these checks (`distribution`, `nonfinite`, `constant`, `duplicate`, `fans`,
            `rules`, `propagation`).
        skip: leave these checks out.
        rules: a YAML/JSON rule file, or the rules themselves: a list of mappings with a `layer` glob and
            any of `initializer`, `max_abs_mean`, `std_range` (as in a rule file's `rules` list).
        layer: only the weights whose path or layer name matches this glob (or these globs).
        alpha: the false-alarm rate of the distribution check for the whole model.
        strict: count warnings (fan caveats) as failures.
        allow_unchecked: pass even when a named check tested no weight.
        config: the `model.to_json()` file of a weights-only source.
        timeout: give up reading after this many seconds.

    Returns:
        The report; `report.passed` is False when a check found an error (the command exits 3).

    Raises:
        BadInputError: an unknown check, nothing left to run, or malformed arguments.
        InitcliError: an unreadable file or rule file, or a live model Keras cannot save.
    """
    from initcli import api
    from initcli.keras.building import scratch_directory

    with contextlib.ExitStack() as stack:
        rules_path: Path | None = None
        if rules is not None and not isinstance(rules, (str, os.PathLike)):
            directory = stack.enter_context(scratch_directory())
            rules_path = directory / "rules.json"
            try:
                rules_path.write_text(json.dumps({"rules": [dict(rule) for rule in rules]}), encoding="utf-8")
            except (TypeError, ValueError) as error:
                raise BadInputError(f"rules must be mappings of plain values: {error}") from None
        elif rules is not None:
            rules_path = Path(rules)
        path, label = stack.enter_context(saved_model(source))
        report = api.check_model(
            Path(path),
            only=tuple(only or ()),
            skip=tuple(skip or ()),
            alpha=alpha,
            strict=strict,
            rules_path=rules_path,
            patterns=_patterns(layer),
            allow_unchecked=allow_unchecked,
            timeout=timeout,
            config_path=None if config is None else Path(config),
        )
        return _relabeled(report, label, path)


def _spec(init: Initializer, parameters: Mapping[str, Any]) -> InitializerSpec:
    from initcli.initializers import InitializerSpec, resolve

    if isinstance(init, InitializerSpec):
        if parameters:
            return resolve({"class_name": init.class_name, "config": dict(init.config)}, **parameters)
        return init
    return resolve(init, **parameters)


def sample(
    init: Initializer,
    shape: Sequence[int],
    *,
    seed: int | None = 0,
    dtype: FloatDType = "float32",
    engine: Engine = "numpy",
    backend: str = "tensorflow",
    alpha: float = DEFAULT_ALPHA,
    values: bool = False,
    **parameters: Any,
) -> SampleReport:
    """Draw exactly what a Keras initializer draws for `shape`, and compare it with the theory.

    Args:
        init: the initializer's name (`"he_normal"`), Keras config dict, or `InitializerSpec`.
        shape: the tensor's shape, e.g. `(3, 3, 64, 128)`.
        seed: the Keras seed (None: a random one, as Keras picks; the report says which).
        dtype: `float16`, `bfloat16`, `float32` or `float64`.
        engine: `numpy` (initcli's bit-exact reproduction, no TensorFlow) or `keras` (Keras itself).
        backend: the Keras 3 backend whose draws to reproduce: `tensorflow`, `jax` or `torch` (CPU).
        alpha: the false-alarm rate of the `inconsistent` verdict.
        values: keep the first 1000 values drawn in `report.values`.
        **parameters: the initializer's parameters (`stddev=0.1`, `scale=2.0`, `mode="fan_in"`...).

    Raises:
        BadInputError: an unknown initializer or parameter, or a shape it cannot fill.
    """
    from initcli import api

    return api.sample(
        _spec(init, parameters),
        tuple(int(size) for size in shape),
        dtype,
        seed=seed,
        engine=engine,
        backend=backend,
        alpha=alpha,
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
        raise BadInputError("explain: a seed needs a shape too (the values are drawn for a shape)")
    return api.explain(
        _spec(init, parameters),
        None if shape is None else tuple(int(size) for size in shape),
        dtype,
        seed=seed,
        backend=backend,
    )
