"""Rich tables for people: theory next to sample, histograms, and the inspect listing.

Renderers return tables; commands decide where they go. Rich is imported here only, and only
when a table is actually rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from initcli.assessment import Assessment
from initcli.output import VERDICT_STYLES, format_value, render_rows_table
from initcli.reports import (
    BatchnormReport,
    DefaultsReport,
    ExplainReport,
    InspectReport,
    ListReport,
    SampleReport,
    initializer_label,
)
from initcli.theory import Theory

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table


def theory_cell(theory: Theory | None, key: str) -> str:
    if theory is None:
        return "unknown"
    return format_value(getattr(theory, key))


def assessment_table(assessment: Assessment, title: str) -> Table:
    """Theory next to sample for one tensor, with the check each row supports."""
    theory, sample, checks = assessment.theory, assessment.sample, assessment.checks
    from rich.table import Table

    table = Table(title=title, title_justify="left")
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
        std_check = (
            f"ratio {checks.std_ratio:.4f}, expected within [{checks.std_ratio_low:.4f}, {checks.std_ratio_high:.4f}]"
        )
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
    style = VERDICT_STYLES.get(assessment.verdict, "")
    decided = ""
    if checks.decisive_test is not None:
        decided = f" (decided by {checks.decisive_test}"
        decided += f", p = {checks.adjusted_pvalue:.3g})" if checks.adjusted_pvalue is not None else ")"
    table.add_row("verdict", "", "", f"[{style}]{assessment.verdict}[/]{decided}")
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


def inspect_table(rows: list[Any], title: str, fresh: dict[str, Any] | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    columns: list[tuple[str, Literal["left", "right"]]] = [
        ("weight (path)", "left"),
        ("shape", "left"),
        ("fan_in/out", "right"),
        ("initializer", "left"),
        ("theory std", "right"),
        ("mean", "right"),
        ("std", "right"),
        ("verdict", "left"),
    ]
    if fresh is not None:
        columns += [("fresh std", "right"), ("std / fresh", "right")]
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold")
    previous_layer = None
    for row in rows:
        record = row.record
        if previous_layer is not None and record.layer != previous_layer:
            table.add_section()
        previous_layer = record.layer
        configured = initializer_label(row.initializer if row.initializer is not None else record.initializer)
        if configured is None:
            configured = "unknown"
        if row.is_default is True:
            configured += " (default)"
        elif row.is_default is False and row.default is not None:
            configured += f" (default {row.default.class_name})"
        theory = row.assessment.theory
        sample = row.assessment.sample
        style = VERDICT_STYLES.get(row.assessment.verdict, "")
        marks = " *" if row.notes else ""
        cells = [
            f"{record.path}{marks}",
            format_value(list(record.shape)) or "()",
            f"{row.fan_in}/{row.fan_out}",
            configured,
            format_value(theory.std if theory else None, 4),
            format_value(sample.mean, 4),
            format_value(sample.std, 4),
            f"[{style}]{row.assessment.verdict}[/]",
        ]
        if fresh is not None:
            fresh_row = fresh.get(record.path)
            fresh_std = fresh_row.assessment.sample.std if fresh_row is not None else None
            ratio = sample.std / fresh_std if fresh_std and sample.std is not None else None
            cells += [format_value(fresh_std, 4), format_value(ratio, 4)]
        table.add_row(*cells)
    return table


def sample_renderables(report: SampleReport, hist: bool) -> list[RenderableType]:
    from rich.text import Text

    theory = report.assessment.theory
    fans = f" · fan_in {theory.fan_in}, fan_out {theory.fan_out}" if theory else ""
    title = (
        f"{initializer_label(report.spec)} · shape {format_value(list(report.shape)) or '()'} · {report.dtype} · "
        f"seed {report.seed.value}{fans}"
    )
    out: list[RenderableType] = [assessment_table(report.assessment, title)]
    if hist:
        out.append(histogram_table(report.assessment))
    out += [Text(note, style="dim") for note in report.notes]
    return out


def inspect_renderables(report: InspectReport) -> list[RenderableType]:
    from rich.text import Text

    title = f"{report.source} · {report.format} · Keras {report.keras_version or 'unknown'}"
    rows = report.weights
    out: list[RenderableType] = [inspect_table(rows, title, report.fresh)]
    totals = report.totals
    verdicts = ", ".join(f"{count} {verdict}" for verdict, count in sorted(totals["verdicts"].items()))
    out.append(Text(f"{totals['weights']} weights, {totals['parameters']:,} parameters: {verdicts or 'none'}"))
    footnotes = [f"* {row.record.path}: {'; '.join(row.notes)}" for row in rows if row.notes]
    settings = [
        f"{row.record.layer}: " + ", ".join(f"{k}={v}" for k, v in row.record.settings.items())
        for row in rows
        if row.record.settings
    ]
    out += [Text(line, style="dim") for line in dict.fromkeys(footnotes + settings + report.notes)]
    return out


def list_renderables(report: ListReport, columns: tuple[str, ...]) -> list[RenderableType]:
    return [render_rows_table(report.flat_rows(), columns, title="Keras 3 built-in initializers")]


def explain_renderables(report: ExplainReport) -> list[RenderableType]:
    from rich.text import Text

    return [Text("\n".join(report.lines))]


def defaults_renderables(report: DefaultsReport, columns: tuple[str, ...]) -> list[RenderableType]:
    return [render_rows_table(report.flat_rows(), columns, title="Keras default initializers")]


def batchnorm_renderables(report: BatchnormReport, columns: tuple[str, ...]) -> list[RenderableType]:
    import numpy as np
    from rich.text import Text

    rows = report.flat_rows()
    shown = rows if len(rows) <= 40 else rows[:20] + rows[-20:]
    momentum, epsilon = report.momentum, report.epsilon
    training = np.asarray(report.training_output, dtype=np.float64).reshape(-1)
    inference = np.asarray(report.inference_output, dtype=np.float64).reshape(-1)
    explanation = Text(
        f"moving = moving·{momentum:g} + batch·{1 - momentum:g}, starting from moving_mean 0 and "
        f"moving_variance 1; variance is the batch's biased (population) variance; epsilon {epsilon:g}.\n"
        f"training output = (x − batch_mean)/sqrt(batch_variance + ε); inference output = "
        f"(x − moving_mean)/sqrt(moving_variance + ε) (gamma 1, beta 0).\n"
        f"training output (first values): {np.round(training[:6], 6).tolist()}\n"
        f"inference output after {report.steps} step(s) (first values): {np.round(inference[:6], 6).tolist()}"
    )
    return [render_rows_table(shown, columns, title="BatchNormalization"), explanation]
