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
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from initcli.documents import load_document
from initcli.errors import InitcliError

_FUNCTION_REFERENCE = re.compile(r"^(?P<target>[^:]+):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")


def is_function_reference(text: str) -> bool:
    """`package.module:function` or `path/to/file.py:function`."""
    return _FUNCTION_REFERENCE.match(text) is not None and not Path(text).exists()


def _keras(seed: int | None) -> Any:
    from initcli.keras_bridge import import_keras

    keras = import_keras()
    # Layer names (dense, dense_1, ...) come from process-wide counters: reset them so a build
    # names its layers as a fresh process would.
    keras.backend.clear_session()
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


def _build_layers(keras: Any, entries: Any, where: str) -> list[Any]:
    if not isinstance(entries, list) or not entries:
        raise InitcliError(f"{where}: expected a non-empty list of layers")
    built = []
    for index, entry in enumerate(entries):
        location = f"{where}[{index}]"
        class_name, arguments = _layer_entry(entry, location)
        if class_name == "Lambda":
            raise InitcliError(f"{location}: Lambda layers run arbitrary code and are not built from specs")
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
    keras = _keras(seed)
    if isinstance(document, Mapping) and "class_name" in document and "config" in document:
        try:
            model = keras.models.model_from_json(json.dumps(document))
        except Exception as error:  # Keras raises many types for a bad model JSON
            raise InitcliError(f"{path}: Keras cannot build this model JSON: {_first_line(error)}") from None
        return _ensure_built(model, path)
    if not isinstance(document, Mapping):
        raise InitcliError(f"{path}: a spec is a mapping with `input_shape` and `layers`")
    unknown = set(document) - {"input_shape", "layers", "name"}
    if unknown:
        raise InitcliError(f"{path}: unknown spec keys {', '.join(sorted(unknown))}")
    input_shape = document.get("input_shape")
    if not isinstance(input_shape, list) or not all(isinstance(d, int) or d is None for d in input_shape):
        raise InitcliError(f"{path}: `input_shape` must be a list of integers (without the batch dimension)")
    layers = _build_layers(keras, document.get("layers"), f"{path}: layers")
    try:
        return keras.Sequential([keras.Input(tuple(input_shape)), *layers], name=document.get("name", "spec"))
    except Exception as error:  # shape mismatches surface as ValueError or framework errors
        raise InitcliError(f"{path}: Keras cannot build this model: {_first_line(error)}") from None


def build_from_function(reference: str, seed: int | None) -> Any:
    """Call `package.module:function` or `path/file.py:function`, which returns a Keras model."""
    match = _FUNCTION_REFERENCE.match(reference)
    if match is None:
        raise InitcliError(f"{reference!r} is not `module:function` or `file.py:function`")
    target, function_name = match.group("target"), match.group("function")
    keras = _keras(seed)
    try:
        if target.endswith(".py"):
            file = Path(target)
            if not file.is_file():
                raise InitcliError(f"{file}: no such file")
            spec = importlib.util.spec_from_file_location(f"initcli_user_{file.stem}", file)
            if spec is None or spec.loader is None:
                raise InitcliError(f"Cannot load {file}")
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(file.resolve().parent))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(file.resolve().parent))
        else:
            module = importlib.import_module(target)
    except InitcliError:
        raise
    except Exception as error:  # the user's module failed to import
        raise InitcliError(f"Importing {target} failed: {type(error).__name__}: {_first_line(error)}") from None
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


def rebuild_fresh(config: Mapping[str, Any], seed: int | None) -> Any:
    """Re-create a saved model from its config, freshly initialized (safe mode: no Lambda code)."""
    keras = _keras(seed)
    try:
        model = keras.saving.deserialize_keras_object(dict(config), safe_mode=True)
    except Exception as error:  # custom or unsafe layers
        raise InitcliError(f"Keras cannot rebuild the model from its config: {_first_line(error)}") from None
    return _ensure_built(model, "the saved config")


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
