"""Made tests/golden/torch_specs.npz once with Keras 3 on torch (CPU): run with torch installed.

    python tests/golden/make_torch_specs.py

For each request of tests/golden/backend_specs.json ({"spec", "seed"}), tests/backend_oracle.py
--spec builds the spec's model with KERAS_BACKEND=torch after keras.utils.set_random_seed(seed);
key `<request index>:<layer>/<weight>` holds the weight's values. tests/test_backends_keras.py
compares `inspect --spec --backend torch`'s prediction with them, so the suite stays exact without torch.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent

if __name__ == "__main__":
    import torch

    assert torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"), "the AVX2 kernel is the one reproduced"
    environment = {**os.environ, "KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": ""}
    oracle = HERE.parent / "backend_oracle.py"
    requests = (HERE / "backend_specs.json").read_text()
    done = subprocess.run(
        [sys.executable, str(oracle), "--spec"], input=requests, capture_output=True, text=True, env=environment
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["backend"] == "torch"
    arrays = {
        f"{index}:{path}": np.frombuffer(bytes.fromhex(w["hex"]), w["dtype"]).reshape(w["shape"])
        for index, weights in enumerate(report["models"])
        for path, w in weights.items()
    }
    np.savez_compressed(HERE / "torch_specs.npz", **arrays)
    print(f"{len(arrays)} weights from {len(report['models'])} models, torch {torch.__version__}")
