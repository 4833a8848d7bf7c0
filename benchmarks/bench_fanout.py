"""What the fan-out (forked processes for large draws and for inspect) is worth: whole processes, with and without.

    python benchmarks/bench_fanout.py [--repeat 5] [--load N] MODEL.keras ...

Runs `initcli sample --init he_normal|glorot_uniform --seed 0` at 3x3x512x512 and 4096x4096, and
`initcli inspect MODEL --format json` for each MODEL given (bench_inspect.py --workdir DIR keeps the
models it builds), each as it runs by default and with `INITCLI_WORKERS=1` (one process), the two
interleaved, and prints the best and median wall time of each. `--load N` starts N busy processes
(`while True: pass`) first and stops them at the end. The load average is printed: on a shared
machine other jobs slow both sides, not always alike, so compare within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [
    ["sample", "--init", init, "--shape", shape, "--seed", "0"]
    for shape in ("3x3x512x512", "4096x4096")
    for init in ("he_normal", "glorot_uniform")
]
VARIANTS = {"fan-out": {}, "one process": {"INITCLI_WORKERS": "1"}}


def run(argv: list[str], extra: dict[str, str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "initcli", *argv], stdout=subprocess.DEVNULL, env=env, check=False)
    if done.returncode not in (0, 3):
        raise SystemExit(f"failed: initcli {' '.join(argv)}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--load", type=int, default=0, metavar="N", help="run N busy processes beside it")
    parser.add_argument("models", nargs="*", type=Path)
    args = parser.parse_args()
    commands = SAMPLES + [["inspect", str(model), "--format", "json"] for model in args.models]
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        time.sleep(1.0 if args.load else 0.0)
        print(f"{len(os.sched_getaffinity(0))} CPUs; {args.load} busy processes; load average {os.getloadavg()[0]:.2f}")
        times: dict[tuple[int, str], list[float]] = {}
        for _ in range(args.repeat):
            for index, command in enumerate(commands):
                for name, extra in VARIANTS.items():
                    times.setdefault((index, name), []).append(run(command, extra))
        for index, command in enumerate(commands):
            cells = [
                f"{name} {min(times[index, name]):.3f} s (median {statistics.median(times[index, name]):.3f})"
                for name in VARIANTS
            ]
            print(f"{' '.join(command):64} " + "  ".join(cells))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
