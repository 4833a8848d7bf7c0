"""Record what Keras and TensorFlow draw, once, so the core suite checks bit-exactness without them.

Run with the tensorflow extra installed (it writes `tests/golden/vectors.npz`, about 45 KB):

    python tests/golden/make_golden.py

Nothing here calls initcli: every number comes from Keras 3 (`keras.initializers`, its
`compute_fans`), TensorFlow (`tf.random.stateless_*`) or, for Philox, the published Random123
known-answer file. The file records the versions that made it. `tests/test_golden.py` compares
initcli's numpy engine against it, and its TensorFlow-marked test regenerates some cases in-process
with the functions below and asserts that the checked-in file still equals what Keras gives.

Values are stored as bit patterns (uint16 for float16/bfloat16, uint32 for float32, uint64 for
float64), concatenated into one array per width; `meta` (JSON) says which slice belongs to which
draw. Orthogonal cannot be bit-exact (LAPACK's QR here, Eigen's in TensorFlow): its cases carry a
tolerance per dtype, and the test compares values within it. A draw larger than 48 values keeps only the flat
positions `positions(size)` gives (all of the first 8, the last 4 and about 12 spread between): a
slice of a bit-exact draw is still bit-exact, and the file stays small.

This module imports neither TensorFlow nor initcli at import time: the tests import its case lists.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN_PATH = Path(__file__).resolve().parent / "vectors.npz"

SEEDS = (0, 1, 1234, 2**31 - 1, 2**31, -5, 2**40 + 7)
DTYPES = ("float16", "bfloat16", "float32", "float64")
# (5, 7) is 9 truncated-normal groups per seed: some group needs a second Philox block (the
# script asserts it from TensorFlow's normal stream); (3, 3, 4, 8) is a conv kernel (fans 36, 72).
SHAPES: tuple[tuple[int, ...], ...] = ((), (3,), (2, 2), (5, 7), (3, 3, 4, 8))
# One seed for the initializers whose stream is one of the three unit draws above, rescaled.
FAMILY_SEED = 1234
FULL_LIMIT = 48
ORTHOGONAL_TOLERANCE = {"float64": 1e-12, "float32": 2e-5, "float16": 5e-2}
BIT_WIDTH = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}

# Initializers drawn at every seed: each exercises one of TensorFlow's unit draws.
SEED_SWEEP: tuple[dict[str, Any], ...] = (
    {"class_name": "RandomUniform", "config": {}},
    {"class_name": "RandomNormal", "config": {}},
    {"class_name": "TruncatedNormal", "config": {}},
)
_VS_COMBOS = tuple(
    {"class_name": "VarianceScaling", "config": {"scale": 1.7, "mode": mode, "distribution": distribution}}
    for mode in ("fan_in", "fan_out", "fan_avg")
    for distribution in ("truncated_normal", "untruncated_normal", "uniform")
)
# Every other built-in, with parameters away from their defaults where they have any, at FAMILY_SEED.
FAMILY: tuple[dict[str, Any], ...] = (
    {"class_name": "RandomUniform", "config": {"minval": -0.3, "maxval": 0.7}},
    {"class_name": "RandomNormal", "config": {"mean": 0.3, "stddev": 1.7}},
    {"class_name": "TruncatedNormal", "config": {"mean": -1.0, "stddev": 0.1}},
    *_VS_COMBOS,
    {"class_name": "VarianceScaling", "config": {"scale": 0.3, "mode": "fan_out", "distribution": "normal"}},
    {"class_name": "GlorotUniform", "config": {}},
    {"class_name": "GlorotNormal", "config": {}},
    {"class_name": "HeUniform", "config": {}},
    {"class_name": "HeNormal", "config": {}},
    {"class_name": "LecunUniform", "config": {}},
    {"class_name": "LecunNormal", "config": {}},
    {"class_name": "Orthogonal", "config": {}},
    {"class_name": "Orthogonal", "config": {"gain": 1.5}},
    {"class_name": "Identity", "config": {}},
    {"class_name": "Identity", "config": {"gain": 0.5}},
    {"class_name": "Constant", "config": {"value": 0.1}},
    {"class_name": "Zeros", "config": {}},
    {"class_name": "Ones", "config": {}},
)
# EinsumDense-style axes on the conv-shaped kernel only (they do not fit the smaller shapes).
AXES_CASES: tuple[dict[str, Any], ...] = (
    {"class_name": "GlorotUniform", "config": {"input_axes": [0, 1], "output_axes": [3]}},
    {"class_name": "HeNormal", "config": {"input_axes": [2], "output_axes": [0, 3]}},
)
ORTHOGONAL_SEEDS = (0, 2**31, -5)
UNSEEDED = ("Identity", "Constant", "Zeros", "Ones")

# Keras's compute_fans on dense, conv, transpose, depthwise, attention-like and recurrent shapes.
FAN_CASES: tuple[dict[str, Any], ...] = (
    {"what": "scalar", "shape": []},
    {"what": "bias", "shape": [7]},
    {"what": "dense", "shape": [784, 256]},
    {"what": "dense", "shape": [3, 5]},
    {"what": "conv1d", "shape": [3, 64, 128]},
    {"what": "conv2d", "shape": [3, 3, 64, 128]},
    {"what": "conv2d (3,3,4,8)", "shape": [3, 3, 4, 8]},
    {"what": "conv3d", "shape": [3, 3, 3, 16, 32]},
    {"what": "conv2d_transpose (k, k, filters, in)", "shape": [2, 2, 16, 64]},
    {"what": "depthwise (k, k, in, multiplier)", "shape": [3, 3, 32, 1]},
    {"what": "lstm kernel (in, 4 units)", "shape": [32, 64]},
    {"what": "conv 1x1x1", "shape": [1, 1, 1]},
    {"what": "odd rank 3", "shape": [4, 1, 9]},
    {"what": "attention query (in, heads, key_dim)", "shape": [32, 4, 8], "input_axes": [0], "output_axes": [1, 2]},
    {"what": "attention output (heads, key_dim, out)", "shape": [4, 8, 32], "input_axes": [0, 1], "output_axes": [2]},
    {"what": "einsum", "shape": [3, 5, 7], "input_axes": [1], "output_axes": [0, 2]},
    {"what": "einsum", "shape": [2, 4, 6, 8], "input_axes": [0, 1], "output_axes": [2]},
    {"what": "einsum negative axes", "shape": [2, 4, 6, 8], "input_axes": [-1], "output_axes": [-3, -2]},
)

# TensorFlow's own stateless ops: the seed pairs, and the element ranges recorded.
RAW_SEEDS = ((0, 0), (1, 0), (1234, 0), (2147483645, 0), (17, 2147483645), (-5, 3))
RAW_OPS = ("uniform", "normal", "truncated_normal")
RAW_RANGE = (0, 11)
# Group 178388 of seed (0, 0) keeps fewer than 4 of its first 8 candidates: a third Philox block.
THIRD_BLOCK = {
    "op": "truncated_normal",
    "seed": [0, 0],
    "dtype": "float32",
    "size": 714_000,
    "range": [713_544, 713_560],
}

# Random123 1.14, tests/kat_vectors (D. E. Shaw Research, https://github.com/DEShawResearch/random123),
# the three "philox4x32 10" lines: counter (4 words), key (2 words), expected output (4 words). From
# Salmon, Moraes, Dror, Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011.
PHILOX_KAT: tuple[dict[str, list[str]], ...] = (
    {
        "counter": ["00000000", "00000000", "00000000", "00000000"],
        "key": ["00000000", "00000000"],
        "output": ["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"],
    },
    {
        "counter": ["ffffffff", "ffffffff", "ffffffff", "ffffffff"],
        "key": ["ffffffff", "ffffffff"],
        "output": ["408f276d", "41c83b0e", "a20bc7c6", "6d5451fd"],
    },
    {
        "counter": ["243f6a88", "85a308d3", "13198a2e", "03707344"],
        "key": ["a4093822", "299f31d0"],
        "output": ["d16cfe09", "94fdcceb", "5001e420", "24126ea1"],
    },
)


def positions(size: int) -> np.ndarray:
    """The flat indices recorded for a draw of `size` values (all of them up to FULL_LIMIT)."""
    if size <= FULL_LIMIT:
        return np.arange(size)
    picked = set(range(8)) | set(range(size - 4, size)) | set(range(0, size, -(-size // 12)))
    return np.array(sorted(picked))


def to_bits(values: np.ndarray) -> np.ndarray:
    """The bit patterns of a float array, as unsigned integers of the same width."""
    values = np.ascontiguousarray(values)
    return values.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[values.dtype.itemsize]).reshape(-1)


def draw_cases() -> Iterator[dict[str, Any]]:
    """Every (initializer, dtype, seed, shapes) the file records, in file order."""
    for initializer in SEED_SWEEP:
        for dtype in DTYPES:
            for seed in SEEDS:
                yield {"initializer": initializer, "dtype": dtype, "seed": seed, "shapes": SHAPES}
    for initializer in FAMILY:
        name = initializer["class_name"]
        seeds: tuple[int | None, ...] = (
            ORTHOGONAL_SEEDS if name == "Orthogonal" else (None,) if name in UNSEEDED else (FAMILY_SEED,)
        )
        for dtype in DTYPES:
            for maybe_seed in seeds:
                yield {"initializer": initializer, "dtype": dtype, "seed": maybe_seed, "shapes": SHAPES}
    for initializer in AXES_CASES:
        for dtype in DTYPES:
            yield {"initializer": initializer, "dtype": dtype, "seed": FAMILY_SEED, "shapes": ((3, 3, 4, 8),)}


def case_id(case: dict[str, Any]) -> str:
    initializer = case["initializer"]
    params = ",".join(f"{k}={v}" for k, v in initializer["config"].items()).replace(" ", "")
    return f"{initializer['class_name']}({params})-{case['dtype']}-seed{case['seed']}"


# --- Keras / TensorFlow side (imported lazily) -----------------------------------------------------


def import_keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras  # type: ignore[import-untyped]

    assert keras.backend.backend() == "tensorflow", "the golden vectors are TensorFlow-backend draws"
    return keras


def keras_draw(keras: Any, case: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray | str:
    """What Keras draws for one case and shape, or the one-line reason Keras refuses."""
    initializer = case["initializer"]
    config = dict(initializer["config"])
    if case["seed"] is not None:
        config["seed"] = case["seed"]
    instance = getattr(keras.initializers, initializer["class_name"])(**config)
    try:
        return np.asarray(instance(shape, dtype=case["dtype"]).numpy())
    except Exception as error:  # Keras's ValueError or TensorFlow's InvalidArgumentError
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"


def keras_fans(keras: Any, fan_case: dict[str, Any]) -> list[int]:
    from keras.src.initializers.random_initializers import compute_fans  # type: ignore[import-untyped]

    return [int(f) for f in compute_fans(fan_case["shape"], fan_case.get("input_axes"), fan_case.get("output_axes"))]


def tf_raw(op: str, seed: list[int] | tuple[int, int], dtype: str, size: int) -> np.ndarray:
    import tensorflow as tf  # type: ignore[import-untyped]

    function = getattr(tf.random, f"stateless_{op}")
    return np.asarray(function([size], seed=list(seed), dtype=getattr(tf, dtype)).numpy())


def _groups_needing_a_second_block(case: dict[str, Any], shape: tuple[int, ...]) -> list[int]:
    """Truncated-normal groups of this draw whose first Philox block has a value outside ±2.

    Read from TensorFlow's plain normal stream: block b holds normals 4b..4b+3 (float32 and
    narrower), and group g of the truncated normal starts at block 256·g.
    """
    import tensorflow as tf  # type: ignore[import-untyped]

    tf_seed = [case["seed"] % 2147483646, 0]
    groups = -(-math.prod(shape) // 4)
    normals = tf.random.stateless_normal([1024 * groups], seed=tf_seed, dtype=tf.float32).numpy()
    first_blocks = normals.reshape(groups, 1024)[:, :4]
    return [int(g) for g in np.flatnonzero((np.abs(first_blocks) >= 2).any(axis=1))]


class _Store:
    """Bit patterns, one array per width."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {"bits16": [], "bits32": [], "bits64": []}
        self.sizes = dict.fromkeys(self.parts, 0)

    def add(self, name: str, values: np.ndarray) -> int:
        offset = self.sizes[name]
        self.parts[name].append(values)
        self.sizes[name] += values.size
        return offset

    def add_bits(self, values: np.ndarray) -> tuple[str, int]:
        name = f"bits{8 * values.dtype.itemsize}"
        return name, self.add(name, to_bits(values))

    def arrays(self) -> dict[str, np.ndarray]:
        dtypes = {"bits16": np.uint16, "bits32": np.uint32, "bits64": np.uint64}
        return {n: np.concatenate(p) if p else np.empty(0, dtypes[n]) for n, p in self.parts.items()}


def record_draw(keras: Any, store: _Store, case: dict[str, Any]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    exact = case["initializer"]["class_name"] != "Orthogonal"
    for shape in case["shapes"]:
        values = keras_draw(keras, case, shape)
        if isinstance(values, str):
            entries.append({"shape": list(shape), "rejected": values})
            continue
        picked = values.reshape(-1)[positions(values.size)]
        array, offset = store.add_bits(picked)
        entries.append({"shape": list(shape), "array": array, "offset": offset, "count": int(picked.size)})
    return {
        "initializer": case["initializer"],
        "dtype": case["dtype"],
        "seed": case["seed"],
        "tolerance": None if exact else ORTHOGONAL_TOLERANCE.get(case["dtype"]),
        "draws": entries,
    }


def raw_cases() -> Iterator[dict[str, Any]]:
    for op in RAW_OPS:
        for seed in RAW_SEEDS:
            for dtype in DTYPES:
                yield {"op": op, "seed": list(seed), "dtype": dtype, "size": RAW_RANGE[1], "range": list(RAW_RANGE)}
    yield dict(THIRD_BLOCK)


def record_raw(store: _Store, raw: dict[str, Any]) -> dict[str, Any]:
    start, stop = raw["range"]
    values = tf_raw(raw["op"], raw["seed"], raw["dtype"], raw["size"])[start:stop]
    array, offset = store.add_bits(values)
    return {**raw, "array": array, "offset": offset, "count": int(values.size)}


def make() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Build the metadata and arrays from Keras and TensorFlow."""
    keras = import_keras()
    import tensorflow as tf  # type: ignore[import-untyped]

    store = _Store()
    draws = [record_draw(keras, store, case) for case in draw_cases()]
    second_block = []
    for seed in SEEDS:
        case = {"initializer": SEED_SWEEP[2], "dtype": "float32", "seed": seed}
        second_block += [[seed, g] for g in _groups_needing_a_second_block(case, (5, 7))]
    assert second_block, "no (5, 7) truncated-normal draw needs a second Philox block: pick another shape"
    meta = {
        "made_by": "tests/golden/make_golden.py",
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "libc": " ".join(platform.libc_ver()),
            "machine": platform.machine(),
        },
        "positions": "all values up to 48; else the first 8, the last 4 and every ceil(size/12)-th (positions())",
        "draws": draws,
        "second_block_groups_of_5x7_truncated_normal": second_block,
        "fans": [{**fan_case, "fans": keras_fans(keras, fan_case)} for fan_case in FAN_CASES],
        "tf_raw": [record_raw(store, raw) for raw in raw_cases()],
        "philox_kat": {
            "source": "Random123 1.14 tests/kat_vectors, philox4x32 10 lines "
            "(https://github.com/DEShawResearch/random123/blob/main/tests/kat_vectors)",
            "vectors": list(PHILOX_KAT),
        },
    }
    return meta, store.arrays()


def save(meta: dict[str, Any], arrays: dict[str, np.ndarray], path: Path = GOLDEN_PATH) -> None:
    text = json.dumps(meta, separators=(",", ":"), sort_keys=True)
    members: dict[str, Any] = {"meta": np.frombuffer(text.encode(), dtype=np.uint8), **arrays}
    np.savez_compressed(path, **members)


def load(path: Path = GOLDEN_PATH) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The checked-in metadata and arrays (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name != "meta"}
        meta = json.loads(data["meta"].tobytes().decode())
    return meta, arrays


def main() -> int:
    meta, arrays = make()
    save(meta, arrays)
    values = sum(a.size for a in arrays.values())
    print(f"wrote {GOLDEN_PATH} ({GOLDEN_PATH.stat().st_size} bytes, {values} values, {len(meta['draws'])} draw cases)")
    print(f"versions: {meta['versions']}")
    second_block = meta["second_block_groups_of_5x7_truncated_normal"]
    print(f"(5, 7) truncated-normal groups needing a second block [seed, group]: {second_block}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
