"""Made tests/golden/torch_specs.npz once with Keras 3 on torch (CPU): run with torch installed.

    python tests/golden/make_torch_specs.py

For each request of tests/golden/backend_specs.json ({"spec", "seed"}), tests/backend_oracle.py
--spec builds the spec's model with KERAS_BACKEND=torch after keras.utils.set_random_seed(seed);
key `<request index>:<layer>/<weight>` holds the weight's values; `fresh<i>:<layer>/<weight>` the
weights of FRESH_MODELS[i]'s config rebuilt by Keras on torch after set_random_seed(FRESH_SEED)
(`inspect --fresh --backend torch`). tests/test_backends_keras.py
compares `inspect --spec --backend torch`'s prediction with them, so the suite stays exact without torch.
"""

import json
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
FRESH_MODELS = ("examples/models/cnn.keras",)  # a Functional model of 24090 weights (mlp.keras: 235146)
FRESH_SEED = 1


def fresh_requests(models: tuple[str, ...] = FRESH_MODELS) -> list[dict]:
    """The oracle's --fresh requests: each .keras file's own config.json, read from its zip, and FRESH_SEED."""
    return [
        {"config": json.loads(zipfile.ZipFile(HERE.parent.parent / path).read("config.json")), "seed": FRESH_SEED}
        for path in models
    ]


if __name__ == "__main__":
    import torch

    sys.path.insert(0, str(HERE.parent))
    from backend_oracle import array, run  # tests/backend_oracle.py

    assert torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"), "the AVX2 kernel is the one reproduced"
    report = run("torch", json.loads((HERE / "backend_specs.json").read_text()), spec=True)
    arrays = {
        f"{index}:{path}": array(w) for index, weights in enumerate(report["models"]) for path, w in weights.items()
    }
    # --fresh: the example models' configs rebuilt after set_random_seed (FRESH_MODELS, FRESH_SEED)
    for index, weights in enumerate(run("torch", fresh_requests(), spec=True)["models"]):
        for path, w in weights.items():
            arrays[f"fresh{index}:{path}"] = array(w)
    np.savez_compressed(HERE / "torch_specs.npz", **arrays)
    print(f"{len(arrays)} weights, torch {torch.__version__}")
