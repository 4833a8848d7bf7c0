"""Make text from untrusted files safe to print: no control characters, escapes, bidi overrides or markup.

Layer names, paths and config strings come from model files and specs, which are untrusted. Printed raw,
a newline in a layer name forges lines (`error:` findings, `::notice` workflow commands), an ANSI or OSC
escape sequence drives the terminal, a bidi override reorders what the reader sees, a lone surrogate
(an undecodable file name) makes `print` raise, and `[/]` breaks Rich markup. Every such character is
replaced by a visible escape (`\\n`, `\\x1b`, `\\u202e`), so the text stays on one line and says what it
contained; printable Unicode is kept as it is.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# Every character escaped: C0 controls, DEL and C1 controls (Unicode category Cc), lone surrogates (Cs),
# the line and paragraph separators (Zl, Zp), and the bidirectional embeddings, overrides, isolates and
# invisible direction marks (Trojan Source, CVE-2021-42574).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_WHITESPACE_RUN = re.compile(r"\s+")


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text: str) -> str:
    """Replace control characters, escape sequences' ESC, bidi controls and line separators by visible escapes.

    Escaped: C0 controls (including newline, carriage return, tab and ESC, so ANSI CSI and OSC sequences
    lose their introducer and print as text), DEL, C1 controls (including the single-character CSI
    U+009B and NEL U+0085), lone surrogates, U+2028/U+2029 and the bidi embeddings, overrides, isolates
    and marks (U+202A-202E, U+2066-2069, U+200E, U+200F, U+061C). Everything else, printable Unicode
    included, is kept; backslashes are kept as they are, so Windows paths read normally and the function
    is idempotent: `clean_text(clean_text(s)) == clean_text(s)`.

    Args:
        text: any string (non-strings are converted with `str`).

    Returns:
        The text with each such character replaced by `\\n`, `\\r`, `\\t`, `\\xNN` or `\\uNNNN`.
    """
    return _UNSAFE.sub(_escape, str(text))


def one_line(text: str, *, max_length: int | None = 1000) -> str:
    """A message for one `Error: ...` line: whitespace runs (newlines included) become one space, then cleaned.

    Multi-line messages (Keras's own exceptions span several lines) read naturally joined with spaces;
    other control characters are escaped as in `clean_text`. Longer than `max_length` characters, the
    message is cut and ends with an ellipsis.
    """
    collapsed = clean_text(_WHITESPACE_RUN.sub(" ", str(text)).strip())
    if max_length is not None and len(collapsed) > max_length:
        return collapsed[: max(max_length - 1, 0)] + "…"
    return collapsed


def rich_safe(text: str) -> str:
    """`clean_text`, then Rich markup escaped: for text embedded in a Rich markup string (`f"[b]{name}[/b]"`).

    Like `rich.markup.escape`, a trailing backslash is doubled so that it cannot escape the markup that
    follows; printed on its own, such a string shows both backslashes.

    Rich still replaces emoji codes such as `:warning:` in plain strings; a `rich.text.Text` (see
    `rich_text`) is parsed for neither markup nor emoji, and is the safer choice for table cells.
    """
    from rich.markup import escape

    return escape(clean_text(text))


def rich_text(text: str, style: str = "") -> Text:
    """A `rich.text.Text` holding the cleaned text: Rich renders it literally (no markup, no emoji codes)."""
    from rich.text import Text

    return Text(clean_text(text), style=style)


def github_escape_data(text: str) -> str:
    """The message of a GitHub Actions workflow command (`::error file=...::MESSAGE`), cleaned and escaped.

    Follows @actions/core's `escapeData` (`%` -> `%25`, CR -> `%0D`, LF -> `%0A`) after `clean_text`,
    which has already turned every line break into a visible `\\n`: the message cannot start a new
    workflow command.
    """
    return clean_text(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_escape_property(text: str) -> str:
    """A property value of a workflow command (`file=`, `title=`): as `github_escape_data`, and `:` `,` escaped."""
    return github_escape_data(text).replace(":", "%3A").replace(",", "%2C")
