"""`--custom-objects MODULE[:NAME]`: the user's own layer code, imported on request, so Keras rebuilds
a model with custom layers and says what every weight really is.

This is the one place initcli runs user code, and only the modules the user names on the command
line: a file never names code that runs (Keras itself imports only its own packages' modules by a
config's `module`, and initcli refuses a config whose custom objects the given modules do not
provide before Keras sees it). The model is loaded with `keras.saving.load_model(custom_objects=...,
safe_mode=True, compile=False)` while `Layer.add_weight` is watched, so each variable comes with
the initializer its layer passed (a custom layer's own `add_weight(initializer=...)` too). Keras's
own saving walk (`saving_lib._save_state`) run into a recorder gives each variable's location in
the weights file (`layers/<attribute>/.../vars/<i>`), which pairs it with the record initcli read.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initcli.errors import BadInputError, InitcliError


@dataclass(frozen=True)
class RealVariable:
    """One variable of the model Keras rebuilt with the user's code.

    Attributes:
        name: the variable's name (`kernel`, or what a custom `add_weight(name=...)` gave).
        owner: the owning layer's config entry as Keras serializes it (class_name, config, module, ...).
        owner_class: the owning layer's class name.
        custom: the owning layer's class is not Keras's own.
        initializer: the initializer its layer passed to `add_weight`, serialized ({class_name, config}).
        path: Keras's `variable.path` in the rebuilt model.
        file_names: the weights file records its layers' names (Keras 3.1 and tf_keras write none).
    """

    name: str
    owner: Mapping[str, Any]
    owner_class: str
    custom: bool
    initializer: Mapping[str, Any] | None
    path: str | None = None
    file_names: bool = True


def parse_reference(text: str) -> tuple[str, str | None]:
    """`package.module`, `package.module:Name`, `path/file.py` or `path/file.py:Name`."""
    target, _, name = text.partition(":")
    if not target or (name and not name.isidentifier()):
        raise BadInputError(f"--custom-objects {text!r}: expected MODULE or MODULE:NAME (or path/file.py[:NAME])")
    if not target.endswith(".py") and not all(part.isidentifier() for part in target.split(".")):
        raise BadInputError(f"--custom-objects {text!r}: {target!r} is not a module name or a .py file")
    return target, name or None


def _import(target: str) -> Any:
    from initcli.keras.building import import_user_module

    try:
        return import_user_module(
            target, module_prefix="initcli_custom_", label="--custom-objects: ", missing=BadInputError
        )
    except InitcliError:
        raise
    except Exception as error:  # the user's module failed to import
        message = str(error).strip().splitlines()
        raise InitcliError(
            f"--custom-objects: importing {target} failed: {type(error).__name__}: {message[0] if message else ''}"
        ) from None


def load_custom_objects(references: Sequence[str]) -> dict[str, Any]:
    """The classes the named modules define (or the one NAME), by class name and registered name."""
    from initcli.keras.bridge import import_keras
    from initcli.keras.building import _restored_process_state

    keras = import_keras()
    bases = (
        keras.layers.Layer,
        keras.initializers.Initializer,
        keras.regularizers.Regularizer,
        keras.constraints.Constraint,
    )
    objects: dict[str, Any] = {}
    for reference in references:
        target, name = parse_reference(reference)
        with _restored_process_state():
            module = _import(target)
        if name is not None:
            found = getattr(module, name, None)
            if found is None:
                raise BadInputError(f"--custom-objects {reference!r}: {target} has no {name!r}")
            chosen = [found]
        else:
            chosen = [
                value
                for value in vars(module).values()
                if inspect.isclass(value) and issubclass(value, bases) and value.__module__ == module.__name__
            ]
            if not chosen:
                raise BadInputError(f"--custom-objects {reference!r}: {target} defines no Keras layer or initializer")
        for value in chosen:
            objects[getattr(value, "__name__", str(value))] = value
            objects[keras.saving.get_registered_name(value)] = value
    return objects


_KERAS_PACKAGES = ("keras", "keras_hub", "keras_cv", "keras_nlp")


def refuse_unprovided(config: Any, objects: Mapping[str, Any]) -> None:
    """Refuse a config naming a custom object the given modules do not provide (before Keras sees it)."""
    pending = [config]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            module = item.get("module")
            registered = item.get("registered_name")
            class_name = item.get("class_name")
            custom = (
                (isinstance(registered, str) and ">" in registered)
                or (module is None and isinstance(registered, str) and isinstance(class_name, str))
                or (
                    isinstance(module, str)
                    and module.split(".")[0] not in ("keras", "keras_hub", "keras_cv", "keras_nlp")
                )
            )
            if custom and registered not in objects and class_name not in objects:
                shown = registered if isinstance(registered, str) else class_name
                raise InitcliError(
                    f"the model uses custom object {shown!r} (module {module!r}), which no --custom-objects "
                    "module provides; initcli imports only the modules named on the command line"
                )
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


@contextlib.contextmanager
def _watched_add_weight(keras: Any, seen: dict[int, Any]) -> Iterator[None]:
    """Record the initializer every `Layer.add_weight` call passes, by the variable it returns."""
    layer_class = keras.layers.Layer
    original = layer_class.add_weight
    signature = inspect.signature(original)

    @functools.wraps(original)
    def add_weight(self: Any, *args: Any, **kwargs: Any) -> Any:
        variable = original(self, *args, **kwargs)
        try:
            bound = signature.bind(self, *args, **kwargs)
            initializer = bound.arguments.get("initializer")
            if initializer is None and len(bound.arguments.get("args", ())) > 1:
                initializer = bound.arguments["args"][1]
        except TypeError:
            initializer = None
        seen[id(variable)] = initializer
        return variable

    layer_class.add_weight = add_weight
    try:
        yield
    finally:
        layer_class.add_weight = original


def _serialized_initializer(keras: Any, initializer: Any, dtype: str) -> Mapping[str, Any] | None:
    if initializer is None:
        # Layer.add_weight's own default (keras/src/layers/layer.py).
        initializer = "glorot_uniform" if "float" in str(dtype) else "zeros"
    try:
        serialized = keras.saving.serialize_keras_object(keras.initializers.get(initializer))
    except Exception:  # noqa: BLE001 - a callable Keras cannot serialize: unknown
        return None
    if not isinstance(serialized, Mapping):
        return None
    return {"class_name": serialized.get("class_name"), "config": serialized.get("config", {})}


def _locations(keras: Any, model: Any) -> dict[str, Any]:
    """Where Keras's saving walk puts each variable: `layers/.../vars/<i>` -> variable."""
    from keras.src.saving import saving_lib

    found: dict[str, Any] = {}

    class Recorder(saving_lib.H5IOStore):
        def __init__(self) -> None:  # no file: only the walk
            self.path = ""

        def make(self, path: str, metadata: Any = None) -> Any:
            return _Entry(found, f"{path}/vars" if path else "vars")

        def close(self) -> None:
            pass

        def __bool__(self) -> bool:
            return True

        def __len__(self) -> int:
            return 1

    saving_lib._save_state(model, weights_store=Recorder(), assets_store=None, inner_path="", visited_saveables=set())
    return found


class _Entry:
    def __init__(self, found: dict[str, Any], prefix: str) -> None:
        self.found = found
        self.prefix = prefix

    def __setitem__(self, key: str, value: Any) -> None:
        self.found[f"{self.prefix}/{key}"] = value

    def __getitem__(self, key: str) -> Any:
        return self.found[f"{self.prefix}/{key}"]

    def keys(self) -> list[str]:
        return [k.rsplit("/", 1)[-1] for k in self.found if k.startswith(self.prefix + "/")]


def real_variables(path: Path, objects: Mapping[str, Any]) -> dict[str, RealVariable]:
    """Every variable of the model file Keras loads with the user's classes, by weights-file location."""
    from initcli.keras.bridge import import_keras

    keras = import_keras()
    keras.backend.clear_session()
    seen: dict[int, Any] = {}
    try:
        with (
            warnings.catch_warnings(),
            keras.saving.custom_object_scope(dict(objects)),
            _watched_add_weight(keras, seen),
        ):
            # Keras warns about custom layers without a build(); initcli's stderr is for its own messages.
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(path, custom_objects=dict(objects), compile=False, safe_mode=True)
    except Exception as error:  # the user's code or Keras failed to rebuild the model
        message = str(error).strip().splitlines()
        raise InitcliError(
            f"Keras cannot load {path} with the given --custom-objects: "
            f"{type(error).__name__}: {message[0] if message else ''}"
        ) from None
    owners: dict[int, Any] = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
            owners.setdefault(id(variable), layer)
    named = _records_layer_names(path)
    out = {}
    for location, variable in _locations(keras, model).items():
        layer = owners.get(id(variable))
        if layer is None:
            continue
        entry = keras.saving.serialize_keras_object(layer)
        module = entry.get("module") if isinstance(entry, Mapping) else None
        registered = entry.get("registered_name") if isinstance(entry, Mapping) else None
        custom = (isinstance(registered, str) and ">" in registered) or not (
            isinstance(module, str) and module.split(".")[0] == "keras"
        )
        out[location] = RealVariable(
            name=variable.name,
            owner=entry if isinstance(entry, Mapping) else {},
            owner_class=type(layer).__name__,
            custom=custom,
            initializer=_serialized_initializer(keras, seen.get(id(variable)), variable.dtype),
            path=variable.path,
            file_names=named,
        )
    return out


def _records_layer_names(path: Path) -> bool:
    """Whether the archive's weights file names its layers (`vars` groups with a `name` attribute)."""
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw, h5py.File(raw, "r") as weights:
        found = weights.visititems(
            lambda name, item: (
                True
                if isinstance(item, h5py.Group) and name.endswith("vars") and item.attrs.get("name") is not None
                else None
            )
        )
    return bool(found)
