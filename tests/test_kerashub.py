"""KerasHub preset directories (config.json, model.weights.h5 or model.weights.json + shards,
metadata.json), made by keras-hub itself at a tiny size; keras-hub's `Backbone.from_preset` is the oracle."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.readers import open_model
from tests.helpers import assert_bit_equal


def _bert(keras_hub):
    return keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16
    )


def _gpt2(keras_hub):
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=12
    )


@pytest.fixture(
    scope="module", params=[(_bert, None), (_gpt2, None), (_gpt2, 2000 / 1024**3)], ids=["bert", "gpt2", "gpt2-sharded"]
)
def preset(request, keras, tmp_path_factory):
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(5)
    folder = tmp_path_factory.mktemp("preset")
    build, shard_gb = request.param
    if shard_gb is None:
        build(keras_hub).save_to_preset(str(folder))
    else:  # keras-hub writes model.weights.json and its shards
        build(keras_hub).save_to_preset(str(folder), max_shard_size=shard_gb)
    loaded = keras_hub.models.Backbone.from_preset(str(folder))
    return folder, [(v.path, np.asarray(v.numpy())) for v in loaded.weights], type(loaded).__name__


@pytest.mark.tensorflow
def test_rows_equal_the_variables_keras_hub_loads(preset) -> None:
    folder, variables, class_name = preset
    names = {p.name for p in folder.iterdir()}
    weights = "model.weights.json" if "model.weights.json" in names else "model.weights.h5"
    assert names >= {"config.json", "metadata.json", weights}
    if weights == "model.weights.json":
        assert len([n for n in names if n.endswith(".weights.h5")]) >= 2
    # Keras's variables grouped by layer path, in the order the layer creates them; the file's
    # `vars/0, 1, ...` are that order, so the i-th row under a layer is that layer's i-th variable.
    by_layer: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    for path, values in variables:
        by_layer[path.rsplit("/", 1)[0]].append((path, values))
    model = open_model(folder)
    try:
        assert model.notes[0] == f"KerasHub preset: {class_name} (config.json), weights from {weights}"
        records = list(model.records())
        assert len(records) == len(variables)
        seen: dict[str, int] = defaultdict(int)
        for record in records:
            layer = record.path.rsplit("/", 1)[0]
            path, values = by_layer[layer][seen[layer]]
            seen[layer] += 1
            if not record.path.rsplit("/", 1)[1].isdigit():  # named, not by index: named as Keras names it
                assert record.path == path
            assert_bit_equal(record.read(), values)
        assert dict(seen) == {layer: len(v) for layer, v in by_layer.items()}
    finally:
        model.close()


@pytest.mark.tensorflow
def test_inspect_and_check_take_the_preset_directory(preset) -> None:
    folder, variables, class_name = preset
    result = CliRunner().invoke(cli, ["inspect", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert sorted(int(np.prod(row["shape"])) for row in report["weights"]) == sorted(v.size for _, v in variables)
    std = {row["path"]: row["sample"]["std"] for row in report["weights"]}
    path, values = next((p, v) for p, v in variables if p.endswith("token_embedding/embeddings"))
    row = next(k for k in std if k.startswith(path.rsplit("/", 1)[0] + "/"))
    assert std[row] == pytest.approx(float(values.std(dtype=np.float64)))
    result = CliRunner().invoke(cli, ["check", str(folder)])
    assert result.exit_code in (0, 3), result.output


def test_a_preset_config_that_is_not_a_serialized_object_is_one_line(tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "model.weights.h5", "w") as handle:
        handle.create_dataset("layers/dense/vars/0", data=np.ones((2, 2), np.float32))
    (tmp_path / "config.json").write_text("[1, 2]")
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].endswith("config.json: not a KerasHub preset config (no class_name)")
    (tmp_path / "config.json").write_text('{"class_name": "MyBackbone", "config": {}}')
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [row["shape"] for row in json.loads(result.output)["weights"]] == [[2, 2]]
