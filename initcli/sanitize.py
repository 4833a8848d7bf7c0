"""Text from files made safe to print (placeholder; replaced by the hardened module)."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """Control characters replaced by visible escapes."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
