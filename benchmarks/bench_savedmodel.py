"""`initcli inspect` on a SavedModel directory against the script a user would write with TensorFlow.

    python benchmarks/bench_savedmodel.py [--repeat 3]

Saves tf_keras.applications.ResNet50(weights=None) (25.6M parameters) with `model.save(dir)` (the
TF SavedModel format, the default of TF 2.0-2.12), then runs as whole processes, `--repeat` times
each: `initcli inspect DIR --format json` (no TensorFlow: the tensor bundle, object graph and
keras_metadata.pb read by hand, every checksum verified) and a script that loads the model with
tf_keras.models.load_model and computes each weight's mean and variance. Prints best wall time,
best CPU time (user + system over all threads: less disturbed than wall time on a busy machine),
largest peak RSS (os.wait4), the ratios from this run (targets: at least 8x faster, at most 1/3 of
the memory) and the load average, and checks that both report the same weights with the same
statistics.
Needs TensorFlow and tf_keras.
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

# This checkout's initcli is measured, whatever is installed (also on PYTHONPATH for the processes run).
ROOT = Path(__file__).resolve().parent.parent

USER_SCRIPT = """
import json, sys, numpy as np, tf_keras
model = tf_keras.models.load_model(sys.argv[1], compile=False)
stats = {w.name.removesuffix(":0"): [float(np.mean(w.numpy(), dtype=np.float64)),
                                     float(np.var(w.numpy(), dtype=np.float64))]
         for w in model.weights}
json.dump(stats, open(sys.argv[2], "w"))
"""

BUILD = """
import sys, tf_keras
tf_keras.utils.set_random_seed(0)
tf_keras.applications.ResNet50(weights=None).save(sys.argv[1])
"""


def run_process(argv: list[str], stdout: object = subprocess.DEVNULL) -> tuple[float, float, float]:
    """Wall time, CPU time (user + system, all threads) and peak RSS (MB) of one whole process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"command failed: {' '.join(argv)}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as directory:
        model_dir = Path(directory) / "resnet50"
        subprocess.run([sys.executable, "-c", BUILD, str(model_dir)], check=True, stderr=subprocess.DEVNULL)
        ours_out = Path(directory) / "ours.json"
        theirs_out = Path(directory) / "theirs.json"
        ours, theirs = [], []
        for _ in range(args.repeat):
            with open(ours_out, "w") as handle:
                command = [sys.executable, "-m", "initcli", "inspect", str(model_dir), "--format", "json"]
                ours.append(run_process(command, stdout=handle))
            theirs.append(run_process([sys.executable, "-c", USER_SCRIPT, str(model_dir), str(theirs_out)]))
        report = json.loads(ours_out.read_text())
        reference = json.loads(theirs_out.read_text())
        rows = {row["path"]: row["sample"] for row in report["weights"]}
        assert sorted(rows) == sorted(reference), "different weights"
        worst = max(abs(rows[p]["mean"] - m) / max(abs(m), 1e-12) for p, (m, _) in reference.items())
        worst_var = max(abs(rows[p]["var"] - v) / max(abs(v), 1e-12) for p, (_, v) in reference.items())
        size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()) / 2**20
        ours_memory = max(r[2] for r in ours)
        ours_time, ours_cpu = min(r[0] for r in ours), min(r[1] for r in ours)
        theirs_time, theirs_cpu = min(r[0] for r in theirs), min(r[1] for r in theirs)
        theirs_memory = max(r[2] for r in theirs)
        print(
            f"model: ResNet50 SavedModel, {report['totals']['parameters']:,} parameters, {len(rows)} weights, "
            f"directory {size:.0f} MB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        for label, wall, cpu, memory in (
            ("initcli inspect DIR      ", ours_time, ours_cpu, ours_memory),
            ("tf_keras load_model+numpy", theirs_time, theirs_cpu, theirs_memory),
        ):
            print(f"{label}: {wall:6.2f} s wall {cpu:6.2f} s CPU {memory:7.0f} MB peak")
        print(
            f"speed-up {theirs_time / ours_time:.1f}x wall, {theirs_cpu / ours_cpu:.1f}x CPU (target >= 8); "
            f"peak memory ratio {ours_memory / theirs_memory:.2f} (target <= 0.33); largest relative "
            f"difference: mean {worst:.1e}, variance {worst_var:.1e}"
        )


if __name__ == "__main__":
    main()
