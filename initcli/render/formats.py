"""Renderers: the same records as JSON, CSV, Markdown or a Rich table. They return; commands print.

Rich is imported only when a table is rendered: scripts asking for JSON or CSV do not pay for it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = ("table", "json", "csv", "markdown")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def render_json(payload: Mapping[str, Any], indent: int | None = None) -> str:
    """One JSON object; NaN and infinities become null, numpy scalars plain numbers.

    The direct encoding is tried first; only a payload holding a non-finite number (or a key JSON
    cannot take) is walked and cleaned, which costs a second pass.
    """
    try:
        return json.dumps(payload, indent=indent, allow_nan=False, default=_json_default)
    except (ValueError, TypeError):
        return json.dumps(_jsonable(payload), indent=indent, allow_nan=False)


def format_value(value: Any, digits: int = 6) -> str:
    """A compact human/CSV form: None is empty, floats to `digits` significant digits."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return ""
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)) and not value:
        return "()"  # a scalar's shape
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else str(value)
    if isinstance(value, Mapping):
        return json.dumps(_jsonable(value), separators=(",", ":"))
    from initcli.safety.sanitize import clean_text

    # Names come from files: control characters, escapes and line breaks are shown, never passed on.
    return clean_text(str(value))


def render_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_value(row.get(c), digits=10) for c in columns])
    return buffer.getvalue()


def render_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        return format_value(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def stdout_console() -> Console:
    """Data console: colour only on a terminal (Rich honours NO_COLOR); wide when piped.

    No emoji codes: a `:name:` in a weight's name is shown as written (and Rich's emoji table is not loaded).
    """
    from rich.console import Console

    interactive = sys.stdout.isatty()
    width = None if interactive or os.environ.get("COLUMNS") else 160
    return Console(file=sys.stdout, width=width, highlight=False, soft_wrap=False, emoji=False)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, emoji=False)


VERDICT_STYLES = {
    "consistent": "green",
    "suspicious": "yellow",
    "inconsistent": "bold red",
    "non-default": "magenta",
    "n/a": "dim",
}
