"""Specs, saved configs, rule files and model code as hostile input: nothing runs, reads files or
allocates beyond the budget; user code leaves sys.path and os.environ as they were."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.errors import InitcliError
from initcli.safety.documents import MAX_ELEMENTS, load_document

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"


def run(*args: str, expect: int) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == expect, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def _spec(tmp_path: Path, spec: dict) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"TFSMLayer": {"filepath": "/tmp/model"}}, "TFSMLayer layers load a SavedModel"),
        ({"StringLookup": {"vocabulary": "/etc/hostname"}}, "vocabulary from a file is refused"),
        ({"StringLookup": {"vocabulary": "/dev/zero"}}, "vocabulary from a file is refused"),
        ({"Dense": {"units": 3, "kernel_initializer": {"module": "evil", "class_name": "X"}}}, "custom object"),
        ({"Dense": {"units": 3, "kernel_regularizer": {"registered_name": "pkg>X", "class_name": "X"}}}, "custom"),
        ({"Dense": {"units": 3, "name": "../../x"}}, "looks like a path"),
        ({"Lambda": {"function": "x"}}, "Lambda layers run arbitrary code"),
    ],
)
def test_specs_naming_files_or_code_are_refused(keras, tmp_path, layer, message):
    line = run("inspect", "--spec", _spec(tmp_path, {"input_shape": [4], "layers": [layer]}), expect=1)
    assert message in line


@pytest.mark.tensorflow
def test_a_spec_over_the_parameter_budget_is_refused_before_allocating(keras, tmp_path):
    spec = {"input_shape": [50000], "layers": [{"Dense": {"units": 50000}}]}
    line = run("inspect", "--spec", _spec(tmp_path, spec), expect=1)
    assert "declares 2500050000 parameters" in line


@pytest.mark.tensorflow
def test_fresh_refuses_a_saved_config_over_budget_or_naming_files(keras, tmp_path):
    with zipfile.ZipFile(MODELS / "mlp.keras") as original:
        members = {info.filename: original.read(info.filename) for info in original.infolist()}
    config = json.loads(members["config.json"])
    dense = [layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense"][-1]
    for name, change, message in [
        ("big", {"units": 5_000_000}, "parameters, more than"),
        ("file", {"name": "/etc/passwd"}, "looks like a path"),
    ]:
        edited = json.loads(json.dumps(config))
        target = next(
            layer for layer in edited["config"]["layers"] if layer["config"]["name"] == dense["config"]["name"]
        )
        target["config"].update(change)
        path = tmp_path / f"{name}.keras"
        with zipfile.ZipFile(path, "w") as out:
            for member, data in {**members, "config.json": json.dumps(edited).encode()}.items():
                out.writestr(member, data)
        line = run("inspect", str(path), "--fresh", expect=1)
        assert message in line, line


@pytest.mark.tensorflow
def test_model_code_leaves_sys_path_and_environment_as_they_were(keras, tmp_path):
    from initcli.keras.building import build_from_function

    code = tmp_path / "user_model.py"
    code.write_text(
        "import os, sys, keras\n"
        "sys.path.append('/nonexistent/injected')\n"
        "os.environ['INITCLI_TEST_INJECTED'] = '1'\n"
        "def build():\n"
        "    os.environ['INITCLI_TEST_INJECTED_2'] = '1'\n"
        "    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
    )
    path_before, environment_before = list(sys.path), dict(os.environ)
    model = build_from_function(f"{code}:build", seed=0)
    assert model.built
    assert sys.path == path_before
    assert dict(os.environ) == environment_before


def test_billion_laughs_yaml_is_refused(tmp_path):
    import yaml  # noqa: F401 - the test extra installs it: missing, this fails rather than skips

    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    path = tmp_path / "rules.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 600
    with pytest.raises(InitcliError, match=f"expands to more than {MAX_ELEMENTS}"):
        load_document(path, "rule file")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("deep.yaml", "a: " + "[" * 500 + "]" * 500, "nested more than"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested 100000 levels"),
        ("int.json", '{"a": ' + "9" * 5000 + "}", "not valid JSON"),
    ],
)
def test_deep_or_huge_documents_are_refused(tmp_path, name, text, message):
    import yaml  # noqa: F401 - the test extra installs it: missing, this fails rather than skips

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InitcliError, match=message):
        load_document(path, "rule file")


def test_a_fifo_as_rule_file_is_refused_without_blocking(tmp_path):
    path = tmp_path / "rules.json"
    os.mkfifo(path)
    with pytest.raises(InitcliError, match="not a regular file"):
        load_document(path, "rule file")


def test_scratch_directory_is_removed_on_sigterm(tmp_path):
    script = (
        "import sys, time\n"
        "from initcli.keras.building import scratch_directory\n"
        "with scratch_directory() as d:\n"
        "    print(d, flush=True)\n"
        "    time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    directory = Path(process.stdout.readline().strip())
    assert directory.name.startswith("initcli-") and directory.is_dir()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    process.stdout.close()
    time.sleep(0.1)
    assert not directory.exists()
