"""Keras 3 itself as the oracle of `--backend jax|torch`: run as `KERAS_BACKEND=B python backend_oracle.py`.

Reads a JSON list of cases from standard input, each {"class_name", "config", "shape", "dtype"}
(the config holds the seed), builds `keras.initializers.<class_name>(**config)`, calls it on the
shape and dtype, and prints one JSON list: per case the values' bytes in hex (or the error's type).
Run in a subprocess by the tests, so that JAX's and torch's threads never enter the test process.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    import keras
    import numpy as np

    out = []
    for case in json.load(sys.stdin):
        initializer = getattr(keras.initializers, case["class_name"])(**case["config"])
        try:
            values = keras.ops.convert_to_numpy(initializer(tuple(case["shape"]), dtype=case["dtype"]))
        except Exception as error:  # noqa: BLE001 - the oracle reports what Keras refused
            out.append({"error": type(error).__name__})
            continue
        values = np.ascontiguousarray(values)
        out.append({"dtype": str(values.dtype), "shape": list(values.shape), "hex": values.tobytes().hex()})
    json.dump({"backend": keras.backend.backend(), "results": out}, sys.stdout)


if __name__ == "__main__":
    main()
