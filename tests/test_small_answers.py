"""Issue 26's small ones: negative stddev refused, tiny-sample std interval, plural agreement."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.render.wording import plural
from tests.fetched import public
from tests.test_check import MODELS, _dataset, _edited


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.mark.parametrize("init", ["truncated_normal", "random_normal"])
def test_negative_stddev_is_a_usage_error(init):
    result = _run("sample", "--init", init, "--stddev", "-0.1", "--shape", "3")
    assert result.exit_code == 2
    assert "--stddev" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--init", "truncated_normal:stddev=-1"), ("--compare", "he_normal,random_normal:stddev=-0.1")],
)
def test_negative_stddev_in_the_spec_form_is_a_usage_error(flag, value):
    result = _run("propagate", "--spec", "examples/specs/deep_relu.yaml", flag, value)
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and f"'{flag}'" in error[0] and "stddev must be >= 0" in error[0], result.output
    assert "Traceback" not in result.output


def test_negative_stddev_asked_is_refused_but_a_saved_config_is_read_as_keras_reads_it():
    from initcli import public
    from initcli.errors import BadInputError
    from initcli.initializers import resolve

    with pytest.raises(BadInputError, match="stddev must be >= 0"):
        public.sample("truncated_normal", (3,), stddev=-1)
    with pytest.raises(BadInputError, match="stddev must be >= 0"):
        resolve({"class_name": "RandomNormal", "config": {}}, stddev=-0.5)
    assert resolve({"class_name": "TruncatedNormal", "config": {"stddev": -0.1}}).config["stddev"] == -0.1
    assert resolve("truncated_normal", stddev=0).config["stddev"] == 0.0


@pytest.mark.tensorflow
def test_keras3_accepts_negative_stddev_and_mirrors_the_draw(keras):
    """Why we refuse: Keras 3 raises nothing and draws -1 times the values of stddev=+0.1."""
    negative = np.asarray(keras.initializers.TruncatedNormal(stddev=-0.1, seed=3)((64,)))
    positive = np.asarray(keras.initializers.TruncatedNormal(stddev=0.1, seed=3)((64,)))
    np.testing.assert_array_equal(negative, -positive)


def test_tiny_sample_std_interval_says_too_few():
    small = _run("sample", "--init", "truncated_normal", "--shape", "12", "--seed", "1", env={"COLUMNS": "250"})
    assert small.exit_code == 0, small.output
    assert "12 values: too few to judge the std" in small.output
    assert "[0.0000," not in small.output
    large = _run("sample", "--init", "truncated_normal", "--shape", "100", "--seed", "1", env={"COLUMNS": "250"})
    assert "expected within [" in large.output and "too few" not in large.output


def test_plural_words():
    assert [plural(n, "error") for n in (0, 1, 2)] == ["0 errors", "1 error", "2 errors"]
    assert plural(1, "weight") == "1 weight"


def test_check_summary_says_1_error(tmp_path):
    def double(weights):
        data = _dataset(weights, "layers/dense")
        data[...] = data[()] * 2

    bad = _edited(tmp_path, MODELS / "mlp.keras", double)
    result = CliRunner().invoke(cli, ["check", str(bad)])
    assert result.exit_code == 3
    summary = result.stderr.strip().splitlines()[-1]
    assert ", 1 error, 0 warnings;" in summary, summary
    data = json.loads(CliRunner().invoke(cli, ["check", str(bad), "--format", "json"]).stdout)
    assert data["errors"] == 1


def test_the_check_views_show_the_lines_the_command_prints(tmp_path):
    """The terminal/HTML view and InitCheck's message quote `check`'s lines, "1 error" too (one source)."""
    from rich.console import Console

    import initcli
    from initcli.callback import failure_message

    def double(weights):
        data = _dataset(weights, "layers/dense")
        data[...] = data[()] * 2

    bad = _edited(tmp_path, MODELS / "mlp.keras", double)
    printed = CliRunner().invoke(cli, ["check", str(bad)])
    lines = printed.stdout.splitlines() + printed.stderr.splitlines()
    assert len(lines) == 2 and ", 1 error, 0 warnings;" in lines[-1], lines
    report = initcli.check(bad)
    console = Console(width=10_000, file=io.StringIO())
    console.print(report)
    assert [line.rstrip() for line in console.file.getvalue().splitlines()] == lines
    assert failure_message(report).splitlines()[1:] == lines


def _as_in_tree(name: str, tmp_path: Path, monkeypatch) -> str:
    """The fetched file `name` copied to `tests/fixtures/public/<name>` under `tmp_path`, the working
    folder: the relative path the title tests print, whatever folder holds the fetched files."""
    import shutil

    source = public(name)
    target = tmp_path / "tests" / "fixtures" / "public" / name
    target.parent.mkdir(parents=True)
    (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    monkeypatch.chdir(tmp_path)
    return f"tests/fixtures/public/{name}"


def _title_lines(output: str) -> list[str]:
    """The lines before the table's top border or the first stacked block."""
    lines = output.splitlines()
    return lines[: next(i for i, line in enumerate(lines) if not line.startswith(("· ", "tests/")))]


@pytest.mark.parametrize(
    ("name", "label", "columns", "extra"),
    [
        ("keras1.2.2_tensorflow_sequential_conv2d_dense.h5", "h5", 80, ()),
        ("tfkeras2.4.0_functional_embedding_conv1d_dense.hdf5", "h5", 80, ()),
        ("keras1.2.2_tensorflow_sequential_conv2d_dense.h5", "h5", 72, ("--columns", "path,shape")),
        ("tfkeras2.4.0_save_weights_dense.h5", "weights.h5", 150, ("--columns", "path,shape")),
    ],
)
def test_the_title_fits_the_terminal_never_breaking_a_part(monkeypatch, tmp_path, name, label, columns, extra):
    """The title's parts (file, format, the Keras version of the file's root attribute, read with h5py)
    stay whole: lines of at most COLUMNS, broken only between parts, never at a table's narrower width."""
    import h5py

    path = _as_in_tree(name, tmp_path, monkeypatch)
    with h5py.File(path, "r") as handle:
        version = handle.attrs["keras_version"]
    expected = [path, label, f"Keras {version.decode() if isinstance(version, bytes) else version}"]
    result = _run("inspect", path, *extra, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    title = _title_lines(result.stdout)
    assert all(len(line) <= columns for line in title), title
    assert [part for line in title for part in line.removeprefix("· ").split(" · ")] == expected, title
    joined = " · ".join(expected)
    if len(joined) <= columns:
        assert title == [joined]
    else:  # as few lines as fit
        assert len(title) == 2 and len(title[0] + " · " + title[1].removeprefix("· ").split(" · ")[0]) > columns


def test_savedmodel_title_is_one_line_at_150_columns(monkeypatch, tmp_path):
    """The issue's "Keras\\nunknown": a narrow table's title was wrapped to the table's width."""
    path = _as_in_tree("tfkeras_save_weights_tf_checkpoint_dense", tmp_path, monkeypatch)
    result = _run("inspect", path, "--columns", "path,shape", env={"COLUMNS": "150"})
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith(path) and first.endswith(" · Keras unknown"), result.stdout


def test_every_help_is_readable_at_80_columns():
    """`--help` of the group and of every command: no line wider than COLUMNS=80 (examples break with `\\`)."""
    commands = ["", *cli.commands]
    for command in commands:
        result = _run(*([command] if command else []), "--help", env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        wide = [line for line in result.output.splitlines() if len(line) > 80]
        assert not wide, (command, wide)
