"""A live Keras model's state as `model.save("x.keras")` would write it, taken from memory.

`capture(model)` asks the model's own Keras (Keras 3, or tf_keras / Keras 2) for the two things a
`.keras` archive holds, through its public API where it has one:

- `config.json`: `keras.saving.serialize_keras_object(model)` (public in Keras 3 and tf_keras; the
  saver calls the same function; it adds `shared_object_id` keys for objects used twice, which
  name no weight and which initcli does not read);
- the `model.weights.h5` tree: each layer's public `save_own_variables(store)` fills its `vars`
  group, and the saver's own walk (`saving_lib._save_state`, private) says where each group sits
  (`layers/dense`, `layers/bidirectional/forward_layer/cell`...). No public API gives those names:
  they are the attributes that hold each sublayer (not the variables' `v.path` scopes: a
  Bidirectional LSTM's `forward_lstm/lstm_cell` is `forward_layer/cell` in the file), so the walk
  is run into a store that keeps each variable instead of writing it.

Why the saver's private walk stays (issue 28 asked for public API; each was tried on Keras 3.15.1
and tf_keras 2.21, and none gives the file's group paths from memory):

- `keras.saving.save_model(model, io.BytesIO())` (and tf_keras's): refused, "Invalid filepath
  extension for saving"; only the private `saving_lib.save_model` takes a file object, and tf_keras's
  none. Saving to a temporary file is public, but writes every weight a second time: that is the
  fallback (`initcli.public.saved_model`), not the in-memory path;
- `model.get_state_tree()` (Keras 3): keyed by the variables' `v.path` scopes
  (`s/bidirectional/forward_lstm/lstm_cell/kernel` where the file has
  `layers/bidirectional/forward_layer/cell/vars/0`), and it raises AttributeError on a model that
  was never compiled;
- `keras.saving.KerasFileEditor`: reads a saved `.keras` or `.weights.h5` file only;
- walking `model.layers` / `layer.weights` / `variable.path`: gives the `v.path` scopes, not the
  attributes that hold each sublayer. Rebuilding the saver's walk from public names (`dir(layer)`
  minus `dir(keras.layers.Layer())`, private attributes last, list items named by their snake-cased
  class with `_1`, `_2`...) would copy Keras's private algorithm into initcli, where a Keras release
  that changes it would give wrong paths silently; Keras's own walk gives the paths of the file that
  Keras version writes, and any change of its signature falls back to saving (below).

What the walk found is then checked against the model's public `model.weights`: every weight must
be in the tree exactly once (Keras 3: the same variable objects; tf_keras, whose layers hand their
saver numpy copies: the same shapes and dtypes). When a Keras version changes the walk, or the
check fails, `capture` raises `LiveModelUnsupported` and the caller saves the model to a file
instead. Nothing is written; Keras 3 variables are converted to numpy only when a record is read.

Keras is never imported here: the library is the one the model's class comes from.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter
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
    save_state = getattr(saving_lib, "_save_state", None)
    if not (isinstance(store_class, type) and callable(save_state)):
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

    config_json = json.dumps(library.saving.serialize_keras_object(model))
    _walk(save_state, version, model, weights_store=Store(), assets_store=None, inner_path="", visited_saveables=set())
    kept = {path: group for path, group in groups.items() if group.named or group.values}
    _check_against_weights(model, [value for group in kept.values() for value in group.values.values()], version)
    backend = library.backend

    def dtype_of(value: Any) -> str:
        return str(backend.standardize_dtype(value.dtype))

    def to_numpy(value: Any) -> np.ndarray:
        return np.asarray(library.ops.convert_to_numpy(value))

    return Captured("keras", version, config_json, kept, to_numpy, dtype_of)


def _capture_keras2(model: Any, root: str, saving_lib: Any, version: str) -> Captured:
    save_state = getattr(saving_lib, "_save_state", None)
    if not callable(save_state):
        raise LiveModelUnsupported(f"{root} {version}: its saver's walk is not the one initcli knows")
    groups: dict[str, Group] = {}

    class Store:
        """Keeps each value the saver hands over (tf_keras makes every group at once)."""

        def make(self, path: str) -> Group:
            group = Group(named=True)
            groups[path.strip("/")] = group
            return group

    library = sys.modules[root]
    # tf_keras serializes layers for the .keras format unless a legacy save is under way (its
    # saving_lib._SAVING_V3_ENABLED, true by default): the public function, as model.save() calls it.
    config_json = json.dumps(library.saving.serialize_keras_object(model))
    walked = f"{root} {version}"
    _walk(save_state, walked, model, weights_store=Store(), assets_store=None, inner_path="", visited_trackables=set())
    captured = [np.asarray(value) for group in groups.values() for value in group.values.values()]
    _check_against_weights(model, captured, f"{root} {version}", by_identity=False)

    def dtype_of(value: Any) -> str:
        return str(np.asarray(value).dtype) if not hasattr(value, "dtype") else str(np.dtype(value.dtype))

    return Captured(root, version, config_json, groups, np.asarray, dtype_of)


def _walk(save_state: Callable[..., Any], version: str, *args: Any, **kwargs: Any) -> None:
    """Run the saver's walk; a signature it no longer has means a Keras initcli does not know.

    Raises:
        LiveModelUnsupported: the walk refused the arguments (the caller saves the model instead,
            where a fault of the model itself shows as Keras's own error).
    """
    try:
        save_state(*args, **kwargs)
    except TypeError as error:
        raise LiveModelUnsupported(f"{version}: its saver's walk takes other arguments ({error})") from None


def _check_against_weights(model: Any, captured: list[Any], version: str, *, by_identity: bool = True) -> None:
    """Every variable of the public `model.weights` is in the walked tree once (by identity, or
    for numpy copies by shape and dtype); otherwise the walk is not the one initcli knows.

    Raises:
        LiveModelUnsupported: a weight the walk missed, or found twice.
    """
    weights = list(model.weights)
    if by_identity:
        seen = Counter(id(value) for value in captured)
        missed = [w for w in weights if seen[id(w)] != 1]
    else:
        left = Counter((tuple(int(d) for d in value.shape), str(value.dtype)) for value in captured)
        missed = []
        for weight in weights:
            key = (
                tuple(int(d) for d in weight.shape),
                str(np.dtype(getattr(weight.dtype, "as_numpy_dtype", weight.dtype))),
            )
            if left[key] > 0:
                left[key] -= 1
            else:
                missed.append(weight)
    if missed:
        raise LiveModelUnsupported(
            f"{version}: the saver's walk did not find weight {getattr(missed[0], 'path', missed[0].name)} once"
        )


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
