"""Exit codes and the domain exceptions the command line translates into them."""

from __future__ import annotations

import os
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README."""

    OK = 0
    RUNTIME_ERROR = 1  # a file that cannot be read, a model that cannot be built, ...
    USAGE_ERROR = 2  # a bad option or argument (Click's own code for usage errors)
    CHECK_FAILED = 3  # `initcli check` found a problem
    INTERRUPTED = 130  # Ctrl-C


class InitcliError(Exception):
    """An error to report to the user in one line, with an exit code."""

    exit_code = ExitCode.RUNTIME_ERROR


class BadInputError(InitcliError):
    """Arguments that no run could succeed with: reported as a usage error (exit 2)."""

    exit_code = ExitCode.USAGE_ERROR


class MissingDependencyError(InitcliError):
    """An optional dependency (TensorFlow/Keras) is needed for this request but absent."""


class WeightTooLargeError(InitcliError):
    """A weight asked for whole that is over the per-weight budget (readers stream it in chunks
    instead): `weight` names it, `nbytes` its size, `budget` the limit (exit 1)."""

    def __init__(self, message: str, *, weight: str, nbytes: int, budget: int) -> None:
        super().__init__(message)
        self.weight, self.nbytes, self.budget = weight, nbytes, budget


def debugging() -> bool:
    """INITCLI_DEBUG is set: an internal error is raised with its traceback instead of summarized."""
    return bool(os.environ.get("INITCLI_DEBUG"))


def out_of_memory(error: BaseException) -> bool:
    """Whether `error` is memory running out: a MemoryError, or an error a MemoryError caused.

    C code that meets a MemoryError under an address-space limit can surface it as a SystemError
    ("... returned a result with an exception set"), with the MemoryError as its cause or context.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, MemoryError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def internal_error_message(error: BaseException) -> str:
    """What the user is told of an error initcli did not anticipate (a bug of ours), before one_line."""
    return f"internal error: {type(error).__name__}: {error} (set INITCLI_DEBUG=1 for a traceback)"
