"""A spec's initial weights on Keras 3's JAX or torch backend, predicted without any framework.

`inspect --spec model.yaml --seed S --backend jax|torch`: Keras builds a spec's layers in order
after `keras.utils.set_random_seed(S)`, which seeds Python's `random` with S. Each layer's
constructor resolves its initializer arguments in the order its `__init__` lists them (Dense:
kernel, bias; BatchNormalization: beta, gamma, moving mean, moving variance), and every unseeded
random initializer (`RandomInitializer(seed=None)`) takes `random.randint(1, 10**9)` as its seed
there and then, as does every unseeded `SeedGenerator` a layer makes (Dropout, GaussianNoise,
GaussianDropout and AlphaDropout when their rate is above 0). A weight is then drawn statelessly
from its initializer's seed, as `sample --seed <that seed> --backend B` draws it. So the k-th
random draw of Python's `random.Random(S)` is the seed of the k-th unseeded random initializer
or seed generator built, and every weight follows without Keras.

Only plain specs of the layers in `SHAPES` (channels-last) are predicted; anything else is refused
in one line (`--backend tensorflow` builds it with Keras).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from initcli.analysis.sampling import draw_whole
from initcli.errors import BadInputError, InitcliError
from initcli.initializers import InitializerSpec, resolve
from initcli.keras.layers import DEFAULTS, LAYER_SLOTS, RNN_CELLS, SETTINGS
from initcli.readers.records import ModelFile, WeightRecord

Shape = tuple[int | None, ...]


def _as_tuple(value: Any, rank: int, where: str) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,) * rank
    if len(values) != rank or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise BadInputError(f"{where}: expected {rank} positive integers, got {value!r}")
    return values


def _spatial(size: int | None, kernel: int, stride: int, dilation: int, padding: str) -> int | None:
    """Keras's `compute_conv_output_shape` for one axis."""
    if size is None:
        return None
    if padding == "same":
        return (size + stride - 1) // stride
    out = (size - dilation * (kernel - 1) - 1) // stride + 1
    return out if out > 0 else 0


def _channels_last(arguments: Mapping[str, Any], where: str) -> None:
    if arguments.get("data_format", "channels_last") not in (None, "channels_last"):
        raise BadInputError(f"{where}: only data_format channels_last is predicted without Keras")


def _known(value: int | None, where: str) -> int:
    if value is None:
        raise BadInputError(f"{where}: the input's last dimension must be known to size the weights")
    return value


def _dense(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
    units = a.get("units")
    if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
        raise BadInputError(f"{where}: Dense needs a positive integer `units`")
    return (*shape[:-1], units), {"kernel": (_known(shape[-1], where), units), "bias": (units,)}


def _conv(rank: int) -> Callable[[Mapping[str, Any], Shape, str], tuple[Shape, dict[str, tuple[int, ...]]]]:
    def conv(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
        _channels_last(a, where)
        if len(shape) != rank + 1:
            raise BadInputError(f"{where}: Conv{rank}D expects inputs of rank {rank + 2} (with the batch)")
        filters, groups = a.get("filters"), a.get("groups", 1)
        if not isinstance(filters, int) or filters <= 0 or not isinstance(groups, int) or groups <= 0:
            raise BadInputError(f"{where}: Conv{rank}D needs positive integers `filters` and `groups`")
        kernel = _as_tuple(a.get("kernel_size"), rank, f"{where}: kernel_size")
        strides = _as_tuple(a.get("strides", 1), rank, f"{where}: strides")
        dilation = _as_tuple(a.get("dilation_rate", 1), rank, f"{where}: dilation_rate")
        padding = str(a.get("padding", "valid")).lower()
        if padding not in ("valid", "same"):
            raise BadInputError(f"{where}: padding {padding!r} is not predicted without Keras")
        channels = _known(shape[-1], where)
        if channels % groups or filters % groups:
            raise BadInputError(f"{where}: groups {groups} must divide the input channels and filters")
        out = tuple(_spatial(n, k, s, d, padding) for n, k, s, d in zip(shape[:-1], kernel, strides, dilation))
        return (*out, filters), {"kernel": (*kernel, channels // groups, filters), "bias": (filters,)}

    return conv


def _embedding(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
    rows, columns = a.get("input_dim"), a.get("output_dim")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (rows, columns)):
        raise BadInputError(f"{where}: Embedding needs positive integers `input_dim` and `output_dim`")
    assert isinstance(rows, int) and isinstance(columns, int)
    return (*shape, columns), {"embeddings": (rows, columns)}


def _normalization(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
    if a.get("axis", -1) not in (-1, len(shape)):
        raise BadInputError(f"{where}: only axis -1 is predicted without Keras")
    channels = (_known(shape[-1], where),)
    return shape, {name: channels for name in ("gamma", "beta", "moving_mean", "moving_variance")}


def _flatten(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
    return (None if None in shape else math.prod(d for d in shape if d is not None),), {}


def _same(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
    return shape, {}


def _pool(rank: int) -> Callable[[Mapping[str, Any], Shape, str], tuple[Shape, dict[str, tuple[int, ...]]]]:
    def pool(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
        _channels_last(a, where)
        size = _as_tuple(a.get("pool_size", 2), rank, f"{where}: pool_size")
        strides = _as_tuple(a.get("strides") or size, rank, f"{where}: strides")
        padding = str(a.get("padding", "valid")).lower()
        if len(shape) != rank + 1 or padding not in ("valid", "same"):
            raise BadInputError(f"{where}: a {rank}-D pooling of rank-{rank + 2} inputs, padding valid or same")
        out = tuple(_spatial(n, k, s, 1, padding) for n, k, s in zip(shape[:-1], size, strides))
        return (*out, shape[-1]), {}

    return pool


def _global_pool(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
    _channels_last(a, where)
    if a.get("keepdims"):
        return (*(1 for _ in shape[:-1]), shape[-1]), {}
    return (shape[-1],), {}


_GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


def _recurrent(class_name: str) -> Callable[[Mapping[str, Any], Shape, str], tuple[Shape, dict[str, tuple[int, ...]]]]:
    gates = _GATES[class_name]

    def recurrent(a: Mapping[str, Any], shape: Shape, where: str) -> tuple[Shape, dict[str, tuple[int, ...]]]:
        units = a.get("units")
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise BadInputError(f"{where}: {class_name} needs a positive integer `units`")
        if len(shape) != 2:
            raise BadInputError(f"{where}: {class_name} needs a (time, features) input, got {shape}")
        features = _known(shape[-1], where)
        bias: tuple[int, ...] = (gates * units,)
        if class_name == "GRU" and a.get("reset_after", True):
            bias = (2, gates * units)
        sizes = {"kernel": (features, gates * units), "recurrent_kernel": (units, gates * units), "bias": bias}
        out: Shape = (shape[0], units) if a.get("return_sequences") else (units,)
        return out, sizes

    return recurrent


SHAPES: dict[str, Callable[[Mapping[str, Any], Shape, str], tuple[Shape, dict[str, tuple[int, ...]]]]] = {
    "Dense": _dense,
    "Conv1D": _conv(1),
    "Conv2D": _conv(2),
    "Conv3D": _conv(3),
    "Embedding": _embedding,
    "BatchNormalization": _normalization,
    "LayerNormalization": _normalization,
    "Flatten": _flatten,
    "Activation": _same,
    "ReLU": _same,
    "LeakyReLU": _same,
    "Softmax": _same,
    "Dropout": _same,
    "GaussianNoise": _same,
    "GaussianDropout": _same,
    "AlphaDropout": _same,
    "MaxPooling1D": _pool(1),
    "MaxPooling2D": _pool(2),
    "AveragePooling1D": _pool(1),
    "AveragePooling2D": _pool(2),
    "GlobalAveragePooling1D": _global_pool,
    "GlobalAveragePooling2D": _global_pool,
    "GlobalMaxPooling1D": _global_pool,
    "GlobalMaxPooling2D": _global_pool,
    "SimpleRNN": _recurrent("SimpleRNN"),
    "LSTM": _recurrent("LSTM"),
    "GRU": _recurrent("GRU"),
}
# The initializer arguments in the order each layer's __init__ resolves them (keras/src/layers/...).
CONSTRUCTION_ORDER = {
    "Dense": ("kernel_initializer", "bias_initializer"),
    "Conv1D": ("kernel_initializer", "bias_initializer"),
    "Conv2D": ("kernel_initializer", "bias_initializer"),
    "Conv3D": ("kernel_initializer", "bias_initializer"),
    "Embedding": ("embeddings_initializer",),
    "BatchNormalization": (
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
    ),
    "LayerNormalization": ("beta_initializer", "gamma_initializer"),
    "SimpleRNN": ("kernel_initializer", "recurrent_initializer", "bias_initializer"),
    "LSTM": ("kernel_initializer", "recurrent_initializer", "bias_initializer"),
    "GRU": ("kernel_initializer", "recurrent_initializer", "bias_initializer"),
}
# Recurrent cells make a SeedGenerator(seed) in __init__ whatever their dropout: SimpleRNNCell before
# resolving its initializers, LSTMCell and GRUCell after (keras/src/layers/rnn/*.py).
CELL_SEED_GENERATOR = {"SimpleRNN": "before", "LSTM": "after", "GRU": "after"}
for _name in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
    CONSTRUCTION_ORDER[_name] = ("kernel_initializer", "bias_initializer")
for _name in ("DepthwiseConv1D", "DepthwiseConv2D"):
    CONSTRUCTION_ORDER[_name] = ("depthwise_initializer", "bias_initializer")
for _name in ("SeparableConv1D", "SeparableConv2D"):
    CONSTRUCTION_ORDER[_name] = ("depthwise_initializer", "pointwise_initializer", "bias_initializer")
# Layers whose construction draws nothing from Python's `random` (a rebuilt config may hold them).
NO_DRAWS = {
    *(name for name in SHAPES if name not in CONSTRUCTION_ORDER),
    "InputLayer",
    "Reshape",
    "Permute",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "Cropping1D",
    "Cropping2D",
    "MaxPooling3D",
    "AveragePooling3D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling3D",
    "UpSampling1D",
    "UpSampling2D",
    "Identity",
    "SpatialDropout1D",
    "SpatialDropout2D",
}
# Layers that make an unseeded SeedGenerator in __init__ when this argument is above 0.
SEED_GENERATORS = {"Dropout": "rate", "GaussianNoise": "stddev", "GaussianDropout": "rate", "AlphaDropout": "rate"}
_KERAS_SETTINGS = {"momentum": 0.99, "epsilon": 0.001, "axis": -1}
MAX_PREDICTED_PARAMETERS = 150_000_000


def snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: the prefix of a layer's automatic name."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass(frozen=True)
class PredictedWeight:
    """One weight of the predicted model: where it is, what draws it, with which seed."""

    layer: str
    layer_class: str
    weight: str
    shape: tuple[int, ...]
    spec: InitializerSpec
    seed: int
    argument: str
    settings: dict[str, Any]
    #: LSTM's unit_forget_bias: [init(units), ones(units), init(2 units)] (a constant init only).
    forget_bias: bool = False


def _initializer(value: Any, where: str) -> InitializerSpec:
    try:
        return resolve(value)
    except BadInputError as error:
        raise BadInputError(f"{where}: {error}") from None


def plan(document: Any, source: str, seed: int | None) -> tuple[str, list[PredictedWeight]]:
    """The model's name and its weights in Keras's order, with the seed each is drawn with.

    Raises:
        BadInputError: a spec this module does not predict, or a bad one.
    """
    from initcli.keras.building import _layer_entry, check_arguments

    if not isinstance(document, Mapping) or "layers" not in document or "class_name" in document:
        raise BadInputError(
            f"{source}: only `input_shape` + `layers` specs are predicted without Keras "
            "(a model JSON needs --backend tensorflow)"
        )
    unknown = set(document) - {"input_shape", "layers", "name"}
    if unknown:
        raise BadInputError(f"{source}: unknown spec keys {', '.join(sorted(unknown))}")
    input_shape = document.get("input_shape")
    if not isinstance(input_shape, list) or not all(
        d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in input_shape
    ):
        raise BadInputError(f"{source}: `input_shape` must be a list of non-negative integers (without the batch)")
    entries = document.get("layers")
    if not isinstance(entries, list) or not entries:
        raise BadInputError(f"{source}: layers: expected a non-empty list of layers")
    name = document.get("name", "spec")
    if not isinstance(name, str):
        raise BadInputError(f"{source}: `name` must be text")
    python_random = random.Random(seed) if seed is not None else random.Random()
    counters: dict[str, int] = {}
    shape: Shape = tuple(input_shape)
    weights: list[PredictedWeight] = []
    for index, entry in enumerate(entries):
        where = f"{source}: layers[{index}]"
        try:
            class_name, arguments = _layer_entry(entry, where)
            check_arguments(arguments, where)
        except InitcliError as error:
            raise BadInputError(str(error)) from None
        if class_name not in SHAPES:
            raise BadInputError(
                f"{where}: {class_name} is not predicted without Keras (predicted: "
                f"{', '.join(SHAPES)}); --backend tensorflow builds it with Keras"
            )
        if arguments.get("dtype") not in (None, "float32"):
            raise BadInputError(f"{where}: only float32 layers are predicted without Keras")
        prefix = snake_case(class_name)
        layer_name = arguments.get("name")
        if not layer_name:  # keras.src.utils.naming.auto_name: a name given counts for nothing
            layer_name = f"{prefix}_{counters[prefix]}" if prefix in counters else prefix
            counters[prefix] = counters.get(prefix, 0) + 1
        specs: dict[str, tuple[InitializerSpec, int]] = {}
        cell_seed = CELL_SEED_GENERATOR.get(class_name) if arguments.get("seed") is None else None
        if cell_seed == "before":
            python_random.randint(1, 10**9)
        for argument in CONSTRUCTION_ORDER.get(class_name, ()):
            spec = _initializer(arguments.get(argument, DEFAULTS[class_name][argument]), f"{where}: {argument}")
            drawn = spec.seed
            if spec.family.random and drawn is None:
                drawn = python_random.randint(1, 10**9)
            specs[argument] = (spec, drawn if drawn is not None else 0)
        if cell_seed == "after":
            python_random.randint(1, 10**9)
        forget_bias = class_name == "LSTM" and arguments.get("unit_forget_bias", True)
        if forget_bias and specs["bias_initializer"][0].family.random:
            raise BadInputError(f"{where}: LSTM unit_forget_bias with a random bias initializer is not predicted")
        trigger = SEED_GENERATORS.get(class_name)
        if trigger is not None and arguments.get(trigger, 0) > 0 and arguments.get("seed") is None:
            python_random.randint(1, 10**9)
        shape, sizes = SHAPES[class_name](arguments, shape, where)
        settings = {key: arguments.get(key, _KERAS_SETTINGS.get(key)) for key in SETTINGS.get(class_name, ())}
        slots = LAYER_SLOTS.get(RNN_CELLS.get(class_name, class_name))
        for slot in slots(arguments) if slots is not None else []:
            spec, drawn = specs[str(slot.argument)]
            weights.append(
                PredictedWeight(
                    layer_name,
                    class_name,
                    slot.name,
                    sizes[slot.name],
                    spec,
                    drawn,
                    str(slot.argument),
                    settings,
                    forget_bias=bool(forget_bias) and slot.name == "bias",
                )
            )
    total = sum(math.prod(w.shape) for w in weights)
    if total > MAX_PREDICTED_PARAMETERS:
        raise BadInputError(
            f"{source}: the model declares {total} parameters, more than the {MAX_PREDICTED_PARAMETERS} initcli builds"
        )
    return name, weights


def draw(weight: PredictedWeight, backend: str) -> np.ndarray:
    """The weight's initial values on `backend`."""
    if weight.forget_bias:
        units = weight.shape[0] // 4
        part = draw_whole(weight.spec, (units,), "float32", weight.seed, backend)
        rest = draw_whole(weight.spec, (2 * units,), "float32", weight.seed, backend)
        return np.concatenate([part, np.ones(units, np.float32), rest])
    return draw_whole(weight.spec, weight.shape, "float32", weight.seed, backend)


def predict(document: Any, source: str, seed: int | None, backend: str) -> dict[str, np.ndarray]:
    """Every weight's values, by `layer/weight` (Keras's `variable.path` in a Sequential)."""
    _, weights = plan(document, source, seed)
    return {f"{w.layer}/{w.weight}": draw(w, backend) for w in weights}


def _seed_note(weight: PredictedWeight, seed: int | None, backend: str) -> str:
    origin = "its config's" if weight.spec.seed is not None else f"drawn after set_random_seed({seed})"
    if seed is None and weight.spec.seed is None:
        origin = "drawn at random (no --seed)"
    from initcli.initializers.backends import backend_flags

    return f"seed {weight.seed} ({origin}): `initcli sample --seed {weight.seed} {backend_flags(backend)}` draws it"


def open_predicted(path: Path, seed: int | None, backend: str) -> ModelFile:
    """The `ModelFile` of the spec at `path` as Keras would build it on `backend`, values drawn when read."""
    from initcli.safety.documents import load_document

    document = load_document(path, "spec")
    name, weights = plan(document, str(path), seed)

    def reader(weight: PredictedWeight) -> Callable[[], np.ndarray]:
        return lambda: draw(weight, backend)

    def records() -> Iterator[WeightRecord]:
        for weight in weights:
            yield WeightRecord(
                # named as Keras names it after loading the saved model: a Sequential's layers unscoped
                path=f"{weight.layer}/{weight.weight}",
                layer=weight.layer,
                layer_class=weight.layer_class,
                weight=weight.weight,
                shape=weight.shape,
                dtype="float32",
                read=reader(weight),
                initializer=weight.spec.to_dict(),
                argument=weight.argument,
                default_initializer=DEFAULTS[weight.layer_class][weight.argument],
                settings=dict(weight.settings),
                notes=[_seed_note(weight, seed, backend)] if weight.spec.family.random else [],
            )

    from initcli.initializers.backends import keras_prefix

    note = f"Predicted without Keras for {keras_prefix(backend).rstrip(': ')} (CPU): see docs/backends.md."
    return ModelFile(str(path), "keras", None, records, lambda: None, [note])


def fresh_records(saved: ModelFile, seed: int | None, backend: str) -> list[WeightRecord]:
    """`--fresh --backend jax|torch`: the saved model rebuilt from its Keras 3 config after
    `set_random_seed(seed)`, without Keras: each saved weight with the values Keras would draw.

    The layers are constructed in the config's order (as `Sequential.from_config` and Functional's
    do), each resolving its initializers as its `__init__` does; the shapes are the saved ones.

    Raises:
        BadInputError: no Keras 3 config, or a layer whose construction is not followed here.
    """
    import dataclasses

    config = saved.config
    if config is None or not (saved.keras_version or "").startswith("3"):
        raise BadInputError(
            f"--fresh --backend {backend} rebuilds a Keras 3 model's config without Keras; {saved.source} has none "
            "(--backend tensorflow rebuilds it with Keras)"
        )
    layers = (config.get("config") or {}).get("layers") if isinstance(config, Mapping) else None
    if config.get("class_name") not in ("Sequential", "Functional") or not isinstance(layers, list):
        raise BadInputError(
            f"--fresh --backend {backend}: {saved.source}'s config is not a Sequential or Functional model"
        )
    python_random = random.Random(seed) if seed is not None else random.Random()
    drawn: dict[tuple[str, str], tuple[InitializerSpec, int]] = {}
    for index, layer in enumerate(layers):
        class_name = layer.get("class_name") if isinstance(layer, Mapping) else None
        arguments = layer.get("config") if isinstance(layer, Mapping) else None
        if not isinstance(class_name, str) or not isinstance(arguments, Mapping):
            raise BadInputError(f"--fresh --backend {backend}: layers[{index}] of {saved.source} is not a layer config")
        followed = class_name in CONSTRUCTION_ORDER or class_name in SEED_GENERATORS or class_name in NO_DRAWS
        if not followed or class_name in CELL_SEED_GENERATOR:  # recurrent: predicted in specs only
            raise BadInputError(
                f"--fresh --backend {backend}: {saved.source}'s layers[{index}] is {class_name}, whose construction "
                "is not followed without Keras (--backend tensorflow rebuilds it with Keras)"
            )
        for argument in CONSTRUCTION_ORDER.get(class_name, ()):
            spec = _initializer(arguments.get(argument, DEFAULTS[class_name][argument]), f"layers[{index}]: {argument}")
            value = spec.seed
            if spec.family.random and value is None:
                value = python_random.randint(1, 10**9)
            drawn[(str(arguments.get("name")), argument)] = (spec, value if value is not None else 0)
        trigger = SEED_GENERATORS.get(class_name)
        if trigger is not None and (arguments.get(trigger) or 0) > 0 and arguments.get("seed") is None:
            python_random.randint(1, 10**9)
    out = []
    for record in saved.records():
        found = drawn.get((record.layer, str(record.argument)))
        if found is None:
            raise BadInputError(f"--fresh --backend {backend}: {record.path} has no initializer in the config")
        spec, value = found

        def read(record: WeightRecord = record, spec: InitializerSpec = spec, value: int = value) -> np.ndarray:
            return draw_whole(spec, record.shape, record.dtype, value, backend)

        out.append(dataclasses.replace(record, read=read, read_chunks=None))
    return out
