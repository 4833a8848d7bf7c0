"""Click parameter types and shared options: values are validated at the boundary (usage errors, exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from initcli.safety.budget import MAX_TIMEOUT
from initcli.safety.numbers import FINITE_FLOAT, PROBABILITY, FloatType, ShapeType
from initcli.types import DEFAULT_ALPHA, FLOAT_DTYPES, OUTPUT_FORMATS

if TYPE_CHECKING:
    import numpy as np


class AxesType(click.ParamType):
    name = "axes"

    def convert(self, value: Any, param: Any, ctx: Any) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            return [int(p) for p in str(value).split(",") if p.strip()]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integer axes", param, ctx)


SHAPE = ShapeType()
# A batchnorm batch is held whole (and its outputs): a smaller budget.
BATCH_SHAPE = ShapeType(max_elements=2**24)
AXES = AxesType()


def _table_only(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Options that shape tables are an error with a format that would ignore them."""
    if value and ctx.params.get("output_format", "table") == "json":
        raise click.BadParameter("applies to tables, CSV and Markdown, not to --format json", ctx, param)
    return value


def _table_flag(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value and ctx.params.get("output_format", "table") != "table":
        raise click.BadParameter(
            f"applies to --format table only, not to --format {ctx.params['output_format']}", ctx, param
        )
    return value


def _wide_flag(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value and ctx.params.get("output_format", "table") not in ("table", "markdown"):
        raise click.BadParameter(
            f"applies to --format table and markdown only, not to --format {ctx.params['output_format']}", ctx, param
        )
    return value


def table_flag(name: str, help_text: str) -> Callable[..., Any]:
    """A flag that only tables use (--hist): an error with another format."""
    return click.option(name, is_flag=True, help=help_text, callback=_table_flag)


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --format, --columns and --wide options every data command shares."""
    command = click.option(
        "--wide",
        is_flag=True,
        help="All columns: tables whatever the terminal's width; Markdown (default: the compact set).",
        callback=_wide_flag,
    )(command)
    command = click.option(
        "--columns",
        "columns",
        metavar="NAME,...",
        callback=_table_only,
        help="Only these columns, in this order (tables, csv and markdown; names in docs/reference.md, Commands).",
    )(command)
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        is_eager=True,
        help="table for people; json, csv or markdown for scripts (contract in docs/reference.md, Output contract).",
    )(command)


NON_NEGATIVE_FLOAT = FloatType(0)
"""stddev: Keras 3 accepts a negative stddev and draws the mirrored values (z·stddev), never what was meant."""

INITIALIZER_PARAMETERS: tuple[tuple[str, Any, str], ...] = (
    ("--scale", FINITE_FLOAT, "VarianceScaling scale (> 0)."),
    ("--mode", str, "VarianceScaling mode: fan_in, fan_out or fan_avg."),
    ("--distribution", str, "VarianceScaling distribution: truncated_normal, untruncated_normal, uniform."),
    ("--mean", FINITE_FLOAT, "RandomNormal/TruncatedNormal mean."),
    ("--stddev", NON_NEGATIVE_FLOAT, "RandomNormal/TruncatedNormal stddev (>= 0; of the normal before truncation)."),
    ("--minval", FINITE_FLOAT, "RandomUniform lower bound."),
    ("--maxval", FINITE_FLOAT, "RandomUniform upper bound."),
    ("--gain", FINITE_FLOAT, "Orthogonal/Identity gain."),
    ("--value", FINITE_FLOAT, "Constant value."),
)


def initializer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every initializer parameter as an option (collected into **parameters)."""
    for flag, kind, help_text in reversed(INITIALIZER_PARAMETERS):
        command = click.option(flag, type=kind, help=help_text)(command)
    return command


def alpha_option(help_text: str) -> Callable[..., Any]:
    """--alpha: a false-alarm rate in (0, 1)."""
    return click.option(
        "--alpha",
        type=PROBABILITY,
        default=DEFAULT_ALPHA,
        show_default=True,
        help=help_text,
    )


DTYPE_OPTION = click.option("--dtype", type=click.Choice(FLOAT_DTYPES), default="float32", show_default=True)
LAYER_OPTION = click.option(
    "--layer",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help="Only weights whose path or layer name matches (glob, or plain text inside). Repeatable.",
)


class ValuesType(click.ParamType):
    """A comma-separated list of finite numbers: 0,1.405974."""

    name = "values"

    def convert(self, value: Any, param: Any, ctx: Any) -> np.ndarray:
        import numpy as np

        if isinstance(value, np.ndarray):
            return value
        try:
            values = np.array([float(v) for v in str(value).split(",")], dtype=np.float64)
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)
        if not np.all(np.isfinite(values)):
            self.fail(f"{value!r}: values must be finite", param, ctx)
        return values


TIMEOUT_OPTION = click.option(
    "--timeout",
    type=FloatType(0, MAX_TIMEOUT, min_open=True),
    metavar="SECONDS",
    help="Give up when reading the command's model files (every reader, parser and glob) takes longer "
    "(at most 86400; default 60, or INITCLI_TIMEOUT).",
)

SCHEDULER_OPTION = click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Read the weights on a Dask cluster (tcp://HOST:8786, or local); its workers open the files "
    "by the same paths. Needs initcli[dask].",
)

SPEC_OPTION = click.option(
    "--spec",
    "spec_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Build the model from a YAML/JSON spec or a Keras model JSON (needs TensorFlow).",
)


def expand_models(values: tuple[str, ...]) -> list[str]:
    """The MODEL arguments with glob patterns expanded (for shells and CI files that pass them quoted).

    A path that exists, or a `module:function`, is taken as it is; a pattern is expanded in sorted
    order (`**` reaches into subfolders, never through a symlinked one; `initcli.safety.globs`), all
    patterns together within the command's match limit. A pattern that matches nothing is a usage
    error, so a gate over `models/*.keras` cannot pass by checking no model.
    """
    from pathlib import Path

    from initcli.safety import budget, globs

    models: list[str] = []
    matched = 0
    for value in values:
        if Path(value).exists() or not globs.has_magic(value):
            models.append(value)
            continue
        matches = globs.expand(value, budget.active(), already=matched)
        if not matches:
            raise click.BadParameter(f"{value!r} matches no file", param_hint="'MODEL'")
        matched += len(matches)
        models += matches
    return list(dict.fromkeys(models))


# The one way to have initcli run user code (docs/custom-layers.md).
CUSTOM_OBJECTS_OPTION = click.option(
    "--custom-objects",
    "custom_objects",
    multiple=True,
    metavar="MODULE[:NAME]",
    help=(
        "Import this module (or file.py) of your own layer classes, all of them or NAME, so Keras rebuilds "
        "a model with custom layers: rows get the real classes and initializers. Repeatable. The only "
        "way initcli runs your code; never implied by a file."
    ),
)
