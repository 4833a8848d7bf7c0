"""The views every report offers outside the command line: a dict, a DataFrame, Rich and Jupyter HTML.

`ReportViews` is mixed into every report (`initcli.reports`, the diff and propagate reports). The
reports sit below the renderers, so they import none: `initcli.render.views` registers the one
implementation (`register_views`) when it is imported, which `initcli`'s public functions do.

Imports nothing of initcli's: every layer's reports may use it.
"""

from __future__ import annotations

from typing import Any, Protocol


class Views(Protocol):
    """How reports show themselves outside the command line; `initcli.render.views` supplies it."""

    def to_dict(self, report: Any) -> dict[str, Any]: ...

    def to_pandas(self, report: Any) -> Any: ...

    def rich(self, report: Any) -> Any: ...

    def html(self, report: Any) -> str: ...


_VIEWS: list[Views] = []


def register_views(views: Views) -> None:
    """Called once by `initcli.render.views` when it is imported (the public API imports it)."""
    _VIEWS[:] = [views]


def _views() -> Views:
    if not _VIEWS:
        raise RuntimeError("report views need the renderers: import initcli (its public API) or initcli.render.views")
    return _VIEWS[0]


class ReportViews:
    """A report's views: a dict (`--format json`), a DataFrame (`--format csv` records), Rich and HTML.

    The reports import no renderer (they sit below `initcli.render`): the views are registered by
    `initcli.render.views`, which `initcli`'s public functions import.
    """

    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON object the command line prints with `--format json`.

        Plain Python values only (numbers, strings, lists, dicts, None): numpy scalars become numbers
        and NaN or infinite numbers become None, exactly as in the printed JSON.
        """
        return _views().to_dict(self)

    def to_pandas(self) -> Any:
        """One row per record (a weight, a finding, ...), the columns of `--format csv`, as a DataFrame.

        Raises:
            ImportError: pandas is not installed (`pip install 'initcli[pandas]'`).
        """
        return _views().to_pandas(self)

    def __rich__(self) -> Any:
        """The table `initcli` prints in a terminal, fitted to the console it is printed on."""
        return _views().rich(self)

    def _repr_html_(self) -> str:
        """The terminal's table as HTML, for Jupyter."""
        return _views().html(self)
