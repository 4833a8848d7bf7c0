"""Keras 3 itself as the oracle of `--backend jax|torch`: run as `KERAS_BACKEND=B python backend_oracle.py`.

With `--spec`, reads a list of {"spec", "seed"} and prints, per request, every weight of the spec's
model built after `keras.utils.set_random_seed(seed)` (see `spec_weights`), or for a {"config", "seed"}
request the saved model's config rebuilt (see `fresh_weights`). Otherwise reads a JSON
list of cases from standard input, each {"class_name", "config", "shape", "dtype"} (the config holds
the seed; an optional "jax_threefry_partitionable" sets JAX's mode), builds
`keras.initializers.<class_name>(**config)`, calls it on the shape and dtype, and prints one JSON
list: per case the values' bytes in hex (or the error's type).
Run in a subprocess by the tests, so that JAX's and torch's threads never enter the test process:
`run` starts it and `array` decodes what it prints (for the tests and the golden-vector scripts).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def run(backend: str, payload: list[dict], *, spec: bool = False) -> dict:
    """This oracle's report on `payload`, from Keras 3 on `backend` (CPU) in a subprocess."""
    import subprocess

    environment = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, __file__, *(["--spec"] if spec else [])],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["backend"] == backend, report["backend"]
    return report


def array(entry: dict, dtype: Any = None, *, reduced_as_bits: bool = False) -> Any:
    """The values of a reported case or weight ({"hex", "dtype", "shape"}), as `dtype` if given;
    `reduced_as_bits`: float16/bfloat16 as their uint16 bits."""
    import numpy as np

    if dtype is None:
        bits = reduced_as_bits and entry["dtype"] in ("float16", "bfloat16")
        dtype = "uint16" if bits else entry["dtype"]
    return np.frombuffer(bytes.fromhex(entry["hex"]), dtype).reshape(tuple(entry["shape"]))


def spec_weights(request: dict) -> dict:
    """{"spec": a spec document, "seed": S}: keras.utils.set_random_seed(S), then the spec's layers
    built in order and put in a Sequential after keras.Input, as initcli's spec builder does; every
    weight's values by `layer/weight`."""
    import keras

    keras.backend.clear_session()  # layer names restart, as in a fresh process
    keras.utils.set_random_seed(request["seed"])
    layers = []
    for entry in request["spec"]["layers"]:
        ((class_name, arguments),) = entry.items()
        layers.append(getattr(keras.layers, class_name)(**(arguments or {})))
    model = keras.Sequential([keras.Input(tuple(request["spec"]["input_shape"])), *layers])
    return _weights(model)


def _weights(model) -> dict:
    """Every weight of `model` by `layer/weight`: its dtype, shape and bytes (hex)."""
    import keras
    import numpy as np

    out = {}
    for layer in model.layers:
        for weight in layer.weights:
            values = np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value))
            out[f"{layer.name}/{weight.name}"] = {
                "dtype": str(values.dtype),
                "shape": list(values.shape),
                "hex": values.tobytes().hex(),
            }
    return out


def fresh_weights(request: dict) -> dict:
    """{"config": a saved model's Keras 3 config, "seed": S}: set_random_seed(S), the model rebuilt from
    its config as initcli's --fresh does (deserialize_keras_object, safe mode); weights by `layer/weight`."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(request["seed"])
    model = keras.saving.deserialize_keras_object(request["config"], safe_mode=True)
    return _weights(model)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    if sys.argv[1:] == ["--spec"]:
        models = [spec_weights(r) if "spec" in r else fresh_weights(r) for r in json.load(sys.stdin)]
        json.dump({"backend": keras.backend.backend(), "models": models}, sys.stdout)
        return
    out = []
    for case in json.load(sys.stdin):
        if "jax_threefry_partitionable" in case:  # JAX's mode for this case (jax only)
            import jax

            jax.config.update("jax_threefry_partitionable", case["jax_threefry_partitionable"])
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
