"""`initcli.keras.InitCheck`: the training callback, with Keras 3 and tf_keras.

Oracle: Keras itself. The planted model's forward pass, computed by Keras, overflows (its outputs are
not finite), and the default model's is finite; the callback must stop the first and pass the second.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from tests.helpers import keras_libraries

pytestmark = pytest.mark.tensorflow

DEPTH, WIDTH = 10, 64


def _deep(library, initializer):
    """A deep ReLU MLP; `initializer()` makes each layer's own kernel initializer (none shared)."""
    library.utils.set_random_seed(0)
    layers = [library.Input((32,))]
    layers += [library.layers.Dense(WIDTH, activation="relu", kernel_initializer=initializer()) for _ in range(DEPTH)]
    model = library.Sequential([*layers, library.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((64, 32)).astype("float32"), np.zeros((64, 1), "float32")


def test_importing_initcli_keras_imports_no_keras():
    code = (
        "import sys, initcli.keras; initcli.keras.InitCheck; print('keras' in sys.modules, 'tf_keras' in sys.modules)"  # noqa: E501
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    import initcli.callback
    import initcli.keras

    assert initcli.keras.InitCheck is initcli.callback.InitCheck
    assert initcli.keras.InitCheckError is initcli.callback.InitCheckError


@pytest.mark.parametrize("library", keras_libraries())
def test_raises_on_an_exploding_initializer_and_training_does_not_start(library):
    import initcli.keras

    model = _deep(library, lambda: library.initializers.RandomNormal(stddev=10.0))
    x, y = _data()
    # Keras's own forward pass: the planted model's signal explodes (inputs have rms 1).
    assert np.sqrt(np.mean(model(x).numpy().astype(np.float64) ** 2)) > 1e9
    before = [weight.numpy().copy() for weight in model.weights]
    callback = initcli.keras.InitCheck(on_fail="raise", only=["propagation"])
    with pytest.raises(initcli.keras.InitCheckError, match=r"\[propagation\]") as raised:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert raised.value.report is callback.report
    assert callback.report is not None and not callback.report.passed
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, model.weights))  # no step was taken


@pytest.mark.parametrize("library", keras_libraries())
@pytest.mark.parametrize(
    ("initializer", "only"),
    [("glorot_uniform", None), ("he_normal", ["distribution", "propagation"])],
    ids=["keras-default-default-checks", "he-propagation"],
)
def test_passes_on_a_default_model(library, initializer, only):
    import initcli.keras

    model = _deep(library, lambda: initializer)
    x, y = _data()
    assert np.all(np.isfinite(model(x).numpy()))
    callback = initcli.keras.InitCheck(on_fail="raise", only=only)
    with warnings.catch_warnings():
        warnings.simplefilter("error", initcli.keras.InitCheckWarning)
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 2
    assert callback.report is not None and callback.report.passed
    assert callback.report.weights == len(model.weights)


def test_warns_on_a_broken_rule_and_trains_on(keras):
    import initcli.keras

    model = _deep(keras, lambda: "he_normal")
    x, y = _data()
    # he_normal's std for fan_in 64 is sqrt(2/64) = 0.177 (Keras's formula): the rule wants < 0.1.
    assert np.std(model.layers[0].kernel.numpy()) > 0.1
    callback = initcli.keras.InitCheck(on_fail="warn", rules=[{"layer": "dense*", "std_range": [0.0, 0.1]}])
    with warnings.catch_warnings(record=True) as caught:  # Keras's own warnings during fit are not ours
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    ours = [str(w.message) for w in caught if issubclass(w.category, initcli.keras.InitCheckWarning)]
    assert len(ours) == 1 and "[rules]" in ours[0]
    assert len(history.history["loss"]) == 1
    assert callback.report is not None and not callback.report.passed


def test_bad_on_fail_is_a_usage_error():
    import initcli
    import initcli.keras

    with pytest.raises(initcli.BadInputError, match="on_fail"):
        initcli.keras.InitCheck(on_fail="explode")  # type: ignore[arg-type]


@pytest.mark.parametrize("library", keras_libraries())
def test_a_forward_pass_on_the_users_batch_stops_an_exploding_model(library):
    import initcli.keras

    model = _deep(library, lambda: library.initializers.RandomNormal(stddev=10.0))
    x, y = _data()
    # Keras's own forward pass on this batch: the signal explodes.
    assert np.sqrt(np.mean(model(x).numpy().astype(np.float64) ** 2)) > 1e9
    before = [w.copy() for w in model.get_weights()]
    # The checks alone (nonfinite) pass: the forward pass is what stops it.
    callback = initcli.keras.InitCheck(only=["nonfinite"], propagate=x)
    with pytest.raises(initcli.keras.InitCheckError, match=r"propagate: activations: exploding") as raised:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert callback.report is not None and callback.report.passed
    assert raised.value.propagation is callback.propagation is not None
    assert callback.propagation.input == "array" and callback.propagation.batch == len(x)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # nothing trained, nothing moved


def test_a_forward_pass_lets_a_he_normal_model_train(keras):
    import initcli.keras

    model = _deep(keras, lambda: "he_normal")
    x, y = _data()
    callback = initcli.keras.InitCheck(propagate=True)
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 1
    assert callback.propagation is not None and [run.verdict for run in callback.propagation.runs] == ["stable"]
