"""How a report shows itself outside the command line: a dict, a DataFrame, Rich, and Jupyter HTML.

`initcli.reports.ReportViews` (mixed into every report) asks the `Views` registered here, so that
the reports import no renderer. Every view is built from what the CLI prints: `to_dict()` is the
`--format json` object (schema_version included), `to_pandas()` the `--format csv` records,
`__rich__` and `_repr_html_` the terminal's table. Rich and pandas are imported only when a view
asks for them.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from initcli.render.formats import render_json
from initcli.report_views import register_views
from initcli.reports import SCHEMA_VERSION

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from initcli.render.tables import View

PANDAS_HINT = "pip install 'initcli[pandas]'"
HTML_WIDTH = 120


class ReportViewsImpl:
    """The views of a report that has `to_json()`, `flat_rows()` and `columns` (see `reports.py`)."""

    def to_dict(self, report: Any) -> dict[str, Any]:
        if _is_propagate(report):
            from initcli.render import propagate

            text = propagate.render_json(report)
        else:
            text = render_json({"schema_version": SCHEMA_VERSION, **report.to_json()})
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    def to_pandas(self, report: Any) -> Any:
        try:
            import pandas
        except ImportError:
            raise ImportError(f"to_pandas() needs pandas, which is not installed: {PANDAS_HINT}") from None
        if _is_propagate(report):
            from initcli.propagate.report import COMPARE_COLUMNS, LAYER_COLUMNS
            from initcli.render import propagate

            rows = propagate.flat_rows(report)
            columns = list(COMPARE_COLUMNS if len(report.runs) > 1 else LAYER_COLUMNS)
        else:
            rows = report.flat_rows()
            columns = list(dict.fromkeys(key for row in rows for key in row)) or list(getattr(report, "columns", ()))
        return pandas.DataFrame(rows, columns=columns)

    def rich(self, report: Any) -> _Shown:
        return _Shown(report)

    def html(self, report: Any) -> str:
        """The terminal's table as HTML, for Jupyter (styles inline, `HTML_WIDTH` characters wide)."""
        from rich.console import Console

        console = Console(record=True, width=HTML_WIDTH, file=io.StringIO(), color_system="truecolor")
        console.print(_Shown(report))
        return console.export_html(inline_styles=True)


def renderables(report: Any, view: View) -> list[Any]:
    """The Rich renderables the terminal shows for a report."""
    from initcli.render import tables
    from initcli.reports import (
        BatchnormReport,
        CheckManyReport,
        CheckReport,
        DefaultsReport,
        ExplainReport,
        InspectManyReport,
        InspectReport,
        ListReport,
        SampleReport,
    )

    if isinstance(report, InspectManyReport):
        return tables.inspect_many_renderables(report, view)
    if isinstance(report, CheckManyReport):
        return [tables.text(line) for line in check_many_lines(report)]
    if isinstance(report, SampleReport):
        return tables.sample_renderables(report, view, hist=False)
    if isinstance(report, InspectReport):
        return tables.inspect_renderables(report, view)
    if isinstance(report, ExplainReport):
        return tables.explain_renderables(report, view)
    if isinstance(report, CheckReport):
        return [tables.text(line) for line in check_lines(report)]
    if isinstance(report, ListReport):
        return tables.list_renderables(report, view)
    if isinstance(report, DefaultsReport):
        return tables.defaults_renderables(report, view)
    if isinstance(report, BatchnormReport):
        return tables.batchnorm_renderables(report, view)
    if _is_propagate(report):
        from initcli.render import propagate

        return propagate.renderables(report, width=view.width, wide=view.wide)
    from initcli.analysis.diff import DiffReport

    if isinstance(report, DiffReport):
        from initcli.render.diff import diff_renderables

        return list(diff_renderables(report, view))
    raise TypeError(f"no terminal view of {type(report).__name__}")


def _is_propagate(report: Any) -> bool:
    from initcli.propagate.report import PropagateReport

    return isinstance(report, PropagateReport)


class _Shown:
    """A report's renderables, laid out for the width Rich offers."""

    def __init__(self, report: Any) -> None:
        self.report = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from initcli.render.tables import View

        columns = tuple(getattr(self.report, "columns", ()))
        yield from renderables(self.report, View(columns=columns, width=options.max_width))


def check_lines(report: Any, prefix: str = "") -> list[str]:
    """`initcli check`'s text output: one line per finding, then the summary with the coverage.

    The one source of these lines: the command prints them (the summary on stderr), the terminal and
    HTML views show them and `InitCheck`'s error quotes them. `prefix` starts each finding (the model's
    name, when a run checks several).
    """
    from initcli.render.wording import plural
    from initcli.safety.sanitize import one_line

    lines = [
        one_line(f"{prefix}{finding.severity}: {finding.path}: [{finding.check}] {finding.message}", max_length=None)
        for finding in report.findings
    ]
    coverage = "; ".join(entry.describe() for entry in report.coverage)
    verdict = "passed" if report.passed else "FAILED"
    counts = (
        f"{plural(report.weights, 'weight')}, {plural(report.errors, 'error')}, {plural(report.warnings, 'warning')}"
    )
    lines.append(one_line(f"{report.source}: {verdict}: {counts}; tested: {coverage}", max_length=None))
    return lines


def check_many_lines(many: Any) -> list[str]:
    """`initcli check` of several models: each model's lines (findings prefixed by the model), its
    unreadable models, and the run's total (`printing.print_check_many` prints the same lines)."""
    from initcli.reports import CheckReport
    from initcli.safety.sanitize import one_line

    lines: list[str] = []
    for result in many.results:
        if isinstance(result, CheckReport):
            shown = check_lines(result)
            lines += [f"{result.source}: {line}" for line in shown[:-1]] + shown[-1:]
        else:
            where = "" if result.message.startswith(result.source) else f"{result.source}: "
            lines.append(one_line(f"Error: {where}{result.message}", max_length=None))
    from initcli.render.wording import plural

    totals = many.totals
    verdict = "passed" if many.passed else "FAILED"
    lines.append(  # as printing.print_check_many words it
        f"{plural(totals['models'], 'model')}: {verdict}: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['unreadable']} unreadable; {plural(totals['weights'], 'weight')}, "
        f"{plural(totals['errors'], 'error')}, {plural(totals['warnings'], 'warning')}"
    )
    return lines


register_views(ReportViewsImpl())
