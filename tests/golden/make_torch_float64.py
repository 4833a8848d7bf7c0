"""Made tests/golden/torch_float64.npz once with torch (CPU) and Keras 3 on torch: run with torch installed.

    python tests/golden/make_torch_float64.py

Keys `normal_<seed>_<size>_<case>` hold `torch.normal(mean, std, size=(size,), generator=
torch.Generator().manual_seed(seed), dtype=torch.float64)` for the (mean, std) of NORMAL_PARAMETERS[case]
(sizes 16 and up: ATen's `normal_fill<double>` with its recomputed tail), and `keras_<i>` what
Keras 3 on torch draws for KERAS_CASES[i] in float64 (through tests/backend_oracle.py).
tests/test_rng_torch.py and tests/test_backends_keras.py compare initcli with them, without torch.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SEEDS = (0, 7, 2**32 - 1)
SIZES = (16, 17, 31, 32, 33, 48, 63, 255, 1000)
NORMAL_PARAMETERS = ((0.0, 1.0), (0.3, 0.05), (-1.7, 3.3))
KERAS_CASES = [
    ("RandomNormal", {"mean": 0.5, "stddev": 0.2, "seed": 3}, [5, 7]),
    ("TruncatedNormal", {"seed": 11}, [4, 5]),
    ("TruncatedNormal", {"mean": -1.0, "stddev": 0.3, "seed": 2**32 - 1}, [3]),
    ("GlorotNormal", {"seed": 0}, [64, 33]),
    ("HeNormal", {"seed": 42}, [3, 3, 4, 8]),
    ("LecunNormal", {"seed": 5}, [17, 1]),
    ("VarianceScaling", {"scale": 0.7, "mode": "fan_out", "distribution": "untruncated_normal", "seed": 9}, [16, 2]),
    ("Orthogonal", {"seed": 3}, [6, 4]),
]

if __name__ == "__main__":
    import torch

    arrays = {}
    for seed in SEEDS:
        for size in SIZES:
            for case, (mean, std) in enumerate(NORMAL_PARAMETERS):
                g = torch.Generator().manual_seed(seed)
                t = torch.normal(mean, std, size=(size,), generator=g, dtype=torch.float64)
                arrays[f"normal_{seed}_{size}_{case}"] = t.numpy()
    cases = [{"class_name": n, "config": c, "shape": s, "dtype": "float64"} for n, c, s in KERAS_CASES]
    environment = {**os.environ, "KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(HERE.parent / "backend_oracle.py")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for i, r in enumerate(json.loads(done.stdout)["results"]):
        arrays[f"keras_{i}"] = np.frombuffer(bytes.fromhex(r["hex"]), r["dtype"]).reshape(r["shape"])
    np.savez_compressed(HERE / "torch_float64.npz", **arrays)
    print(f"{len(arrays)} arrays, torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}")
