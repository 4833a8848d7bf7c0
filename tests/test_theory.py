"""Fans, formulas and catalogue against Keras."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from initcli.errors import BadInputError
from initcli.initializers import KINDS, find_kind, resolve
from initcli.initializers.fans import compute_fans
from initcli.initializers.variance_scaling import VarianceScalingFamily
from initcli.stats.theory import (
    KERAS_TRUNCATED_STD_FACTOR,
    TRUNCATED_EXCESS_KURTOSIS,
    TRUNCATED_VARIANCE,
    TRUNCATION_SIGMAS,
)

SHAPES = [
    (),
    (1,),
    (7,),
    (1, 1),
    (784, 256),
    (3, 5),
    (3, 64, 128),
    (3, 3, 64, 128),
    (5, 5, 3, 1, 7),
    (2, 3, 5, 7, 11),
    (3, 3, 3, 16, 32),
    (1, 1, 1),
    (4, 1, 9),
]
AXES = [(None, None), ([0], [1]), ([0, 1], [2]), ([1], [0, 2])]


@pytest.mark.tensorflow
def test_fans_equal_keras(keras):
    from keras.src.initializers.random_initializers import compute_fans as keras_compute_fans

    for shape in SHAPES:
        assert compute_fans(shape) == keras_compute_fans(shape)
    for shape, (inputs, outputs) in itertools.product([(3, 5, 7), (2, 4, 6, 8)], AXES):
        assert compute_fans(shape, inputs, outputs) == keras_compute_fans(shape, inputs, outputs)


@pytest.mark.tensorflow
def test_catalogue_defaults_equal_keras_signatures(keras):
    import inspect

    for kind in KINDS:
        keras_class = keras.src.initializers.ALL_OBJECTS_DICT[kind.class_name]
        parameters = {
            name: p.default
            for name, p in inspect.signature(keras_class.__init__).parameters.items()
            if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
        }
        assert parameters == dict(kind.defaults), kind.class_name
        for alias in (kind.snake_name, *kind.aliases):
            if alias in keras.src.initializers.ALL_OBJECTS_DICT:
                assert keras.src.initializers.ALL_OBJECTS_DICT[alias] is keras_class


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    "name", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"]
)
def test_presets_match_keras_variance_scaling(keras, name):
    instance = keras.initializers.get(name)
    assert VarianceScalingFamily.parameters(resolve(name)) == (instance.scale, instance.mode, instance.distribution)


THEORY_NAMES = [
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "lecun_uniform",
    "random_normal",
    "truncated_normal",
    "random_uniform",
    "orthogonal",
]
THEORY_SHAPES = [(300, 200), (3, 3, 64, 128), (2000,)]


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("name", "shape"),
    # Orthogonal needs rank >= 2 (Keras refuses a vector; test_sampling checks that refusal).
    [(n, s) for n in THEORY_NAMES for s in THEORY_SHAPES if not (n == "orthogonal" and len(s) < 2)],
)
def test_theory_std_and_bounds_match_what_keras_draws(keras, name, shape):
    """Seeded Keras draws. A correct theory fails a 5-sigma mean bound with probability 6e-7 and the
    std bound (6 standard errors of the std) with about 2e-9 per case: 23 cases, budget < 2e-5."""
    spec = resolve(name)
    theory = spec.theory(shape)
    values = keras.initializers.get({"class_name": spec.class_name, "config": {"seed": 17}})(shape, dtype="float64")
    values = values.numpy()
    n = values.size
    assert abs(values.mean() - theory.mean) < 5 * theory.std / math.sqrt(n)
    assert values.std() == pytest.approx(theory.std, rel=6 * math.sqrt(2 / n) + 1e-9)
    if theory.distribution != "normal":
        assert theory.low - 1e-12 <= values.min() and values.max() <= theory.high + 1e-12


def test_variance_scaling_formulas():
    theory = resolve("glorot_uniform").theory((3, 3, 64, 128))
    assert (theory.fan_in, theory.fan_out) == (576, 1152)
    assert theory.limit == pytest.approx(math.sqrt(6 / (576 + 1152)))
    normal = resolve("he_normal").theory((784, 256))
    assert normal.std == pytest.approx(math.sqrt(2 / 784))
    assert normal.stddev_param == pytest.approx(math.sqrt(2 / 784) / 0.87962566103423978)
    assert normal.limit == pytest.approx(2 * normal.stddev_param)
    assert TRUNCATED_EXCESS_KURTOSIS == pytest.approx(-0.6345, abs=1e-4)


def test_truncation_constants_equal_scipy_truncnorm():
    """Keras's 0.87962566103423978 and the truncated moments are those of a normal cut at ±2 sigma."""
    from scipy import stats as scipy_stats  # a test dependency: fail, never skip, without it

    truncated = scipy_stats.truncnorm(-2.0, 2.0)
    assert KERAS_TRUNCATED_STD_FACTOR == float(truncated.std())  # the same double, to the last bit
    assert TRUNCATION_SIGMAS == 2.0
    assert TRUNCATED_VARIANCE == pytest.approx(float(truncated.var()), rel=1e-13)
    assert TRUNCATED_EXCESS_KURTOSIS == pytest.approx(float(truncated.stats(moments="k")), rel=1e-10)
    # The std initcli reports for a truncated normal, against scipy's for the same underlying stddev.
    theory = resolve("truncated_normal", stddev=0.3).theory((10, 10), "float64")
    assert theory.std == pytest.approx(float(scipy_stats.truncnorm(-2.0, 2.0, scale=0.3).std()), rel=1e-13)
    assert (theory.low, theory.high) == pytest.approx((-0.6, 0.6), rel=1e-15)


def test_names_and_aliases():
    for name, expected in [
        ("xavier_uniform", "GlorotUniform"),
        ("kaiming_normal", "HeNormal"),
        ("normal", "RandomNormal"),
        ("uniform", "RandomUniform"),
        ("zero", "Zeros"),
        ("one", "Ones"),
        ("GlorotNormal", "GlorotNormal"),
        ("glorot-normal", "GlorotNormal"),
    ]:
        assert find_kind(name).class_name == expected
    with pytest.raises(BadInputError, match="glorot_uniform"):
        find_kind("glorot_unifrom")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("variance_scaling", {"scale": -1.0}, "Argument `scale` must be positive float. Received: scale=-1"),
        ("variance_scaling", {"mode": "fan_sideways"}, "Invalid `mode` argument: fan_sideways"),
        ("variance_scaling", {"distribution": "cauchy"}, "Invalid `distribution` argument: cauchy"),
        ("glorot_uniform", {"gain": 2.0}, "GlorotUniform does not take `gain`"),
    ],
)
def test_parameters_keras_rejects(name, params, message):
    with pytest.raises(BadInputError, match=message.replace("(", r"\(")):
        resolve(name, **params)


def test_dict_identifiers_as_in_config_json():
    spec = resolve(
        {
            "module": "keras.initializers",
            "class_name": "VarianceScaling",
            "config": {"scale": 2.0, "mode": "fan_out", "distribution": "normal", "seed": 4},
            "registered_name": None,
        }
    )
    assert spec.config["distribution"] == "truncated_normal" and spec.seed == 4
    assert np.isclose(spec.theory((10, 20)).std, math.sqrt(2 / 20))


def test_normal_cdf_interpolation_against_the_exact_function():
    from initcli.stats.theory import normal_cdf

    z = np.concatenate([np.linspace(-11.0, 11.0, 400_001), [-np.inf, np.inf, 0.0, 2.0, -2.0]])
    exact = np.array([0.5 * math.erfc(-x / math.sqrt(2.0)) for x in z.tolist()])
    assert np.max(np.abs(normal_cdf(z) - exact)) < 1e-12
    assert np.isnan(normal_cdf(np.array([np.nan, 0.0]))).tolist() == [True, False]
