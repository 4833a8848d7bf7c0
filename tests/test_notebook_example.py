"""examples/notebook.py: the notebook-style example runs, as a script and cell by cell in a kernel.

Oracles: the model's own weights (the example asserts its DataFrame's rows are `model.weights`),
Keras's training loop (the callback stops the planted model before a step, and lets the default one
train), and Jupyter itself (nbclient runs the cells in an IPython kernel: the report's cell shows the
HTML table, the DataFrame's an HTML frame).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tensorflow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "notebook.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def cells(text: str) -> list[tuple[str, str]]:
    """(kind, source) of each `# %%` cell; a markdown cell's `# ` prefixes removed."""
    found: list[tuple[str, str]] = []
    for chunk in re.split(r"^# %%", text, flags=re.M)[1:]:
        header, _, body = chunk.partition("\n")
        if "[markdown]" in header:
            found.append(
                ("markdown", "\n".join(line.removeprefix("#").removeprefix(" ") for line in body.strip().splitlines()))
            )
        else:
            found.append(("code", body.strip()))
    return found


def test_the_example_runs_as_a_script():
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "8 weights of digits: ['consistent']" in lines
    assert "passed 8 weights, 0 errors" in lines
    assert "initcli InitCheck: the initial weights failed the checks" in lines
    assert any(line.startswith("trained one epoch; loss ") for line in lines)


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("nbclient", "nbformat", "ipykernel")),
    reason="nbclient, nbformat and ipykernel run the example as a notebook",
)
def test_the_example_runs_as_a_notebook():
    import nbclient
    import nbformat

    notebook = nbformat.v4.new_notebook()
    for kind, source in cells(EXAMPLE.read_text()):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(make(source))
    previous = {key: os.environ.get(key) for key in ENV}
    os.environ.update(ENV)  # the kernel inherits them
    try:
        nbclient.NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]

    def html_of(marker: str) -> str:
        cell = next(cell for cell in code if marker in cell.source)
        shown = [output for output in cell.outputs if output.output_type == "execute_result"]
        assert shown, cell.source
        return shown[0].data["text/html"]

    table = html_of("report = initcli.inspect(model)")
    assert table.startswith("<!DOCTYPE html>") and "conv2d/kernel" in table and "digits/conv2d/kernel" not in table
    frame = html_of('frame[["path"')
    assert "<table" in frame and "theory_std" in frame
