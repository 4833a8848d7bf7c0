"""docs/api.md: its Python examples run, and the site (mkdocs + mkdocstrings) lists every guide.

The site itself is built with warnings as errors by .ci/run (`mkdocs build --strict`, the docs
extra); `test_the_site_builds_strict` builds it here too when mkdocs is installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", API.read_text(), re.S)


@pytest.mark.tensorflow
def test_the_python_examples_run(tmp_path):
    blocks = python_blocks()
    assert len(blocks) >= 3
    program = "\n".join(["import os", f"os.chdir({str(ROOT)!r})", *blocks])
    script = tmp_path / "api_examples.py"
    script.write_text(program)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_site_lists_every_guide():
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = sorted(page for entry in site["nav"] for page in entry.values())
    assert listed == sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    assert site["strict"] is True


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs and mkdocstrings are in the docs extra",
)
def test_the_site_builds_strict(tmp_path):
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "site" / "api" / "index.html").read_text()
    documented = set(re.findall(r'id="(initcli\.[^"]+)"', page))
    public = {f"initcli.public.{name}" for name in ("inspect", "check", "sample", "explain", "propagate", "diff")}
    views = {"initcli.report_views.ReportViews.to_dict", "initcli.report_views.ReportViews.to_pandas"}
    assert public | views | {"initcli.callback.InitCheck", "initcli.errors.BadInputError"} <= documented


@pytest.mark.parametrize(
    "name", ["inspect", "check", "sample", "explain", "propagate", "diff", "defaults", "batchnorm"]
)
def test_each_public_functions_args_are_its_parameters(name):
    import inspect

    import initcli.public

    function = getattr(initcli.public, name)
    docstring = inspect.getdoc(function) or ""
    section = re.search(r"^Args:\n(.*?)(?:\n\S|\Z)", docstring, re.S | re.M)
    assert section is not None, name
    documented = []
    for entry in re.findall(r"^    (\*{0,2}[\w, ]+):", section.group(1), re.M):
        documented += [part.strip().lstrip("*") for part in entry.split(",")]
    assert documented == list(inspect.signature(function).parameters), name
