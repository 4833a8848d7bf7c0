"""CI adoption: the pre-commit hook (`.pre-commit-hooks.yaml`) and the GitHub Action (`action.yml`).

Oracles: the documented exit codes (0 passed, 3 a check failed, 2 bad usage) on a model initcli must
pass (`examples/models/mlp.keras`) and one whose kernel is planted all zero with h5py (a
GlorotUniform kernel cannot be constant); pre-commit itself installs and runs the hook (`pre-commit
run` with a config naming this repository, or `pre-commit try-repo` when the checkout has changes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "models" / "mlp.keras"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def zeroed_kernel(source: Path, target: Path) -> str:
    """A copy of a .keras file whose first 2-D weight is all zeros (rewritten with h5py); its location."""
    import h5py

    work = target.parent / "weights.h5"
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    work.write_bytes(members["model.weights.h5"])
    found: list[str] = []
    with h5py.File(work, "r+") as weights:
        weights.visititems(lambda name, item: found.append(name) if getattr(item, "ndim", 0) == 2 else None)
        weights[found[0]][...] = 0.0
    members["model.weights.h5"] = work.read_bytes()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return found[0]


@pytest.fixture
def bad_model(tmp_path: Path) -> Path:
    path = tmp_path / "bad.keras"
    zeroed_kernel(MLP, path)
    return path


# --- pre-commit ------------------------------------------------------------------------------------------


def hook() -> dict:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [entry["id"] for entry in hooks] == ["initcli-check"]
    return hooks[0]


def test_the_documented_hook_arguments_pass_default_models_and_fail_a_bad_one(bad_model):
    """The args of docs/api.md's snippet (and the hook file's comment): a default LSTM/GRU, CNN and MLP
    pass; the planted zero kernel fails; plain --strict fails the default RNN (why the snippet skips fans)."""
    documented = re.search(r"args: \[(.*)\]   # any", (ROOT / "docs" / "api.md").read_text())
    commented = re.search(r"args: \[(.*)\]   # any", (ROOT / ".pre-commit-hooks.yaml").read_text())
    assert documented and commented and documented.group(1) == commented.group(1)
    args = [part.strip() for part in documented.group(1).split(",")]
    models = ROOT / "examples" / "models"

    def check(path: Path, *options: str) -> int:
        command = [sys.executable, "-m", "initcli", "check", str(path), *options]
        return subprocess.run(command, capture_output=True, env=ENV, check=False).returncode

    for name in ("mlp.keras", "cnn.keras", "rnn.keras", "cnn.h5"):
        assert check(models / name, *args) == 0, name
    assert check(bad_model, *args) == 3
    assert check(models / "rnn.keras", "--strict") == 3


def test_the_hook_takes_keras_and_h5_models_only():
    entry = hook()
    assert entry["language"] == "python" and entry["entry"].split()[:2] == ["initcli", "check"]
    chosen = [
        name
        for name in ("a/model.keras", "cnn.h5", "cnn.weights.h5", "README.md", "model.keras.bak", "h5")
        if re.search(entry["files"], name) and not re.search(entry["exclude"], name)
    ]
    assert chosen == ["a/model.keras", "cnn.h5"]


def test_the_hooks_entry_passes_a_fresh_model_and_fails_a_planted_one(bad_model):
    command = [sys.executable, "-m", *hook()["entry"].split()]  # `initcli` is `python -m initcli`
    good = subprocess.run([*command, str(MLP)], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run([*command, str(MLP), str(bad_model)], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert bad.returncode == 3
    assert "[constant] all zero" in bad.stdout


@pytest.mark.slow
def test_pre_commit_runs_the_hook(bad_model, tmp_path):
    """pre-commit installs the hook from this repository (pip, from the package index) and runs it."""
    if shutil.which("pre-commit") is None and not (Path(sys.executable).parent / "pre-commit").exists():
        pytest.skip("pre-commit is not installed (it is in the test extra)")
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: pre-commit try-repo needs one")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(MLP, project / "mlp.keras")
    shutil.copy(bad_model, project / "bad.keras")
    git = ["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "."], cwd=project, check=True)
    env = {**ENV, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    env.pop("PYTHONPATH")  # the hook runs initcli as pre-commit installed it

    # A clean checkout (CI): a .pre-commit-config.yaml naming this repository at HEAD, as a user writes it;
    # pre-commit installs the hook once into PRE_COMMIT_HOME and both runs use it. Local changes: try-repo,
    # which commits them to a shadow repository, but installs the hook again on every run (its own store).
    tracked_changes = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    if tracked_changes:
        command = ["pre-commit", "try-repo", str(ROOT), "initcli-check"]
    else:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        config = tmp_path / "pre-commit-config.yaml"
        repos = [{"repo": str(ROOT), "rev": head, "hooks": [{"id": "initcli-check"}]}]
        config.write_text(yaml.safe_dump({"repos": repos}))
        command = ["pre-commit", "run", "--config", str(config)]

    def run(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "--files", *files], capture_output=True, text=True, env=env, cwd=project, timeout=900
        )

    passed = run("mlp.keras")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"initcli check\.+Passed", passed.stdout)
    failed = run("mlp.keras", "bad.keras")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"initcli check\.+Failed", failed.stdout) and "[constant] all zero" in failed.stdout


# --- the GitHub Action ----------------------------------------------------------------------------------


def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def test_the_action_is_a_composite_that_installs_this_repository_and_runs_its_script():
    spec = action()
    assert spec["runs"]["using"] == "composite"
    steps = spec["runs"]["steps"]
    assert all(step.get("shell") == "bash" for step in steps if "run" in step)
    install = next(step for step in steps if "pip install" in step.get("run", ""))
    assert '"${{ github.action_path }}"' in install["run"]
    check = next(step for step in steps if step.get("id") == "check")
    script = ROOT / check["run"].split('"${{ github.action_path }}/')[1].rstrip('"')
    assert script.is_file()
    text = script.read_text()
    for name, value in check["env"].items():
        assert f"${{{name}" in text  # the script reads what the step passes
        assert value.startswith("${{ inputs.") and value[len("${{ inputs.") :].split()[0] in spec["inputs"]
    assert spec["outputs"]["exit-code"]["value"] == "${{ steps.check.outputs.exit-code }}"


def run_action_script(tmp_path: Path, models: str, args: str = "") -> tuple[subprocess.CompletedProcess[str], str]:
    check = next(step for step in action()["runs"]["steps"] if step.get("id") == "check")
    script = ROOT / check["run"].split('"${{ github.action_path }}/')[1].rstrip('"')
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**ENV, "INITCLI_MODELS": models, "INITCLI_ARGS": args, "GITHUB_OUTPUT": str(output)}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    return done, output.read_text()


def test_the_action_script_passes_globs_and_annotates_failures(tmp_path, bad_model):
    models = tmp_path / "models" / "deep"
    models.mkdir(parents=True)
    shutil.copy(MLP, models / "mlp.keras")
    passed, output = run_action_script(tmp_path, "models/**/*.keras\n", "--strict")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert output == "exit-code=0\n"
    assert passed.stdout.startswith("::notice title=initcli coverage")
    shutil.copy(bad_model, models / "bad.keras")
    failed, output = run_action_script(tmp_path, "models/**/*.keras")
    assert failed.returncode == 3 and output == "exit-code=3\n"
    errors = [line for line in failed.stdout.splitlines() if line.startswith("::error ")]
    assert errors and all(line.startswith("::error file=models/deep/bad.keras,") for line in errors)
    assert any("title=initcli constant::" in line for line in errors)


def test_the_action_script_with_no_models_is_a_usage_error(tmp_path):
    done, output = run_action_script(tmp_path, "  \n ")
    assert done.returncode == 2 and output == "exit-code=2\n"
    assert done.stdout.startswith("::error title=initcli::no models given")
