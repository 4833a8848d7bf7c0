"""A progress bar on stderr for long `inspect`/`check` runs: bytes and weights done, per model.

It appears only on a terminal and only once a run has taken `DELAY` seconds, so quick runs and
pipes see nothing of it; it disappears when the run ends (the report is what stays).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from initcli.analysis.inspection import weight_bytes

if TYPE_CHECKING:
    from rich.console import Console

    from initcli.analysis.inspection import WeightRow

DELAY = 1.0


class BarProgress:
    """Rich's progress bar, shown after `delay` seconds: `source · 12/320 weights`, bar, MB, elapsed."""

    def __init__(self, console: Console, delay: float = DELAY, clock: Callable[[], float] = time.monotonic) -> None:
        self._console = console
        self._delay = delay
        self._clock = clock
        self._started = clock()
        self._bar: Any = None
        self._task: Any = None
        self._source = ""
        self._weights = self._done = 0
        self._nbytes = self._bytes_done = 0

    def begin(self, source: str, weights: int, nbytes: int) -> None:
        self._source, self._weights, self._nbytes = source, weights, nbytes
        self._done = self._bytes_done = 0
        if self._bar is not None:  # one line for the model being read: the last one's goes
            self._bar.remove_task(self._task)
            self._task = self._bar.add_task(self._description(), total=max(1, nbytes), weights=self._counts())
        self._refresh()

    def advance(self, row: WeightRow) -> None:
        self._done += 1
        self._bytes_done += weight_bytes(row.record.shape, row.record.dtype)
        self._refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _description(self) -> str:
        from initcli.safety.sanitize import one_line

        return one_line(self._source, max_length=40)

    def _counts(self) -> str:
        return f"{self._done}/{self._weights} weights"

    def _refresh(self) -> None:
        if self._bar is None:
            if self._clock() - self._started < self._delay:
                return
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[weights]}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._description(), total=max(1, self._nbytes), weights=self._counts())
        self._bar.update(self._task, completed=self._bytes_done, weights=self._counts())
