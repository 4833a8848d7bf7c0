"""Benchmark `initcli propagate` on ResNet50 (batch 8, 224x224) against what users run today.

Needs the tensorflow extra. Each case runs as a whole process (imports included), best of --repeat:

- initcli:   `initcli propagate resnet50.keras --batch 8 --format json` (forward pass, every layer's
             statistics, and the static prediction beside them);
- baseline:  TensorFlow import + keras.saving.load_model + one forward pass of the same batch;
- per-layer: the script users write today: one sub-model per layer (`keras.Model(model.input,
             layer.output)`), each called on the batch, then each output's mean and std.

Prints the times and the ratios measured in this run (targets: initcli at most 1.5x the baseline,
at least 10x faster than the per-layer script).

    python benchmarks/bench_propagate.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BASELINE = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
model = keras.saving.load_model(sys.argv[1], compile=False)
x = np.random.default_rng(0).standard_normal((8, 224, 224, 3)).astype("float32")
y = model(x, training=True)
print(float(np.asarray(y).std()))
"""

PER_LAYER = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
model = keras.saving.load_model(sys.argv[1], compile=False)
x = np.random.default_rng(0).standard_normal((8, 224, 224, 3)).astype("float32")
for layer in model.layers[1:]:
    sub = keras.Model(model.inputs, layer.output)
    y = np.asarray(sub(x, training=True))
    print(layer.name, y.mean(), y.std())
"""


def _run(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{done.stderr[-2000:]}")
    return elapsed


def _best(command: list[str], repeat: int) -> float:
    return min(_run(command) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-layer-repeat", type=int, default=1, help="the per-layer script is slow")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory(prefix="bench-propagate-") as scratch:
        model_path = Path(scratch) / "resnet50.keras"
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, keras; keras.utils.set_random_seed(0);"
                "keras.applications.ResNet50(weights=None).save(sys.argv[1])",
                str(model_path),
            ],
            check=True,
            capture_output=True,
        )
        initcli = [sys.executable, "-m", "initcli", "propagate", str(model_path), "--batch", "8", "--format", "json"]
        static = [sys.executable, "-m", "initcli", "propagate", str(model_path), "--static", "--format", "json"]
        baseline = [sys.executable, "-c", BASELINE, str(model_path)]
        per_layer = [sys.executable, "-c", PER_LAYER, str(model_path)]
        times = {
            "initcli propagate (measured + predicted)": _best(initcli, args.repeat),
            "initcli propagate --static (no TensorFlow)": _best(static, args.repeat),
            "baseline: TF import + load + one forward pass": _best(baseline, args.repeat),
            "per-layer sub-model script": _best(per_layer, args.per_layer_repeat),
        }
    for name, seconds in times.items():
        print(f"{name:48s} {seconds:7.2f} s")
    measured = times["initcli propagate (measured + predicted)"]
    print(
        f"initcli / baseline:          {measured / times['baseline: TF import + load + one forward pass']:.2f}x"
        " (target <= 1.5x)"
    )
    print(f"per-layer script / initcli:  {times['per-layer sub-model script'] / measured:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
