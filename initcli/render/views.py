"""How a report shows itself outside the command line: a dict, a DataFrame, Rich, and Jupyter HTML.

`ReportViews` is mixed into the reports of `initcli.reports`. Every view is built from what the CLI
prints: `to_dict()` is the `--format json` object (schema_version included), `to_pandas()` the
`--format csv` records, `__rich__` and `_repr_html_` the terminal's table. Rich and pandas are
imported only when a view asks for them.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from initcli.render.formats import SCHEMA_VERSION, render_json

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from initcli.render.tables import View

PANDAS_HINT = "pip install 'initcli[pandas]'"
HTML_WIDTH = 120


class ReportViews:
    """The views of a report that has `to_json()`, `flat_rows()` and `columns` (see `reports.py`)."""

    def to_json(self) -> dict[str, Any]:  # each report defines it
        raise NotImplementedError

    def flat_rows(self) -> list[dict[str, Any]]:  # each report defines it
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON object the command line prints with `--format json`.

        Plain Python values only (numbers, strings, lists, dicts, None): numpy scalars become numbers
        and NaN or infinite numbers become None, exactly as in the printed JSON.
        """
        loaded: dict[str, Any] = json.loads(render_json({"schema_version": SCHEMA_VERSION, **self.to_json()}))
        return loaded

    def to_pandas(self) -> Any:
        """One row per record (a weight, a finding, ...), the columns of `--format csv`, as a DataFrame.

        Raises:
            ImportError: pandas is not installed (`pip install 'initcli[pandas]'`).
        """
        try:
            import pandas
        except ImportError:
            raise ImportError(f"to_pandas() needs pandas, which is not installed: {PANDAS_HINT}") from None
        rows = self.flat_rows()
        columns = list(dict.fromkeys(key for row in rows for key in row)) or list(getattr(self, "columns", ()))
        return pandas.DataFrame(rows, columns=columns)

    def renderables(self, view: View) -> list[Any]:
        """The Rich renderables the terminal shows for this report."""
        raise NotImplementedError

    def __rich__(self) -> _Shown:
        """The table `initcli` prints in a terminal, fitted to the console it is printed on."""
        return _Shown(self)

    def _repr_html_(self) -> str:
        """The terminal's table as HTML, for Jupyter (styles inline, `HTML_WIDTH` characters wide)."""
        from rich.console import Console

        console = Console(record=True, width=HTML_WIDTH, file=io.StringIO(), color_system="truecolor")
        console.print(self)
        return console.export_html(inline_styles=True)


class _Shown:
    """A report's renderables, laid out for the width Rich offers."""

    def __init__(self, report: ReportViews) -> None:
        self.report = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from initcli.render.tables import View

        columns = tuple(getattr(self.report, "columns", ()))
        yield from self.report.renderables(View(columns=columns, width=options.max_width))


def check_lines(report: Any) -> list[str]:
    """`initcli check`'s text output: one line per finding, then the summary with the coverage."""
    from initcli.safety.sanitize import one_line

    lines = [
        one_line(f"{finding.severity}: {finding.path}: [{finding.check}] {finding.message}", max_length=None)
        for finding in report.findings
    ]
    coverage = "; ".join(entry.describe() for entry in report.coverage)
    verdict = "passed" if report.passed else "FAILED"
    counts = f"{report.weights} weights, {report.errors} errors, {report.warnings} warnings"
    summary = f"{report.source}: {verdict}: {counts}"
    lines.append(one_line(f"{summary}; tested: {coverage}", max_length=None))
    return lines
