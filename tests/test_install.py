"""pyproject's extras install one TensorFlow: never both the `tensorflow` and `tensorflow-cpu` distributions."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent
TENSORFLOWS = {"tensorflow", "tensorflow-cpu"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _closure(requirements: list[str]) -> set[str]:
    """The distributions an extra brings, following the installed packages' own requirements (their
    metadata is the oracle: tf-keras's says `tensorflow`), optional extras of those left aside."""
    seen: set[str] = set()
    pending = [_name(r) for r in requirements]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in TENSORFLOWS:
            continue  # TensorFlow's own dependencies bring no second TensorFlow
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        pending += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


@pytest.mark.parametrize("extra", ["tensorflow", "tensorflow-cpu"])
def test_each_tensorflow_extra_brings_one_tensorflow(extra):
    pytest.importorskip("tf_keras")  # its metadata is what says tf-keras requires `tensorflow`
    found = _closure(_extras()[extra] + _extras()["test"]) & TENSORFLOWS
    assert len(found) == 1, (extra, found)


def test_tf_keras_requires_the_full_tensorflow_distribution():
    """Why tensorflow-cpu's extra leaves tf-keras to `pip install --no-deps` (README, .ci/run)."""
    pytest.importorskip("tf_keras")
    assert "tensorflow" in {_name(r) for r in importlib.metadata.requires("tf-keras") or []}


def test_the_readme_and_ci_install_tf_keras_without_its_dependencies():
    for path in (ROOT / "README.md", ROOT / ".ci" / "run"):
        text = path.read_text()
        assert 'pip install --no-deps "tf-keras~=' in text or '--no-deps "tf-keras~=' in text, path
