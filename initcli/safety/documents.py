"""Reading the YAML or JSON documents initcli is handed (rule files, specs, configs inside model files).

Every document is untrusted: its size, nesting depth and element count are bounded before it is
parsed, and YAML aliases (which let a few hundred bytes describe gigabytes) are limited.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from initcli.errors import InitcliError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 100
MAX_ELEMENTS = 1_000_000
MAX_YAML_ALIASES = 100

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _json_shape(data: bytes) -> tuple[int, int]:
    """(nesting depth, element count) of JSON text, from its brackets and commas outside strings."""
    structure = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    opens = (structure == ord("[")) | (structure == ord("{"))
    closes = (structure == ord("]")) | (structure == ord("}"))
    positions = np.flatnonzero(opens | closes)
    depth = 0
    if positions.size:
        steps = np.where(opens[positions], 1, -1).astype(np.int32)
        depth = int(np.cumsum(steps).max())
    elements = int(np.count_nonzero(structure == ord(","))) + int(np.count_nonzero(opens))
    return depth, elements


def parse_json(data: bytes | str, where: str, limit: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse JSON text after checking its size, depth and element count against initcli's limits.

    Raises:
        InitcliError: too large, too deep, too many elements, or not valid JSON (`where` names it).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > limit:
        raise InitcliError(f"{where}: {len(raw)} bytes of JSON, more than the {limit} initcli reads")
    depth, elements = _json_shape(raw)
    if depth > MAX_DEPTH:
        raise InitcliError(f"{where}: JSON nested {depth} levels deep, more than the {MAX_DEPTH} initcli reads")
    if elements > MAX_ELEMENTS:
        raise InitcliError(f"{where}: JSON with {elements} elements, more than the {MAX_ELEMENTS} initcli reads")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InitcliError(f"{where} is not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise InitcliError(f"{where} is not valid JSON ({error})") from None
    except (ValueError, RecursionError) as error:  # e.g. integers longer than Python converts
        raise InitcliError(f"{where} is not valid JSON ({str(error).splitlines()[0][:200]})") from None


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML with PyYAML's safe loader, refusing more than a few aliases and deep nesting.

    Raises:
        InitcliError: PyYAML missing, invalid YAML, or a document over initcli's limits.
    """
    try:
        import yaml
    except ImportError:
        raise InitcliError("YAML documents need PyYAML: pip install 'initcli[yaml]' (or use JSON)") from None

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that bounds alias uses, depth and the size of the document once aliases expand."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.aliases = 0
            self.depth = 0
            self.expanded: dict[int, int] = {}

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_YAML_ALIASES:
                    raise InitcliError(f"{where}: more than {MAX_YAML_ALIASES} YAML aliases")
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise InitcliError(f"{where}: YAML nested more than {MAX_DEPTH} levels deep")
                node = super().compose_node(parent, index)
            finally:
                self.depth -= 1
            if id(node) not in self.expanded:
                self.expanded[id(node)] = 1 + sum(self.expanded.get(id(child), 1) for child in _children(node))
                if self.expanded[id(node)] > MAX_ELEMENTS:
                    raise InitcliError(
                        f"{where}: YAML that expands to more than {MAX_ELEMENTS} elements (aliases repeat content)"
                    )
            return node

    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        raise InitcliError(f"{where}: not valid YAML ({str(error).splitlines()[0]})") from None
    except (ValueError, RecursionError, OverflowError) as error:
        raise InitcliError(f"{where}: not valid YAML ({str(error).splitlines()[0][:200]})") from None
    finally:
        loader.dispose()


def _children(node: Any) -> list[Any]:
    value = node.value
    if isinstance(value, list):
        return [part for item in value for part in (item if isinstance(item, tuple) else (item,))]
    return []


def load_document(path: Path, what: str) -> Any:
    """Parse `path` as YAML (.yaml/.yml, needs PyYAML) or JSON; `what` names it in errors.

    Raises:
        InitcliError: not a regular file, unreadable, too large, missing PyYAML, invalid YAML/JSON,
            or over the depth, element or alias limits.
    """
    from initcli.safety.files import read_regular  # here: initcli.readers imports this module

    data = read_regular(path, MAX_DOCUMENT_BYTES, what)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InitcliError(f"{path}: {what} is not UTF-8 text") from None
        return parse_yaml(text, str(path))
    return parse_json(data, str(path))
