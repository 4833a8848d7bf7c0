"""Made tests/golden/torch_normals.npz once with torch (CPU, AVX2/AVX-512 kernel): run with torch installed.

    python tests/golden/make_torch_normals.py

Keys `normal_<seed>_<size>_<dtype>` hold `torch.normal(0.3, 0.05, size=(size,), generator=
torch.Generator().manual_seed(seed), dtype=dtype)`, and `rand_<seed>_<size>_float64` `torch.rand` (sizes up to 40).
tests/test_rng_torch.py compares initcli.rng.torch with them, so the suite stays exact without torch.
"""

from pathlib import Path

import numpy as np
import torch

SEEDS = (0, 2**32 - 1)
SIZES = (*range(1, 41), 63, 64, 65, 1000, 4099)

if __name__ == "__main__":
    assert torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"), "the AVX2 kernel is the one reproduced"
    arrays = {}
    for seed in SEEDS:
        for size in SIZES:
            for dtype in ("float32", "float64"):
                if dtype == "float32" or size < 16:
                    g = torch.Generator().manual_seed(seed)
                    t = torch.normal(0.3, 0.05, size=(size,), generator=g, dtype=getattr(torch, dtype))
                    arrays[f"normal_{seed}_{size}_{dtype}"] = t.numpy()
            if size > 40:
                continue
            g = torch.Generator().manual_seed(seed)
            arrays[f"rand_{seed}_{size}_float64"] = torch.rand(size, generator=g, dtype=torch.float64).numpy()
    np.savez_compressed(Path(__file__).with_name("torch_normals.npz"), **arrays)
