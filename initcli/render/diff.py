"""`initcli diff`'s tables: the weights, the per-layer totals, the model total, one-sided weights."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from initcli.render.formats import format_value

if TYPE_CHECKING:
    from rich.console import RenderableType

    from initcli.analysis.diff import DiffReport, Sums
    from initcli.render.tables import View


COMPACT = ("relative_change", "max_abs_diff", "std_a", "std_b", "cosine")
"""The table's columns after the path when neither --columns nor --wide asks for others."""


def _totals_row(name: str, sums: Sums) -> dict[str, Any]:
    return {"layer": name, **sums.to_json()}


def summary_line(report: DiffReport) -> str:
    """The model total in one line: "12 weights (5,130 values): relative change 0.0213, ..."."""
    total = report.total
    if not total.elements:  # over no values a change, a maximum and a cosine are not measurements
        return f"{report.source_a} -> {report.source_b}: {total.weights} weights (0 values): relative change n/a"
    return (
        f"{report.source_a} -> {report.source_b}: {total.weights} weights ({total.elements:,} values): "
        f"relative change {format_value(total.relative_change)}, max |B-A| {format_value(total.max_abs_difference)}, "
        f"cosine {format_value(total.cosine)}"
    )


def exceeded_line(report: DiffReport) -> str | None:
    """What `--threshold` found, or None without one; "no weight in common" when nothing was compared."""
    if not report.rows:
        return "no weight in common: nothing compared" + ("" if report.threshold is None else " (--threshold fails)")
    if report.threshold is None:
        return None
    moved = report.exceeded
    # A weight on one side only is not "unchanged": a gate that the architectures differ passes is no gate.
    unmatched = f"; {len(report.only)} weights on one side only (--threshold fails)" if report.only else ""
    if not moved:
        return f"no weight moved more than {format_value(report.threshold)} (relative){unmatched}"
    names = ", ".join(row.path for row in moved[:5]) + (", ..." if len(moved) > 5 else "")
    return (
        f"{len(moved)} of {len(report.rows)} weights moved more than {format_value(report.threshold)}: {names}"
        f"{unmatched}"
    )


def diff_renderables(report: DiffReport, view: View) -> list[RenderableType]:
    """The weights table (in the view's columns), the per-layer table, then the total and notes."""
    from initcli.render.tables import fitted_rows, text

    if view.columns == report.columns and not view.wide:
        moved = ("matched",) if any(row.matched != "path" for row in report.rows) else ()
        view = replace(view, columns=("path", *moved, "shape_a", *COMPACT))
    # The table lists one-sided weights as "only in A/B:" lines below it, not as rows.
    parts: list[RenderableType] = [fitted_rows(report.matched_rows(), view, "Weights")]
    layer_rows = [_totals_row(name, sums) for name, sums in report.layers.items()]
    if layer_rows:
        columns = ("layer", "weights", "elements", "relative_change", "max_abs_diff", "cosine")
        parts.append(fitted_rows(layer_rows, replace(view, columns=columns), "Layers"))
    parts.append(text(summary_line(report), "bold"))
    for entry in report.only:
        shape = "x".join(map(str, entry.shape)) or "scalar"
        parts.append(text(f"only in {entry.side.upper()}: {entry.path} ({shape}, {entry.dtype})"))
    for note in report.notes:
        parts.append(text(f"note: {note}"))
    line = exceeded_line(report)
    if line:
        parts.append(text(line))
    return parts
