"""`initcli diff` of two ResNet50 files against the numpy script a user would write, in one run.

    python benchmarks/bench_diff.py [--repeat 3] [--workdir DIR]

Saves keras.applications.ResNet50(weights=None) (seed 0) as A and, as B, the same model with every
weight perturbed (w + 0.01 * std(w) * N(0, 1), numpy seed 1: a fine-tune's small step; kept in
--workdir between runs), reads both files once into the page cache, then runs each as a whole
process --repeat times (default 3), interleaved, and reports the best wall time and the largest peak
RSS (os.wait4), with the load average before and after:

- initcli: `initcli diff A B --format json`;
- the script: `keras.models.load_model` on both, then per weight numpy's relative change, max |B-A|,
  means, stds and cosine in float64.

Prints both times, the speed-up (goal: 10x), both peaks, and checks that the two agree on every
weight's seven numbers to 1e-6 relative. Needs the tensorflow extra.
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
import sys, numpy as np, keras
keras.utils.set_random_seed(0)
model = keras.applications.ResNet50(weights=None)
model.save(sys.argv[1])
rng = np.random.default_rng(1)
for variable in model.weights:
    value = variable.numpy()
    variable.assign(value + 0.01 * (value.std() or 1.0) * rng.standard_normal(value.shape).astype(value.dtype))
model.save(sys.argv[2])
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
    files = [folder / "resnet50.keras", folder / "resnet50_perturbed.keras"]
    if not all(path.exists() for path in files):
        _run([sys.executable, "-c", BUILD, str(files[0]), str(files[1])])
    for path in files:  # both commands then read from the page cache, not the disk
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass
    ours_json = folder / "initcli.json"
    script_json = folder / "script.json"
    ours_runs, script_runs = [], []
    load_before = os.getloadavg()
    for _ in range(arguments.repeat):
        with ours_json.open("wb") as handle:
            ours_runs.append(
                _run(
                    [sys.executable, "-m", "initcli", "diff", str(files[0]), str(files[1]), "--format", "json"],
                    stdout=handle.fileno(),
                )
            )
        script_runs.append(_run([sys.executable, "-c", USER_SCRIPT, str(files[0]), str(files[1]), str(script_json)]))
    load_after = os.getloadavg()
    ours_time, ours_peak = min(run[0] for run in ours_runs), max(run[1] for run in ours_runs)
    script_time, script_peak = min(run[0] for run in script_runs), max(run[1] for run in script_runs)
    keys = ("relative_change", "max_abs_diff", "mean_a", "std_a", "mean_b", "std_b", "cosine")
    ours = {row["path"]: [row[key] for key in keys] for row in json.loads(ours_json.read_text())["weights"]}
    theirs = json.loads(script_json.read_text())
    assert ours.keys() == theirs.keys(), "the two disagree on the weights"
    for path, values in theirs.items():
        for key, mine, value in zip(keys, ours[path], values):
            if value is None or mine is None:
                assert mine is None and value is None or not (mine or value), (path, key, mine, value)
                continue
            assert abs(mine - value) <= 1e-6 * abs(value) + 1e-12, (path, key, mine, value)
    size = sum(path.stat().st_size for path in files) / 2**20
    print(f"ResNet50 .keras and a perturbed copy ({size:.0f} MB in all): {len(ours)} weights,")
    print(f"  {len(keys)} numbers each agree to 1e-6 relative")
    print(f"  initcli diff: {ours_time:6.2f} s, peak {ours_peak:5.0f} MB")
    print(f"  Keras script: {script_time:6.2f} s, peak {script_peak:5.0f} MB")
    print(f"  speed-up: {script_time / ours_time:.1f}x (goal 10x); memory {script_peak / ours_peak:.1f}x less")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1-minute)")


if __name__ == "__main__":
    main()
