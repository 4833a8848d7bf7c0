"""Click parameter types and shared options: values are validated at the boundary (usage errors, exit 2)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click
import numpy as np

from initcli.rng.stateless import FLOAT_DTYPES
from initcli.significance import DEFAULT_ALPHA
from initcli.types import OUTPUT_FORMATS


class ShapeType(click.ParamType):
    """A tensor shape: 3x3x64x128, 3,3,64,128, (3, 3, 64, 128), 784x256, or () for a scalar."""

    name = "shape"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        inner = text[1:-1] if text.startswith("(") and text.endswith(")") else text
        inner = inner.strip()
        if inner in ("", "scalar"):
            return ()
        parts = [p.strip() for p in re.split(r"[x,×]", inner)]
        if parts and parts[-1] == "" and "," in inner:
            parts = parts[:-1]  # "(3,)" is a one-element tuple
        dims = []
        for part in parts:
            if not re.fullmatch(r"[+-]?\d+", part):
                self.fail(f"{text!r}: dimension {part!r} is not an integer", param, ctx)
            dim = int(part)
            if dim <= 0:
                self.fail(f"{text!r}: dimension {part} must be positive", param, ctx)
            dims.append(dim)
        return tuple(dims)


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


def table_flag(name: str, help_text: str) -> Callable[..., Any]:
    """A flag that only tables use (--hist, --wide): an error with another format."""
    return click.option(name, is_flag=True, help=help_text, callback=_table_flag)


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --format, --columns and --wide options every data command shares."""
    command = table_flag("--wide", "Tables: all columns, whatever the terminal's width.")(command)
    command = click.option(
        "--columns",
        "columns",
        metavar="NAME,...",
        callback=_table_only,
        help="Only these columns, in this order (tables, csv and markdown; see the README for the names).",
    )(command)
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        is_eager=True,
        help="table for people; json, csv or markdown for scripts (see the README's contract).",
    )(command)


def select_columns(requested: str | None, available: tuple[str, ...]) -> tuple[str, ...]:
    """The columns `--columns` names, in its order; a usage error for unknown names."""
    if not requested:
        return available
    names = tuple(name.strip() for name in requested.split(",") if name.strip())
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown column(s) {', '.join(unknown) or '(none given)'}; available: {', '.join(available)}",
            param_hint="'--columns'",
        )
    return names


INITIALIZER_PARAMETERS: tuple[tuple[str, Any, str], ...] = (
    ("--scale", float, "VarianceScaling scale (> 0)."),
    ("--mode", str, "VarianceScaling mode: fan_in, fan_out or fan_avg."),
    ("--distribution", str, "VarianceScaling distribution: truncated_normal, untruncated_normal, uniform."),
    ("--mean", float, "RandomNormal/TruncatedNormal mean."),
    ("--stddev", float, "RandomNormal/TruncatedNormal stddev (of the normal before truncation)."),
    ("--minval", float, "RandomUniform lower bound."),
    ("--maxval", float, "RandomUniform upper bound."),
    ("--gain", float, "Orthogonal/Identity gain."),
    ("--value", float, "Constant value."),
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
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
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
        if isinstance(value, np.ndarray):
            return value
        try:
            values = np.array([float(v) for v in str(value).split(",")], dtype=np.float64)
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)
        if not np.all(np.isfinite(values)):
            self.fail(f"{value!r}: values must be finite", param, ctx)
        return values
