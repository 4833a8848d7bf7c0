"""Rich tables for people: theory next to sample, histograms, and the inspect listing.

Renderers return tables; commands decide where they go. Rich is imported here only, and only
when a table is actually rendered. Tables fit the terminal: a table is used only when every word
and number fits its column whole (Rich would otherwise break them mid-word); else a narrower
column set, else one stacked block per row. Text from files is never read as Rich markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from initcli.render.formats import VERDICT_STYLES, format_value
from initcli.render.wording import plural
from initcli.reports import (
    BatchnormReport,
    DefaultsReport,
    ExplainReport,
    InspectManyReport,
    InspectReport,
    ListReport,
    SampleReport,
    ShownValues,
    initializer_label,
)
from initcli.stats.assessment import Assessment
from initcli.stats.theory import Theory

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from initcli.analysis.inspection import WeightRow


@dataclass(frozen=True, kw_only=True)
class View:
    """How a table is shown: the columns asked for, the terminal's width, and --wide."""

    columns: tuple[str, ...]
    width: int
    wide: bool = False


def text(value: Any, style: str = "") -> Text:
    """A cell from data: plain text (never markup), control characters made visible."""
    from rich.text import Text

    from initcli.safety.sanitize import clean_text

    return Text(clean_text(value if isinstance(value, str) else format_value(value)), style=style)


TITLE_SEPARATOR = " · "


def title_lines(title: str, width: int) -> list[str]:
    """`title` in lines of at most `width` cells, broken only between its ` · ` parts, never inside one.

    A continuation line starts with `· `; a part wider than `width` alone stays whole on its own line
    (the terminal folds it, as it would a long path anywhere).
    """
    from rich.cells import cell_len

    parts = title.split(TITLE_SEPARATOR)
    lines = [parts[0]]
    for part in parts[1:]:
        joined = lines[-1] + TITLE_SEPARATOR + part
        if cell_len(joined) <= width:
            lines[-1] = joined
        else:
            lines.append("· " + part)
    return lines


class Title:
    """A table's title as its own lines, fitted to the console's width (not the table's, as Rich would)."""

    def __init__(self, title: str, style: str = "bold") -> None:
        from initcli.safety.sanitize import clean_text

        self.title = clean_text(title)
        self.style = style

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        for line in title_lines(self.title, options.max_width):
            yield Text(line, style=self.style)


def titled(table: Table) -> RenderableType:
    """The table with its title taken out and printed above it as a `Title`."""
    from rich.console import Group

    if not table.title:
        return table
    title, table.title = str(table.title), None
    return Group(Title(title), table)


def title_text(value: str | None) -> Text | None:
    """A table's title from data (it holds the model's path): plain text, control characters made visible.

    Rich renders a `str` title as markup and passes its escape sequences through raw.
    """
    return None if value is None else text(value, "table.title")


def fit_columns(table: Table, width: int) -> bool:
    """Give each column a width so that no word or number is broken; False when `width` is too narrow.

    Rich measures a column's minimum as its longest word, but when it shrinks a table to the
    terminal it may go below that and break words (`consis`/`tent`): here the widths are set
    explicitly, taking the excess from the columns with the most room above their longest word.
    """
    from rich.console import Console
    from rich.measure import Measurement

    padding = sum(table._get_padding_width(index) for index in range(len(table.columns)))
    available = width - table._extra_width - padding
    # A table too wide for its longest words is told without Rich measuring every cell (issue 25: the
    # run of `list` after its imports, 100 columns, from 16 to 10 ms of CPU, measured 2026-12-07).
    if sum(max(map(_least_width, (column.header, *column.cells))) for column in table.columns) > available:
        return False
    console = Console(width=10_000, color_system=None, emoji=False)
    minimums, maximums = [], []
    for column in table.columns:
        measured = [Measurement.get(console, console.options, cell) for cell in (column.header, *column.cells)]
        minimums.append(max(m.minimum for m in measured))
        maximums.append(max(m.maximum for m in measured))
    if sum(minimums) > available:
        return False
    widths = list(maximums)
    excess = sum(widths) - available
    while excess > 0:
        index = max(range(len(widths)), key=lambda i: widths[i] - minimums[i])
        widths[index] -= 1
        excess -= 1
    for column, column_width in zip(table.columns, widths):
        column.width = column_width
    return True


def _least_width(cell: Any) -> int:
    """At most Rich's minimum width of a cell: a Text's, as `Text.__rich_measure__` measures it (its
    longest word, or its longest line if it has no word), or a string's without markup; 0 otherwise."""
    from rich.cells import cell_len
    from rich.text import Text

    plain = cell.plain if isinstance(cell, Text) else cell if isinstance(cell, str) and "[" not in cell else ""
    words = plain.split()
    return max(cell_len(part) for part in words) if words else max(map(cell_len, plain.splitlines()), default=0)


def fitted(
    candidates: Sequence[Callable[[], Table]], view: View, stacked: Callable[[], RenderableType]
) -> RenderableType:
    """The first candidate table that fits the width whole (the first one with --wide), else `stacked()`."""
    for make in candidates:
        table = make()
        if view.wide or fit_columns(table, view.width):
            return titled(table)
    return stacked()


def stacked_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None) -> RenderableType:
    """One block per row: the first column as a heading, then `column: value` lines."""
    from rich.console import Group

    parts: list[RenderableType] = [Title(title)] if title else []
    for row in rows:
        parts.append(text(format_value(row.get(columns[0])), "bold"))
        for column in columns[1:]:
            value = format_value(row.get(column))
            if value:
                parts.append(text(f"  {column}: {value}"))
    return Group(*parts)


def stacked_table(table: Table) -> RenderableType:
    """A table's rows as blocks: each row's first cell, then `header: cell` lines."""
    from rich.console import Group

    columns = table.columns
    parts: list[RenderableType] = [Title(str(table.title))] if table.title else []
    for index in range(table.row_count):
        cells = [list(column.cells)[index] for column in columns]
        parts.append(text(_plain(cells[0]), "bold"))
        parts += [
            text(f"  {column.header}: {_plain(cell)}") for column, cell in zip(columns[1:], cells[1:]) if _plain(cell)
        ]
    return Group(*parts)


def _plain(cell: Any) -> str:
    return cell.plain if hasattr(cell, "plain") else str(cell)


def rows_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title_text(title), title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(text(format_value(row.get(c), digits=4)) for c in columns))
    return table


def fitted_rows(rows: Sequence[dict[str, Any]], view: View, title: str | None = None) -> RenderableType:
    """A table of `rows` in the view's columns, or stacked blocks where the table would not fit."""
    return fitted(
        [lambda: rows_table(rows, view.columns, title)], view, lambda: stacked_rows(rows, view.columns, title)
    )


def theory_cell(theory: Theory | None, key: str) -> str:
    if theory is None:
        return "unknown"
    return format_value(getattr(theory, key))


def assessment_table(assessment: Assessment, title: str) -> Table:
    """Theory next to sample for one tensor, with the check each row supports."""
    theory, sample, checks = assessment.theory, assessment.sample, assessment.checks
    from rich.table import Table

    table = Table(title=title_text(title), title_justify="left")
    table.add_column("quantity")
    table.add_column("theory", justify="right")
    table.add_column("sample", justify="right")
    table.add_column("check")
    mean_check = ""
    if checks.mean_z is not None:
        mean_check = f"z = {checks.mean_z:+.2f} (standard error {checks.mean_se:.3g})"
    table.add_row("mean", theory_cell(theory, "mean"), format_value(sample.mean), mean_check)
    std_check = ""
    if checks.std_ratio is not None:
        std_check = std_interval_text(checks.std_ratio, checks.std_ratio_low, checks.std_ratio_high, sample.count)
    table.add_row("std (of the values)", theory_cell(theory, "std"), format_value(sample.std), std_check)
    table.add_row("var", theory_cell(theory, "var"), format_value(sample.var), "")
    if theory is not None and theory.stddev_param is not None:
        label = (
            "stddev_param (underlying normal, before truncation)"
            if theory.distribution == "truncated_normal"
            else "stddev_param (normal's stddev)"
        )
        table.add_row(label, format_value(theory.stddev_param), "", "")
    if theory is not None and theory.limit is not None:
        label = (
            "limit (uniform half-width)"
            if theory.distribution == "uniform"
            else "limit (truncation bound, 2·stddev_param)"
        )
        table.add_row(label, format_value(theory.limit), "", "")
    bounds = (
        "" if theory is None or theory.low is None else f"[{format_value(theory.low)}, {format_value(theory.high)}]"
    )
    table.add_row("min / max", bounds, f"{format_value(sample.min)} / {format_value(sample.max)}", "")
    if checks.ks_statistic is not None:
        table.add_row(
            "distribution",
            theory.distribution if theory else "",
            "",
            f"KS D = {checks.ks_statistic:.4g}, p = {checks.ks_pvalue:.3g} (n = {checks.ks_sample_size})",
        )
    elif theory is not None:
        table.add_row("distribution", theory.distribution, "", "")
    if checks.max_abs_error is not None:
        what = "max |QᵀQ/gain² − I|" if checks.decisive_test == "orthogonality" else "max |value − expected|"
        table.add_row(what, "0", format_value(checks.max_abs_error), f"tolerance {format_value(checks.tolerance)}")
    table.add_row("count / non-finite", "", f"{sample.count} / {sample.nonfinite}", "")
    decided = ""
    if checks.decisive_test is not None:
        decided = f" (decided by {checks.decisive_test}"
        decided += f", p = {checks.adjusted_pvalue:.3g})" if checks.adjusted_pvalue is not None else ")"
    verdict = text(assessment.verdict, VERDICT_STYLES.get(assessment.verdict, ""))
    verdict.append(decided)
    table.add_row("verdict", "", "", verdict)
    return table


def histogram_table(assessment: Assessment, bins: int = 21, width: int = 40) -> Table:
    """A terminal histogram of the sample with the theory's expected count per bin beside it."""
    values = assessment.ks_sample
    theory = assessment.theory
    from rich.table import Table

    table = Table(title="histogram (█ sample, │ theory's expected count)", title_justify="left")
    table.add_column("bin", justify="right")
    table.add_column("count", justify="right")
    table.add_column("")
    if values.size == 0:
        return table
    low, high = float(values.min()), float(values.max())
    if theory is not None and theory.low is not None and theory.high is not None and theory.high > theory.low:
        low, high = min(low, theory.low), max(high, theory.high)
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(values, edges)
    expected = None
    if theory is not None:
        cdf = theory.cdf(edges)
        if cdf is not None:
            expected = np.diff(cdf) * values.size
    peak = max(counts.max(), expected.max() if expected is not None else 0, 1)
    for index, count in enumerate(counts):
        bar_length = int(round(count / peak * width))
        bar = list("█" * bar_length + " " * (width - bar_length))
        if expected is not None:
            mark = min(width - 1, int(round(expected[index] / peak * width)))
            bar[mark] = "│"
        table.add_row(f"{edges[index]:+.4g}", str(count), "".join(bar))
    return table


def _configured(row: WeightRow, short: bool) -> str:
    record = row.record
    if row.initializer is not None:
        configured = row.initializer.class_name if short else initializer_label(row.initializer)
    else:
        configured = initializer_label(dict(record.initializer)) if record.initializer is not None else None
    if configured is None and record.inferred and row.default is not None:
        # A standard sublayer of a custom layer: Keras's default for the class the structure shows.
        return f"unknown (inferred class's default {row.default.class_name})"
    configured = configured or "unknown"
    if row.is_default is True:
        configured += " (default)"
    elif row.is_default is False and row.default is not None:
        configured += f" (default {row.default.class_name})"
    return configured


_FULL: list[tuple[str, Literal["left", "right"]]] = [
    ("weight (path)", "left"),
    ("shape", "left"),
    ("fan_in/out", "right"),
    ("initializer", "left"),
    ("theory std", "right"),
    ("mean", "right"),
    ("std", "right"),
    ("verdict", "left"),
]
_COMPACT = ("weight (path)", "shape", "initializer", "theory std", "std", "verdict")


def _drift_columns(report: InspectReport) -> list[tuple[str, Literal["left", "right"]]]:
    """The drift columns: std over theory on a trained model; the change from the re-drawn init with --fresh."""
    columns: list[tuple[str, Literal["left", "right"]]] = []
    if report.drift is not None and report.state["state"] == "trained":
        columns.append(("std / theory", "right"))
    if report.fresh is not None:
        columns += [("fresh std", "right"), ("std / fresh", "right"), ("change", "right"), ("corr", "right")]
    return columns


def _inspect_cells(row: WeightRow, report: InspectReport, short: bool) -> dict[str, Text]:
    record, theory, sample = row.record, row.assessment.theory, row.assessment.sample
    cells = {
        "weight (path)": text(record.path + (" *" if row.notes else "")),
        "shape": text(format_value(list(record.shape)) or "()"),
        "fan_in/out": text(f"{row.fan_in}/{row.fan_out}"),
        "initializer": text(_configured(row, short)),
        "theory std": text(format_value(theory.std if theory else None, 4)),
        "mean": text(format_value(sample.mean, 4)),
        "std": text(format_value(sample.std, 4)),
        "verdict": text(row.assessment.verdict, VERDICT_STYLES.get(row.assessment.verdict, "")),
    }
    fresh = report.fresh
    if fresh is not None:
        fresh_row = fresh.get(record.path)
        fresh_std = fresh_row.assessment.sample.std if fresh_row is not None else None
        ratio = sample.std / fresh_std if fresh_std and sample.std is not None else None
        cells["fresh std"] = text(format_value(fresh_std, 4))
        cells["std / fresh"] = text(format_value(ratio, 4))
    drift = None if report.drift is None else report.drift.get(record.path)
    if drift is not None:
        cells["std / theory"] = text(format_value(drift.std_ratio, 4))
        # An independent re-draw is not the file's init: its change and correlation are marked "~".
        approximate = "~" if drift.init == "independent" else ""
        change = drift.relative_change
        cells["change"] = text(approximate + format_value(change, 4) if change is not None else "")
        correlation = drift.correlation
        cells["corr"] = text(approximate + format_value(correlation, 4) if correlation is not None else "")
    return cells


def inspect_table(report: InspectReport, title: str, compact: bool) -> Table:
    from rich.table import Table

    table = Table(title=title_text(title), title_justify="left", show_lines=False)
    columns = [(name, justify) for name, justify in _FULL if not compact or name in _COMPACT]
    columns += _drift_columns(report)
    for column, justify in columns:
        table.add_column(column, justify=justify)
    previous_layer = None
    for row in report.weights:
        if previous_layer is not None and row.record.layer != previous_layer:
            table.add_section()
        previous_layer = row.record.layer
        cells = _inspect_cells(row, report, short=compact)
        table.add_row(*(cells.get(name, text("")) for name, _ in columns))
    return table


def inspect_stacked(report: InspectReport, title: str) -> RenderableType:
    """One block per weight, for terminals too narrow for any table."""
    from rich.console import Group

    shown = [name for name, _ in _drift_columns(report)]
    parts: list[RenderableType] = [Title(title)]
    for row in report.weights:
        cells = _inspect_cells(row, report, short=False)
        heading = text(f"{cells['weight (path)'].plain}  {cells['shape'].plain}  ", "bold")
        heading.append_text(cells["verdict"])
        parts.append(heading)
        details = [f"initializer {cells['initializer'].plain}", f"fans {cells['fan_in/out'].plain}"]
        details += [
            f"{name} {cells[name].plain}"
            for name in ("theory std", "mean", "std", *shown)
            if name in cells and cells[name].plain
        ]
        parts.append(text("  " + "; ".join(details)))
    return Group(*parts)


def sample_renderables(report: SampleReport, view: View, *, hist: bool) -> list[RenderableType]:
    theory = report.assessment.theory
    fans = f" · fan_in {theory.fan_in}, fan_out {theory.fan_out}" if theory else ""
    title = (
        f"{initializer_label(report.spec)} · shape {format_value(list(report.shape)) or '()'} · {report.dtype} · "
        f"seed {report.seed.value}{fans}"
    )
    values = report.values
    if values is None and view.columns != report.columns:
        out: list[RenderableType] = [fitted_rows(report.flat_rows(), view, title)]
    else:
        table = assessment_table(report.assessment, title)
        out = [fitted([lambda: table], view, lambda: stacked_table(table))]
    if hist:
        out.append(histogram_table(report.assessment))
    if values is not None:
        if view.columns != values.columns:
            out.append(fitted_rows(values.flat_rows(), view, "values"))
        else:
            out += values_block(values, view.width)
    out += [text(note, "dim") for note in report.notes]
    return out


def values_block(values: ShownValues, width: int) -> list[RenderableType]:
    """The values as numpy prints them, each with the digits that identify it in its dtype."""
    shape_text = format_value(list(values.shape)) or "()"
    if values.complete:
        heading = f"values · shape {shape_text} · {values.dtype}:"
        shown = values.first.reshape(values.shape)
    else:
        heading = (
            f"values · the first {values.first.size} of {values.total} · shape {shape_text} in C order · "
            f"{values.dtype}:"
        )
        shown = values.first
    body = np.array2string(
        shown,
        separator=", ",
        floatmode="unique",
        suppress_small=True,
        threshold=shown.size + 1,
        max_line_width=max(20, width - 1),
    )
    return [text(heading, "bold"), *(text(line) for line in body.splitlines())]


def inspect_renderables(report: InspectReport, view: View) -> list[RenderableType]:
    title = f"{report.source} · {report.format} · Keras {report.keras_version or 'unknown'}"
    rows = report.weights
    if view.columns != report.columns:
        out: list[RenderableType] = [fitted_rows(report.flat_rows(), view, title)]
    else:
        out = [
            fitted(
                [
                    lambda: inspect_table(report, title, compact=False),
                    lambda: inspect_table(report, title, compact=True),
                ],
                view,
                lambda: inspect_stacked(report, title),
            )
        ]
    totals = report.totals
    verdicts = ", ".join(f"{count} {verdict}" for verdict, count in sorted(totals["verdicts"].items()))
    out.append(
        text(
            f"{plural(totals['weights'], 'weight')}, {totals['parameters']:,} "
            f"{'parameter' if totals['parameters'] == 1 else 'parameters'}: {verdicts or 'none'}"
        )
    )
    out.append(text(f"model: {report.state['line']}", "bold"))
    footnotes = [f"* {row.record.path}: {'; '.join(row.notes)}" for row in rows if row.notes]
    settings = [
        f"{row.record.layer}: " + ", ".join(f"{k}={v}" for k, v in row.record.settings.items())
        for row in rows
        if row.record.settings
    ]
    out += [text(line, "dim") for line in dict.fromkeys(footnotes + settings + report.notes)]
    return out


def inspect_many_renderables(many: InspectManyReport, view: View) -> list[RenderableType]:
    """Each model's table in turn (failures are reported on stderr), then the run's total."""
    out: list[RenderableType] = []
    for report in many.reports:
        single = View(columns=report.columns if view.columns == many.columns else view.columns, width=view.width,
                      wide=view.wide)  # fmt: skip
        out += inspect_renderables(report, single)
        out.append(text(""))
    totals = many.totals
    verdicts = ", ".join(f"{count} {verdict}" for verdict, count in sorted(totals["verdicts"].items()))
    failed = f"; {totals['failed']} could not be read" if totals["failed"] else ""
    out.append(
        text(
            f"{plural(totals['models'], 'model')}: {plural(totals['weights'], 'weight')}, "
            f"{totals['parameters']:,} {'parameter' if totals['parameters'] == 1 else 'parameters'}: "
            f"{verdicts or 'none'}{failed}",
            "bold",
        )
    )
    return out


def list_renderables(report: ListReport, view: View) -> list[RenderableType]:
    return [fitted_rows(report.flat_rows(), view, "Keras 3 built-in initializers")]


def _lines(lines: Sequence[str], style: str = "") -> list[RenderableType]:
    return [text(line, style) for block in lines for line in block.split("\n")]


def explain_renderables(report: ExplainReport, view: View) -> list[RenderableType]:
    if view.columns != report.columns:
        return [fitted_rows(report.flat_rows(), view, report.spec.class_name)]
    out = _lines(report.lines)
    out += [text(""), text("Keras 3 (TensorFlow backend, CPU):", "bold"), text(f"  {report.keras}")]
    if report.values is not None:
        out += values_block(report.values, view.width)
        if report.values_note:
            out.append(text(report.values_note, "dim"))
    for code in report.code:
        out += [text(code.title, "bold"), *_lines([code.code])]
    if report.not_exact:
        out.append(text(f"exact values: {report.not_exact}", "dim"))
    for equivalent in report.equivalents:
        out += [
            text(f"{equivalent.label}:", "bold"),
            text(f"  {equivalent.call}"),
            text(f"  {equivalent.differences}", "dim"),
        ]
    return out


def defaults_renderables(report: DefaultsReport, view: View) -> list[RenderableType]:
    return [fitted_rows(report.flat_rows(), view, "Keras default initializers")]


SMALL_SAMPLE_STD_LOW = 0.5
"""Below this lower end of the expected std ratio, a sample cannot tell a std half the theory's."""


def std_interval_text(ratio: float, low: float | None, high: float | None, count: int) -> str:
    """The std check: the ratio and its expected interval, or that the sample is too small to judge."""
    if low is None or high is None:
        return f"ratio {ratio:.4f}"
    if low < SMALL_SAMPLE_STD_LOW:
        return f"ratio {ratio:.4f}; {count} values: too few to judge the std (passes in [{low:.3g}, {high:.4g}])"
    return f"ratio {ratio:.4f}, expected within [{low:.4f}, {high:.4f}]"


def batchnorm_renderables(report: BatchnormReport, view: View) -> list[RenderableType]:
    rows = report.flat_rows()
    shown = rows if len(rows) <= 40 else rows[:20] + rows[-20:]
    momentum, epsilon = report.momentum, report.epsilon
    training = np.asarray(report.training_output, dtype=np.float64).reshape(-1)
    inference = np.asarray(report.inference_output, dtype=np.float64).reshape(-1)
    explanation = _lines(
        [
            f"moving = moving·{momentum:g} + batch·{1 - momentum:g}, starting from moving_mean 0 and "
            f"moving_variance 1; variance is the batch's biased (population) variance; epsilon {epsilon:g}.\n"
            + (
                f"Keras 2 fused kernel: the variance entering moving_variance is times n/(n-1) = {report.bessel:.6g}.\n"
                if report.fused
                else f"Keras {report.keras} rule{' (unfused)' if report.keras == 2 else ''}: no Bessel correction.\n"
            )
            + "training output = (x − batch_mean)/sqrt(batch_variance + ε); inference output = "
            + f"(x − moving_mean)/sqrt(moving_variance + ε) (gamma 1, beta 0).\n"
            f"training output (first values): {np.round(training[:6], 6).tolist()}\n"
            f"inference output after {report.steps} step(s) (first values): {np.round(inference[:6], 6).tolist()}"
        ]
    )
    return [fitted_rows(shown, view, "BatchNormalization"), *explanation]
