"""`initcli check`: passes on fresh models, fails with the right check named on prepared bad ones."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def run_check(path: Path, *args: str, expect: int) -> dict:
    result = CliRunner().invoke(cli, ["check", str(path), "--format", "json", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout)


def _edited(tmp_path: Path, source: Path, edit) -> Path:
    """A copy of a .keras archive whose model.weights.h5 was changed by `edit(h5_file)`."""
    weights_path = tmp_path / "weights.h5"
    with zipfile.ZipFile(source) as archive:
        weights_path.write_bytes(archive.read("model.weights.h5"))
        members = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    with h5py.File(weights_path, "r+") as weights:
        edit(weights)
    members["model.weights.h5"] = weights_path.read_bytes()
    target = tmp_path / f"edited-{source.name}"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _dataset(weights: h5py.File, group: str, index: int = 0) -> h5py.Dataset:
    return weights[f"{group}/vars/{index}"]


@pytest.mark.parametrize("name", ["mlp", "cnn", "rnn"])
def test_fresh_example_models_pass(name):
    data = run_check(MODELS / f"{name}.keras", expect=0)
    assert data["passed"] is True and data["errors"] == 0
    assert all(f["severity"] == "warning" and f["check"] == "fans" for f in data["findings"])


def test_fan_caveats_fail_only_with_strict():
    data = run_check(MODELS / "cnn.keras", "--strict", expect=3)
    assert {f["path"] for f in data["findings"]} == {"depthwise_conv2d/kernel", "conv2d_transpose/kernel"}
    assert run_check(MODELS / "cnn.keras", "--strict", "--skip", "fans", expect=0)["passed"]


def test_wrong_scale_fails_distribution(tmp_path):
    def double(weights):
        data = _dataset(weights, "layers/dense")  # mlp's hidden1 kernel, HeNormal
        data[...] = data[()] * 2

    data = run_check(_edited(tmp_path, MODELS / "mlp.keras", double), expect=3)
    assert [(f["check"], f["path"]) for f in data["findings"]] == [("distribution", "hidden1/kernel")]
    assert "std ratio 1.99" in data["findings"][0]["message"]  # the sample std ratio 0.9996, doubled


def test_nan_fails_nonfinite(tmp_path):
    def poison(weights):
        data = _dataset(weights, "layers/dense_1")
        values = data[()]
        values[3, 4] = np.nan
        data[...] = values

    findings = run_check(_edited(tmp_path, MODELS / "mlp.keras", poison), expect=3)["findings"]
    assert [(f["check"], f["path"]) for f in findings] == [("nonfinite", "hidden2/kernel")]


def test_zeroed_kernel_fails_constant(tmp_path):
    def zero(weights):
        _dataset(weights, "layers/dense_2")[...] = 0

    findings = run_check(_edited(tmp_path, MODELS / "mlp.keras", zero), "--only", "constant", expect=3)["findings"]
    assert [(f["check"], f["path"]) for f in findings] == [("constant", "logits/kernel")]


def test_copied_kernel_fails_duplicate(tmp_path):
    def copy(weights):
        # The rnn model's backward GRU kernel becomes a copy of the forward one (same shape).
        forward = weights["layers/bidirectional/forward_layer/cell/vars/0"][()]
        weights["layers/bidirectional/backward_layer/cell/vars/0"][...] = forward

    findings = run_check(_edited(tmp_path, MODELS / "rnn.keras", copy), "--only", "duplicate", expect=3)["findings"]
    assert [(f["check"], f["path"]) for f in findings] == [("duplicate", "backward_gru/gru_cell/kernel")]
    assert "forward_gru/gru_cell/kernel" in findings[0]["message"]


def test_rules_file(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "rules": [
                    {"layer": "hidden*/kernel", "initializer": "he_normal", "std_range": [0.04, 0.06]},
                    {"layer": "logits", "max_abs_mean": 1e-9},
                ]
            }
        )
    )
    findings = run_check(MODELS / "mlp.keras", "--rules", str(rules), "--only", "rules", expect=3)["findings"]
    messages = {(f["path"], f["message"].split(",")[0]) for f in findings}
    assert ("hidden2/kernel", "initializer GlorotUniform") in messages
    assert any(p == "hidden2/kernel" and m.startswith("std ") for p, m in messages)
    assert any(p == "logits/kernel" and m.startswith("|mean|") for p, m in messages)
    assert not any(p == "hidden1/kernel" for p, _ in messages)
    yaml_rules = tmp_path / "rules.yaml"
    yaml_rules.write_text("rules:\n  - layer: '*/kernel'\n    initializer: nope_uniform\n")
    result = CliRunner().invoke(cli, ["check", str(MODELS / "mlp.keras"), "--rules", str(yaml_rules)])
    assert result.exit_code == 1 and "rule 1: Unknown initializer 'nope_uniform'" in result.stderr


def test_text_and_github_formats():
    result = CliRunner().invoke(cli, ["check", str(MODELS / "cnn.keras"), "--strict"])
    assert result.exit_code == 3
    assert result.stdout.splitlines()[0].startswith("error: depthwise_conv2d/kernel: [fans]")
    assert "FAILED" in result.stderr
    result = CliRunner().invoke(cli, ["check", str(MODELS / "cnn.keras"), "--strict", "--format", "github"])
    assert result.exit_code == 3
    assert result.stdout.startswith("::error file=") and "title=initcli fans::" in result.stdout


def test_bad_inputs_use_documented_codes(tmp_path):
    assert CliRunner().invoke(cli, ["check", str(tmp_path / "missing.keras")]).exit_code == 1
    assert CliRunner().invoke(cli, ["check", str(MODELS / "mlp.keras"), "--only", "nonsense"]).exit_code == 2


@pytest.mark.tensorflow
def test_real_models_with_keras_mistakes(keras, tmp_path):
    """A shared unseeded initializer instance and a He-initialized Conv2DTranspose, built by Keras."""
    shared = keras.initializers.GlorotUniform()
    model = keras.Sequential(
        [
            keras.layers.Input((8,)),
            keras.layers.Dense(8, kernel_initializer=shared, name="a"),
            keras.layers.Dense(8, kernel_initializer=shared, name="b"),
        ],
        name="shared",
    )
    model.save(tmp_path / "shared.keras")
    findings = run_check(tmp_path / "shared.keras", expect=3)["findings"]
    assert [(f["check"], f["path"]) for f in findings] == [("duplicate", "b/kernel")]
    model = keras.Sequential(
        [keras.layers.Input((4, 4, 3)), keras.layers.Conv2DTranspose(16, 3, kernel_initializer="he_normal", name="up")],
        name="sequential",  # named: Keras numbers unnamed models after those built before in the process
    )
    model.save(tmp_path / "up.keras")
    assert run_check(tmp_path / "up.keras", expect=0)["warnings"] == 1
    findings = run_check(tmp_path / "up.keras", "--strict", expect=3)["findings"]
    assert [(f["check"], f["path"]) for f in findings] == [("fans", "up/kernel")]
