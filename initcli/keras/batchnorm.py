"""What Keras's BatchNormalization does to its moving statistics and outputs, step by step.

Per feature (the last axis): the batch mean and biased variance over the other axes; then
`moving = moving * momentum + batch_statistic * (1 - momentum)` from moving_mean 0 and
moving_variance 1, so the momentum applies from the first batch. Training-mode output normalizes
with the batch statistics, inference-mode output with the moving ones (gamma 1, beta 0).

Every step is computed for every feature, in memory proportional to the number of features; the
history keeps only what can be shown (the first and last steps, the first features) and says how much
it left out, so `--shape 1x50000 --steps 10000` stays small.

Keras 2 (tf_keras, tf.keras of TF <= 2.15) differs on one path, measured against tf_keras 2.21:
its fused kernel, used by default when the input has rank 4 or 5 (`fused=None`), adds Bessel's
correction n/(n-1) (n = values per feature) to the batch variance that enters the moving update:
`moving_variance = moving_variance * momentum + batch_variance * n/(n-1) * (1 - momentum)`. The
training-mode output still normalizes with the biased variance. On rank-2 or rank-3 input, or with
`fused=False`, tf_keras uses the same rule as Keras 3. `renorm=True` and `virtual_batch_size` change
the statistics in other ways (and never use the fused kernel); they are not modelled.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from initcli.errors import BadInputError
from initcli.safety.numbers import parse_float

DEFAULT_MAX_STEPS_SHOWN = 20
"""Steps kept in the history: the first half and the last half of this many."""
DEFAULT_MAX_FEATURES_SHOWN = 16
"""Features (the first ones) kept in each step of the history."""


@dataclass(frozen=True)
class BatchNormStep:
    """The state after one training step on the batch, for the features shown (the first ones)."""

    step: int
    batch_mean: np.ndarray
    batch_variance: np.ndarray
    moving_mean: np.ndarray
    moving_variance: np.ndarray


@dataclass(frozen=True, kw_only=True)
class BatchNormReport:
    """The whole computation: final statistics of every feature, and a bounded history.

    Attributes:
        momentum, epsilon, steps: the arguments.
        features: how many features (the batch's last axis; 1 for a 1-D batch).
        batch_mean, batch_variance: per feature, all features (variance biased, as Keras uses).
        moving_mean, moving_variance: per feature after all `steps` steps, all features.
        history: the shown steps (the first and last `max_steps_shown / 2`, every step when there are
            no more than `max_steps_shown`), each with the first `features_shown` features.
        features_shown: how many features each history step holds (the first ones).
        steps_omitted, features_omitted: what the history leaves out.
        training: training-mode output, the batch's shape (a 1-D batch becomes (n, 1)).
        inference: inference-mode output after the steps, the same shape.
    """

    momentum: float
    epsilon: float
    steps: int
    features: int
    batch_mean: np.ndarray
    batch_variance: np.ndarray
    moving_mean: np.ndarray
    moving_variance: np.ndarray
    history: tuple[BatchNormStep, ...]
    features_shown: int
    steps_omitted: int
    features_omitted: int
    training: np.ndarray
    inference: np.ndarray
    keras: int = 3
    fused: bool = False
    bessel: float = 1.0

    def rows(self) -> list[dict[str, Any]]:
        """One row per shown step and shown feature: step, feature, batch_mean, batch_variance, moving_*."""
        return [
            {
                "step": state.step,
                "feature": feature,
                "batch_mean": float(state.batch_mean[feature]),
                "batch_variance": float(state.batch_variance[feature]),
                "moving_mean": float(state.moving_mean[feature]),
                "moving_variance": float(state.moving_variance[feature]),
            }
            for state in self.history
            for feature in range(self.features_shown)
        ]

    def __iter__(self) -> Iterator[Any]:
        """`history, training, inference = explain(...)`, as before this report existed (transitional)."""
        return iter((list(self.history), self.training, self.inference))


def _positive_int(value: Any, name: str) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise BadInputError(f"{name} must be a positive integer; received {name}={value!r}") from None
    if isinstance(value, bool) or number < 1:
        raise BadInputError(f"{name} must be a positive integer; received {name}={value!r}")
    return number


KERAS_VERSIONS = (2, 3)


def uses_fused_kernel(keras: int, rank: int, fused: bool | None = None) -> bool:
    """Whether this Keras's BatchNormalization takes its fused path on input of this rank.

    Keras 3 has no fused path. tf_keras with `fused=None` takes it on rank 4 or 5; `fused=True` on
    another rank is refused there (ValueError), as here.
    """
    if keras not in KERAS_VERSIONS:
        raise BadInputError(f"keras must be 2 or 3; received keras={keras!r}")
    if keras == 3:
        if fused:
            raise BadInputError("Keras 3's BatchNormalization has no fused kernel (fused is a Keras 2 argument)")
        return False
    if fused is None:
        return rank in (4, 5)
    if fused and rank not in (4, 5):
        raise BadInputError(f"Keras 2's fused BatchNormalization needs input of rank 4 or 5; received rank {rank}")
    return fused


def explain(
    batch: np.ndarray,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
    steps: int = 1,
    *,
    keras: int = 3,
    fused: bool | None = None,
    max_steps_shown: int = DEFAULT_MAX_STEPS_SHOWN,
    max_features_shown: int = DEFAULT_MAX_FEATURES_SHOWN,
) -> BatchNormReport:
    """Run `steps` training steps on the same batch.

    Args:
        batch: shape (batch,) for one feature or (..., features); finite values.
        momentum: the layer's momentum, in [0, 1].
        epsilon: the layer's epsilon, > 0.
        steps: how many training steps see this batch (>= 1).
        keras: 3 (Keras 3) or 2 (tf_keras); only Keras 2's fused path differs (see the module).
        fused: Keras 2's `fused` argument (None: fused on rank 4 or 5 input).
        max_steps_shown, max_features_shown: bounds of the history (>= 1).

    Returns:
        A report; it also unpacks as (history, training output, inference output).

    Raises:
        BadInputError: a non-finite or out-of-range momentum or epsilon, a bad step count, an empty
            or non-finite batch, or values so large that their variance overflows float64.
    """
    momentum = parse_float(momentum, minimum=0.0, maximum=1.0, name="momentum")
    epsilon = parse_float(epsilon, minimum=0.0, min_open=True, name="epsilon")
    steps = _positive_int(steps, "steps")
    max_steps_shown = _positive_int(max_steps_shown, "max_steps_shown")
    max_features_shown = _positive_int(max_features_shown, "max_features_shown")
    try:
        values = np.asarray(batch, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError("the batch must be numbers") from None
    if values.ndim == 0 or values.size == 0:
        raise BadInputError(f"the batch must have at least one value and one axis; received shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise BadInputError("the batch values must be finite (no NaN or infinity)")
    if values.ndim == 1:
        values = values[:, None]
    fused_path = uses_fused_kernel(keras, values.ndim, fused)
    axes = tuple(range(values.ndim - 1))
    with np.errstate(over="ignore", invalid="ignore"):
        batch_mean = values.mean(axis=axes)
        batch_variance = values.var(axis=axes)  # biased (population) variance, as Keras uses
    if not (np.all(np.isfinite(batch_mean)) and np.all(np.isfinite(batch_variance))):
        raise BadInputError("the batch values are too large: their mean or variance overflows float64")

    features = batch_mean.size
    shown = min(features, max_features_shown)
    first_steps = range(1, min(steps, (max_steps_shown + 1) // 2) + 1)
    last_steps = range(max(first_steps.stop, steps - max_steps_shown // 2 + 1), steps + 1)
    kept = set(first_steps) | set(last_steps)
    # Per step: moving * momentum + batch * (1 - momentum), the same two roundings each time.
    mean_share = batch_mean * (1.0 - momentum)
    count = values.size // max(batch_mean.size, 1)
    bessel = count / (count - 1) if fused_path and count > 1 else 1.0
    variance_share = batch_variance * bessel * (1.0 - momentum)
    moving_mean = np.zeros_like(batch_mean)
    moving_variance = np.ones_like(batch_variance)
    history = []
    for step in range(1, steps + 1):
        moving_mean *= momentum
        moving_mean += mean_share
        moving_variance *= momentum
        moving_variance += variance_share
        if step in kept:
            history.append(
                BatchNormStep(
                    step,
                    batch_mean[:shown].copy(),
                    batch_variance[:shown].copy(),
                    moving_mean[:shown].copy(),
                    moving_variance[:shown].copy(),
                )
            )
    training = (values - batch_mean) / np.sqrt(batch_variance + epsilon)
    inference = (values - moving_mean) / np.sqrt(moving_variance + epsilon)
    return BatchNormReport(
        momentum=momentum,
        epsilon=epsilon,
        steps=steps,
        features=features,
        batch_mean=batch_mean,
        batch_variance=batch_variance,
        moving_mean=moving_mean,
        moving_variance=moving_variance,
        history=tuple(history),
        features_shown=shown,
        steps_omitted=steps - len(history),
        features_omitted=features - shown,
        training=training,
        inference=inference,
        keras=keras,
        fused=fused_path,
        bessel=bessel,
    )
