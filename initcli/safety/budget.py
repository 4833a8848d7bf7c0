"""One budget per command: the deadline and the counts every parser spends from.

A small hostile file can make a parser do far more work than its size suggests: millions of empty
protobuf fields, an index of a million tensors, a glob over a symlink loop, JSON of `[{}, {}, ...]`.
Each parser therefore spends from one `Budget`, made once per command from `--timeout` /
`INITCLI_TIMEOUT` and set as the context's budget (`scope`); a parser reaches it with `active()`
and stops with a one-line `BudgetError` (exit 1) when a limit is spent. Outside a command (the
library API), `active()` gives each call a fresh budget of the default limits.

The limits (documented in docs/safety.md):

| limit            | default   | spent by                                                       |
|------------------|-----------|----------------------------------------------------------------|
| timeout          | 60 s      | every reader, parser, glob and HDF5 worker of the command       |
| max_fields       | 1,000,000 | protobuf fields decoded (saved_model.pb, keras_metadata.pb, ...) |
| max_bytes        | 512 MiB   | bytes the decoded objects may hold (fields, keys, paths, JSON)  |
| max_depth        | 64        | protobuf and object-graph nesting                               |
| max_entries      | 200,000   | tensor-bundle index entries (2)                                 |
| max_path_bytes   | 4,096     | one dotted object path of a SavedModel or checkpoint graph      |
| max_matches      | 10,000    | files one command's glob patterns may match                     |
| max_layers       | 1,500     | layers a spec declares, or a propagate graph holds (1)          |

(1) The largest model of keras.applications, NASNetLarge, has 1,041 layers (measured with
`len(keras.applications.NASNetLarge(weights=None).layers)`, Keras 3.15); DenseNet201 has 709.
(2) Each index entry decodes 6 to 8 protobuf fields, so max_fields allows some 140,000 tensors
anyway; an index of more entries than that is refused while its table is read, before any entry is
decoded (`initcli inspect` of 999,999 entries: 2.1 s to the error, instead of 9.7 s of decoding).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from initcli.errors import BadInputError, InitcliError

DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 24 * 3600.0
"""Longer than a day is a typo (or `1e308`, whose deadline overflows every clock): a usage error."""

# Checking the clock costs ~50 ns; parsers look at it once per this many units of work.
CLOCK_EVERY = 4096


class BudgetError(InitcliError):
    """A limit of the command's budget was spent: reported on one line, exit 1."""


def parse_timeout(value: object, name: str = "--timeout") -> float:
    """Seconds in (0, 1 day], from text or a number.

    Raises:
        BadInputError: not a number, NaN, infinite, <= 0 or longer than a day (a usage error).
    """
    text = value if isinstance(value, str) else repr(value)
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise BadInputError(f"{name} must be a number of seconds in (0, 86400]; received {text!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT:
        raise BadInputError(f"{name} must be a number of seconds in (0, 86400]; received {text.strip()!r}")
    return seconds


def default_timeout() -> float:
    """`INITCLI_TIMEOUT` from the environment if set, else 60 s.

    Raises:
        BadInputError: an INITCLI_TIMEOUT outside (0, 86400] seconds.
    """
    text = os.environ.get("INITCLI_TIMEOUT", "")
    return parse_timeout(text, "INITCLI_TIMEOUT") if text.strip() else DEFAULT_TIMEOUT


@dataclass(kw_only=True)
class Budget:
    """The limits of one command and what has been spent of them.

    Attributes:
        timeout: seconds the command may spend reading and parsing (the deadline is set at creation).
        max_fields, max_bytes, max_depth, max_entries, max_path_bytes, max_matches, max_layers: see
            the module's table.
    """

    timeout: float = DEFAULT_TIMEOUT
    max_fields: int = 1_000_000
    max_bytes: int = 512 * 1024 * 1024
    max_depth: int = 64
    max_entries: int = 200_000
    max_path_bytes: int = 4096
    max_matches: int = 10_000
    max_layers: int = 1500
    deadline: float = field(default=0.0)
    fields: int = 0
    allocated: int = 0
    entries: int = 0
    _clock: int = 0

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.timeout

    @classmethod
    def from_options(cls, timeout: float | None = None) -> Budget:
        """The budget of a command run with `--timeout` (None: INITCLI_TIMEOUT, else 60 s).

        Raises:
            BadInputError: a timeout outside (0, 86400] seconds.
        """
        seconds = default_timeout() if timeout is None else parse_timeout(timeout)
        return cls(timeout=seconds)

    def remaining(self) -> float:
        """Seconds left before the deadline (0 once it has passed)."""
        return max(0.0, self.deadline - time.monotonic())

    def check_time(self, what: str) -> None:
        """Raise if the deadline has passed.

        Raises:
            BudgetError: "`what` took longer than the 60 s timeout".
        """
        if time.monotonic() > self.deadline:
            raise BudgetError(f"{what} took longer than the {self.timeout:g} s timeout (--timeout or INITCLI_TIMEOUT)")

    def tick(self, what: str, units: int = 1) -> None:
        """Count `units` of work; every CLOCK_EVERY units the deadline is checked."""
        self._clock += units
        if self._clock >= CLOCK_EVERY:
            self._clock = 0
            self.check_time(what)

    def spend_fields(self, count: int, what: str) -> None:
        """Protobuf fields decoded (each becomes a Python object).

        Raises:
            BudgetError: more than `max_fields` in this command.
        """
        self.fields += count
        if self.fields > self.max_fields:
            raise BudgetError(f"{what}: more than {self.max_fields:,} protobuf fields, more than initcli decodes")
        self.tick(what, count)

    def spend_bytes(self, count: int, what: str) -> None:
        """Bytes held by decoded objects (keys, paths, texts).

        Raises:
            BudgetError: more than `max_bytes` in this command.
        """
        self.allocated += count
        if self.allocated > self.max_bytes:
            raise BudgetError(
                f"{what}: decoding it needs more than {self.max_bytes // (1024 * 1024)} MiB, more than initcli allows"
            )

    def spend_entries(self, count: int, what: str) -> None:
        """Entries of a tensor-bundle index.

        Raises:
            BudgetError: more than `max_entries` in this command.
        """
        self.entries += count
        if self.entries > self.max_entries:
            raise BudgetError(f"{what}: more than {self.max_entries:,} index entries, more than initcli reads")
        self.tick(what, count)

    def check_depth(self, depth: int, what: str) -> None:
        """Raise if `depth` exceeds max_depth."""
        if depth > self.max_depth:
            raise BudgetError(f"{what}: nested deeper than {self.max_depth} levels")

    def check_path(self, path: str, what: str) -> None:
        """Raise if one object path is longer than max_path_bytes."""
        if len(path) > self.max_path_bytes:
            raise BudgetError(f"{what}: an object path of more than {self.max_path_bytes:,} characters")

    def check_matches(self, count: int, what: str) -> None:
        """Raise if glob patterns matched more than max_matches files."""
        if count > self.max_matches:
            raise BudgetError(f"{what} matches more than {self.max_matches:,} files, more than initcli reads at once")

    def check_layers(self, count: int, what: str) -> None:
        """Raise if a graph has more than max_layers layers."""
        if count > self.max_layers:
            raise BudgetError(
                f"{what}: {count:,} layers, more than the {self.max_layers:,} initcli builds or propagates"
            )


_ACTIVE: ContextVar[Budget | None] = ContextVar("initcli_budget", default=None)


def active() -> Budget:
    """The command's budget; outside a command, a fresh budget of the default limits (one per call)."""
    budget = _ACTIVE.get()
    if budget is not None:
        return budget
    return Budget(timeout=default_timeout())


def is_active() -> bool:
    """Whether a command has set its budget (`scope`)."""
    return _ACTIVE.get() is not None


@contextlib.contextmanager
def scope(budget: Budget) -> Iterator[Budget]:
    """Make `budget` the active one for the code inside the block."""
    token = _ACTIVE.set(budget)
    try:
        yield budget
    finally:
        _ACTIVE.reset(token)
