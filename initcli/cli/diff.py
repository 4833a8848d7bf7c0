"""The `initcli diff` command: a thin Click layer over `initcli.public.diff`."""

from __future__ import annotations

import functools

import click

from initcli.cli.params import SCHEDULER_OPTION, TIMEOUT_OPTION, output_options
from initcli.errors import ExitCode
from initcli.safety.numbers import FloatType

NON_NEGATIVE_FLOAT = FloatType(0)


@click.command(name="diff")
@click.argument("model_a", metavar="A")
@click.argument("model_b", metavar="B")
@click.option(
    "--threshold",
    type=NON_NEGATIVE_FLOAT,
    metavar="T",
    help="Exit 3 when any weight moved more than T (relative change ||B-A||/||A||) or changed shape.",
)
@TIMEOUT_OPTION
@SCHEDULER_OPTION
@output_options
def diff_command(
    model_a: str,
    model_b: str,
    threshold: float | None,
    timeout: float | None,
    scheduler: str | None,
    output_format: str,
    columns: str | None,
    wide: bool,
) -> None:
    """How far each weight of B is from the same weight of A: relative change, max |B-A|, cosine.

    A and B are any files initcli reads (.keras, legacy .h5, .weights.h5, SavedModel, TF
    checkpoint), in any mix of formats. Weights are matched by path, then by position where the
    names differ (said so); totals per layer and for the model; weights only in one side are listed.
    Each weight is read in chunks of both files at once: memory stays near one chunk of each side.

    \b
    Example:
      initcli diff init.keras trained.keras
      initcli diff base.keras finetuned.keras --threshold 0 \\
          --columns path,relative_change
    """
    from initcli import public
    from initcli.render import printing
    from initcli.render.diff import diff_renderables, exceeded_line

    report = public.diff(model_a, model_b, threshold=threshold, timeout=timeout, scheduler=scheduler)
    printing.print_report(report, output_format, columns, functools.partial(diff_renderables, report), wide)
    if output_format != "table":
        line = exceeded_line(report)
        if line:
            click.echo(line, err=True)
    if report.failed:
        raise click.exceptions.Exit(ExitCode.CHECK_FAILED)
