"""The progress bar: on a terminal only, after a second, bytes and weights done, gone at the end."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from initcli.analysis.inspection import weight_bytes
from initcli.render.printing import weight_progress
from initcli.render.progress import BarProgress


def _row(shape: tuple[int, ...], dtype: str = "float32") -> SimpleNamespace:
    return SimpleNamespace(record=SimpleNamespace(shape=shape, dtype=dtype, path="dense/kernel"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=100, color_system=None), buffer


def test_weight_bytes_follow_the_dtype():
    assert weight_bytes((3, 3, 64, 128), "float32") == 3 * 3 * 64 * 128 * 4
    assert weight_bytes((10,), "bfloat16") == 20
    assert weight_bytes((), "float64") == 8


def test_nothing_is_shown_in_the_first_second():
    console, buffer = _terminal()
    clock = Clock()
    bar = BarProgress(console, clock=clock)
    bar.begin("m.keras", 2, 8_000_000)
    clock.now = 0.9
    bar.advance(_row((1000, 1000)))
    bar.close()
    assert buffer.getvalue() == ""


def test_after_a_second_it_shows_bytes_and_weights_done():
    console, buffer = _terminal()
    clock = Clock()
    bar = BarProgress(console, clock=clock)
    bar.begin("big.keras", 3, 12_000_000)
    clock.now = 1.5
    bar.advance(_row((1000, 1000)))
    bar._bar.refresh()
    shown = buffer.getvalue()
    bar.close()
    assert "big.keras" in shown and "1/3 weights" in shown
    assert "4.0/12.0 MB" in shown


def test_no_bar_when_stderr_is_not_a_terminal(capsys):
    with weight_progress() as bar:
        assert bar is None
