"""Where the tests find files fetched from public repositories, which this repository never commits.

Fetched material stays out of the project's commits (the workplace's rule); the steering repo's
`shared/` holds it, and CI gets a copy of `shared/` beside the checkout. Each kind has a folder name
and an environment variable that overrides it: `public-fixtures` (`$INITCLI_PUBLIC_FIXTURES`, the
small files of tests/fixtures/public/ORIGINS.md), `public-trained` (`$INITCLI_PUBLIC_TRAINED`) and
`public-custom-layers` (`$INITCLI_PUBLIC_CUSTOM_LAYERS`). A test whose file is absent skips, naming it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORIGINS = ROOT / "tests" / "fixtures" / "public" / "ORIGINS.md"


def folders(variable: str, name: str) -> list[Path]:
    """The folders searched, in order: `$variable`, then `shared/<name>` beside or inside the checkout."""
    given = os.environ.get(variable)
    return [*([Path(given)] if given else []), ROOT.parent / "shared" / name, ROOT / "shared" / name]


def find(variable: str, name: str, entry: str) -> Path | None:
    """The first of `folders(variable, name)` that holds `entry` (a file or a folder), as a path."""
    for folder in folders(variable, name):
        if (folder / entry).exists():
            return folder / entry
    return None


@functools.cache
def _origins() -> dict[str, tuple[int, str]]:
    """Each public fixture's (bytes, first 16 hex digits of its sha256), from ORIGINS.md's table."""
    rows = re.findall(r"^\| `([^`]+)` \|.*?\| (\d+) \| `([0-9a-f]{16})` \|", ORIGINS.read_text(), re.MULTILINE)
    return {name: (int(size), digest) for name, size, digest in rows}


@functools.cache
def public(name: str) -> Path:
    """The public fixture `name` (tests/fixtures/public/ORIGINS.md); a file is checked against the
    size and sha256 there. Skips when no folder holds it."""
    path = find("INITCLI_PUBLIC_FIXTURES", "public-fixtures", name)
    if path is None:
        pytest.skip(f"fetched file {name} not in shared/public-fixtures/ (tests/fixtures/public/ORIGINS.md)")
    if path.is_file():
        data = path.read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()[:16]) == _origins()[name], f"{path}: not ORIGINS.md's"
    return path
