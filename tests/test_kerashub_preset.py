"""KerasHub preset directories (`Backbone.save_to_preset`), read with keras-hub itself as the oracle.

Tiny BertBackbone, GPT2Backbone and GemmaBackbone presets are made by keras-hub in the test (Bert
and Gemma as `model.weights.h5`, GPT2 sharded as `model.weights.json` + shards); keras-hub's own
`Backbone.from_preset` loads them, and every row initcli reads must equal, bit for bit, a variable
keras-hub loads with the same shape, one to one, named by its Keras path; and each row's initializer
must be the one the keras-hub layer object holds for that variable (class and config). A backbone
initcli does not list keeps fans and statistics only (its sublayers named by their index in the file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.readers import open_model


@pytest.fixture(scope="module")
def keras_hub(keras):
    """keras-hub, imported by the first test that needs it (it imports TensorFlow), not at collection."""
    return pytest.importorskip("keras_hub")


def _bert(keras_hub):
    return keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16
    )


def _gpt2(keras_hub):
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=12
    )


def _gemma(keras_hub):
    return keras_hub.models.GemmaBackbone(
        vocabulary_size=40, num_layers=1, num_query_heads=2, num_key_value_heads=1, hidden_dim=8,
        intermediate_dim=16, head_dim=4,
    )  # fmt: skip


_INITIALIZER_ATTRIBUTES = {
    "kernel": ("kernel_initializer",),
    "bias": ("bias_initializer",),
    "gamma": ("gamma_initializer",),
    "beta": ("beta_initializer",),
    "embeddings": ("embeddings_initializer", "initializer"),  # PositionEmbedding's is `initializer`
    "reverse_embeddings": ("embeddings_initializer",),
}


def _initializers(backbone) -> dict[str, object]:
    """Each variable's initializer as keras-hub's layer object holds it (None: the layer keeps none,
    as Gemma's RMSNormalization, whose `add_weight(initializer="zeros")` the fresh values show)."""
    found: dict[str, object] = {}
    for layer in backbone._flatten_layers(include_self=False, recursive=True):
        for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
            names = _INITIALIZER_ATTRIBUTES.get(variable.name, ())
            found[variable.path] = next((getattr(layer, n) for n in names if hasattr(layer, n)), None)
    return found


KNOWN = ("bert", "gpt2-sharded", "gemma")


@pytest.fixture(scope="module", params=["bert", "gpt2-sharded", "gemma"])
def preset(request, keras, keras_hub, tmp_path_factory):
    keras.utils.set_random_seed(5)
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "bert":
        _bert(keras_hub).save_to_preset(str(folder))
    elif request.param == "gemma":
        _gemma(keras_hub).save_to_preset(str(folder))
    else:  # ~8 kB of weights in shards of ~2 kB: keras-hub writes model.weights.json and its shards
        _gpt2(keras_hub).save_to_preset(str(folder), max_shard_size=2000 / 1024**3)
    loaded = keras_hub.models.Backbone.from_preset(str(folder))
    variables = [(v.path, np.asarray(v.numpy())) for v in loaded.weights]
    return request.param, folder, variables, _initializers(loaded)


@pytest.mark.tensorflow
def test_rows_equal_the_variables_keras_hub_loads(preset) -> None:
    kind, folder, variables, _ = preset
    if kind == "gpt2-sharded":
        assert (folder / "model.weights.json").is_file() and not (folder / "model.weights.h5").exists()
        assert len(list(folder.glob("model_*.weights.h5"))) >= 2
    else:
        assert (folder / "model.weights.h5").is_file()
    model = open_model(folder)
    try:
        assert model.format == "kerashub-preset"
        assert model.keras_version == json.loads((folder / "metadata.json").read_text())["keras_version"]
        assert any("KerasHub preset: " in note and "Backbone" in note for note in model.notes)
        records = list(model.records())
        assert len(records) == len(variables)
        unmatched = list(variables)
        for record in records:
            values = record.read()
            same = [
                i for i, (_, v) in enumerate(unmatched) if v.shape == values.shape and v.tobytes() == values.tobytes()
            ]
            assert same, f"{record.path}: no variable keras-hub loads has these values"
            if re.search(r"/\d+$", record.path) is None:  # a slot name initcli knows: Keras's own path
                named = [i for i in same if unmatched[i][0] == record.path]
                assert named, f"{record.path}: keras-hub names no variable with these values so"
                same = named
            del unmatched[same[0]]
        assert not unmatched
        # KerasHub's own embedding layers are named as Keras names their variables (checked against
        # keras-hub's paths in the loop above), not by index.
        named = {"token_embedding/embeddings"} | ({"position_embedding/embeddings"} if kind != "gemma" else set())
        assert named <= {r.path for r in records}
        if kind in KNOWN:  # a listed backbone's sublayers are named by their slots too: no index left
            assert not [r.path for r in records if re.search(r"/\d+$", r.path)]
    finally:
        model.close()


@pytest.mark.tensorflow
def test_inspect_and_check_take_the_directory(preset) -> None:
    _, folder, variables, _ = preset
    result = CliRunner().invoke(cli, ["inspect", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["format"] == "kerashub-preset" and len(out["weights"]) == len(variables)
    by_path = dict(variables)
    for row in out["weights"]:
        if row["path"] in by_path:
            assert row["sample"]["mean"] == pytest.approx(float(np.mean(by_path[row["path"]], dtype=np.float64)))
    # keras-hub's fresh weights pass every check against the initializers its code passes, except
    # what keras-hub really does: Gemma's attention shares one unseeded initializer instance, which
    # in Keras 3 draws the same values for key and value (the same shape): said, and it fails.
    result = CliRunner().invoke(cli, ["check", str(folder)])
    key, value = (
        by_path.get("decoder_block_0/attention/key/kernel"),
        by_path.get("decoder_block_0/attention/value/kernel"),
    )
    if key is not None and value is not None and np.array_equal(key, value):
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert result.exit_code == 3 and len(errors) == 1, result.output
        assert "value/kernel: [duplicate] identical to decoder_block_0/attention/key/kernel" in errors[0]
    else:
        assert result.exit_code == 0, result.output


@pytest.mark.tensorflow
def test_rows_carry_the_initializers_keras_hub_passes(preset, keras) -> None:
    """Each row's initializer is the one keras-hub's layer object holds for that variable (its class
    and config), the row named by keras-hub's variable path; and its verdict is consistent."""
    _, folder, variables, initializers = preset
    values = dict(variables)
    report = __import__("initcli").inspect(str(folder))
    assert any("initializers as KerasHub's code passes them" in note for note in report.notes)
    for row in report.weights:
        path = row.record.path
        assert path in initializers, f"{path}: not a keras-hub variable path"
        assert row.record.initializer is not None, path
        ours = keras.initializers.deserialize(dict(row.record.initializer))
        theirs = initializers[path]
        if theirs is None:  # RMSNormalization's scale: add_weight(initializer="zeros")
            assert type(ours).__name__ == "Zeros" and not values[path].any(), path
            continue
        assert type(ours).__name__ == type(theirs).__name__, path
        assert ours.get_config() == theirs.get_config(), path
        assert row.assessment.verdict == "consistent", (path, row.assessment.verdict)


@pytest.mark.tensorflow
def test_an_unknown_backbone_has_no_initializers(preset, tmp_path: Path) -> None:
    import shutil

    _, folder, _, _ = preset
    copy = tmp_path / "preset"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "class_name": "SomeOtherBackbone"}))
    # No initializer information in such a preset's config: check says so (exit 3) unless asked to accept it.
    assert CliRunner().invoke(cli, ["check", str(copy)]).exit_code == 3
    assert CliRunner().invoke(cli, ["check", str(copy), "--allow-unchecked"]).exit_code == 0


def test_a_directory_with_a_config_but_no_weights_is_a_one_line_error(tmp_path: Path) -> None:
    hub = {"module": "keras_hub.src.models.bert.bert_backbone", "class_name": "BertBackbone", "config": {}}
    (tmp_path / "config.json").write_text(json.dumps(hub))
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path)])
    assert result.exit_code == 1 and "neither model.weights.h5 nor model.weights.json" in result.output
    (tmp_path / "config.json").write_text("[1, 2]")
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path)])
    assert result.exit_code == 1 and "not a KerasHub preset config" in result.output
    assert result.output.count("\n") == 1


def test_links_out_of_the_preset_are_refused(tmp_path: Path) -> None:
    """A downloaded preset cannot make initcli read a file elsewhere (config.json or the weights as a symlink)."""
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"registered_name": "keras_hub>BertBackbone", "class_name": "B", "config": {}}))
    preset = tmp_path / "preset"
    preset.mkdir()
    (preset / "config.json").symlink_to(outside)
    result = CliRunner().invoke(cli, ["inspect", str(preset)])
    assert result.exit_code == 1 and "outside" in result.output and result.output.count("\n") == 1
    (preset / "config.json").unlink()
    (preset / "config.json").write_text(outside.read_text())
    (preset / "model.weights.h5").symlink_to(tmp_path / "elsewhere.weights.h5")
    (tmp_path / "elsewhere.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    result = CliRunner().invoke(cli, ["inspect", str(preset)])
    assert result.exit_code == 1 and "outside" in result.output and result.output.count("\n") == 1


def test_an_unpacked_keras_archive_is_not_taken_for_a_preset(tmp_path: Path) -> None:
    """The same three files, but a Keras model's config: a one-line error pointing to the .keras file."""
    import zipfile

    with zipfile.ZipFile(Path(__file__).resolve().parent.parent / "examples" / "models" / "mlp.keras") as archive:
        archive.extractall(tmp_path)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.weights.h5").is_file()
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path)])
    assert result.exit_code == 1 and "not a KerasHub backbone's" in result.output
    assert result.output.count("\n") == 1
