"""Renderers for `initcli propagate`: JSON, CSV, a Rich table, a terminal plot and an image file.

They return text or renderables; the command prints. Rich and matplotlib are imported when used.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from initcli.errors import BadInputError, InitcliError
from initcli.propagate.report import COMPARE_COLUMNS, LAYER_COLUMNS, PropagateReport, PropagationRun
from initcli.render.tables import text, title_text

SCHEMA_VERSION = 1
_MARKERS = "●▲■◆✚○△□"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render_json(report: PropagateReport, indent: int | None = None) -> str:
    """One object with `schema_version` 1; NaN and infinities become null."""
    payload = {"schema_version": SCHEMA_VERSION, **report.to_json()}
    return json.dumps(_jsonable(payload), indent=indent, allow_nan=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    if isinstance(value, (list, tuple)):
        return "x".join("?" if v is None else str(v) for v in value)
    from initcli.safety.sanitize import clean_text

    return clean_text(str(value))  # layer names come from the model file


def flat_rows(report: PropagateReport) -> list[dict[str, Any]]:
    """The per-layer records of every run, flat; with several runs each row starts with its `init`."""
    rows = []
    for run in report.runs:
        for layer in run.layers:
            row = layer.to_flat()
            if len(report.runs) > 1:
                row = {"init": run.init or "saved", **row}
            rows.append(row)
    return rows


def render_csv(report: PropagateReport) -> str:
    """One row per layer (per run with --compare), the columns of LAYER_COLUMNS."""
    columns = COMPARE_COLUMNS if len(report.runs) > 1 else LAYER_COLUMNS
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in flat_rows(report):
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def _scale(run: PropagationRun, basis: str) -> list[float | None]:
    values: list[float | None] = []
    for layer in run.layers:
        source = layer.measured if basis == "measured" else layer.predicted
        value = None if source is None else source.rms
        values.append(value if value is not None and math.isfinite(value) and value > 0 else None)
    return values


def plot_series(report: PropagateReport) -> dict[str, list[float | None]]:
    """Scale (rms) against depth: one series per run, measured where measured, else predicted."""
    series = {}
    for run in report.runs:
        label = run.init or "as saved"
        if report.mode == "measured":
            series[f"{label} (measured)"] = _scale(run, "measured")
        if report.mode == "static" or len(report.runs) == 1:
            series[f"{label} (predicted)"] = _scale(run, "predicted")
    return {label: values for label, values in series.items() if any(v is not None for v in values)}


def depth_plot(series: Mapping[str, Sequence[float | None]], *, width: int = 64, height: int = 12) -> Any:
    """A terminal scatter plot of log10(rms) against layer index, one marker per series."""
    from rich.text import Text

    from initcli.safety.sanitize import clean_text

    points = [(name, i, v) for name, values in series.items() for i, v in enumerate(values) if v is not None]
    if not points:
        return Text("(nothing to plot)")
    logs = [math.log10(v) for _, _, v in points]
    low, high = math.floor(min(logs)), math.ceil(max(logs))
    if high == low:
        high = low + 1
    depth = max(len(values) for values in series.values())
    grid = [[" "] * width for _ in range(height)]
    markers = {name: _MARKERS[n % len(_MARKERS)] for n, name in enumerate(series)}
    for name, index, value in points:
        column = 0 if depth <= 1 else round(index * (width - 1) / (depth - 1))
        row = round((math.log10(value) - low) / (high - low) * (height - 1))
        grid[height - 1 - row][column] = markers[name]
    plot = Text()
    for number, line in enumerate(grid):
        level = high - number * (high - low) / (height - 1)
        label = f"1e{level:+.0f}" if abs(level - round(level)) < 1e-9 else ""
        plot.append(f"{label:>7} │{''.join(line)}\n")
    plot.append(" " * 8 + "└" + "─" * width + "\n")
    plot.append(" " * 9 + f"layer 0{' ' * max(width - 14 - len(str(depth - 1)), 1)}layer {depth - 1}\n")
    plot.append(" " * 9 + "   ".join(f"{marker} {clean_text(name)}" for name, marker in markers.items()))
    return plot


def _format(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "nan"
    return str(value)


#: The compact table's columns (when the full one does not fit): where it is, measured and predicted.
COMPACT_COLUMNS = ("#", "layer", "rms", "pred. rms", "rms / pred.", "grad rms", "pred. grad rms")


def layer_table(report: PropagateReport, run: PropagationRun, compact: bool = False) -> Any:
    """The per-layer table of one run: measured beside predicted, gains, gradients (`compact`: fewer)."""
    from rich.table import Table

    measured = report.mode == "measured"
    title = f"{report.source} · {run.init or 'as saved'} · {report.mode} · input {report.input}"
    if measured:
        title += f", batch {report.batch}, seed {report.seed}, {report.dtype}"
    table = Table(title=title_text(title), title_justify="left")
    columns = ["#", "layer", "class", "activation"]
    if measured:
        columns += ["mean", "std", "rms", "ch. sq. mean", "ch. var", "dead/sat."]
    columns += ["pred. rms", "gain", "chi"]
    if measured:
        columns += ["rms / pred."]
    if report.backward:
        columns += ["grad rms", "pred. grad rms", "kernel grad/weight"]
    elif not measured:
        columns += ["pred. grad rms"]
    shown = [column for column in columns if not compact or column in COMPACT_COLUMNS]
    for column in shown:
        table.add_column(column, justify="left" if column in ("layer", "class", "activation") else "right")
    for layer in run.layers:
        row = layer.to_flat()
        cells: list[Any] = [str(row["index"]), *(text(row[k] or "") for k in ("layer", "layer_class", "activation"))]
        if measured:
            fraction = row["dead_fraction"] if row["dead_fraction"] is not None else row["saturated_fraction"]
            cells += [_format(row[k]) for k in ("mean", "std", "rms", "channel_sq_mean", "channel_var")]
            cells.append(_format(fraction, 3))
        cells += [_format(row["predicted_rms"]), _format(row["forward_gain"]), _format(row["chi"])]
        if measured:
            cells.append(_format(row["rms_ratio"], 3))
        if report.backward:
            cells += [_format(row["grad_rms"]), _format(row["predicted_grad_rms"]), _format(row["grad_to_weight"])]
        elif not measured:
            cells.append(_format(row["predicted_grad_rms"]))
        nonfinite = row["nonfinite"]
        by_column = dict(zip(columns, cells))
        table.add_row(*(by_column[column] for column in shown), style="red" if nonfinite else None)
    return table


def compare_table(report: PropagateReport) -> Any:
    """Side by side: each run's rms (measured, else predicted) per layer."""
    from rich.table import Table

    basis = "measured" if report.mode == "measured" else "predicted"
    table = Table(title=title_text(f"{report.source} · rms per layer ({basis}) by initializer"), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("layer")
    for run in report.runs:
        table.add_column(text(run.init or "as saved"), justify="right")
    scales = [_scale(run, basis) for run in report.runs]
    for index, layer in enumerate(report.runs[0].layers):
        table.add_row(str(index), text(layer.layer), *[_format(values[index]) for values in scales])
    table.add_row("", "verdict", *[run.verdict for run in report.runs], style="bold")
    return table


def renderables(report: PropagateReport, width: int = 80, wide: bool = False) -> list[Any]:
    """The tables, the verdicts, the plot of scale against depth, and the notes.

    The table fits `width` as inspect's does: the full columns, else the compact ones, else one
    stacked block per layer (`wide`: the full table whatever the width).
    """

    from initcli.render.tables import View, fitted, stacked_table

    view = View(columns=(), width=width, wide=wide)
    out: list[Any] = []
    if len(report.runs) > 1:
        out.append(fitted([lambda: compare_table(report)], view, lambda: stacked_table(compare_table(report))))
    else:
        run = report.runs[0]
        out.append(
            fitted(
                [lambda: layer_table(report, run), lambda: layer_table(report, run, compact=True)],
                view,
                lambda: stacked_table(layer_table(report, run)),
            )
        )
    out.append(depth_plot(plot_series(report)))
    for run in report.runs:
        label = run.init or "as saved"
        style = "green" if run.verdict == "stable" else "bold red" if run.verdict != "n/a" else "yellow"
        for verdict in run.verdicts:
            out.append(text(f"{label}: {verdict.message}", style if verdict.kind != "stable" else "green"))
        out += [text(f"{label}: {note}", "dim") for note in run.notes]
    out += [text(note, "dim") for note in report.notes]
    return out


def check_plot_path(path: Path, *, force: bool) -> None:
    """Refuse a plot path before any work: a suffix other than .png/.svg is a usage error (exit 2); an
    existing file without `force`, or a directory, an error (exit 1)."""
    if path.suffix.lower() not in (".png", ".svg"):
        raise BadInputError(f"--plot writes .png or .svg files; received {path}")
    if path.exists() and not force:
        raise InitcliError(f"{path} already exists; pass --force to overwrite it.")
    if path.is_dir():
        raise InitcliError(f"{path} is a directory.")


def save_plot(report: PropagateReport, path: Path, *, force: bool) -> None:
    """Scale against depth as a PNG or SVG image (matplotlib, the `plot` extra)."""
    check_plot_path(path, force=force)
    suffix = path.suffix.lower()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InitcliError("--plot needs matplotlib: pip install 'initcli[plot]'") from None
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for label, values in plot_series(report).items():
        xs = [i for i, v in enumerate(values) if v is not None]
        ys = [float(v) for v in values if v is not None]
        axes.plot(xs, ys, marker="o", markersize=3, label=label)
    axes.set_yscale("log")
    axes.set_xlabel("layer (graph order)")
    axes.set_ylabel("rms of the layer output")
    axes.set_title(f"Signal propagation: {report.source}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    temporary = path.with_name(path.name + ".partial" + suffix)
    try:
        figure.savefig(temporary, format=suffix[1:])
        temporary.replace(path)
    except OSError as error:
        raise InitcliError(f"Cannot write {path}: {error.strerror}") from None
    finally:
        plt.close(figure)
        if temporary.exists():
            temporary.unlink()
