"""Reading the small YAML or JSON documents users hand initcli (rule files, model specs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from initcli.errors import InitcliError


def load_document(path: Path, what: str) -> Any:
    """Parse `path` as YAML (.yaml/.yml, needs PyYAML) or JSON; `what` names it in errors.

    Raises:
        InitcliError: unreadable file, missing PyYAML, or invalid YAML/JSON.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InitcliError(f"Cannot read {what} {path}: {error}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InitcliError(f"YAML {what}s need PyYAML: pip install 'initcli[yaml]' (or use JSON)") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise InitcliError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InitcliError(f"{path}: not valid JSON ({error})") from None
