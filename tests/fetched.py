"""Where the tests find files fetched from public repositories, which this repository never commits.

Fetched material stays out of the project's commits (the workplace's rule); the steering repo's
`shared/` holds it, and CI gets a copy of `shared/` beside the checkout. Each kind has a folder name
and an environment variable that overrides it: `public-fixtures` (`$INITCLI_PUBLIC_FIXTURES`, the
small files of tests/fixtures/public/ORIGINS.md), `public-trained` (`$INITCLI_PUBLIC_TRAINED`) and
`public-custom-layers` (`$INITCLI_PUBLIC_CUSTOM_LAYERS`). A test whose file is absent skips, naming it.
"""

from __future__ import annotations

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


def _origins() -> dict[str, tuple[int, str]]:
    """Each public fixture's (bytes, first 16 hex digits of its sha256), from ORIGINS.md's table."""
    rows = re.findall(r"^\| `([^`]+)` \|.*?\| (\d+) \| `([0-9a-f]{16})` \|", ORIGINS.read_text(), re.MULTILINE)
    return {name: (int(size), digest) for name, size, digest in rows}


def public(name: str) -> Path:
    """The public fixture `name` (tests/fixtures/public/ORIGINS.md); a file is checked against the
    size and sha256 there. Skips when no folder holds it."""
    for folder in folders("INITCLI_PUBLIC_FIXTURES", "public-fixtures"):
        path = folder / name
        if path.is_file():
            size, digest = _origins()[name]
            data = path.read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()[:16]) == (size, digest), f"{path}: not ORIGINS.md's"
            return path
        if path.is_dir():
            return path
    pytest.skip(f"fetched file {name} not in shared/public-fixtures/ (tests/fixtures/public/ORIGINS.md)")
