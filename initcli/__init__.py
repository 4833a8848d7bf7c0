"""initcli: inspect what Keras initialized a weight with, and whether it looks right.

The public API (`inspect`, `sample`, `check`, `explain`, the reports and the errors) lives in
`initcli.public` and is imported on first use, so `import initcli` (and `initcli --version`) loads
neither numpy nor Rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BadInputError",
    "CheckReport",
    "ExplainReport",
    "InitcliError",
    "InspectReport",
    "MissingDependencyError",
    "SampleReport",
    "__version__",
    "check",
    "explain",
    "inspect",
    "sample",
]

_PUBLIC = {"check", "explain", "inspect", "sample"}
_REPORTS = {"CheckReport", "ExplainReport", "InspectReport", "SampleReport"}
_ERRORS = {"BadInputError", "InitcliError", "MissingDependencyError"}

if TYPE_CHECKING:
    from initcli.errors import BadInputError, InitcliError, MissingDependencyError
    from initcli.public import check, explain, inspect, sample
    from initcli.reports import CheckReport, ExplainReport, InspectReport, SampleReport


def __getattr__(name: str) -> Any:
    """Import a public name from the module that defines it, on first use."""
    import importlib

    if name in _PUBLIC:
        module = "initcli.public"
    elif name in _REPORTS:
        module = "initcli.reports"
    elif name in _ERRORS:
        module = "initcli.errors"
    else:
        raise AttributeError(f"module 'initcli' has no attribute {name!r}")
    if module != "initcli.errors":
        importlib.import_module("initcli.render.views")  # registers the reports' views (dict, pandas, Rich, HTML)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
