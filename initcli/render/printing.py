"""Where reports go: the one place the command line prints data (stdout; messages go to stderr)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import click

from initcli.render.formats import render_csv, render_json, render_markdown, stdout_console
from initcli.render.wording import plural
from initcli.reports import SCHEMA_VERSION

if TYPE_CHECKING:
    from initcli.render.progress import BarProgress
    from initcli.render.tables import View
    from initcli.reports import CheckManyReport, CheckReport, FileError


class Report(Protocol):
    @property
    def columns(self) -> tuple[str, ...]: ...

    def to_json(self) -> dict[str, Any]: ...

    def flat_rows(self) -> list[dict[str, Any]]: ...


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


def print_json(payload: dict[str, Any], err: bool = False) -> None:
    """Print one JSON object with its schema_version: indented on a terminal, compact for scripts."""
    terminal = (sys.stderr if err else sys.stdout).isatty()
    click.echo(render_json({"schema_version": SCHEMA_VERSION, **payload}, 2 if terminal else None), err=err)


def print_report(
    report: Report,
    output_format: str,
    requested: str | None,
    renderables: Callable[[View], list[Any]],
    wide: bool = False,
    err: bool = False,
) -> None:
    """Print a report in the chosen format; `--columns` applies to tables, CSV and Markdown.

    Markdown defaults to the report's `markdown_columns` (the compact set), `--wide` to all.

    Tables fit the terminal's width; piped, they are plain text with no trailing padding.
    """
    chosen = select_columns(requested, report.columns)
    if output_format == "json":
        print_json(report.to_json(), err=err)
    elif output_format == "csv":
        click.echo(render_csv(report.flat_rows(), chosen), nl=False, err=err)
    elif output_format == "markdown":
        if not requested and not wide:
            chosen = getattr(report, "markdown_columns", chosen)
        # A report may word some cells for readers (InspectReport.markdown_rows); else the CSV records.
        rows = getattr(report, "markdown_rows", report.flat_rows)()
        click.echo(render_markdown(rows, chosen), nl=False, err=err)
    else:
        from initcli.render.formats import stderr_console
        from initcli.render.tables import View

        console = stderr_console() if err else stdout_console()
        view = View(columns=chosen, width=console.width, wide=wide)
        if console.is_terminal:
            for renderable in renderables(view):
                console.print(renderable)
            return
        with console.capture() as capture:
            for renderable in renderables(view):
                console.print(renderable)
        click.echo("\n".join(line.rstrip() for line in capture.get().splitlines()), err=err)


@contextlib.contextmanager
def weight_progress() -> Iterator[BarProgress | None]:
    """A progress bar on stderr (bytes and weights done), on a terminal only; yields it or None."""
    if not sys.stderr.isatty():
        yield None
        return
    from initcli.render.formats import stderr_console
    from initcli.render.progress import BarProgress

    bar = BarProgress(stderr_console())
    try:
        yield bar
    finally:
        bar.close()


def print_file_errors(errors: list[FileError]) -> None:
    """The models of a several-model run that failed, one line each on stderr."""
    from initcli.safety.sanitize import one_line

    for error in errors:
        where = "" if error.message.startswith(error.source) else f"{error.source}: "
        click.echo(one_line(f"Error: {where}{error.message}", max_length=None), err=True)


def print_check(report: CheckReport, output_format: str, prefix: str = "") -> None:
    """`check`'s findings: one line each (text, or GitHub annotations), or JSON; coverage always.

    `prefix` starts each text finding (the model's name, when a run checks several).
    """
    from initcli.analysis.inspection import model_state_note

    if output_format == "json":
        print_json(report.to_json())
    elif output_format == "github":
        from initcli.analysis.checks import github_annotation
        from initcli.safety.sanitize import github_escape_data

        for finding in report.findings:
            click.echo(github_annotation(finding, report.source))
        note = model_state_note(report.state)
        if note is not None:
            title = f"initcli model {report.source}" if prefix else "initcli model"
            click.echo(f"::notice title={github_escape_data(title)}::{github_escape_data(note)}")
        coverage = "; ".join(entry.describe() for entry in report.coverage)
        title = f"initcli coverage {report.source}" if prefix else "initcli coverage"
        click.echo(f"::notice title={github_escape_data(title)}::{github_escape_data(coverage)}")
    else:
        from initcli.render.views import check_lines

        *findings, summary = check_lines(report, prefix)
        for line in findings:
            click.echo(line)
        note = model_state_note(report.state)
        if note is not None:
            click.echo(f"{prefix}{note}", err=True)
        click.echo(summary, err=True)


def print_check_many(many: CheckManyReport, output_format: str) -> None:
    """`check` over several models: each model as `print_check` prints it, its failures, and a total."""
    from initcli.reports import CheckReport
    from initcli.safety.sanitize import github_escape_data, github_escape_property, one_line

    totals = many.totals
    if output_format == "json":
        print_json(many.to_json())
        return
    for result in many.results:
        if isinstance(result, CheckReport):
            print_check(result, output_format, prefix=f"{result.source}: ")
        elif output_format == "github":
            click.echo(
                f"::error file={github_escape_property(result.source)},title=initcli::"
                f"{github_escape_data(result.message)}"
            )
        else:
            print_file_errors([result])
    verdict = "passed" if many.passed else "FAILED"
    summary = (
        f"{plural(totals['models'], 'model')}: {verdict}: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['unreadable']} unreadable; {plural(totals['weights'], 'weight')}, "
        f"{plural(totals['errors'], 'error')}, {plural(totals['warnings'], 'warning')}"
    )
    if output_format == "github":
        click.echo(f"::notice title=initcli::{github_escape_data(summary)}")
    else:
        click.echo(one_line(summary, max_length=None), err=True)
