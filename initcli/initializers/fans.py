"""fan_in / fan_out exactly as Keras's `compute_fans` computes them."""

from __future__ import annotations

import math
from collections.abc import Sequence


def compute_fans(
    shape: Sequence[int],
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Return (fan_in, fan_out) for a weight shape, as `keras.initializers` computes them.

    With both `input_axes` and `output_axes` given (EinsumDense derives them from its equation),
    each fan is the product of the dimensions on those axes. Otherwise: rank 0 gives (1, 1),
    rank 1 (n, n), rank 2 (rows, cols), and rank >= 3 is treated as a convolution kernel
    `(*receptive_field, input_depth, output_depth)`, each depth multiplied by the receptive field.
    """
    shape = tuple(int(d) for d in shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field
