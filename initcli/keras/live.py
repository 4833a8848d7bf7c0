"""A live Keras model's state as `model.save("x.keras")` would write it, taken from memory.

`capture(model)` asks the model's own Keras (Keras 3, or tf_keras / Keras 2) for the two things a
`.keras` archive holds: `config.json` (the library's own serialization of the model, as its saver
makes it) and the `model.weights.h5` tree. For the tree it runs the library's own saver walk
(`saving_lib._save_state`) with a store that keeps each variable instead of writing it, so the groups,
their `vars` names and the variables' order are Keras's, by construction. Nothing is written; Keras 3
variables are converted to numpy only when a record is read (tf_keras hands its saver numpy copies).

The walk is a private part of Keras's saver: when a version changes it, `capture` raises
`LiveModelUnsupported` and the caller saves the model to a file instead.

Keras is never imported here: the library is the one the model's class comes from.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class LiveModelUnsupported(Exception):
    """This model's Keras has no saver walk initcli knows; save the model to a file instead."""


@dataclass
class Group:
    """One `vars` group of the weights tree: its attributes and its variables, by key ("0", "1", ...)."""

    attrs: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    named: bool = False  # Keras 3 creates a group with a name even when it gets no variable

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[str(key)] = value

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __contains__(self, key: object) -> bool:
        return key in self.values

    def __len__(self) -> int:
        return len(self.values)

    def keys(self) -> Any:
        return self.values.keys()


@dataclass(frozen=True)
class Captured:
    """What `model.save()` would write, from memory."""

    library: str  # "keras" or "tf_keras"
    keras_version: str
    config_json: str
    groups: dict[str, Group]  # inner path ("" for the model, "layers/dense") -> its vars group
    to_numpy: Callable[[Any], np.ndarray]
    dtype_of: Callable[[Any], str]


def library_of(model: Any) -> str:
    """`keras` or `tf_keras`: the package the model's class (or the Keras class it extends) comes from."""
    for klass in type(model).__mro__:
        root = klass.__module__.split(".", 1)[0]
        if root in ("keras", "tf_keras"):
            return root
    raise LiveModelUnsupported(f"{type(model).__name__} is not a Keras model class")


def capture(model: Any) -> Captured:
    """The model's config.json text and weights tree, as its library's saver would write them.

    Raises:
        LiveModelUnsupported: the library's saver is not one initcli knows.
        Exception: whatever Keras raises for a model it cannot serialize.
    """
    root = library_of(model)
    library = sys.modules.get(root) or importlib.import_module(root)
    version = str(getattr(library, "__version__", ""))
    try:
        saving_lib = importlib.import_module(f"{root}.src.saving.saving_lib")
    except ImportError as error:
        raise LiveModelUnsupported(f"{root} {version} has no saving_lib ({error})") from None
    if root == "keras" and version.startswith("3."):
        return _capture_keras3(model, library, saving_lib, version)
    return _capture_keras2(model, root, saving_lib, version)


def _capture_keras3(model: Any, library: Any, saving_lib: Any, version: str) -> Captured:
    store_class = getattr(saving_lib, "H5IOStore", None)
    serialize = getattr(saving_lib, "_serialize_model_as_json", None)
    save_state = getattr(saving_lib, "_save_state", None)
    if not (isinstance(store_class, type) and callable(serialize) and callable(save_state)):
        raise LiveModelUnsupported(f"keras {version}: its saver's walk is not the one initcli knows")
    groups: dict[str, Group] = {}

    class Store(store_class):  # type: ignore[misc,valid-type]  # the saver accepts only its own stores
        """Keeps each variable the saver hands over (Keras 3 makes a group lazily unless it is named)."""

        def __init__(self) -> None:  # no HDF5 file
            self.mode = "w"

        def __bool__(self) -> bool:
            return True

        def make(self, path: str, metadata: dict[str, Any] | None = None) -> Group:
            group = Group(attrs=dict(metadata or {}), named=bool(metadata))
            groups[path.strip("/")] = group
            return group

        def close(self) -> None:
            pass

    config_json, _metadata = serialize(model)
    save_state(model, weights_store=Store(), assets_store=None, inner_path="", visited_saveables=set())
    kept = {path: group for path, group in groups.items() if group.named or group.values}
    backend = library.backend

    def dtype_of(value: Any) -> str:
        return str(backend.standardize_dtype(value.dtype))

    def to_numpy(value: Any) -> np.ndarray:
        return np.asarray(library.ops.convert_to_numpy(value))

    return Captured("keras", version, config_json, kept, to_numpy, dtype_of)


def _capture_keras2(model: Any, root: str, saving_lib: Any, version: str) -> Captured:
    save_state = getattr(saving_lib, "_save_state", None)
    enabled = getattr(saving_lib, "_SAVING_V3_ENABLED", None)
    try:
        serialization_lib = importlib.import_module(f"{root}.src.saving.serialization_lib")
    except ImportError:
        serialization_lib = None
    if not callable(save_state) or enabled is None or serialization_lib is None:
        raise LiveModelUnsupported(f"{root} {version}: its saver's walk is not the one initcli knows")
    groups: dict[str, Group] = {}

    class Store:
        """Keeps each value the saver hands over (tf_keras makes every group at once)."""

        def make(self, path: str) -> Group:
            group = Group(named=True)
            groups[path.strip("/")] = group
            return group

    before = getattr(enabled, "value", False)
    enabled.value = True  # as saving_lib.save_model does: the layers serialize themselves for .keras
    try:
        with serialization_lib.ObjectSharingScope():
            config_json = json.dumps(serialization_lib.serialize_keras_object(model))
        save_state(model, weights_store=Store(), assets_store=None, inner_path="", visited_trackables=set())
    finally:
        enabled.value = before

    def dtype_of(value: Any) -> str:
        return str(np.asarray(value).dtype) if not hasattr(value, "dtype") else str(np.dtype(value.dtype))

    return Captured(root, version, config_json, groups, np.asarray, dtype_of)


def copy_model(model: Any, label: str) -> Any:
    """A private Keras 3 copy of the model, to run: saved to a temporary `.keras` file by its own Keras
    and loaded back by Keras 3, as `initcli propagate` loads that file.

    The copy is what loading the file `model.save("x.keras")` writes gives (the variables' paths
    included), so a run on it equals a run on that file; the user's model is never touched. A Keras 3
    model that cannot make that round trip is cloned (`clone_model`, then `set_weights`) instead.

    Raises:
        InitcliError: a model that can be neither reloaded nor cloned: save it and pass the file.
    """
    from initcli.errors import InitcliError
    from initcli.keras.bridge import import_keras
    from initcli.keras.building import scratch_directory

    keras = import_keras()
    root = library_of(model)
    reason = ""
    try:
        with scratch_directory() as scratch:
            path = str(scratch / "model.keras")
            model.save(path)
            return keras.saving.load_model(path, compile=False, safe_mode=False)  # our file of the user's model
    except Exception as error:  # noqa: BLE001 - Keras raises many types for models it cannot save or reload
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if root == "keras":
        try:
            clone = keras.models.clone_model(model)
            clone.set_weights(model.get_weights())
            return clone
        except Exception as error:  # noqa: BLE001 - Keras raises many types for models it cannot clone
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise InitcliError(f"{label}: Keras 3 cannot copy this model to run it ({reason}); save it and pass the file")
