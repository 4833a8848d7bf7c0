"""Counted nouns in messages: "1 error", "2 errors" (imports nothing; render and the api use it)."""

from __future__ import annotations

_IRREGULAR = {"was": "were", "is": "are", "matches": "match", "has": "have"}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`count` and the noun agreeing with it: plural(1, "error") == "1 error"; plural(0, "weight") == "0 weights"."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {many or _IRREGULAR.get(noun) or noun + 's'}"


def counted(count: int, noun: str, many: str | None = None) -> str:
    """The noun alone, agreeing with `count` (for "its 1 weight is" style phrases)."""
    return plural(count, noun, many).split(" ", 1)[1]
