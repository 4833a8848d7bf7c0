"""`initcli sample --backend jax|torch` against the framework itself, whole processes and in-process.

    python benchmarks/bench_backends.py [--repeat 3] [--shape 784x256 ...]

Whole processes: `initcli sample --init glorot_normal --shape S --seed 0 --backend B --format json`
against the one-liner a user would run (`KERAS_BACKEND=B python -c "import keras; ..."`) and against
the bare framework (`python -c "import jax; jax.random.truncated_normal(...)"`, `import torch; ...`),
best of `--repeat`, and the ratio initcli / framework. In-process: initcli's draw
(`initcli.initializers.backends` through `analysis.sampling.draw_whole`) against the framework's
own call for the same values (jax.random / torch.normal, best of 7 after a warm-up), in a child
process per backend so that the frameworks' threads stay apart. Prints the load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK = {
    "jax": "import jax; k = jax.numpy.array([0, 0], dtype='uint32'); "
    "jax.random.truncated_normal(k, -2.0, 2.0, {shape!r}).block_until_ready()",
    "torch": "import torch; torch.normal(0.0, 1.0, size={shape4!r}, generator=torch.Generator().manual_seed(0))",
}
KERAS = "import keras; keras.initializers.GlorotNormal(seed=0)({shape!r})"
IN_PROCESS = """
import json, sys, time
from initcli.analysis.sampling import draw_whole
from initcli.initializers import resolve
backend, shape = sys.argv[1], tuple(json.loads(sys.argv[2]))
spec = resolve("glorot_normal")
def best(run, n=7):
    run(); times = []
    for _ in range(n):
        start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
    return min(times)
ours = best(lambda: draw_whole(spec, shape, "float32", 0, backend))
if backend == "jax":
    import jax
    key = jax.numpy.array([0, 0], dtype="uint32")
    theirs = best(lambda: (jax.random.truncated_normal(key, -2.0, 2.0, shape) * 0.1).block_until_ready())
else:
    import torch
    theirs = best(lambda: torch.normal(0.0, 1.0, size=shape + (4,), generator=torch.Generator().manual_seed(0)))
print(json.dumps([ours, theirs]))
"""


def _wall(command: list[str], environment: dict[str, str], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, env=environment, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shape", action="append", help="e.g. 784x256 (repeatable)")
    options = parser.parse_args()
    shapes = [tuple(int(d) for d in s.split("x")) for s in (options.shape or ["784x256", "3x3x256x256"])]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    print(f"load average {os.getloadavg()[0]:.2f}")
    for backend in ("jax", "torch"):
        for shape in shapes:
            text = "x".join(map(str, shape))
            initcli = [sys.executable, "-m", "initcli", "sample", "--init", "glorot_normal", "--shape", text]
            initcli += ["--seed", "0", "--backend", backend, "--format", "json"]
            ours = _wall(initcli, environment, options.repeat)
            bare = FRAMEWORK[backend].format(shape=shape, shape4=(*shape, 4))
            framework = _wall([sys.executable, "-c", bare], environment, options.repeat)
            keras_env = {**environment, "KERAS_BACKEND": backend}
            keras = _wall([sys.executable, "-c", KERAS.format(shape=shape)], keras_env, options.repeat)
            done = subprocess.run(
                [sys.executable, "-c", IN_PROCESS, backend, json.dumps(list(shape))],
                env=environment,
                check=True,
                capture_output=True,
                text=True,
            )
            inside, theirs = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{backend:5} {text:12} whole process: initcli {ours:.2f} s, bare {backend} {framework:.2f} s "
                f"({ours / framework:.2f}x), Keras {keras:.2f} s ({ours / keras:.2f}x); "
                f"in-process: initcli {inside * 1e3:.1f} ms, {backend} {theirs * 1e3:.1f} ms ({inside / theirs:.2f}x)"
            )


if __name__ == "__main__":
    main()
