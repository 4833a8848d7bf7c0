"""`initcli diff` of two ResNet50 files against the numpy script a user would write, in one run.

    python benchmarks/bench_diff.py [--repeat 3] [--workdir DIR]

Saves keras.applications.ResNet50(weights=None) twice (seeds 0 and 1, kept in --workdir between
runs), reads both files once into the page cache, then runs each as a whole process --repeat times
(default 3), interleaved, and reports the best wall time and the largest peak RSS (os.wait4):

- initcli: `initcli diff A B --format json`;
- the script: `keras.models.load_model` on both, then per weight numpy's relative change, max |B-A|,
  means, stds and cosine in float64.

Prints both times, the speed-up (goal: 10x), both peaks, and checks that the two agree on every
weight's relative change to 1e-6. Needs the tensorflow extra.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import sys, keras
keras.utils.set_random_seed(int(sys.argv[2]))
keras.applications.ResNet50(weights=None).save(sys.argv[1])
"""

USER_SCRIPT = """
import json, sys, numpy as np, keras
a = {w.path: w.numpy() for w in keras.models.load_model(sys.argv[1], compile=False).weights}
b = {w.path: w.numpy() for w in keras.models.load_model(sys.argv[2], compile=False).weights}
out = {}
for path, left in a.items():
    x, y = left.astype(np.float64).ravel(), b[path].astype(np.float64).ravel()
    d = y - x
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    out[path] = [float(np.linalg.norm(d) / nx) if nx else None, float(np.abs(d).max()), float(x.mean()),
                 float(x.std()), float(y.mean()), float(y.std()), float(x @ y / (nx * ny)) if nx and ny else None]
json.dump(out, open(sys.argv[3], "w"))
"""


def _run(command: list[str], stdout: int | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB of one process."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=environment, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "initcli-bench-diff")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each, interleaved; the best time counts.")
    arguments = parser.parse_args()
    folder = arguments.workdir
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "resnet50_seed0.keras", folder / "resnet50_seed1.keras"]
    for seed, path in enumerate(files):
        if not path.exists():
            _run([sys.executable, "-c", BUILD, str(path), str(seed)])
    for path in files:  # both commands then read from the page cache, not the disk
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass
    ours_json = folder / "initcli.json"
    script_json = folder / "script.json"
    ours_runs, script_runs = [], []
    for _ in range(arguments.repeat):
        with ours_json.open("wb") as handle:
            ours_runs.append(
                _run(
                    [sys.executable, "-m", "initcli", "diff", str(files[0]), str(files[1]), "--format", "json"],
                    stdout=handle.fileno(),
                )
            )
        script_runs.append(_run([sys.executable, "-c", USER_SCRIPT, str(files[0]), str(files[1]), str(script_json)]))
    ours_time, ours_peak = min(run[0] for run in ours_runs), max(run[1] for run in ours_runs)
    script_time, script_peak = min(run[0] for run in script_runs), max(run[1] for run in script_runs)
    ours = {row["path"]: row["relative_change"] for row in json.loads(ours_json.read_text())["weights"]}
    theirs = {path: values[0] for path, values in json.loads(script_json.read_text()).items()}
    assert ours.keys() == theirs.keys(), "the two disagree on the weights"
    for path, value in theirs.items():
        if value is None or not ours[path]:
            continue
        assert abs(ours[path] - value) <= 1e-6 * abs(value), (path, ours[path], value)
    size = sum(path.stat().st_size for path in files) / 2**20
    print(f"ResNet50 .keras x2 ({size:.0f} MB): {len(ours)} weights, relative changes agree to 1e-6")
    print(f"  initcli diff: {ours_time:6.2f} s, peak {ours_peak:5.0f} MB")
    print(f"  Keras script: {script_time:6.2f} s, peak {script_peak:5.0f} MB")
    print(f"  speed-up: {script_time / ours_time:.1f}x (goal 10x)")


if __name__ == "__main__":
    main()
