from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import numpy as np


def bits(array: np.ndarray) -> np.ndarray:
    """The raw bit patterns of a float array, for last-bit comparisons."""
    array = np.asarray(array)
    return array.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[array.dtype.itemsize])


def assert_bit_equal(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    assert ours.dtype == reference.dtype, (ours.dtype, reference.dtype)
    mismatched = np.nonzero(bits(ours).ravel() != bits(reference).ravel())[0]
    assert mismatched.size == 0, (
        f"{mismatched.size} of {ours.size} values differ; first at {mismatched[0]}: "
        f"{ours.ravel()[mismatched[0]]!r} vs {reference.ravel()[mismatched[0]]!r}"
    )


# Keras's constructor argument that initializes each variable name (from the layers' signatures): an
# oracle table of the tests, kept apart from initcli's own (initcli/keras/layers.py).
INITIALIZER_ARGUMENTS = {
    "kernel": "kernel_initializer",
    "recurrent_kernel": "recurrent_initializer",
    "bias": "bias_initializer",
    "gamma": "gamma_initializer",
    "beta": "beta_initializer",
    "moving_mean": "moving_mean_initializer",
    "moving_variance": "moving_variance_initializer",
    "embeddings": "embeddings_initializer",
    "depthwise_kernel": "depthwise_initializer",
    "pointwise_kernel": "pointwise_initializer",
    "alpha": "alpha_initializer",
}


def no_children_left() -> bool:
    """This process has no child, running or waiting to be reaped."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


GOLDEN = Path(__file__).parent / "golden"


def golden_script(name: str) -> ModuleType:
    """The script in tests/golden that made a golden-vector file (its case lists), imported by path."""
    spec = importlib.util.spec_from_file_location(name, GOLDEN / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keras_libraries() -> list:
    """Keras 3 and, when installed, tf_keras, as pytest params `keras3` / `tf_keras`."""
    import keras
    import pytest

    libraries = [pytest.param(keras, id="keras3")]
    try:
        import tf_keras

        libraries.append(pytest.param(tf_keras, id="tf_keras"))
    except ImportError:  # pragma: no cover - tf_keras is in the tensorflow extra
        pass
    return libraries
