"""Build Keras models from specs, model JSON or Python code (the only module that needs Keras).

A spec is YAML or JSON:

    input_shape: [28, 28, 1]
    layers:
      - Conv2D: {filters: 8, kernel_size: 3}
      - class_name: Flatten
      - Dense: {units: 10, kernel_initializer: he_normal}
      - Sequential:                      # nested models: a `layers` list of their own
          layers: [{Dense: {units: 4}}]

A Keras model JSON (`model.to_json()`) is recognized by its top-level `class_name` and `config`.
Built models are saved to a temporary `.keras` file and inspected like any saved model.

Specs and saved configs are untrusted: they are built only from arguments that cannot name files,
paths or code (no Lambda, TFSMLayer, Jax/Flax/Torch wrappers, custom objects, vocabularies read
from files, path-like strings), and only if the model they declare has at most
`MAX_BUILT_PARAMETERS` parameters, counted before any weight is allocated.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from initcli.errors import InitcliError
from initcli.safety import budget
from initcli.safety.documents import load_document

MAX_BUILT_PARAMETERS = 150_000_000
REFUSED_CLASSES = {
    "Lambda": "run arbitrary code",
    "TFSMLayer": "load a SavedModel from disk",
    "JaxLayer": "wrap arbitrary code",
    "FlaxLayer": "wrap arbitrary code",
    "TorchModuleWrapper": "wrap arbitrary code",
}
REFUSED_ARGUMENTS = {"filepath", "function", "call_fn", "init_fn", "call_endpoint", "call_training_endpoint"}
FILE_ARGUMENTS = {"vocabulary", "idf_weights"}
_YOURS = " (--custom-objects MODULE imports your classes)"

_FUNCTION_REFERENCE = re.compile(r"^(?P<target>[^:]+):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")


def is_function_reference(text: str) -> bool:
    """`package.module:function` or `path/to/file.py:function`."""
    return _FUNCTION_REFERENCE.match(text) is not None and not Path(text).exists()


def clear_session(keras: Any) -> None:
    """Keras's `clear_session` without the `gc.collect()` it makes by default.

    With TensorFlow loaded a collection takes 0.3-0.8 s, most of a small model's `--fresh`, and
    nothing here needs that memory back at once (the parameter-counting probe allocates no values).
    """
    try:
        keras.backend.clear_session(free_memory=False)
    except TypeError:  # a Keras 3 before `free_memory`
        keras.backend.clear_session()


def _keras(seed: int | None) -> Any:
    from initcli.keras.bridge import import_keras

    keras = import_keras()
    # Layer names (dense, dense_1, ...) come from process-wide counters: reset them so a build
    # names its layers as a fresh process would.
    clear_session(keras)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras


def _layer_entry(entry: Any, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, Mapping) and "class_name" in entry:
        arguments = {k: v for k, v in entry.items() if k != "class_name"}
        return str(entry["class_name"]), arguments
    if isinstance(entry, Mapping) and len(entry) == 1:
        class_name, arguments = next(iter(entry.items()))
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise InitcliError(f"{where}: arguments of {class_name} must be a mapping")
        return str(class_name), dict(arguments)
    raise InitcliError(f"{where}: expected `ClassName: {{arguments}}` or a mapping with `class_name`")


def _declared_layers(document: Any) -> int:
    """How many layers a spec or model JSON declares, nested Sequential and Functional models included."""
    count = 0
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            stack += value.values()
            layers = value.get("layers")
            if isinstance(layers, list):
                count += len(layers)
        elif isinstance(value, list):
            stack += value
    return count


def _build_layers(keras: Any, entries: Any, where: str) -> list[Any]:
    if not isinstance(entries, list) or not entries:
        raise InitcliError(f"{where}: expected a non-empty list of layers")
    built = []
    for index, entry in enumerate(entries):
        location = f"{where}[{index}]"
        class_name, arguments = _layer_entry(entry, location)
        if class_name in REFUSED_CLASSES:
            raise InitcliError(
                f"{location}: {class_name} layers {REFUSED_CLASSES[class_name]} and are not built from specs"
            )
        check_arguments(arguments, location)
        if class_name == "Sequential":
            inner = arguments.pop("layers", None)
            built.append(keras.Sequential(_build_layers(keras, inner, f"{location}.layers"), **arguments))
            continue
        layer_class = getattr(keras.layers, class_name, None)
        if layer_class is None or not isinstance(layer_class, type):
            raise InitcliError(f"{location}: unknown layer class {class_name!r}")
        try:
            built.append(layer_class(**arguments))
        except (TypeError, ValueError) as error:
            raise InitcliError(f"{location}: {class_name}: {error}") from None
    return built


def build_from_spec(path: Path, seed: int | None) -> Any:
    """A freshly initialized model from a spec file or a Keras model JSON.

    Raises:
        InitcliError: with Keras's reason and the spec location (`layers[2]`) for bad specs.
    """
    document = load_document(path, "spec")
    # Counted before Keras builds anything: building thousands of layers alone takes minutes.
    budget.active().check_layers(_declared_layers(document), str(path))
    keras = _keras(seed)
    if isinstance(document, Mapping) and "class_name" in document and "config" in document:
        check_arguments(document, str(path))

        def from_json() -> Any:
            try:
                return keras.models.model_from_json(json.dumps(document))
            except Exception as error:  # Keras raises many types for a bad model JSON
                raise InitcliError(f"{path}: Keras cannot build this model JSON: {_first_line(error)}") from None

        return _ensure_built(_within_budget(keras, from_json, seed, str(path)), path)
    if not isinstance(document, Mapping):
        raise InitcliError(f"{path}: a spec is a mapping with `input_shape` and `layers`")
    unknown = set(document) - {"input_shape", "layers", "name"}
    if unknown:
        raise InitcliError(f"{path}: unknown spec keys {', '.join(sorted(unknown))}")
    input_shape = document.get("input_shape")
    if not isinstance(input_shape, list) or not all(isinstance(d, int) or d is None for d in input_shape):
        raise InitcliError(f"{path}: `input_shape` must be a list of integers (without the batch dimension)")
    if any(d is not None and d < 0 for d in input_shape):
        raise InitcliError(f"{path}: `input_shape` has a negative dimension")
    name = document.get("name", "spec")
    if not isinstance(name, str):
        raise InitcliError(f"{path}: `name` must be text")

    def from_spec() -> Any:
        layers = _build_layers(keras, document.get("layers"), f"{path}: layers")
        try:
            return keras.Sequential([keras.Input(tuple(input_shape)), *layers], name=name)
        except Exception as error:  # shape mismatches surface as ValueError or framework errors
            raise InitcliError(f"{path}: Keras cannot build this model: {_first_line(error)}") from None

    return _within_budget(keras, from_spec, seed, str(path))


def build_from_function(reference: str, seed: int | None) -> Any:
    """Call `package.module:function` or `path/file.py:function`, which returns a Keras model."""
    match = _FUNCTION_REFERENCE.match(reference)
    if match is None:
        raise InitcliError(f"{reference!r} is not `module:function` or `file.py:function`")
    target, function_name = match.group("target"), match.group("function")
    keras = _keras(seed)
    with _restored_process_state():
        return _call_model_function(keras, reference, target, function_name)


def import_user_module(
    target: str, *, module_prefix: str, label: str = "", missing: type[InitcliError] = InitcliError
) -> Any:
    """Import the user's code: a `path/file.py`, or a dotted module found as `python -m` would.

    `module_prefix` names a file's module (`{module_prefix}{stem}`); `label` starts the one-line
    errors; `missing` is the error for a file that is not there. Errors of the user's module itself
    propagate to the caller, which words them.
    """
    if target.endswith(".py"):
        file = Path(target)
        if not file.is_file():
            raise missing(f"{label}{file}: no such file")
        spec = importlib.util.spec_from_file_location(f"{module_prefix}{file.stem}", file)
        if spec is None or spec.loader is None:
            raise InitcliError(f"{label}{'cannot' if label else 'Cannot'} load {file}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(file.resolve().parent))
        spec.loader.exec_module(module)
        return module
    # As `python -m` would: modules are found from the current directory first.
    sys.path.insert(0, os.getcwd())
    return importlib.import_module(target)


def _call_model_function(keras: Any, reference: str, target: str, function_name: str) -> Any:
    try:
        module = import_user_module(target, module_prefix="initcli_user_")
    except InitcliError:
        raise
    except Exception as error:  # the user's module failed to import
        hint = f" (looked in the current directory {os.getcwd()} and on sys.path, as `python -m` would)"
        found = f"Importing {target} failed: {type(error).__name__}: {_first_line(error)}"
        raise InitcliError(found + (hint if isinstance(error, ModuleNotFoundError) else "")) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InitcliError(f"{target} has no function {function_name!r}")
    try:
        model = function()
    except Exception as error:  # the user's function failed
        raise InitcliError(f"{reference}() failed: {type(error).__name__}: {_first_line(error)}") from None
    if not isinstance(model, keras.Model):
        raise InitcliError(f"{reference}() returned {type(model).__name__}, not a keras.Model")
    return _ensure_built(model, reference)


def without_compile_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a saved config without its `compile_config` (anywhere in it).

    Deserializing a compiled model's config also compiles it, and Keras's optimizer creates its
    variables in `__init__`, which the parameter-counting probe's stateless scope forbids ("You are
    attempting to create a variable while in a stateless scope"). A rebuilt fresh model is only read
    for its weights: it needs no optimizer, loss or metrics.
    """
    copied = copy.deepcopy(dict(config))
    pending: list[Any] = [copied]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            item.pop("compile_config", None)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return copied


def rebuild_fresh(config: Mapping[str, Any], seed: int | None, keras_version: str | None = None) -> Any:
    """Re-create a saved model from its config, freshly initialized (safe mode: no Lambda code).

    A config written by tf.keras (`keras_version` 2.4+ or "-tf", `initcli.keras.eras`) or by
    multi-backend Keras 2.0-2.3 is rebuilt by tf_keras, which reads its arguments
    (`batch_input_shape`, ...) and draws as tf.keras does (where Keras 2 drew otherwise,
    `initcli.analysis.fresh.era_redrawn` re-draws); any other by Keras 3.

    Raises:
        InitcliError: a config naming code, files or custom objects, declaring more than
            MAX_BUILT_PARAMETERS parameters, or that Keras cannot build.
    """
    check_arguments(config, "the saved config")
    config = without_compile_config(config)
    from initcli.keras.eras import era_of

    if era_of(keras_version).line in ("tf.keras", "keras2"):
        return _rebuild_with_tf_keras(config, seed, keras_version)
    keras = _keras(seed)

    def rebuild() -> Any:
        try:
            # Keras consumes the config it deserializes: each build gets its own copy.
            if "module" not in config:
                # A legacy .h5 config (no `module` keys): Keras's own legacy reader. Lambda, custom and
                # path-naming layers were refused above, so nothing runs that the file names.
                from keras.src.legacy.saving import saving_utils

                return saving_utils.model_from_config(copy.deepcopy(config))
            return keras.saving.deserialize_keras_object(copy.deepcopy(config), safe_mode=True)
        except Exception as error:  # custom or unsafe layers
            raise InitcliError(f"Keras cannot rebuild the model from its config: {_first_line(error)}") from None

    return _ensure_built(_within_budget(keras, rebuild, seed, "the saved config"), "the saved config")


def no_config_reason(source: str, file_format: str, keras_version: str | None) -> str:
    """Why `--fresh` cannot rebuild a file without a model config, in one line (a Keras 1 config and a
    SavedModel's: `initcli.analysis.fresh.rebuild_source`)."""
    if file_format in ("weights.h5", "tf-checkpoint", "sharded-weights") or "weights" in file_format:
        return f"--fresh needs a model config; {source} holds weights only (--fresh rebuilds a .keras or full .h5)"
    return (
        f"--fresh needs the model config of a .keras or full .h5 file; {source} ({file_format}) has none initcli reads"
    )


def _rebuild_with_tf_keras(config: dict[str, Any], seed: int | None, keras_version: str | None) -> Any:
    """tf_keras rebuilds a tf.keras config; its parameters are counted first in a graph (no values)."""
    from initcli.keras.bridge import import_keras

    import_keras()  # TensorFlow, started quietly
    try:
        import tensorflow as tf
        import tf_keras
    except ImportError:
        raise InitcliError(
            f"--fresh rebuilds a file of Keras {keras_version} with tf_keras, which is not installed: "
            "pip install tf_keras"
        ) from None

    def rebuild() -> Any:
        try:
            if "module" not in config:
                return tf_keras.models.model_from_config(copy.deepcopy(config))
            return tf_keras.saving.deserialize_keras_object(copy.deepcopy(config), safe_mode=True)
        except Exception as error:  # custom or unsafe layers
            raise InitcliError(f"tf_keras cannot rebuild the model from its config: {_first_line(error)}") from None

    tf_keras.backend.clear_session()
    # In a graph, variables are declared, not allocated: the probe costs no memory for the values.
    from tensorflow.python.util import deprecation

    # deprecation.silence: tf_keras's graph-mode BatchNormalization logs a TensorFlow deprecation.
    with tf.Graph().as_default(), deprecation.silence():
        probe = rebuild()
        declared = sum(math.prod(int(d or 0) for d in variable.shape) for variable in probe.weights)
    del probe
    tf_keras.backend.clear_session()
    if declared > MAX_BUILT_PARAMETERS:
        raise InitcliError(
            f"the saved config: the model declares {declared} parameters, more than the "
            f"{MAX_BUILT_PARAMETERS} initcli builds"
        )
    if seed is not None:
        tf_keras.utils.set_random_seed(seed)
    return _ensure_built(rebuild(), "the saved config")


def check_arguments(value: Any, where: str) -> None:
    """Refuse layer arguments that could name files, paths or code, anywhere in a spec or config.

    Raises:
        InitcliError: naming the location and what is refused (exit 1, like every spec error).
    """
    error = InitcliError
    pending: list[tuple[Any, str]] = [(value, where)]
    while pending:
        item, location = pending.pop()
        if isinstance(item, Mapping):
            class_name = item.get("class_name")
            if isinstance(class_name, str) and class_name in REFUSED_CLASSES:
                raise error(
                    f"{location}: {class_name} layers {REFUSED_CLASSES[class_name]}; initcli does not build them"
                )
            module = item.get("module")
            if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
                found = f"{location}: custom object from module {module!r}"
                raise error(f"{found}; initcli builds only Keras's own{_YOURS}")
            registered = item.get("registered_name")
            if isinstance(registered, str) and ">" in registered:
                raise error(f"{location}: custom object {registered!r}; initcli builds only Keras's own{_YOURS}")
            for key, child in item.items():
                if key in REFUSED_ARGUMENTS:
                    raise error(f"{location}: argument {key!r} names code or files; initcli does not build it")
                if key in FILE_ARGUMENTS and isinstance(child, str):
                    raise error(f"{location}: {key} from a file is refused; give the values inline")
                pending.append((child, f"{location}.{key}"))
        elif isinstance(item, list):
            pending.extend((child, f"{location}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, str) and ("/" in item or "\\" in item or item.startswith("~")):
            raise error(f"{location}: {item[:80]!r} looks like a path; specs and configs may not name files")


def _within_budget(keras: Any, build: Callable[[], Any], seed: int | None, where: str) -> Any:
    """Build once without allocating weights to count parameters; then, within budget, for real."""
    from keras.src.backend.common.stateless_scope import StatelessScope

    with StatelessScope(initialize_variables=False):
        probe = build()
        declared = sum(math.prod(variable.shape) for variable in getattr(probe, "weights", []))
    del probe
    clear_session(keras)
    if declared > MAX_BUILT_PARAMETERS:
        raise InitcliError(
            f"{where}: the model declares {declared} parameters, more than the {MAX_BUILT_PARAMETERS} initcli builds"
        )
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return build()


@contextlib.contextmanager
def _restored_process_state() -> Iterator[None]:
    """Put sys.path and os.environ back as they were after running a user's model code."""
    saved_path = list(sys.path)
    saved_environment = dict(os.environ)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for key in set(os.environ) - set(saved_environment):
            del os.environ[key]
        for key, value in saved_environment.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def scratch_directory() -> Iterator[Path]:
    """A private `initcli-*` temporary folder, removed on return, error, Ctrl-C and SIGTERM."""
    directory = Path(tempfile.mkdtemp(prefix="initcli-"))
    previous = None
    if threading.current_thread() is threading.main_thread():

        def terminate(signum: int, frame: Any) -> None:
            raise SystemExit(128 + signum)

        previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _ensure_built(model: Any, where: Any) -> Any:
    if not model.built:
        raise InitcliError(f"{where}: the model has no input shape, so its weights do not exist yet")
    return model


def save_temporary(model: Any, directory: Path) -> Path:
    path = directory / "model.keras"
    model.save(path)
    return path


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return re.sub(r"\x1b\[[0-9;]*m", "", text[0] if text else type(error).__name__)
