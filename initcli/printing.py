"""Where reports go: the one place the command line prints data (stdout; messages go to stderr)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import click

from initcli.output import SCHEMA_VERSION, render_csv, render_json, render_markdown, stdout_console
from initcli.params import select_columns

if TYPE_CHECKING:
    from initcli.tables import View


class Report(Protocol):
    def to_json(self) -> dict[str, Any]: ...

    def flat_rows(self) -> list[dict[str, Any]]: ...


def print_json(payload: dict[str, Any]) -> None:
    """Print one JSON object with its schema_version: indented on a terminal, compact for scripts."""
    click.echo(render_json({"schema_version": SCHEMA_VERSION, **payload}, 2 if sys.stdout.isatty() else None))


def print_report(
    report: Report,
    output_format: str,
    requested: str | None,
    columns: tuple[str, ...],
    renderables: Callable[[View], list[Any]],
    wide: bool = False,
) -> None:
    """Print a report in the chosen format; `--columns` applies to tables, CSV and Markdown.

    Tables fit the terminal's width; piped, they are plain text with no trailing padding.
    """
    chosen = select_columns(requested, columns)
    if output_format == "json":
        print_json(report.to_json())
    elif output_format == "csv":
        click.echo(render_csv(report.flat_rows(), chosen), nl=False)
    elif output_format == "markdown":
        click.echo(render_markdown(report.flat_rows(), chosen), nl=False)
    else:
        from initcli.tables import View

        console = stdout_console()
        view = View(columns=chosen, width=console.width, wide=wide)
        if sys.stdout.isatty():
            for renderable in renderables(view):
                console.print(renderable)
            return
        with console.capture() as capture:
            for renderable in renderables(view):
                console.print(renderable)
        click.echo("\n".join(line.rstrip() for line in capture.get().splitlines()))


@contextlib.contextmanager
def weight_progress(enabled: bool) -> Iterator[Callable[[Any], None] | None]:
    """A spinner on stderr counting inspected weights (on a terminal only); yields its callback or None."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from initcli.output import stderr_console

    with stderr_console().status("inspecting weights...") as status:
        done = 0

        def progress(row: Any) -> None:
            nonlocal done
            done += 1
            status.update(f"inspecting weights... {done} done, last {row.record.path}")

        yield progress
