"""The `initcli propagate` command: a thin Click layer over `initcli.public.propagate`.

Importing this module imports neither TensorFlow, nor Rich, nor matplotlib: `initcli --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import click

from initcli.cli.params import CUSTOM_OBJECTS_OPTION, SPEC_OPTION
from initcli.errors import BadInputError, ExitCode
from initcli.types import FloatDType

if TYPE_CHECKING:
    from initcli.propagate.run import InitChoice

_FORMATS = ("table", "json", "csv")


class _InputType(click.ParamType):
    """`normal`, `uniform`, or the path of a .npy file."""

    name = "normal|uniform|FILE.npy"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = str(value)
        if text in ("normal", "uniform"):
            return text
        if not text.endswith(".npy"):
            self.fail(f"expected normal, uniform or a .npy file; received {text!r}", param, ctx)
        if not Path(text).is_file():
            self.fail(f"{text}: no such file", param, ctx)
        return text


@click.command(name="propagate")
@click.argument("model", required=False)
@SPEC_OPTION
@click.option("--batch", type=click.IntRange(1, 65536), default=32, show_default=True, help="Inputs in the batch.")
@click.option(
    "--input",
    "input_kind",
    type=_InputType(),
    default="normal",
    show_default=True,
    help="normal: N(0, 1); uniform: U(0, 1); or a .npy batch (batch, *input_shape).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds the build, the input batch, the redraws and g."
)
@click.option("--backward", is_flag=True, help="Also a backward pass: gradient rms per layer output and per weight.")
@click.option(
    "--static", "static_only", is_flag=True, help="Only the mean-field prediction: no TensorFlow for saved files."
)
@click.option(
    "--mode",
    type=click.Choice(("training", "inference")),
    default="training",
    show_default=True,
    help="training: BatchNormalization uses batch statistics and Dropout drops, as in a training step.",
)
@click.option(
    "--dtype",
    type=click.Choice(("float32", "float16", "bfloat16", "float64")),
    default="float32",
    show_default=True,
    help="Compute the pass in this dtype (every layer's dtype policy), e.g. to see where float16 overflows.",
)
@click.option("--init", "init_text", metavar="NAME[:param=value]...", help="Redraw every kernel with this initializer.")
@click.option("--compare", "compare_text", metavar="A,B,...", help="Run once per initializer, side by side.")
@click.option(
    "--factor",
    type=click.FloatRange(1, min_open=True),
    default=10.0,
    show_default=True,
    help="exploding/vanishing when the rms changes by more than this factor from the first to the last weight layer.",
)
@click.option("--check", "gate", is_flag=True, help="Exit 3 unless every verdict is stable (for CI).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), help="Also write scale vs depth to a .png/.svg.")
@click.option("--force", is_flag=True, help="Allow --plot to overwrite an existing file.")
@click.option("--format", "output_format", type=click.Choice(_FORMATS), default="table", show_default=True)
@CUSTOM_OBJECTS_OPTION
def propagate_command(
    model: str | None,
    spec_path: Path | None,
    batch: int,
    input_kind: str,
    seed: int,
    backward: bool,
    static_only: bool,
    mode: str,
    dtype: str,
    init_text: str | None,
    compare_text: str | None,
    factor: float,
    gate: bool,
    plot_path: Path | None,
    force: bool,
    output_format: str,
    custom_objects: tuple[str, ...],
) -> None:
    """Will this initialization train? The signal's scale through the model at init.

    One forward pass (and with --backward one backward pass) of a random batch through MODEL, every
    layer's output from one call: mean, std, rms, average channel squared mean and variance, dead
    ReLU / saturated tanh and sigmoid fractions, the first NaN/inf; beside it the mean-field
    prediction (predicted rms, gain, chi). Verdicts: stable, exploding, vanishing, nan at layer L.

    MODEL is a saved .keras or legacy .h5 model or `module:function`; --spec builds one. --static
    reads a saved file without TensorFlow and shows only the prediction.

    \b
    Example:
      initcli propagate --spec examples/specs/deep_relu.yaml --backward
      initcli propagate --spec examples/specs/deep_relu.yaml \\
          --compare he_normal,truncated_normal:stddev=0.1
      initcli propagate examples/models/mlp.keras --static
    """
    from initcli import public
    from initcli.keras.building import is_function_reference

    if (model is None) == (spec_path is None):
        raise click.UsageError("Give a MODEL (file or module:function) or --spec FILE, exactly one.")
    if init_text and compare_text:
        raise click.UsageError("--init and --compare exclude each other: --compare runs each initializer in turn.")
    if custom_objects and (spec_path is not None or is_function_reference(str(model))):
        raise click.UsageError(
            "--custom-objects loads a saved MODEL file with your layer code; it takes no --spec or function."
        )
    if custom_objects and static_only:
        raise click.UsageError("--static runs no Keras, so it takes no --custom-objects (the measured pass does).")
    if force and plot_path is None:
        raise click.UsageError("--force only applies to --plot.")
    if plot_path is not None:  # refused before the model is read or run
        from initcli.render.propagate import check_plot_path

        check_plot_path(plot_path, force=force)
    names = None
    if compare_text:
        names = [part for part in compare_text.split(",") if part.strip()]
        if len(names) < 2:
            raise click.UsageError("--compare needs at least two initializers, e.g. he_normal,glorot_uniform")
    # Each initializer is checked here so that a refusal names the flag that gave it (a usage error).
    if init_text:
        _parse_init(init_text, "--init")
    for name in names or ():
        _parse_init(name, "--compare")
    report = public.propagate(
        model,
        spec=spec_path,
        batch=batch,
        input=input_kind,
        seed=seed,
        backward=backward,
        static=static_only,
        mode=cast(Literal["training", "inference"], mode),
        dtype=cast(FloatDType, dtype),
        init=init_text or None,
        compare=names,
        factor=factor,
        custom_objects=custom_objects,
    )
    if plot_path is not None:
        from initcli.render.propagate import save_plot

        save_plot(report, plot_path, force=force)
    _print(report, output_format)
    if gate and any(r.verdict != "stable" for r in report.runs):
        raise click.exceptions.Exit(ExitCode.CHECK_FAILED)


def _print(report: Any, output_format: str) -> None:
    from initcli.render import propagate as render

    if output_format == "json":
        click.echo(render.render_json(report, 2 if sys.stdout.isatty() else None))
    elif output_format == "csv":
        click.echo(render.render_csv(report), nl=False)
    else:
        from initcli.render.formats import stdout_console

        console = stdout_console()
        parts = render.renderables(report, width=console.width)
        if console.is_terminal:
            for renderable in parts:
                console.print(renderable)
            return
        with console.capture() as capture:  # piped: plain lines, no trailing padding
            for renderable in parts:
                console.print(renderable)
        click.echo("\n".join(line.rstrip() for line in capture.get().splitlines()))


def _parse_init(text: str, flag: str) -> InitChoice:
    """`run.parse_init`, its refusal a usage error of the flag that gave the initializer."""
    from initcli.propagate import run

    try:
        return run.parse_init(text)
    except BadInputError as error:
        raise click.BadParameter(str(error), param_hint=f"'{flag}'") from None
