"""How often `inspect`/`check` cry wolf on fresh models, and how often they catch known mistakes.

False alarms: many simulated fresh models (weights drawn exactly as Keras draws them, by initcli's
engine, which the test suite checks bit for bit against TensorFlow), each judged as one model with
the verdict policy of `initcli.stats.significance` (Holm over the model's weights). The stated rates: at
most `alpha` (0.001) of fresh models have any `inconsistent` weight, at most 0.05 any `suspicious`.
Rates are printed with exact (Clopper-Pearson) 95% intervals, and next to them a tail table: for
each weight of the template and each test, how many of its draws had p below 1e-3, 1e-4 and 1e-5
(a calibrated test: about draws x p; a conservative one: fewer).

Power: the share of weights flagged `inconsistent` (alpha 0.001, one weight tested) for mistakes
users make, at several sizes.

    python benchmarks/calibration.py [--models 2000] [--weights 100] [--repeats 200] [--workers 2]

A long measurement can run in consecutive pieces and be reported on together:

    python benchmarks/calibration.py --models 2000 --first-model 0 --repeats 0 --save part0.npz
    python benchmarks/calibration.py --models 2000 --first-model 2000 --repeats 0 --save part1.npz
    python benchmarks/calibration.py --combine part0.npz part1.npz --repeats 0

"Trained" on fresh Keras models (`--keras-seeds N`): real models built by Keras 3 and by tf_keras
(dense, convolutional, recurrent, attention, embedding, separable; `--applications` adds
MobileNetV2 and ResNet50 with weights=None), each with N seeds, saved and inspected: how many are
called trained (the false-alarm rate of `initcli.stats.assessment.trained_model`), how many have
any inconsistent weight, and the most inconsistent weights seen in one fresh model.

    python benchmarks/calibration.py --models 0 --repeats 0 --keras-seeds 100 --applications 2

Detection on trained files (`--trained-files PATH...`): each file's model line.

Needs scipy (a test dependency) for the interval.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# This checkout's initcli is measured, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# One BLAS thread per process, set before numpy loads: the statistics' np.dot over a 73,728-value
# weight otherwise spins up OpenBLAS threads that, on a busy machine, make it 20 times slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from initcli.analysis.sampling import draw  # noqa: E402
from initcli.initializers import InitializerSpec, resolve  # noqa: E402
from initcli.stats.assessment import Assessment, assess, judge  # noqa: E402
from initcli.stats.significance import SUSPICIOUS_ALPHA  # noqa: E402
from initcli.types import DEFAULT_ALPHA  # noqa: E402

# A model's weights: a mix of initializers and of sizes from 16 to 73,728 values.
TEMPLATE: list[tuple[str, tuple[int, ...]]] = [
    ("glorot_uniform", (3, 3, 32, 64)),
    ("glorot_normal", (3, 3, 64, 128)),
    ("he_normal", (256, 128)),
    ("he_uniform", (3, 3, 3, 16)),
    ("lecun_normal", (64, 10)),
    ("lecun_uniform", (16,)),
    ("random_normal", (100,)),
    ("truncated_normal", (32, 32)),
    ("random_uniform", (50, 20)),
    ("glorot_uniform", (784, 64)),
]
TESTS = ("mean", "std", "ks")
TAIL_LEVELS = (1e-3, 1e-4, 1e-5)
MODELS_PER_TASK = 25


def _judge(spec: InitializerSpec, values: np.ndarray, dtype: str = "float32") -> Assessment:
    theory = spec.theory(values.shape, dtype)
    comparator = spec.family.comparator(spec, values.shape, dtype, theory, interval_alpha=DEFAULT_ALPHA)
    return assess([values.reshape(-1)], values.size, theory, comparator)


def _models(first_model: int, count: int, weights: int) -> tuple[np.ndarray, np.ndarray]:
    """For models first_model.. (seeds model·100003 + weight index): each model's smallest Holm-adjusted
    p-value (shape (count,)) and each weight's mean/std/KS p-values (shape (count, weights, 3))."""
    specs = [(resolve(name), shape) for name, shape in TEMPLATE]
    smallest = np.empty(count)
    tests = np.empty((count, weights, len(TESTS)))
    for row, model in enumerate(range(first_model, first_model + count)):
        assessments = []
        for index in range(weights):
            spec, shape = specs[index % len(specs)]
            assessment = _judge(spec, draw(spec, shape, "float32", model * 100_003 + index))
            checks = assessment.checks
            tests[row, index] = (checks.mean_pvalue, checks.std_pvalue, checks.ks_pvalue)
            assessments.append(assessment)
        judged = judge(assessments, DEFAULT_ALPHA)
        smallest[row] = min(a.checks.adjusted_pvalue or 1.0 for a in judged)
    return smallest, tests


def simulate(models: int, weights: int, first_seed: int = 0, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """`_models` over models first_seed.., split over `workers` processes (the result does not depend on it)."""
    starts = list(range(first_seed, first_seed + models, MODELS_PER_TASK))
    counts = [min(MODELS_PER_TASK, first_seed + models - start) for start in starts]
    if workers <= 1:
        parts = [_models(start, count, weights) for start, count in zip(starts, counts)]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_models, starts, counts, [weights] * len(starts)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def false_alarms(models: int, weights: int, first_seed: int = 0, workers: int = 1) -> tuple[int, int, int]:
    """(models with any suspicious-or-worse weight, models with any inconsistent weight, weights judged)."""
    smallest, _ = simulate(models, weights, first_seed, workers)
    suspicious = int(np.sum(smallest < SUSPICIOUS_ALPHA))
    return suspicious, int(np.sum(smallest < DEFAULT_ALPHA)), models * weights


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact two-sided binomial interval for successes/trials."""
    from scipy.stats import beta

    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1.0 - tail, successes + 1, trials - successes))
    return low, high


def _rate_line(label: str, count: int, trials: int, stated: float) -> str:
    low, high = clopper_pearson(count, trials)
    return f"  {label}: {count}/{trials} = {count / trials:.5f} (95% CI {low:.5f}-{high:.5f}; stated <= {stated})"


def print_false_alarms(first_model: int, smallest: np.ndarray, tests: np.ndarray) -> None:
    """The rates, the models with an inconsistent weight, and the tail table, for models first_model.."""
    models, weights = tests.shape[0], tests.shape[1]
    print(
        f"False alarms over {models} fresh models ({first_model}..{first_model + models - 1}) of {weights} weights "
        f"({models * weights} weights), alpha {DEFAULT_ALPHA}:"
    )
    suspicious = int(np.sum(smallest < SUSPICIOUS_ALPHA))
    inconsistent = int(np.sum(smallest < DEFAULT_ALPHA))
    print(_rate_line("models with any suspicious-or-worse weight", suspicious, models, SUSPICIOUS_ALPHA))
    print(_rate_line("models with any inconsistent weight", inconsistent, models, DEFAULT_ALPHA))
    flagged = np.flatnonzero(smallest < DEFAULT_ALPHA)
    for model in flagged.tolist():
        weight, test = np.unravel_index(int(np.argmin(tests[model])), tests[model].shape)
        name, shape = TEMPLATE[int(weight) % len(TEMPLATE)]
        print(
            f"    model {first_model + model}: weight {int(weight)} ({name} {shape}), "
            f"{TESTS[int(test)]} test p {tests[model].min():.3g}"
        )
    # A model is inconsistent when its smallest weight p-value (3 x the smallest test p-value) is
    # below alpha / weights: the tail the tests must get right.
    level = DEFAULT_ALPHA / weights / len(TESTS)
    print("\nTails: per template weight, draws with p below each level (expected about draws x level if exact).")
    print(f"'weight' counts draws whose smallest test p-value is below {level:.2g} (alpha / weights / 3).")
    header = " | ".join(f"{test} <{level:g}" for test in TESTS for level in TAIL_LEVELS)
    print(f"| weight | draws | {header} | weight |")
    print("|---|---|" + "---|" * (len(TESTS) * len(TAIL_LEVELS) + 1))
    for index, (name, shape) in enumerate(TEMPLATE):
        rows = tests[:, index :: len(TEMPLATE), :].reshape(-1, len(TESTS))
        if rows.size == 0:
            continue
        cells = [int(np.sum(rows[:, t] < level)) for t in range(len(TESTS)) for level in TAIL_LEVELS]
        weight = int(np.sum(np.min(rows, axis=1) < level))
        shape_text = "x".join(map(str, shape))
        print(f"| {name} {shape_text} | {rows.shape[0]} | " + " | ".join(map(str, cells)) + f" | {weight} |")
    rows = tests.reshape(-1, len(TESTS))
    cells = [int(np.sum(rows[:, t] < level)) for t in range(len(TESTS)) for level in TAIL_LEVELS]
    weight = int(np.sum(np.min(rows, axis=1) < level))
    print(f"| all weights | {rows.shape[0]} | " + " | ".join(map(str, cells)) + f" | {weight} |")
    draws = tests.shape[0] * tests.shape[1]
    print(
        f"| expected if exact (all weights) | {draws} | "
        + " | ".join(f"{draws * level:.1f}" for _ in TESTS for level in TAIL_LEVELS)
        + f" | <= {draws * 3 * level:.1f} |"
    )


def _square(n: int) -> tuple[int, int]:
    side = int(math.isqrt(n))
    return side, n // side


MISTAKES = {
    "std 5% too large (he_normal values × 1.05)": ("he_normal", "he_normal", 1.05),
    "fan_in used where the config says fan_avg (lecun_normal values, glorot_normal config; conv 3x3xCx2C)": (
        "glorot_normal",
        "lecun_normal",
        1.0,
    ),
    "Keras <= 2.1.6 truncated normal (no 0.8796 correction) read as today's": (
        "he_normal",
        "he_normal_uncorrected",
        1.0,
    ),
    "PyTorch default kaiming_uniform(a=sqrt(5)) in a glorot_uniform model": ("glorot_uniform", "torch_default", 1.0),
}


def _mistaken_values(kind: str, shape: tuple[int, ...], seed: int, factor: float) -> np.ndarray:
    if kind == "he_normal_uncorrected":
        # Keras 2.1.6: stddev sqrt(2/fan_in) handed to the truncated normal, values' std 0.8796 of that.
        return draw(resolve("truncated_normal", stddev=math.sqrt(2.0 / _fan_in(shape))), shape, "float32", seed)
    if kind == "torch_default":
        bound = 1.0 / math.sqrt(_fan_in(shape))
        return draw(resolve("random_uniform", minval=-bound, maxval=bound), shape, "float32", seed)
    return draw(resolve(kind), shape, "float32", seed) * np.float32(factor)


def _fan_in(shape: tuple[int, ...]) -> int:
    return shape[0] if len(shape) == 2 else math.prod(shape[:-1])


def _shape_for(size: int, mistake: str) -> tuple[int, ...]:
    if "conv" in mistake:
        channels = max(1, int(round(math.sqrt(size / 18))))
        return (3, 3, channels, 2 * channels)
    if "PyTorch" in mistake:
        side = max(1, int(math.isqrt(size)))
        return (side, side)
    return _square(size)


def power(sizes: list[int], repeats: int) -> dict[str, list[float]]:
    table: dict[str, list[float]] = {}
    for mistake, (configured, drawn, factor) in MISTAKES.items():
        rates = []
        for size in sizes:
            shape = _shape_for(size, mistake)
            spec = resolve(configured)
            flagged = 0
            for seed in range(repeats):
                values = _mistaken_values(drawn, shape, 10_000 + seed, factor)
                (assessment,) = judge([_judge(spec, values)], DEFAULT_ALPHA)
                flagged += assessment.verdict == "inconsistent"
            rates.append(flagged / repeats)
        table[mistake] = rates
    return table


def _keras3_models(keras: Any) -> dict[str, Callable[[], Any]]:
    layers = keras.layers
    return {
        "mlp_bn": lambda: keras.Sequential(
            [keras.Input((20,)), layers.Dense(64, activation="relu"), layers.BatchNormalization(), layers.Dense(3)]
        ),
        "cnn": lambda: keras.Sequential(
            [
                keras.Input((16, 16, 3)),
                layers.Conv2D(16, 3, kernel_initializer="he_normal"),
                layers.BatchNormalization(),
                layers.SeparableConv2D(8, 3),
                layers.DepthwiseConv2D(3),
                layers.Flatten(),
                layers.Dense(10),
            ]
        ),
        "rnn": lambda: keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                layers.Embedding(100, 16),
                layers.LSTM(12, return_sequences=True),
                layers.GRU(8),
                layers.Dense(1),
            ]
        ),
        "attention": lambda: _attention(keras),
        "small": lambda: keras.Sequential([keras.Input((3,)), layers.Dense(2), layers.Dense(1)]),
    }


def _attention(keras: Any) -> Any:
    inputs = keras.Input((10, 32))
    attended = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8)(inputs, inputs)
    normed = keras.layers.LayerNormalization()(attended + inputs)
    return keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Conv1D(4, 3)(normed)))


def _fresh_state(model: Any, path: Path) -> tuple[str, int, int, int]:
    """(state, trained weights, inconsistent weights, tested weights) of a saved fresh model."""
    import warnings

    from initcli import api

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf_keras calls .h5 legacy
        model.save(path)
    report = api.inspect_model(str(path))
    state = report.state
    verdicts = report.totals["verdicts"]
    return state["state"], int(state["trained"]), int(verdicts.get("inconsistent", 0)), int(state["tested"])


def fresh_keras(
    seeds: int, applications: int, folder: Path, first_seed: int = 0
) -> dict[str, list[tuple[str, int, int, int]]]:
    """Each architecture's fresh states over seeds first_seed.. (Keras 3 .keras, tf_keras .keras and .h5)."""
    from initcli.keras.bridge import import_keras

    keras = import_keras()
    import tf_keras

    results: dict[str, list[tuple[str, int, int, int]]] = {}
    for label, module, builders, suffixes in (
        ("keras3", keras, _keras3_models(keras), (".keras",)),
        ("tf_keras", tf_keras, _keras3_models(tf_keras), (".keras", ".h5")),
    ):
        for name, build in builders.items():
            for suffix in suffixes:
                key = f"{label} {name} {suffix}"
                for seed in range(first_seed, first_seed + seeds):
                    module.backend.clear_session()
                    module.utils.set_random_seed(seed)
                    results.setdefault(key, []).append(_fresh_state(build(), folder / f"model{suffix}"))
        for name in ("MobileNetV2", "ResNet50"):
            for seed in range(applications):
                module.backend.clear_session()
                module.utils.set_random_seed(seed)
                model = getattr(module.applications, name)(weights=None)
                results.setdefault(f"{label} {name} .keras", []).append(_fresh_state(model, folder / "app.keras"))
    return results


def print_fresh_keras(results: dict[str, list[tuple[str, int, int, int]]]) -> None:
    print("Fresh Keras models: how many are called trained (each row: one architecture over its seeds)")
    print(
        "| model | seeds | weights tested | called trained | with any inconsistent weight | most inconsistent in one |"
    )
    print("|---|---|---|---|---|---|")
    total = trained_total = 0
    for key, states in results.items():
        trained = sum(1 for state in states if state[0] == "trained")
        inconsistent = sum(1 for state in states if state[2])
        most = max(state[2] for state in states)
        print(f"| {key} | {len(states)} | {states[0][3]} | {trained} | {inconsistent} | {most} |")
        total += len(states)
        trained_total += trained
    print(_rate_line("fresh models called trained", trained_total, total, DEFAULT_ALPHA))


def print_trained_files(paths: list[str]) -> None:
    from initcli import api

    print("Trained files: the model line")
    for path in paths:
        try:
            line = api.inspect_model(path).state["line"]
        except Exception as error:  # report and go on
            line = f"error: {str(error).splitlines()[0]}"
        print(f"| {Path(path).name} | {line} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--weights", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200, help="draws per cell of the power table (0: skip)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the false-alarm models")
    parser.add_argument("--first-model", type=int, default=0, help="number of the first model (seeds follow from it)")
    parser.add_argument("--save", help="also write the models' p-values to this .npz (for --combine)")
    parser.add_argument("--combine", nargs="+", help="report on consecutive --save files instead of simulating")
    parser.add_argument("--keras-seeds", type=int, default=0, help="seeds per fresh Keras 3 / tf_keras model")
    parser.add_argument("--first-keras-seed", type=int, default=0, help="first seed of --keras-seeds")
    parser.add_argument("--applications", type=int, default=0, help="seeds of MobileNetV2 and ResNet50 (weights=None)")
    parser.add_argument("--trained-files", nargs="+", default=[], help="trained files whose model line to print")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.keras_seeds or args.applications:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            print_fresh_keras(fresh_keras(args.keras_seeds, args.applications, Path(folder), args.first_keras_seed))
        print(f"({time.perf_counter() - start:.0f} s)\n")
    if args.trained_files:
        print_trained_files(args.trained_files)
    if args.combine:
        parts = [np.load(path) for path in args.combine]
        parts.sort(key=lambda part: int(part["first_model"]))
        for before, after in zip(parts, parts[1:]):
            if int(before["first_model"]) + before["smallest"].size != int(after["first_model"]):
                raise SystemExit("Error: the --combine files are not consecutive runs of models")
        smallest = np.concatenate([part["smallest"] for part in parts])
        tests = np.concatenate([part["tests"] for part in parts])
        print_false_alarms(int(parts[0]["first_model"]), smallest, tests)
    elif args.models > 0:
        smallest, tests = simulate(args.models, args.weights, args.first_model, args.workers)
        if args.save:
            np.savez(args.save, first_model=args.first_model, smallest=smallest, tests=tests)
        print_false_alarms(args.first_model, smallest, tests)
        print(f"({time.perf_counter() - start:.0f} s)")
    if args.repeats > 0:
        sizes = [100, 1_000, 10_000, 100_000, 1_000_000]
        print(f"\nPower: share of weights called inconsistent ({args.repeats} draws per cell)")
        print("| mistake | " + " | ".join(f"{n:,} values" for n in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for mistake, rates in power(sizes, args.repeats).items():
            print(f"| {mistake} | " + " | ".join(f"{rate:.2f}" for rate in rates) + " |")
        print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
