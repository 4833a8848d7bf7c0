"""Sample statistics of a tensor, computed in chunks.

`StatsAccumulator` consumes a tensor in chunks of any size and gives exactly (bit for bit) the
result of consuming it in one piece: the moments are regrouped into canonical blocks aligned to
global element indices and merged in order (`initcli.stats.chunkmoments`, which states the error
bound against an exact computation); the KS subsample is every k-th value by global index. Variances are
population variances (numpy's ddof=0). Moments cover the finite values; `nonfinite` counts the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from initcli.stats.chunkmoments import BLOCK_ELEMENTS, Moments, MomentStream
from initcli.stats.significance import KS_SAMPLE_LIMIT

__all__ = ["BLOCK_ELEMENTS", "SampleStats", "StatsAccumulator", "describe"]


@dataclass(frozen=True, kw_only=True)
class SampleStats:
    """Measured statistics of a tensor (mean, var, std, min, max over its finite values)."""

    count: int
    mean: float | None
    var: float | None
    std: float | None
    min: float | None
    max: float | None
    nonfinite: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class StatsAccumulator:
    """Streaming statistics whose result does not depend on how the input is chunked.

    The moments are `chunkmoments.MomentStream`'s (canonical blocks, Chan merge); this adds the
    subsample for the tests.

    Args:
        total: the number of elements that will be fed (fixes the KS subsample stride).
        ks_limit: at most about this many values are kept, every k-th by global index, for the
            Kolmogorov-Smirnov test and histograms.
    """

    def __init__(self, total: int, ks_limit: int = KS_SAMPLE_LIMIT) -> None:
        self.total = total
        self.ks_stride = max(1, -(-total // ks_limit))
        self._seen = 0
        self._moments = MomentStream()
        self._ks_parts: list[np.ndarray] = []

    def update(self, values: np.ndarray) -> None:
        """Feed the next values; the accumulator keeps no reference to them (the caller may reuse the buffer)."""
        flat = np.asarray(values).reshape(-1)
        first_index = self._seen
        self._seen += flat.size
        offset = (-first_index) % self.ks_stride
        # float32 stays float32 (it sorts twice as fast; the CDF is evaluated in float64 anyway).
        keep = np.float32 if flat.dtype == np.float32 else np.float64
        self._ks_parts.append(flat[offset :: self.ks_stride].astype(keep))
        self._moments.update(flat)

    @property
    def moments(self) -> Moments:
        """The merged moments of everything fed (finishes the last block)."""
        return self._moments.finish()

    def result(self) -> SampleStats:
        moments = self._moments.finish()
        if moments.count == 0:
            return SampleStats(
                count=self._seen, mean=None, var=None, std=None, min=None, max=None, nonfinite=moments.nonfinite
            )
        var = max(moments.m2 / moments.count, 0.0)
        return SampleStats(
            count=self._seen,
            mean=moments.mean,
            var=var,
            std=math.sqrt(var),
            min=moments.min,
            max=moments.max,
            nonfinite=moments.nonfinite,
        )

    def ks_sample(self) -> np.ndarray:
        """The systematic subsample (every `ks_stride`-th element), finite values only.

        float32 for float32 tensors, float64 otherwise (every value exactly as stored).
        """
        if not self._ks_parts:
            return np.empty(0)
        sample = self._ks_parts[0] if len(self._ks_parts) == 1 else np.concatenate(self._ks_parts)
        clean = self._moments.total.nonfinite == 0 and not self._moments.has_pending
        return sample if clean else sample[np.isfinite(sample)]


def describe(values: np.ndarray) -> tuple[SampleStats, np.ndarray]:
    """Statistics and KS subsample of a whole array (the same arithmetic as chunked feeding)."""
    accumulator = StatsAccumulator(int(np.asarray(values).size))
    accumulator.update(values)
    return accumulator.result(), accumulator.ks_sample()
