"""The command line: every command, format and error, with real values checked."""

from __future__ import annotations

import csv
import io
import json
import math

import click
import numpy as np
import pytest
from click.testing import CliRunner
from fresh_process import modules_after

from initcli.analysis.sampling import draw
from initcli.cli import cli
from initcli.initializers import resolve


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=expect != 0)
    assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    if expect:
        assert "Traceback" not in result.output
    return result


def sample_json(*args: str) -> dict:
    return json.loads(run("sample", *args, "--format", "json").stdout)


def test_sample_json_contract_and_values():
    data = sample_json("--init", "glorot_normal", "--shape", "3x3x64x128", "--seed", "0")
    assert data["schema_version"] == 1
    assert data["initializer"] == {
        "class_name": "GlorotNormal",
        "config": {"seed": None, "input_axes": None, "output_axes": None},
    }
    assert (data["shape"], data["dtype"], data["seed"], data["fan_in"], data["fan_out"]) == (
        [3, 3, 64, 128],
        "float32",
        0,
        576,
        1152,
    )
    assert set(data["theory"]) >= {"distribution", "mean", "std", "var", "limit", "stddev_param"}
    assert data["theory"]["std"] == pytest.approx(math.sqrt(2 / (576 + 1152)))
    assert data["theory"]["stddev_param"] == pytest.approx(math.sqrt(2 / 1728) / 0.87962566103423978)
    values = draw(resolve("glorot_normal"), (3, 3, 64, 128), seed=0).astype(np.float64)
    assert data["sample"]["count"] == values.size
    assert data["sample"]["mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert data["sample"]["var"] == pytest.approx(values.var(), rel=1e-9)
    assert (data["sample"]["min"], data["sample"]["max"]) == (values.min(), values.max())
    assert set(data["checks"]) >= {"mean_z", "std_ratio", "ks_statistic", "ks_pvalue"}
    # The mean's p-value from scipy, and the verdict the README's rule gives from the p-values.
    from scipy import stats as scipy_stats

    mean_z = (values.mean() - 0.0) / (math.sqrt(2 / 1728) / math.sqrt(values.size))
    assert data["checks"]["mean_pvalue"] == pytest.approx(2 * scipy_stats.norm.sf(abs(mean_z)), rel=1e-6)
    checks = data["checks"]
    smallest = 3 * min(checks["mean_pvalue"], checks["std_pvalue"], checks["ks_pvalue"])
    assert data["verdict"] == (
        "consistent" if smallest >= 0.05 else "suspicious" if smallest >= 0.001 else "inconsistent"
    )
    assert data["reproducible"] is True


def test_sample_without_seed_says_it_is_not_reproducible():
    data = sample_json("--init", "he_uniform", "--shape", "10x10")
    assert data["reproducible"] is False
    assert "not reproducible" in data["notes"][0] and str(data["seed"]) in data["notes"][0]
    table = run("sample", "--init", "he_uniform", "--shape", "10x10").stdout
    assert "not reproducible" in table


def test_three_values_mean_question():
    data = sample_json("--init", "glorot_normal", "--shape", "3", "--seed", "1")
    # fans (3, 3): std = sqrt(2 / 6); standard error of a 3-value mean = std / sqrt(3) = 1/3
    assert data["checks"]["mean_se"] == pytest.approx(math.sqrt(1 / 3) / math.sqrt(3))
    assert data["verdict"] in ("consistent", "suspicious")


@pytest.mark.parametrize("shape", ["3x3x64x128", "3,3,64,128", "(3, 3, 64, 128)", " 3 x 3 x 64 x 128 "])
def test_shape_spellings(shape):
    assert sample_json("--init", "zeros", "--shape", shape)["shape"] == [3, 3, 64, 128]


@pytest.mark.parametrize(("shape", "bad"), [("3x0", "'0'"), ("3x-2", "-2"), ("3x2.5", "'2.5'"), ("axb", "'a'")])
def test_bad_shapes_name_the_bad_part(shape, bad):
    result = run("sample", "--init", "zeros", "--shape", shape, expect=2)
    assert "Invalid value for '--shape'" in result.stderr and bad.strip("'") in result.stderr


def test_unknown_initializer_suggests_names():
    result = run("sample", "--init", "glorot_unifrom", "--shape", "3", expect=2)
    assert "Unknown initializer 'glorot_unifrom'" in result.stderr and "glorot_uniform" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--init", "variance_scaling", "--scale", "-1"],
            "Argument `scale` must be positive float. Received: scale=-1",
        ),
        (["--init", "variance_scaling", "--mode", "fan_up"], "Invalid `mode` argument: fan_up"),
        (["--init", "identity", "--shape", "3x3x3"], "Identity matrix initializer can only be used for 2D matrices"),
        (["--init", "orthogonal", "--shape", "5"], "must be at least two-dimensional"),
        (["--init", "glorot_uniform", "--gain", "2"], "GlorotUniform does not take `gain`"),
        (["--init", "glorot_uniform", "--seed", str(2**64)], "64-bit"),
    ],
)
def test_parameters_keras_rejects_are_usage_errors(args, message):
    if "--shape" not in args:
        args = [*args, "--shape", "4x4"]
    result = run("sample", *args, expect=2)
    assert message in result.stderr
    assert result.stderr.count("\n") <= 4  # Click's usage line, the hint, the one-line error


@pytest.mark.parametrize("output_format", ["csv", "markdown", "table"])
def test_sample_other_formats(output_format):
    out = run("sample", "--init", "he_normal", "--shape", "64x32", "--seed", "3", "--format", output_format).stdout
    if output_format == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert len(rows) == 1 and rows[0]["initializer"] == "HeNormal" and rows[0]["fan_in"] == "64"
        assert float(rows[0]["theory_std"]) == pytest.approx(math.sqrt(2 / 64))
    elif output_format == "markdown":
        assert out.startswith("| initializer | shape | dtype | seed | theory_std | std | std_ratio | verdict |")
        assert "| HeNormal | 64x32 | float32 | 3 | 0.176777 |" in out  # sqrt(2/64)
        wide = run("sample", "--init", "he_normal", "--shape", "64x32", "--format", "markdown", "--wide").stdout
        assert wide.startswith("| initializer | config | shape |")
    else:
        assert "HeNormal" in out and "fan_in 64" in out and "verdict" in out
        assert "\x1b[" not in out  # plain when not a terminal


def test_hist_and_dtype_options():
    out = run(
        "sample", "--init", "glorot_uniform", "--shape", "200x100", "--seed", "1", "--dtype", "bfloat16", "--hist"
    ).stdout
    assert "histogram" in out and "█" in out


def test_save_writes_exact_values_and_never_overwrites(tmp_path):
    target = tmp_path / "w.npy"
    run("sample", "--init", "he_uniform", "--shape", "30x20", "--seed", "5", "--save", str(target))
    saved = np.load(target)
    assert np.array_equal(saved, draw(resolve("he_uniform"), (30, 20), seed=5))
    before = target.read_bytes()
    result = run("sample", "--init", "zeros", "--shape", "30x20", "--save", str(target), expect=1)
    assert "already exists" in result.stderr and target.read_bytes() == before
    run("sample", "--init", "zeros", "--shape", "30x20", "--save", str(target), "--force")
    assert not np.load(target).any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npy"]


def test_list_has_every_initializer():
    data = json.loads(run("list", "--format", "json").stdout)
    names = {row["class_name"] for row in data["initializers"]}
    assert names >= {"GlorotUniform", "HeNormal", "Orthogonal", "Identity", "VarianceScaling", "Zeros"}


def test_explain_plugs_in_numbers():
    out = run("explain", "glorot_uniform", "--shape", "3x3x64x128").stdout
    assert "fan_in = 576, fan_out = 1152" in out and "receptive field 3·3 = 9" in out
    assert f"{math.sqrt(6 / 1728):.6g}" in out and "rng.uniform" in out
    out = run("explain", "he_normal", "--shape", "784x256").stdout
    assert "stddev_param (the underlying normal's stddev, before truncation)" in out
    data = json.loads(run("explain", "lecun_uniform", "--shape", "10x5", "--format", "json").stdout)
    assert data["fan_in"] == 10 and data["theory"]["limit"] == pytest.approx(math.sqrt(3 / 10))


def test_explain_snippets_run():
    """The numpy snippet explain prints runs and draws from the stated distribution."""
    out = json.loads(run("explain", "glorot_normal", "--shape", "300x200", "--format", "json").stdout)
    lines = out["explanation"]
    start = lines.index("numpy, the same distribution (not the same values):") + 1
    namespace: dict = {}
    exec("\n".join(line[2:] if line.startswith("  ") else line for line in lines[start].splitlines()), namespace)
    assert namespace["w"].std() == pytest.approx(out["theory"]["std"], rel=0.02)
    # Without --seed there are no exact values, and the output says how to get them.
    assert out["values"] is None and "--seed" in out["numpy_exact_unavailable"]


def test_every_command_has_help():
    names = cli.list_commands(click.Context(cli))
    assert {"diff", "propagate", "inspect"} <= set(names)  # the lazily imported commands are listed too
    for name in names:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, name
        assert command.help, name
        assert run(name, "--help").stdout.startswith(f"Usage: cli {name}")


def test_version():
    assert "initcli, version" in run("--version").stdout


_run_in_fresh_process = modules_after


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["list"],
        ["explain", "he_normal", "--shape", "3x3"],
        ["sample", "--init", "glorot_normal", "--shape", "3x3x8x8", "--seed", "0"],
        ["sample", "--init", "orthogonal", "--shape", "8x8", "--seed", "0"],
    ],
)
def test_no_tensorflow_import(argv):
    exit_code, modules = _run_in_fresh_process(argv)
    assert exit_code == 0  # the command did its work (a usage error would import little, vacuously)
    # h5py is for reading models: commands that draw or explain must not pay for it either.
    assert not {m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "scipy", "h5py")}


# What the light commands may import (issue 13: `--version` and a small `sample` start in at most
# 0.15 s; benchmarks/bench_startup.py times them). A module added here should be one they need.
_VERSION_MODULES = {
    "initcli",
    "initcli.cli",
    "initcli.cli.main",
    "initcli.cli.errors",
    "initcli.errors",
    "initcli.safety.numbers",
    "initcli.safety.budget",
    "initcli.cli.params",
    "initcli.propagate",
    "initcli.cli.propagate",
    "initcli.cli.diff",
    "initcli.types",
}
_SAMPLE_MODULES = _VERSION_MODULES | {
    "initcli.api",
    "initcli.stats.assessment",
    "initcli.initializers.registry",
    "initcli.initializers.spec",
    "initcli.stats.comparisons",
    "initcli.initializers",
    "initcli.initializers.base",
    "initcli.initializers.constant",
    "initcli.initializers.elementwise",
    "initcli.initializers.identity",
    "initcli.initializers.orthogonal",
    "initcli.initializers.random",
    "initcli.initializers.stft",
    "initcli.initializers.variance_scaling",
    "initcli.parallel.fanout",
    "initcli.initializers.fans",
    "initcli.render.formats",
    "initcli.render.printing",
    "initcli.reports",
    "initcli.rng",
    "initcli.rng.glibc",
    "initcli.rng.philox",
    "initcli.rng.stateless",
    "initcli.safety.sanitize",
    "initcli.parallel.scratch",
    "initcli.initializers.seeding",
    "initcli.stats.significance",
    "initcli.stats.moments",
    "initcli.stats.chunkmoments",  # the accumulator merges its blocks there (issue 25)
    "initcli.render.tables",
    "initcli.render.views",
    "initcli.report_views",
    "initcli.public",
    "initcli.render.wording",
    "initcli.stats.theory",
}
_NEVER_AT_START = {"h5py", "scipy", "tensorflow", "keras", "concurrent", "multiprocessing", "matplotlib"}


@pytest.mark.parametrize(
    ("argv", "allowed", "also_never"),
    [
        # The Click layer alone: not even numpy.
        (["--version"], _VERSION_MODULES, {"rich", "numpy", "logging"}),
        (["--help"], _VERSION_MODULES, {"rich", "numpy", "logging"}),
        (["sample", "--help"], _VERSION_MODULES, {"rich", "numpy", "logging"}),
        (["sample", "--init", "glorot_uniform", "--shape", "3x3", "--seed", "0"], _SAMPLE_MODULES, set()),
        # JSON is not rendered by Rich.
        (
            ["sample", "--init", "glorot_uniform", "--shape", "3x3", "--seed", "0", "--format", "json"],
            _SAMPLE_MODULES,
            {"rich"},
        ),
    ],
)
def test_start_up_imports_only_what_the_command_uses(argv, allowed, also_never):
    """The import guard of the start-up target: a new eager import shows up here, not as a slow start."""
    exit_code, modules = _run_in_fresh_process(argv)
    assert exit_code == 0
    ours = {m for m in modules if m.split(".")[0] == "initcli"}
    packages = {name.rsplit(".", 1)[0] for name in allowed if "." in name}  # a module's package face comes along
    assert ours <= allowed | packages, sorted(ours - allowed - packages)
    assert "initcli.cli" in ours and ("initcli.rng.stateless" in ours) == (argv[0] == "sample" and "--help" not in argv)
    assert not {m.split(".")[0] for m in modules} & (_NEVER_AT_START | also_never)


# Loaded by other commands, never by `sample` and `list` (issue 25: their 0.15 s start-up): the checks
# and their rules files, numpy.ma (`np.unique` imports it on its first call), the readers, the
# parallel draw, temporary files.
_NOT_FOR_SAMPLE_OR_LIST = {
    "numpy.ma",
    "initcli.analysis.checks",
    "initcli.safety.documents",
    "initcli.readers",
    "initcli.rng.parallel",
    "initcli.keras",
    "tempfile",
}


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--init", "glorot_uniform", "--shape", "3x3", "--seed", "0"],
        ["sample", "--init", "orthogonal", "--shape", "8x8", "--seed", "0", "--format", "json"],
        ["list"],
    ],
)
def test_sample_and_list_skip_what_they_do_not_use(argv):
    exit_code, modules = _run_in_fresh_process(argv)
    assert exit_code == 0 and "initcli.initializers.registry" in modules  # the command did its work
    assert not modules & _NOT_FOR_SAMPLE_OR_LIST, sorted(modules & _NOT_FOR_SAMPLE_OR_LIST)
    assert not {m.split(".")[0] for m in modules} & (_NEVER_AT_START | {"yaml", "pandas"})


def test_cli_choices_match_the_engine():
    """The options take their choices and defaults from initcli.types; the engine's own tables agree."""
    from initcli.analysis.checks import CHECKS
    from initcli.types import CHECK_NAMES, DEFAULT_ALPHA, ENGINES, FLOAT_DTYPES

    assert CHECK_NAMES == tuple(CHECKS)
    check_options = {p.name: p for p in cli.commands["check"].params}
    assert check_options["only"].type.choices == check_options["skip"].type.choices == tuple(CHECKS)
    sample_options = {p.name: p for p in cli.commands["sample"].params}
    assert sample_options["dtype"].type.choices == FLOAT_DTYPES == ("float16", "bfloat16", "float32", "float64")
    assert sample_options["engine"].type.choices == ENGINES == ("numpy", "keras")
    assert sample_options["alpha"].default == DEFAULT_ALPHA == 1e-3


@pytest.mark.tensorflow
def test_keras_engine_agrees(keras):
    ours = sample_json("--init", "he_normal", "--shape", "50x40", "--seed", "8")
    theirs = sample_json("--init", "he_normal", "--shape", "50x40", "--seed", "8", "--engine", "keras")
    assert ours["sample"] == theirs["sample"]


def test_columns_select_and_order_flat_output():
    out = run(
        "sample",
        "--init",
        "he_normal",
        "--shape",
        "64x32",
        "--seed",
        "3",
        "--format",
        "csv",
        "--columns",
        "verdict,fan_in,theory_std",
    ).stdout
    header, row = out.splitlines()
    assert header == "verdict,fan_in,theory_std"
    assert row.split(",")[1] == "64" and float(row.split(",")[2]) == pytest.approx(math.sqrt(2 / 64))
    result = run("sample", "--init", "he_normal", "--shape", "4", "--format", "csv", "--columns", "nope", expect=2)
    assert "unknown column(s) nope" in result.stderr


@pytest.mark.parametrize(
    "cell",
    ["", "  ", "class_name", "two words", "a [bold]b[/bold] c", "日本語 x", "x\ny longer", "-0.7078647 · 3x3"],
)
def test_fit_columns_early_refusal_never_exceeds_rich(cell):
    """The quick bound `fit_columns` refuses a table by is at most Rich's own minimum width (Rich the
    oracle), and equal to it for Text cells: the fitted tables are those Rich's measurement gives."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.text import Text

    from initcli.render.tables import _least_width

    console = Console(width=10_000, color_system=None, emoji=False)
    text = Text(cell)
    assert _least_width(text) == Measurement.get(console, console.options, text).minimum
    assert _least_width(cell) <= Measurement.get(console, console.options, cell).minimum
