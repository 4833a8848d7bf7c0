"""Start-up time of the light commands (issue #13: at most 0.15 s) and of inspecting a small model
(issue #25: at most 0.25 s), as whole processes.

    python benchmarks/bench_startup.py [--repeat 15] [--python /work/fresh25/bin/python]

Runs `python -m initcli --version`, `--help`, a small `sample`, `list` and `explain`, `inspect
examples/models/mlp.keras`, and three floors: `python -c pass`, `python -c "import numpy, click"` (what
any numpy + Click CLI pays before its own code runs) and `python -c "import numpy, click, h5py"` (the
same for a CLI that reads HDF5). A baseline in the same run, `inspect` with `import ml_dtypes` first,
is the start-up before issue #25 (ml_dtypes was imported on every inspect, 0.8 s with ml_dtypes 0.7):
the inspect row gives its ratio to it, and its ratio to the numpy + click + h5py baseline (the part
a loaded machine moves least: both are timed in the same rounds). Issue #25 asks for the measurement
in a venv made fresh by `python -m venv DIR && DIR/bin/pip install .` (the newest dependencies);
`--python DIR/bin/python` runs that interpreter on this checkout. The commands are run round-robin,
`--repeat` rounds, so a burst of load on the machine hits every command alike; each row is the best
wall time, beside the median CPU time (user + sys) of its runs, which load moves less (the floors'
CPU exceeds their wall time: numpy starts an OpenBLAS pool, which `initcli.cli.main` limits to one
thread). It prints the seconds, the part above the numpy + Click floor (initcli's own share) and
met / NOT MET against the target, then the load average: other processes on the machine slow every row.

It runs this checkout's initcli (from its root, also set as PYTHONPATH: `python -m` puts the working
directory first on sys.path, so another checkout there would be measured instead) with this interpreter, not
through an installed script or a pyenv shim (a shim adds its own ~50 ms of bash), with bytecode
caching on (PYTHONDONTWRITEBYTECODE is dropped: recompiling every module would add tens of ms).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.15
INSPECT_TARGET_SECONDS = 0.25
ROOT = Path(__file__).resolve().parent.parent
FLOOR = "import numpy, click"
HDF5_FLOOR = "import numpy, click, h5py"
SMALL_MODEL = "examples/models/mlp.keras"
INSPECT = f"initcli inspect {SMALL_MODEL}"
OLD_INSPECT = "the same, importing ml_dtypes first (before #25)"
_OLD = f"import sys, ml_dtypes, runpy; sys.argv = ['initcli', 'inspect', {SMALL_MODEL!r}]; runpy.run_module('initcli')"
COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", ["-c", "pass"]),
    (f'python -c "{FLOOR}"', ["-c", FLOOR]),
    ("initcli --version", ["-m", "initcli", "--version"]),
    ("initcli --help", ["-m", "initcli", "--help"]),
    (
        "initcli sample --init glorot_uniform --shape 3x3 --seed 0",
        ["-m", "initcli", "sample", "--init", "glorot_uniform", "--shape", "3x3", "--seed", "0"],
    ),
    ("initcli list", ["-m", "initcli", "list"]),
    ("initcli explain glorot_uniform --shape 3x3", ["-m", "initcli", "explain", "glorot_uniform", "--shape", "3x3"]),
    (f'python -c "{HDF5_FLOOR}"', ["-c", HDF5_FLOOR]),
    (INSPECT, ["-m", "initcli", "inspect", SMALL_MODEL]),
    (OLD_INSPECT, ["-c", _OLD]),
]
PYTHON = [sys.executable]


CPU: dict[str, list[float]] = {}  # label -> user + sys seconds of each timed run


def run_process(arguments: list[str]) -> float:
    """Wall seconds of one whole `python ARGUMENTS` process (its output discarded); its CPU seconds
    (user + sys, the part load moves least) are kept in CPU under the command's label."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    # As a user's runs after the first: the modules' bytecode is cached (the untimed warm-up writes it).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    process = subprocess.Popen(
        [*PYTHON, *arguments], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"python {' '.join(arguments)} failed: {stderr.decode(errors='replace')}")
    return elapsed


def timed(label: str, arguments: list[str]) -> float:
    """`run_process`, with the CPU seconds of the run (from RUSAGE_CHILDREN) recorded under `label`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = run_process(arguments)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(label, []).append(cpu)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15, help="Rounds; each row is the best of them (default 15).")
    parser.add_argument("--python", default=sys.executable, help="The interpreter to time (default: this one).")
    options = parser.parse_args()
    repeat = options.repeat
    PYTHON[:] = [options.python]
    for _, arguments in COMMANDS:  # warm the page cache and the bytecode caches, untimed
        run_process(arguments)
    best = {label: float("inf") for label, _ in COMMANDS}
    for _ in range(repeat):
        for label, arguments in COMMANDS:
            best[label] = min(best[label], timed(label, arguments))
    floor = best[f'python -c "{FLOOR}"']
    hdf5_floor = best[f'python -c "{HDF5_FLOOR}"']
    print(f"{'command (best of ' + str(repeat) + ')':60} {'seconds':>8} {'cpu med':>8} {'above floor':>11}  target")
    for label, _ in COMMANDS:
        seconds = best[label]
        target = INSPECT_TARGET_SECONDS if label == INSPECT else TARGET_SECONDS
        verdict = (
            ""
            if label.startswith("python") or label == OLD_INSPECT
            else f"{target} s " + ("met" if seconds <= target else "NOT MET")
        )
        if label == INSPECT:
            # The ratio to a baseline run in the same rounds is what a loaded machine does not move much.
            verdict += (
                f", {best[OLD_INSPECT] / seconds:.2f}x faster than before #25, {seconds / hdf5_floor:.2f}x the "
                f"numpy + click + h5py baseline (+{(seconds - hdf5_floor) * 1000:.0f} ms)"
            )
        above = "" if label.startswith("python") else f"{(seconds - floor) * 1000:+8.1f} ms"
        cpu = statistics.median(CPU[label])
        print(f"{label:60} {seconds:8.3f} {cpu:8.3f} {above:>11}  {verdict}")
    one, five, fifteen = os.getloadavg()
    print(f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores ({PYTHON[0]})")


if __name__ == "__main__":
    main()
