"""Run the command line in a new interpreter and see every module it imported (start-up import guards)."""

from __future__ import annotations

import json
import subprocess
import sys


def modules_after(argv: list[str]) -> tuple[int, set[str]]:
    """Run `initcli ARGV` in a new interpreter; return its exit code and the modules the command imported.

    Modules the interpreter already held before initcli was imported are left out: a site's `.pth`
    files run at start-up (CI's Python has one that imports `tempfile` and `random`), and what they
    import is not initcli's doing.
    """
    code = (
        "import json, sys\nbefore = set(sys.modules)\nfrom initcli.cli import cli\n"
        f"try:\n    cli({argv!r}, prog_name='initcli')\n"
        "except SystemExit as stop:\n    code = stop.code\nelse:\n    code = 0\n"
        "print(json.dumps({'exit_code': code, 'modules': sorted(set(sys.modules) - before)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    report = json.loads(out.splitlines()[-1])
    return report["exit_code"], set(report["modules"])
