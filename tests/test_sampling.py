"""Initializer draws against Keras itself: every initializer x dtype x seed x shape, to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from initcli.analysis.sampling import draw, iter_chunks, tf_seed
from initcli.errors import BadInputError
from initcli.initializers import KINDS, resolve
from initcli.types import FLOAT_DTYPES
from tests.helpers import assert_bit_equal

SEEDS = [0, 1, 1234, 2**31 - 1, 2**31, -5, 2**40 + 7]
SMALL_SHAPES = [(), (1,), (2,), (3,), (5,), (7,), (13,), (3, 5), (7, 13), (2, 3, 5, 7)]
LARGE_SHAPES = [(3, 3, 64, 128), (1000, 1000)]
# Orthogonal's QR is LAPACK's here and Eigen's in TensorFlow: documented tolerance per dtype.
# TensorFlow runs float16 QR in half precision (initcli in float32), hence the wide float16 bound
# (3.1e-2 measured on 1000x1000).
ORTHOGONAL_TOLERANCE = {"float64": 1e-12, "float32": 2e-5, "float16": 5e-2}
PARAMETERIZED = [
    ("variance_scaling", {"scale": 0.3, "mode": "fan_out", "distribution": "uniform"}),
    ("variance_scaling", {"scale": 2.5, "mode": "fan_avg", "distribution": "untruncated_normal"}),
    ("variance_scaling", {"scale": 1.7, "mode": "fan_in", "distribution": "normal"}),
    ("random_normal", {"mean": 0.3, "stddev": 1.7}),
    ("truncated_normal", {"mean": -1.0, "stddev": 0.1}),
    ("random_uniform", {"minval": -0.3, "maxval": 0.7}),
    ("orthogonal", {"gain": 1.5}),
    ("identity", {"gain": 0.5}),
    ("constant", {"value": 0.1}),
    ("glorot_uniform", {"input_axes": [0], "output_axes": [1, 2]}),
]


def _keras_reference(keras, spec, shape, dtype, seed):
    """Keras alone: its class built from the spec's parameters and called (no initcli code on this path)."""
    config = dict(spec.config)
    if "seed" in config:
        config["seed"] = seed
    initializer = getattr(keras.initializers, spec.class_name)(**config)
    try:
        return np.asarray(initializer(shape=shape, dtype=dtype).numpy()), None
    except Exception as error:  # Keras's own rejection (ValueError, InvalidArgumentError)
        return None, error


def _compare(keras, spec, shape, dtype, seed):
    reference, keras_error = _keras_reference(keras, spec, shape, dtype, seed)
    if keras_error is not None:  # Keras refuses: initcli must refuse too, as a usage error
        with pytest.raises(BadInputError):
            draw(spec, shape, dtype, seed)
        return
    ours = draw(spec, shape, dtype, seed)
    if spec.class_name == "Orthogonal":
        assert ours.shape == reference.shape and ours.dtype == reference.dtype
        difference = np.max(np.abs(ours.astype(np.float64) - reference.astype(np.float64)))
        assert difference <= ORTHOGONAL_TOLERANCE[dtype]
    else:
        assert_bit_equal(ours, reference)


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.class_name)
def test_every_initializer_equals_keras(keras, kind, dtype):
    spec = resolve(kind.class_name)
    for seed in SEEDS:
        for shape in SMALL_SHAPES:
            _compare(keras, spec, shape, dtype, seed)
    for shape in LARGE_SHAPES:
        _compare(keras, spec, shape, dtype, SEEDS[1])


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize(("name", "params"), PARAMETERIZED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(PARAMETERIZED)])
def test_parameterized_initializers_equal_keras(keras, name, params, dtype):
    spec = resolve(name, **params)
    for seed in (3, 2**33 + 1):
        for shape in [(7, 13), (3, 4, 5), (2, 3, 5, 7)]:
            if name == "identity":
                shape = shape[:2]
            _compare(keras, spec, shape, dtype, seed)


@pytest.mark.tensorflow
def test_seed_generator_in_config_draws_like_its_seed(keras):
    config = keras.initializers.serialize(keras.initializers.HeNormal(seed=keras.random.SeedGenerator(11)))
    reference = keras.initializers.get(config)((17, 9)).numpy()
    assert_bit_equal(draw(resolve(config), (17, 9)), reference)


@pytest.mark.tensorflow
def test_unseeded_initializers_follow_keras_global_seed(keras):
    """seed=None: Keras draws a seed from Python's random at construction (set_random_seed fixes it)."""
    import random

    keras.utils.set_random_seed(5)
    reference = keras.initializers.GlorotUniform()((6, 4)).numpy()
    random.seed(5)
    assert_bit_equal(draw(resolve("glorot_uniform"), (6, 4)), reference)


@pytest.mark.parametrize("seed", [0, 5, 2**31 - 2, 2**31 - 1, 2**31, -1, -5, 2**40 + 7, 2**63 - 1, -(2**63)])
def test_tf_seed_is_python_modulo(seed):
    assert tf_seed(seed) == (seed % 2147483646, 0)


def test_seed_outside_int64_is_rejected():
    with pytest.raises(BadInputError, match="64-bit"):
        tf_seed(2**63)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_chunked_draw_equals_whole_draw(dtype):
    spec = resolve("glorot_normal")
    whole = draw(spec, (33, 31), dtype, seed=9).reshape(-1)
    chunks = np.concatenate(list(iter_chunks(spec, (33, 31), dtype, seed=9, chunk_elements=100)))
    assert_bit_equal(chunks, whole)


def test_a_large_draw_leaves_no_threads_behind():
    """The draw pool is owned by the draw: its worker threads end with it."""
    import threading

    from initcli.analysis.sampling import draw as draw_values

    before = {thread.ident for thread in threading.enumerate()}
    draw_values(resolve("he_normal"), (1024, 1024), "float32", seed=0)
    after = {thread.ident for thread in threading.enumerate() if thread.name.startswith("initcli-rng")}
    assert not (after - before)
