"""Fans, formulas and catalogue against Keras."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from initcli.errors import BadInputError
from initcli.families.variance_scaling import VarianceScalingFamily
from initcli.fans import compute_fans
from initcli.initializers import KINDS, find_kind, resolve
from initcli.theory import TRUNCATED_EXCESS_KURTOSIS

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


@pytest.mark.tensorflow
@pytest.mark.parametrize("shape", [(300, 200), (3, 3, 64, 128), (2000,)])
@pytest.mark.parametrize(
    "name",
    [
        "glorot_uniform",
        "glorot_normal",
        "he_normal",
        "lecun_uniform",
        "random_normal",
        "truncated_normal",
        "random_uniform",
        "orthogonal",
    ],
)
def test_theory_std_and_bounds_match_what_keras_draws(keras, name, shape):
    if name == "orthogonal" and len(shape) < 2:
        return
    spec = resolve(name)
    theory = spec.theory(shape)
    values = keras.initializers.get(name)(shape, dtype="float64").numpy()
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
    from initcli.theory import normal_cdf

    z = np.concatenate([np.linspace(-11.0, 11.0, 400_001), [-np.inf, np.inf, 0.0, 2.0, -2.0]])
    exact = np.array([0.5 * math.erfc(-x / math.sqrt(2.0)) for x in z.tolist()])
    assert np.max(np.abs(normal_cdf(z) - exact)) < 1e-12
    assert np.isnan(normal_cdf(np.array([np.nan, 0.0]))).tolist() == [True, False]
