"""Made tests/golden/torch_normal_programs.npz once with Keras 3 on torch (CPU): run with torch installed.

    python tests/golden/make_torch_normal_programs.py

Key `case_<i>` holds what Keras 3 on torch draws for CASES[i] (through tests/backend_oracle.py): the
normal families in float32 and float64, fewer than 16 values drawn, multiples of 16, recomputed tails,
truncated normal's shape + (4,) draw. tests/test_backends_explain.py runs `explain --backend torch`'s
printed programs against them, without torch.
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
_FAMILIES = (
    ("RandomNormal", {}),
    ("RandomNormal", {"mean": 0.3, "stddev": 0.05}),
    ("RandomNormal", {"mean": -1.7, "stddev": 3.3}),
    ("TruncatedNormal", {}),
    ("TruncatedNormal", {"mean": -1.0, "stddev": 0.3}),
    ("GlorotNormal", {}),
    ("HeNormal", {}),
    ("LecunNormal", {}),
    ("VarianceScaling", {"scale": 0.7, "mode": "fan_out", "distribution": "untruncated_normal"}),
    ("VarianceScaling", {"scale": 2.5, "mode": "fan_avg", "distribution": "truncated_normal"}),
)
# sizes: below 16 (the double path; truncated: 4 x size below 16), 16, tails, bigger
_SHAPES = ([1], [3], [2, 2], [15], [4, 4], [17], [5, 7], [3, 11], [64, 33], [3, 3, 4, 8], [1000])
_SEEDS = (0, 1, 7, 42, 2**31, 2**32 - 1)
CASES = [
    (name, {**config, "seed": _SEEDS[(i + j) % len(_SEEDS)]}, shape, dtype)
    for i, (name, config) in enumerate(_FAMILIES)
    for j, shape in enumerate(_SHAPES)
    for dtype in ("float32", "float64")
    if (i + j + (dtype == "float64")) % 2 == 0
]

if __name__ == "__main__":
    import torch

    sys.path.insert(0, str(HERE.parent))
    from backend_oracle import array, run  # tests/backend_oracle.py

    cases = [{"class_name": n, "config": c, "shape": s, "dtype": d} for n, c, s, d in CASES]
    results = run("torch", cases)["results"]
    arrays = {f"case_{i}": array(r) for i, r in enumerate(results)}
    np.savez_compressed(HERE / "torch_normal_programs.npz", **arrays)
    print(f"{len(arrays)} arrays, torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}")
