"""Hostile text from model files cannot forge lines, drive the terminal, reorder text or break Rich markup.

The oracle for "unsafe" is Python's own Unicode database (`unicodedata.category`) and the published
Trojan Source list of bidi controls, not initcli's pattern.
"""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from initcli.safety.sanitize import (
    clean_text,
    github_escape_data,
    github_escape_property,
    one_line,
    rich_safe,
    rich_text,
)

# Trojan Source (CVE-2021-42574), table 1: LRE RLE LRO RLO PDF LRI RLI FSI PDI, plus LRM RLM ALM.
BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F, 0x061C}


def is_unsafe(character: str) -> bool:
    return unicodedata.category(character) in ("Cc", "Cs", "Zl", "Zp") or ord(character) in BIDI


def plain_console():
    from rich.console import Console

    return Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("dense\nerror: forged finding", "dense\\nerror: forged finding"),
        ("kernel\r::notice::forged", "kernel\\r::notice::forged"),
        ("a\tb", "a\\tb"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),  # OSC 52: write the clipboard
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "\\x1b]8;;http://evil\\x1b\\link\\x1b]8;;\\x1b\\"),
        ("\x9b2J", "\\x9b2J"),  # C1 CSI: clear screen without an ESC
        ("next\x85line", "next\\x85line"),  # NEL
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("admin\u202egnp.exe", "admin\\u202egnp.exe"),
        ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
        ("line\u2028separator\u2029", "line\\u2028separator\\u2029"),
        ("undecodable-\udcff.keras", "undecodable-\\udcff.keras"),
        ("dense_ü_日本_🙂_👩\u200d💻", "dense_ü_日本_🙂_👩\u200d💻"),  # printable Unicode, ZWJ emoji kept
        ("C:\\models\\new\\net.keras", "C:\\models\\new\\net.keras"),  # backslashes kept
    ],
)
def test_clean_text_escapes_hostile_characters(hostile, expected):
    cleaned = clean_text(hostile)
    assert cleaned == expected
    assert not any(is_unsafe(c) for c in cleaned)
    assert "\n" not in cleaned and "\x1b" not in cleaned
    cleaned.encode("utf-8")  # a lone surrogate would raise here, and in print()


def test_clean_text_accepts_non_strings():
    assert clean_text(3) == "3"  # type: ignore[arg-type]


def test_one_line_joins_lines_and_escapes_the_rest():
    assert one_line("Layer dense:\n  expected 2 inputs,\r\n\tgot 3  ") == "Layer dense: expected 2 inputs, got 3"
    assert one_line("a\u2028b\x85c") == "a b c"
    assert one_line("clear \x1b[2J screen") == "clear \\x1b[2J screen"
    assert one_line("x" * 50, max_length=10) == "x" * 9 + "…"
    assert len(one_line("y" * 5000)) == 1000
    assert one_line("short", max_length=None) == "short"


@pytest.mark.parametrize(
    "name",
    ["[/]", "[bold]x[/bold]", "dense[/red]", "a\\", "\\[x]", "[link=http://evil]click[/link]", "x\n[/]"],
)
def test_rich_safe_prints_literally(name):
    from rich.errors import MarkupError

    console = plain_console()
    console.print(f"<[bold]{rich_safe(name)}[/bold]>", end="")
    assert console.file.getvalue() == f"<{clean_text(name)}>"
    if name == "[/]":
        with pytest.raises(MarkupError):  # the crash rich_safe prevents
            plain_console().print(name)


def test_rich_text_in_a_table_is_literal():
    from rich.table import Table

    table = Table("path")
    for name in (":warning:", "[/]", "[red]x[/red]", "a\nb"):
        table.add_row(rich_text(name))
    console = plain_console()
    console.print(table)
    output = console.file.getvalue()
    for name in (":warning:", "[/]", "[red]x[/red]", "a\\nb"):
        assert name in output
    assert "⚠" not in output


def test_github_escapes():
    message = github_escape_data("50% off\n::error::forged\r")
    assert message == "50%25 off\\n::error::forged\\r"
    assert "\n" not in message and "\r" not in message
    assert github_escape_property("dir/a,b:c%\n") == "dir/a%2Cb%3Ac%25\\n"


any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)


@given(any_text)
@example("\u2028\u2029\u202e\u2066\x9b\x85\udcff\x1b\x7f")
def test_output_never_contains_unsafe_characters(text):
    for output in (clean_text(text), one_line(text), github_escape_data(text), github_escape_property(text)):
        assert not any(is_unsafe(c) for c in output)
        assert "\x1b" not in output and "\n" not in output


@given(any_text)
def test_clean_text_is_idempotent(text):
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned
    assert one_line(one_line(text)) == one_line(text)


@given(st.text(st.characters(codec=None, exclude_categories=()).filter(lambda c: not is_unsafe(c)), max_size=60))
def test_clean_text_keeps_clean_text(text):
    assert clean_text(text) == text
