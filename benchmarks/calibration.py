"""How often `inspect`/`check` cry wolf on fresh models, and how often they catch known mistakes.

False alarms: many simulated fresh models (weights drawn exactly as Keras draws them, by initcli's
engine, which the test suite checks bit for bit against TensorFlow), each judged as one model with
the verdict policy of `initcli.significance` (Holm over the model's weights). The stated rates: at
most `alpha` (0.001) of fresh models have any `inconsistent` weight, at most 0.05 any `suspicious`.

Power: the share of weights flagged `inconsistent` (alpha 0.001, one weight tested) for mistakes
users make, at several sizes.

    python benchmarks/calibration.py [--models 2000] [--weights 100]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from initcli.assessment import assess, judge
from initcli.initializers import InitializerSpec, resolve
from initcli.sampling import draw
from initcli.significance import DEFAULT_ALPHA

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


def _judge(spec: InitializerSpec, values: np.ndarray, dtype: str = "float32") -> object:
    theory = spec.theory(values.shape, dtype)
    comparator = spec.family.comparator(spec, values.shape, dtype, theory, interval_alpha=DEFAULT_ALPHA)
    return assess([values.reshape(-1)], values.size, theory, comparator)


def false_alarms(models: int, weights: int, first_seed: int = 0) -> tuple[int, int, int]:
    """(models with any suspicious-or-worse weight, models with any inconsistent weight, weights judged)."""
    specs = [(resolve(name), shape) for name, shape in TEMPLATE]
    any_suspicious = any_inconsistent = judged = 0
    for model in range(models):
        assessments = []
        for index in range(weights):
            spec, shape = specs[index % len(specs)]
            seed = (first_seed + model) * 100_003 + index
            assessments.append(_judge(spec, draw(spec, shape, "float32", seed)))
        verdicts = [a.verdict for a in judge(assessments, DEFAULT_ALPHA)]
        judged += len(verdicts)
        any_suspicious += any(v in ("suspicious", "inconsistent") for v in verdicts)
        any_inconsistent += "inconsistent" in verdicts
    return any_suspicious, any_inconsistent, judged


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--weights", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200, help="draws per cell of the power table")
    args = parser.parse_args()
    start = time.perf_counter()
    suspicious, inconsistent, judged = false_alarms(args.models, args.weights)
    print(
        f"False alarms over {args.models} fresh models of {args.weights} weights ({judged} weights), "
        f"alpha {DEFAULT_ALPHA}:"
    )
    print(
        f"  models with any suspicious-or-worse weight: {suspicious} ({suspicious / args.models:.4f}; stated <= 0.05)"
    )
    print(
        f"  models with any inconsistent weight: {inconsistent} ({inconsistent / args.models:.4f}; "
        f"stated <= {DEFAULT_ALPHA})"
    )
    sizes = [100, 1_000, 10_000, 100_000, 1_000_000]
    print(f"\nPower: share of weights called inconsistent ({args.repeats} draws per cell)")
    print("| mistake | " + " | ".join(f"{n:,} values" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for mistake, rates in power(sizes, args.repeats).items():
        print(f"| {mistake} | " + " | ".join(f"{rate:.2f}" for rate in rates) + " |")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
