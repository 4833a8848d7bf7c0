"""The command line: one thin Click layer over the public API, `initcli.public`.

Owns: the command group and one function per command (`main`), option types and shared options
(`params`), how errors become one line and an exit code (`errors`), and `propagate`'s command
(`propagate`). A command parses its options, calls the API, and hands the report to
`initcli.render`; it computes nothing itself.

May import: everything below it (`initcli.public`, `initcli.api`, `initcli.reports`, `initcli.render`, ...).
Nothing in initcli imports the command line.
"""

from initcli.cli.main import cli, main

__all__ = ["cli", "main"]
