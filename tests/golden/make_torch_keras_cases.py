"""Made tests/golden/torch_keras_cases.npz once with torch (CPU) and Keras 3 on torch: run with torch installed.

    python tests/golden/make_torch_keras_cases.py

Keys `normal_<seed>_<size>_<case>` hold `torch.normal(mean, std, size=(size,), generator=
torch.Generator().manual_seed(seed), dtype=torch.float64)` for the (mean, std) of NORMAL_PARAMETERS[case]
(sizes 16 and up: ATen's `normal_fill<double>` with its recomputed tail), `keras_<i>` what
Keras 3 on torch draws for KERAS_CASES[i] in float64, and `uniform_<i>` for UNIFORM_CASES[i] (dtype
included; the oracle of `explain --backend torch`'s printed program) and `reduced_<i>` for
REDUCED_CASES[i] (float16/bfloat16, as uint16 bits), through tests/backend_oracle.py.
tests/test_rng_torch.py, test_backends_keras.py and test_backends_explain.py compare initcli with
them, without torch.
"""

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
# float16/bfloat16 (saved as their uint16 bits): torch.rand's rounding, the float32 normal kernel
# rounded with its own tail, the small-size double path, Keras's scale-and-shift in the dtype.
REDUCED_CASES = [
    (name, {**config, "seed": seed}, shape, dtype)
    for dtype in ("float16", "bfloat16")
    for name, config, shape in (
        ("RandomUniform", {}, [1000]),
        ("RandomUniform", {"minval": 1e-3, "maxval": 7.3}, [17, 1]),
        ("RandomNormal", {"mean": 0.3, "stddev": 0.5}, [5]),
        ("RandomNormal", {}, [1000]),
        ("TruncatedNormal", {"mean": -1.0, "stddev": 0.3}, [3, 5]),
        ("GlorotUniform", {}, [64, 33]),
        ("HeNormal", {}, [17, 1]),
        ("VarianceScaling", {"scale": 0.7, "mode": "fan_out", "distribution": "untruncated_normal"}, [4, 4]),
    )
    for seed in (7, 2**32 - 1)
]
UNIFORM_CASES = [
    ("HeUniform", {"seed": 5}, [3, 4], "float32"),
    ("GlorotUniform", {"seed": 2**32 - 1}, [64, 33], "float32"),
    ("RandomUniform", {"minval": -0.3, "maxval": 0.7, "seed": 11}, [7], "float64"),
    ("RandomUniform", {"minval": 1e-30, "maxval": 1e30, "seed": 3}, [1001], "float32"),
    ("VarianceScaling", {"scale": 2.5, "mode": "fan_avg", "distribution": "uniform", "seed": 9}, [17, 4, 3], "float64"),
    ("LecunUniform", {"seed": 0}, [1, 1], "float32"),
]

if __name__ == "__main__":
    import torch

    sys.path.insert(0, str(HERE.parent))
    from backend_oracle import array, run  # tests/backend_oracle.py

    arrays = {}
    for seed in SEEDS:
        for size in SIZES:
            for case, (mean, std) in enumerate(NORMAL_PARAMETERS):
                g = torch.Generator().manual_seed(seed)
                t = torch.normal(mean, std, size=(size,), generator=g, dtype=torch.float64)
                arrays[f"normal_{seed}_{size}_{case}"] = t.numpy()
    cases = [{"class_name": n, "config": c, "shape": s, "dtype": "float64"} for n, c, s in KERAS_CASES]
    cases += [{"class_name": n, "config": c, "shape": s, "dtype": d} for n, c, s, d in UNIFORM_CASES]
    cases += [{"class_name": n, "config": c, "shape": s, "dtype": d} for n, c, s, d in REDUCED_CASES]
    results = run("torch", cases)["results"]
    names = [f"keras_{i}" for i in range(len(KERAS_CASES))] + [f"uniform_{i}" for i in range(len(UNIFORM_CASES))]
    names += [f"reduced_{i}" for i in range(len(REDUCED_CASES))]
    for name, r in zip(names, results, strict=True):
        arrays[name] = array(r, reduced_as_bits=True)
    np.savez_compressed(HERE / "torch_keras_cases.npz", **arrays)
    print(f"{len(arrays)} arrays, torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}")
