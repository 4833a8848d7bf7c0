"""What Keras's BatchNormalization does to its moving statistics and outputs, step by step.

Per feature (the last axis): the batch mean and biased variance over the other axes; then
`moving = moving * momentum + batch_statistic * (1 - momentum)` from moving_mean 0 and
moving_variance 1, so the momentum applies from the first batch. Training-mode output normalizes
with the batch statistics, inference-mode output with the moving ones (gamma 1, beta 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchNormStep:
    """The state after one training step on the batch."""

    step: int
    batch_mean: np.ndarray
    batch_variance: np.ndarray
    moving_mean: np.ndarray
    moving_variance: np.ndarray


def explain(
    batch: np.ndarray,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
    steps: int = 1,
) -> tuple[list[BatchNormStep], np.ndarray, np.ndarray]:
    """Run `steps` training steps on the same batch.

    Args:
        batch: shape (batch,) for one feature or (..., features).
        momentum, epsilon: the layer's arguments.
        steps: how many training steps see this batch.

    Returns:
        (the state after each step, training-mode output, inference-mode output after the steps).
    """
    values = np.asarray(batch, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    axes = tuple(range(values.ndim - 1))
    batch_mean = values.mean(axis=axes)
    batch_variance = values.var(axis=axes)  # biased (population) variance, as Keras uses
    moving_mean = np.zeros_like(batch_mean)
    moving_variance = np.ones_like(batch_variance)
    history = []
    for step in range(1, steps + 1):
        moving_mean = moving_mean * momentum + batch_mean * (1.0 - momentum)
        moving_variance = moving_variance * momentum + batch_variance * (1.0 - momentum)
        history.append(BatchNormStep(step, batch_mean, batch_variance, moving_mean, moving_variance))
    training = (values - batch_mean) / np.sqrt(batch_variance + epsilon)
    inference = (values - moving_mean) / np.sqrt(moving_variance + epsilon)
    return history, training, inference
