"""Run a propagation: pick the input, re-initialize if asked, measure and/or predict, judge.

`static_report` needs no TensorFlow; `measured_report` runs one pass through a live Keras model and
puts the static prediction (from the same config and weights) beside the measurement.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from initcli.errors import BadInputError, InitcliError
from initcli.propagate import static
from initcli.propagate.assemble import records_from_measurement, records_from_static
from initcli.propagate.report import PropagateReport, PropagationRun
from initcli.propagate.verdict import judge

INPUT_KINDS = ("normal", "uniform")
MAX_INPUT_ELEMENTS = 50_000_000
DTYPES = ("float32", "float16", "bfloat16", "float64")


@dataclass(frozen=True, kw_only=True)
class InitChoice:
    """An initializer to redraw every kernel with: the text the user gave and its Keras config."""

    label: str
    class_name: str
    config: dict[str, Any]

    def keras_config(self) -> dict[str, Any]:
        return {"class_name": self.class_name, "config": dict(self.config)}


def parse_init(text: str) -> InitChoice:
    """`NAME[:param=value]...`, e.g. `truncated_normal:stddev=0.1` or `variance_scaling:scale=2:mode=fan_in`.

    Raises:
        BadInputError: unknown initializer, bad parameter, or a value Keras would reject.
    """
    from initcli.initializers import resolve

    name, *assignments = [part.strip() for part in text.strip().split(":")]
    if not name:
        raise BadInputError(f"--init expects NAME[:param=value]...; received {text!r}")
    parameters: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise BadInputError(f"--init parameters are param=value; received {assignment!r} in {text!r}")
        parameters[key.strip()] = _value(value.strip())
    spec = resolve(name, **parameters)
    return InitChoice(label=text.strip(), class_name=spec.class_name, config=dict(spec.config))


def _value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@dataclass(frozen=True, kw_only=True)
class Options:
    """The settings of a propagation run (the command's options)."""

    batch: int = 32
    input: str = "normal"
    seed: int = 0
    dtype: str = "float32"
    training: bool = True
    backward: bool = False
    factor: float = 10.0
    inits: tuple[InitChoice | None, ...] = (None,)


def load_input_file(path: Path) -> np.ndarray:
    """A .npy batch, refused if it is not numeric, holds objects, or is implausibly large."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except (OSError, ValueError, SyntaxError) as error:
        raise InitcliError(f"Cannot read {path} as .npy: {error}") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise InitcliError(f"{path}: holds {dtype}, not numbers")
    if int(np.prod(shape, dtype=np.int64)) > MAX_INPUT_ELEMENTS:
        raise InitcliError(f"{path}: {shape} is more than the {MAX_INPUT_ELEMENTS:,} input values initcli feeds")
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InitcliError(f"Cannot read {path} as .npy: {error}") from None
    return np.asarray(values, dtype=np.float64)


def make_inputs(kind: str, input_shape: Sequence[int | None], batch: int, seed: int) -> np.ndarray:
    """The batch: N(0, 1) or U(0, 1) values from numpy's PCG64 with `seed`, or a .npy file's contents."""
    if kind in INPUT_KINDS:
        if any(d is None for d in input_shape):
            raise BadInputError(
                f"the model's input shape {tuple(input_shape)} has unknown sizes; give a batch with --input FILE.npy"
            )
        shape = (batch, *(int(d) for d in input_shape if d is not None))
        if int(np.prod(shape)) > MAX_INPUT_ELEMENTS:
            raise BadInputError(f"--batch {batch} makes {int(np.prod(shape)):,} input values; use a smaller batch")
        generator = np.random.default_rng(seed)
        if kind == "normal":
            return generator.standard_normal(shape)
        return generator.random(shape)
    values = load_input_file(Path(kind))
    expected = tuple(input_shape)
    if values.ndim != len(expected) + 1 or any(
        want is not None and have != want for have, want in zip(values.shape[1:], expected)
    ):
        raise InitcliError(
            f"{kind}: shape {values.shape} does not fit the model's input (batch, "
            f"{', '.join('?' if d is None else str(d) for d in expected)})"
        )
    return values


def _signal(kind: str, values: np.ndarray | None) -> static.InputSignal:
    if values is not None:
        return static.InputSignal.of_array(kind, values)
    return static.InputSignal.named(kind)


def _input_shape_from_config(config: Any) -> list[int | None]:
    from initcli.propagate.graph import read_graph

    for node in read_graph(config):
        if node.class_name == "InputLayer":
            return list(node.config.get("batch_shape") or node.config.get("batch_input_shape") or [None])[1:]
    raise InitcliError("the model config has no input layer")


def static_config(saved: Any) -> Any:
    """The model config the static prediction reads: a Keras 3 file's, or a Keras 2 `.h5`'s own.

    Raises:
        InitcliError: the file has a config propagate does not read (Keras 1), or none, saying which.
    """
    from initcli.keras.eras import era_of

    if saved.config is not None:
        return saved.config
    older = getattr(saved, "older_config", None)
    version = saved.keras_version
    if older is not None and era_of(version).line == "keras1":
        raise InitcliError(
            f"{saved.source}: a Keras {version} model config: propagate does not read Keras 1 layers "
            "(Convolution2D(nb_filter, ...), Dense(output_dim, init=...)); inspect reads the file; "
            "load and re-save it with Keras 2 or 3 to propagate through it"
        )
    if older is not None:
        return older
    if saved.format == "savedmodel":
        raise InitcliError(
            f"{saved.source}: propagate does not read a SavedModel's layer config (keras_metadata.pb); "
            "save the model as .keras (or pass a module:function that builds it)"
        )
    raise InitcliError(
        f"{saved.source}: the file has no model config ({saved.format}: weights only): nothing to propagate through"
    )


def static_report(saved: Any, options: Options) -> PropagateReport:
    """The mean-field prediction for a saved model, without TensorFlow."""
    from initcli.analysis.sampling import draw
    from initcli.initializers import resolve

    config = static_config(saved)
    file_values = None
    if options.input not in INPUT_KINDS:
        file_values = make_inputs(options.input, _input_shape_from_config(config), options.batch, options.seed)
    signal = _signal(options.input, file_values)
    runs = []
    for choice in options.inits:
        replacement = None
        if choice is not None:
            spec = resolve(choice.keras_config())

            def replacement(record: Any, seed: int, spec: Any = spec) -> np.ndarray:
                return draw(spec, tuple(record.shape), "float32", seed)

        weights = static.saved_weights(saved.records(), replacement, seed=options.seed)
        prediction = static.predict(config=config, weights=weights, signal=signal, training=options.training)
        layers = records_from_static(prediction)
        runs.append(
            PropagationRun(
                init=choice.label if choice else None,
                layers=layers,
                verdicts=judge(layers, factor=options.factor, basis="predicted"),
                notes=list(prediction.notes),
            )
        )
    notes = ["static: the mean-field prediction from the config and weights alone (no TensorFlow)"]
    if options.dtype != "float32":
        notes.append(f"static: --dtype {options.dtype} is ignored (the prediction has no rounding or overflow)")
    return _report(saved.source, saved.format, "static", options, runs, notes)


def _report(
    source: str, format_name: str, mode: str, options: Options, runs: list[PropagationRun], notes: list[str]
) -> PropagateReport:
    return PropagateReport(
        source=str(source),
        format=format_name,
        mode=mode,
        batch=options.batch,
        input=options.input,
        seed=options.seed,
        dtype=options.dtype,
        training=options.training,
        backward=options.backward,
        factor=options.factor,
        runs=runs,
        notes=notes,
    )


def _runs(model: Any, options: Options) -> Iterator[tuple[InitChoice | None, Any, list[str]]]:
    """The model as loaded, or re-initialized for each --init/--compare choice, in the asked dtype."""
    from initcli.propagate import measure

    for choice in options.inits:
        notes = []
        if choice is not None:
            count = measure.reinitialize(model, choice.keras_config(), options.seed)
            notes.append(f"{count} kernels redrawn with {choice.label} (seeds from {options.seed})")
        yield choice, model, notes


def measured_report(model: Any, source: str, format_name: str, options: Options) -> PropagateReport:
    """One TensorFlow pass per run, with the static prediction from the same weights beside it."""
    from initcli.propagate import measure

    if len(model.inputs) != 1:
        raise InitcliError(f"the model has {len(model.inputs)} inputs; initcli propagate feeds models with one")
    values = make_inputs(options.input, list(model.inputs[0].shape[1:]), options.batch, options.seed)
    signal = _signal(options.input, values)
    runs = []
    for choice, live, notes in _runs(model, options):
        config = measure.model_config(live)
        try:
            prediction: static.StaticPrediction | None = static.predict(
                config=config, weights=measure.model_weights(live), signal=signal, training=options.training
            )
        except InitcliError as error:
            prediction = None
            notes.append(f"no static prediction: {error}")
        target = live if options.dtype == "float32" else measure.cast_model(live, options.dtype)
        measurement = measure.measure(
            target, values, training=options.training, backward=options.backward, seed=options.seed
        )
        layers = records_from_measurement(measurement, prediction)
        verdicts = judge(layers, factor=options.factor, basis="measured")
        if prediction is not None:
            notes += prediction.notes
        runs.append(
            PropagationRun(init=choice.label if choice else None, layers=layers, verdicts=verdicts, notes=notes)
        )
    notes = [
        f"one {'training' if options.training else 'inference'}-mode pass of {values.shape[0]} inputs "
        f"({options.input}) in {options.dtype}"
        + ("; backward: L = sum(output * g), g ~ N(0, 1)" if options.backward else "")
    ]
    return _report(source, format_name, "measured", options, runs, notes)
