"""Live Keras models as a `source`: read from memory, equal to reading the `.keras` file they save.

Oracles: the file Keras itself writes with `model.save("x.keras")` (inspected and checked by the file
reader), and the model's own variables (`model.weights`). The in-memory path must save nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

import initcli
from tests.helpers import keras_libraries

pytestmark = pytest.mark.tensorflow


def _models(library):
    """Models whose weights trees nest: Sequential in Functional, RNN cells, wrappers, attention."""
    layers = library.layers
    library.utils.set_random_seed(0)
    inputs = library.Input((7, 5))
    block = library.Sequential([library.Input((7, 5)), layers.Dense(6), layers.LayerNormalization()], name="block")
    x = block(inputs)
    x = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(x)
    x = layers.MultiHeadAttention(num_heads=2, key_dim=3)(x, x)
    x = layers.Conv1D(3, 2, kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization()(x)
    x = layers.GRU(2)(x)
    outputs = layers.Dense(1, kernel_initializer=library.initializers.RandomNormal(stddev=0.5))(x)
    functional = library.Model(inputs, outputs, name="nested")
    tokens = library.Sequential(
        [library.Input((4,), dtype="int32"), layers.Embedding(20, 8), layers.Flatten(), layers.Dense(2)], name="tokens"
    )
    return [functional, tokens]


def _without_source(payload: dict) -> dict:
    return {key: value for key, value in payload.items() if key != "source"}


def _refuse_saving(model, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the live model was saved to a file")

    monkeypatch.setattr(model, "save", refuse, raising=False)


@pytest.mark.parametrize("library", keras_libraries())
def test_live_models_equal_their_saved_files_without_saving(library, tmp_path, monkeypatch):
    for model in _models(library):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        _refuse_saving(model, monkeypatch)
        live, saved = initcli.inspect(model), initcli.inspect(path)
        assert live.source == f"<keras model {model.name!r}>"
        # Rows are named as Keras names the variables when it loads the saved file (a Sequential's
        # layers unscoped), for the live model as for its file.
        loaded = library.models.load_model(path, compile=False)
        if library.__name__ == "keras":
            assert [row.record.path for row in live.weights] == [w.path for w in loaded.weights]
        else:  # tf_keras: variable names, the ":0" suffix dropped (docs/reference.md)
            assert [row.record.path for row in live.weights] == [w.name.removesuffix(":0") for w in loaded.weights]
        assert _without_source(live.to_dict()) == _without_source(saved.to_dict())
        checked, checked_file = initcli.check(model), initcli.check(path)
        assert _without_source(checked.to_dict()) == _without_source(checked_file.to_dict())
        # The model's own variables: every one is a row, with its values (compared by their mean).
        by_shape = sorted((tuple(w.shape), float(np.mean(np.asarray(w), dtype=np.float64))) for w in model.weights)
        rows = sorted((tuple(r.record.shape), r.assessment.sample.mean) for r in live.weights)
        assert len(rows) == len(by_shape)
        for (shape, mean), (row_shape, row_mean) in zip(by_shape, rows):
            assert shape == row_shape and row_mean == pytest.approx(mean, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("library", keras_libraries())
def test_a_live_model_is_read_as_it_is_now(library):
    library.utils.set_random_seed(0)
    model = library.Sequential([library.Input((3,)), library.layers.Dense(4, bias_initializer="zeros")])
    before = initcli.inspect(model)
    model.layers[-1].bias.assign(np.full((4,), 2.5, "float32"))
    after = initcli.inspect(model)
    bias = [row for row in after.weights if row.record.weight == "bias"][0]
    assert bias.assessment.sample.mean == 2.5
    assert [row for row in before.weights if row.record.weight == "bias"][0].assessment.sample.mean == 0.0


def test_a_keras_the_walk_does_not_know_falls_back_to_saving(keras, tmp_path, monkeypatch):
    from initcli.keras import live

    def unsupported(model):
        raise live.LiveModelUnsupported("planted")

    monkeypatch.setattr(live, "capture", unsupported)
    monkeypatch.setattr("initcli.readers.live.capture", unsupported)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)], name="fallback")
    model.save(tmp_path / "x.keras")
    live_report = initcli.inspect(model)
    assert _without_source(live_report.to_dict()) == _without_source(initcli.inspect(tmp_path / "x.keras").to_dict())
    assert live_report.source == "<keras model 'fallback'>"


@pytest.mark.parametrize("library", keras_libraries())
def test_a_saver_walk_with_other_arguments_falls_back_to_saving(library, tmp_path, monkeypatch):
    """The walk is Keras's private `saving_lib._save_state` (initcli/keras/live.py says why): a Keras
    whose walk takes other arguments is read by saving the model, equal to the file Keras writes."""
    import importlib

    saving_lib = importlib.import_module(f"{library.__name__}.src.saving.saving_lib")

    original = saving_lib._save_state
    calls = []

    def renamed(*args, **kwargs):
        """Refuses initcli's call (the first) as a walk with other parameters would; then the saver's own."""
        calls.append(kwargs)
        if len(calls) == 1:
            raise TypeError("_save_state() got an unexpected keyword argument 'weights_store'")
        return original(*args, **kwargs)

    library.utils.set_random_seed(0)
    model = library.Sequential([library.Input((5,)), library.layers.Dense(3)], name="renamed")
    model.save(tmp_path / "x.keras")
    monkeypatch.setattr(saving_lib, "_save_state", renamed)
    live_report = initcli.inspect(model)
    assert len(calls) > 1  # refused, then the model was saved to a file
    assert _without_source(live_report.to_dict()) == _without_source(initcli.inspect(tmp_path / "x.keras").to_dict())


def test_a_live_model_takes_no_config_file(keras, tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(initcli.BadInputError, match="live model"):
        initcli.inspect(model, config=tmp_path / "model.json")


@pytest.mark.parametrize("library", keras_libraries())
def test_propagate_of_a_live_model_equals_its_file(library, tmp_path):
    library.utils.set_random_seed(0)
    model = library.Sequential(
        [library.Input((6,)), library.layers.Dense(8, activation="tanh"), library.layers.Dense(2)], name="small"
    )
    model.save(tmp_path / "small.keras")
    for options in ({"backward": True, "batch": 8}, {"static": True}):
        live = initcli.propagate(model, **options)
        saved = initcli.propagate(tmp_path / "small.keras", **options)
        assert _without_source(live.to_dict()) == _without_source(saved.to_dict())
