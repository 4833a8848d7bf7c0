"""How the command line reports failure: one line, the subcommand's usage, a documented exit code."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from initcli.errors import BadInputError, ExitCode, InitcliError, debugging, internal_error_message, out_of_memory

# One ClickException subclass per exit code: Click reads `exit_code` from the class (a ClassVar).
_FAILURES: dict[int, type[click.ClickException]] = {
    int(code): type(f"Failure{int(code)}", (click.ClickException,), {"exit_code": int(code)}) for code in ExitCode
}


def _translated(error: BaseException, ctx: click.Context) -> BaseException:
    """The Click exception (or exit) that reports a domain error from within `ctx`, on one line."""
    from initcli.safety.sanitize import one_line

    if isinstance(error, BadInputError):
        return click.UsageError(one_line(str(error)), ctx)
    if isinstance(error, InitcliError):
        return _FAILURES[int(error.exit_code)](one_line(str(error)))
    if isinstance(error, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        return click.exceptions.Exit(ExitCode.INTERRUPTED)
    if isinstance(error, BrokenPipeError):
        # The reader went away (e.g. `| head`): stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return click.exceptions.Exit(ExitCode.OK)
    if out_of_memory(error):  # the machine, not initcli: say so, exit 1 (also a SystemError a MemoryError caused)
        return click.ClickException("not enough memory")
    if isinstance(error, OSError) and error.strerror:  # a read or write the system refused (EIO, ENOSPC, ...)
        where = f"{error.filename}: " if error.filename else ""
        return click.ClickException(one_line(f"{where}{error.strerror}"))
    return click.ClickException(one_line(internal_error_message(error)))


def refuse_closed_stdout() -> None:
    """Exit 1 with one line on stderr if stdout was closed (`initcli ... >&-`): Python then has no
    sys.stdout at all, and every result would be lost (or end in an AttributeError). A closed stderr
    (`2>&-`) is taken as the wish to see no messages: they go to the null device, the exit code stays."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # the process's stderr from now on, closed at exit
    if sys.stdout is None:
        sys.stderr.write("Error: standard output is closed (>&-): initcli has nowhere to write its results\n")
        sys.stderr.flush()
        raise SystemExit(int(ExitCode.RUNTIME_ERROR))


class InitcliCommand(click.Command):
    """A subcommand whose usage errors show its own usage line, not the group's."""

    def invoke(self, ctx: click.Context) -> Any:
        from initcli.safety.budget import Budget, scope

        try:
            # One budget per command (--timeout / INITCLI_TIMEOUT): every reader, parser and glob spends from it.
            with scope(Budget.from_options(ctx.params.get("timeout"))):
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - last line of defence: never a traceback
            if debugging() and not isinstance(error, (InitcliError, KeyboardInterrupt)):
                raise
            raise _translated(error, ctx) from None


class InitcliGroup(click.Group):
    """The top-level group: its subcommands translate domain errors into one-line messages.

    `lazy_commands` names commands by "module:attribute", imported when they are looked up (run,
    or listed by `--help`): a command that runs does not pay for the others' modules.
    """

    command_class = InitcliCommand

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            import importlib

            module, attribute = self.lazy_commands[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - errors outside any subcommand
            if debugging() and not isinstance(error, (InitcliError, KeyboardInterrupt)):
                raise
            raise _translated(error, ctx) from None
