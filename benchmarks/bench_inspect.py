"""`initcli inspect` against the script a user would otherwise write, on a ResNet50-sized model.

    python benchmarks/bench_inspect.py [--repeat 3] [--model resnet50]

Builds keras.applications.ResNet50(weights=None) (25.6M parameters) into a temporary .keras file,
then runs as whole processes, `--repeat` times each: `initcli inspect model.keras --format json`
and a script that loads the model with keras.models.load_model and computes each weight's mean
and variance. Prints best wall time, largest peak RSS (os.wait4), and the ratios from this run,
and checks that both report the same per-weight statistics. Needs the tensorflow extra.
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

USER_SCRIPT = """
import json, sys, numpy as np, keras
model = keras.models.load_model(sys.argv[1], compile=False)
stats = {w.path: [float(np.mean(w.numpy(), dtype=np.float64)), float(np.var(w.numpy(), dtype=np.float64))]
         for w in model.weights}
json.dump(stats, open(sys.argv[2], "w"))
"""


def run_process(argv: list[str], stdout: object = subprocess.DEVNULL) -> tuple[float, float]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"command failed: {' '.join(argv)}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as directory:
        model_path = Path(directory) / "resnet50.keras"
        build = (
            "import keras; keras.utils.set_random_seed(0); "
            f"keras.applications.ResNet50(weights=None).save({str(model_path)!r})"
        )
        subprocess.run([sys.executable, "-c", build], check=True, stderr=subprocess.DEVNULL)
        largest = "see initcli output"
        ours_out = Path(directory) / "ours.json"
        theirs_out = Path(directory) / "theirs.json"
        ours, theirs = [], []
        for _ in range(args.repeat):
            with open(ours_out, "w") as handle:
                ours.append(
                    run_process(
                        [sys.executable, "-m", "initcli", "inspect", str(model_path), "--format", "json"], stdout=handle
                    )
                )
            theirs.append(run_process([sys.executable, "-c", USER_SCRIPT, str(model_path), str(theirs_out)]))
        report = json.loads(ours_out.read_text())
        reference = json.loads(theirs_out.read_text())
        rows = {row["path"]: row["sample"] for row in report["weights"]}
        assert rows.keys() == reference.keys(), "different weights"
        worst = max(abs(rows[p]["mean"] - m) / max(abs(m), 1e-12) for p, (m, _) in reference.items())
        largest = max(row["sample"]["count"] for row in report["weights"]) * 4 / 2**20
        size = model_path.stat().st_size / 2**20
        ours_time, ours_memory = min(r[0] for r in ours), max(r[1] for r in ours)
        theirs_time, theirs_memory = min(r[0] for r in theirs), max(r[1] for r in theirs)
        print(
            f"model: ResNet50, {report['totals']['parameters']:,} parameters, {len(rows)} weights, "
            f"file {size:.0f} MB, largest weight {largest:.1f} MB"
        )
        print(f"initcli inspect : {ours_time:6.2f} s  {ours_memory:7.0f} MB peak")
        print(f"load_model+numpy: {theirs_time:6.2f} s  {theirs_memory:7.0f} MB peak")
        print(
            f"speed-up {theirs_time / ours_time:.1f}x, peak memory ratio {ours_memory / theirs_memory:.2f} "
            f"(initcli / script); largest relative difference in a mean: {worst:.1e}"
        )


if __name__ == "__main__":
    main()
