"""Rules per model (`model:` glob, `required:`), and the shipped CI example on every shipped model."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from initcli.cli import cli
from tests.test_check import MODELS, _dataset, _edited
from tests.test_examples import ROOT, _path_with_initcli

SHIPPED = sorted(str(path) for path in MODELS.glob("*.keras"))


def _run_script(tmp_path: Path, *models: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", str(ROOT / "examples/ci/check-init.sh"), *models],
        capture_output=True,
        text=True,
        env=_path_with_initcli(bin_dir),
    )


def test_ci_example_passes_on_every_shipped_model(tmp_path):
    assert len(SHIPPED) == 3
    result = _run_script(tmp_path, *SHIPPED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed, 0 failed" in result.stdout + result.stderr


def test_ci_example_fails_on_a_planted_bad_model(tmp_path):
    def double(weights):
        data = _dataset(weights, "layers/dense")  # hidden1/kernel
        data[...] = data[()] * 2

    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = bad_dir / "mlp.keras"
    shutil.move(_edited(tmp_path, MODELS / "mlp.keras", double), bad)
    others = [model for model in SHIPPED if not model.endswith("mlp.keras")]
    result = _run_script(tmp_path, str(bad), *others)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "std_range" in result.stdout or "std " in result.stdout
    assert "1 failed" in result.stdout + result.stderr


def _check_json(tmp_path: Path, rules: str, *models: str, expect: int) -> dict:
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    result = CliRunner().invoke(cli, ["check", *models, "--rules", str(path), "--format", "json"])
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout)


def _rule_findings(data: dict) -> list[tuple[str, str]]:
    reports = data.get("models") or [data]
    return [
        (Path(report["source"]).name, finding["severity"])
        for report in reports
        for finding in report.get("findings", [])
        if finding["check"] == "rules"
    ]


STALE = 'rules:\n  - layer: "hidden1/kernel"\n'


def test_unmatched_rule_fails_a_single_model_run(tmp_path):
    _check_json(tmp_path, STALE, str(MODELS / "cnn.keras"), expect=3)


def test_unmatched_rule_is_a_warning_in_a_multi_model_run(tmp_path):
    data = _check_json(tmp_path, STALE, *SHIPPED, expect=0)
    assert sorted(_rule_findings(data)) == [("cnn.keras", "warning"), ("rnn.keras", "warning")]


def test_required_rule_fails_a_multi_model_run(tmp_path):
    data = _check_json(tmp_path, STALE + "    required: true\n", *SHIPPED, expect=3)
    assert sorted(_rule_findings(data)) == [("cnn.keras", "error"), ("rnn.keras", "error")]


@pytest.mark.parametrize("glob", ["mlp.keras", "mlp*", "*/models/mlp.keras"])
def test_model_glob_limits_a_rule_to_its_models(tmp_path, glob):
    data = _check_json(tmp_path, STALE + f'    model: "{glob}"\n', *SHIPPED, expect=0)
    assert _rule_findings(data) == []


def test_malformed_model_and_required_are_one_line_errors(tmp_path):
    for extra in ("    model: 3\n", "    required: yes please\n"):
        path = tmp_path / "rules.yaml"
        path.write_text(STALE + extra)
        result = CliRunner().invoke(cli, ["check", str(MODELS / "mlp.keras"), "--rules", str(path)])
        assert result.exit_code in (1, 2) and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
