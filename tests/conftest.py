"""Shared fixtures. Tests marked `tensorflow` compare against Keras itself.

Without TensorFlow installed they are skipped locally so the core suite still runs; in CI (CI set
in the environment) a missing TensorFlow is an error, so oracle tests can never be skipped there.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # JAX's tests last: once JAX has started its threads, every os.fork warns (and may deadlock).
    items.sort(key=lambda item: item.path.name == "test_rng_jax.py")
    if HAS_TENSORFLOW:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI must run the TensorFlow oracle tests: install the tensorflow extra")
    skip = pytest.mark.skip(reason="TensorFlow/Keras not installed (pip install -e '.[tensorflow-cpu]')")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras as keras_module

    return keras_module
