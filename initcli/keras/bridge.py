"""Everything that needs Keras/TensorFlow, imported only when a command asks for it."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from initcli.errors import MissingDependencyError
from initcli.initializers import InitializerSpec

INSTALL_HINT = "pip install 'initcli[tensorflow]'"


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while TensorFlow's C++ runtime starts.

    It prints absl and oneDNN notices before its logging honours TF_CPP_MIN_LOG_LEVEL; initcli's
    stderr is for its own messages.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _environment(**defaults: str) -> Iterator[None]:
    """Set environment variables not set yet for the block; afterwards the environment is as before.

    TensorFlow's import also sets variables of its own (TF2_BEHAVIOR, TPU_ML_PLATFORM, ...), read at
    import time only: they are taken back too.
    """
    before = dict(os.environ)
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name in set(os.environ) - set(before):
            del os.environ[name]
        for name, value in before.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def import_keras() -> Any:
    """Import Keras on the TensorFlow backend, quietly, or explain how to install it.

    TensorFlow and Keras read TF_CPP_MIN_LOG_LEVEL and KERAS_BACKEND when they are imported; the
    process's environment is left as it was.
    """
    try:
        with _environment(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow"), _quiet_native_stderr():
            import keras
            import tensorflow as tf

            # A GPU build of TensorFlow logs "failed call to cuInit" when it first looks for devices
            # (seen in CI, inside --fresh and --custom-objects runs): look now, while quiet.
            tf.config.list_physical_devices()
    except ImportError as error:
        raise MissingDependencyError(
            f"This needs Keras with TensorFlow, which is not installed ({error.name}): {INSTALL_HINT}"
        ) from None
    if keras.backend.backend() != "tensorflow":
        raise MissingDependencyError(
            f"initcli reproduces the TensorFlow backend; KERAS_BACKEND is {keras.backend.backend()!r}"
        )
    return keras


def draw(spec: InitializerSpec, shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Draw through Keras itself: `keras.initializers.get(config)(shape, dtype)`."""
    keras = import_keras()
    config = dict(spec.config)
    if "seed" in config:
        config["seed"] = seed
    initializer = keras.initializers.get({"class_name": spec.class_name, "config": config})
    if spec.class_name == "Identity":
        # Keras's Identity.get_config drops `gain`, so set it on the instance.
        initializer.gain = spec.config["gain"]
    values = initializer(shape=shape, dtype=dtype)
    # EagerTensor.numpy() also handles bfloat16 scalars, which convert_to_numpy does not.
    return np.asarray(values.numpy())
