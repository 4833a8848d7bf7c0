"""initcli: inspect what Keras initialized a weight with, and whether it looks right.

The public API (`inspect`, `sample`, `check`, `explain`, `propagate`, `diff`, `list_initializers`,
`defaults`, `batchnorm`, the reports and the errors) lives in `initcli.public` and is imported on
first use, so `import initcli` (and `initcli --version`) loads neither numpy nor Rich.

`initcli.propagate` is both the subpackage that computes a propagation (`initcli.propagate.run`,
`initcli.propagate.verdict`...) and, called, the public function `initcli.public.propagate`: the
package's module object is of a module type whose `__call__` is that function. So
`import initcli.propagate.verdict` imports the submodule as ever, and `initcli.propagate(model)`
runs a propagation.
"""

from __future__ import annotations

import importlib as _importlib
import types as _types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BadInputError",
    "BatchnormReport",
    "CheckReport",
    "DefaultsReport",
    "DiffReport",
    "ExplainReport",
    "InitcliError",
    "InspectReport",
    "ListReport",
    "MissingDependencyError",
    "PropagateReport",
    "SampleReport",
    "__version__",
    "batchnorm",
    "check",
    "defaults",
    "diff",
    "explain",
    "inspect",
    "list_initializers",
    "propagate",
    "sample",
]

_PUBLIC = {"batchnorm", "check", "defaults", "diff", "explain", "inspect", "list_initializers", "sample"}
_REPORTS = {
    "BatchnormReport": "initcli.reports",
    "CheckReport": "initcli.reports",
    "DefaultsReport": "initcli.reports",
    "ListReport": "initcli.reports",
    "ExplainReport": "initcli.reports",
    "InspectReport": "initcli.reports",
    "SampleReport": "initcli.reports",
    "DiffReport": "initcli.analysis.diff",
    "PropagateReport": "initcli.propagate.report",
}
_ERRORS = {"BadInputError", "InitcliError", "MissingDependencyError"}

if TYPE_CHECKING:
    from initcli.analysis.diff import DiffReport
    from initcli.errors import BadInputError, InitcliError, MissingDependencyError
    from initcli.propagate.report import PropagateReport
    from initcli.public import batchnorm, check, defaults, diff, explain, inspect, list_initializers, propagate, sample
    from initcli.reports import (
        BatchnormReport,
        CheckReport,
        DefaultsReport,
        ExplainReport,
        InspectReport,
        ListReport,
        SampleReport,
    )


class _CallablePackage(_types.ModuleType):
    """The `initcli.propagate` package, which called is `initcli.public.propagate`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from initcli.public import propagate as function

        return function(*args, **kwargs)

    @property
    def __signature__(self) -> Any:
        import inspect

        from initcli.public import propagate as function

        return inspect.signature(function)


# The package's __init__ is a docstring: importing it here costs nothing and makes it callable.
_importlib.import_module("initcli.propagate").__class__ = _CallablePackage


def __getattr__(name: str) -> Any:
    """Import a public name from the module that defines it, on first use."""
    if name in _PUBLIC:
        module = "initcli.public"
    elif name in _REPORTS:
        module = _REPORTS[name]
    elif name in _ERRORS:
        module = "initcli.errors"
    else:
        raise AttributeError(f"module 'initcli' has no attribute {name!r}")
    if module != "initcli.errors":
        _importlib.import_module("initcli.render.views")  # registers the reports' views (dict, pandas, Rich, HTML)
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
