"""Sample statistics of a tensor, computed in chunks.

`StatsAccumulator` consumes a tensor in chunks of any size and gives exactly (bit for bit) the
result of consuming it in one piece: it regroups values into canonical blocks aligned to global
element indices and reduces each block the same way whatever the chunking. Variances are
population variances (numpy's ddof=0). Moments cover the finite values; `nonfinite` counts the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from initcli.parallel.scratch import thread_scratch
from initcli.stats.significance import KS_SAMPLE_LIMIT

# 2^16 values (512 KB of float64 deviations) stay in the CPU cache: 16% faster than 2^18, measured.
BLOCK_ELEMENTS = 1 << 16


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

    Args:
        total: the number of elements that will be fed (fixes the KS subsample stride).
        ks_limit: at most about this many values are kept, every k-th by global index, for the
            Kolmogorov-Smirnov test and histograms.
    """

    def __init__(self, total: int, ks_limit: int = KS_SAMPLE_LIMIT) -> None:
        self.total = total
        self.ks_stride = max(1, -(-total // ks_limit))
        self._seen = 0
        self._pending: list[np.ndarray] = []
        self._pending_size = 0
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._nonfinite = 0
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
        if self._pending_size + flat.size < BLOCK_ELEMENTS:
            self._pending.append(flat.copy())
            self._pending_size += flat.size
            return
        joined = flat if not self._pending else np.concatenate([*self._pending, flat])
        whole = (joined.size // BLOCK_ELEMENTS) * BLOCK_ELEMENTS
        for start in range(0, whole, BLOCK_ELEMENTS):
            self._reduce_block(joined[start : start + BLOCK_ELEMENTS])
        rest = joined[whole:]
        self._pending = [rest.copy()] if rest.size else []
        self._pending_size = rest.size

    def _reduce_block(self, block: np.ndarray) -> None:
        deviations = thread_scratch()("stats-deviations", np.float64, block.size)
        np.copyto(deviations, block)
        total = float(np.sum(deviations))
        if not math.isfinite(total):
            # Only a NaN or an infinity makes a float64 sum of a block of float32 values non-finite.
            finite = np.isfinite(block)
            self._nonfinite += int(block.size - finite.sum())
            block = block[finite]
            if block.size == 0:
                return
            deviations = deviations[: block.size]
            np.copyto(deviations, block)
            total = float(np.sum(deviations))
        block_mean = total / block.size
        deviations -= block_mean
        # Not np.dot: a BLAS call wakes its thread pool per block, which on a busy machine costs 5-10x.
        block_m2 = float(np.einsum("i,i->", deviations, deviations))
        self._min = min(self._min, float(block.min()))
        self._max = max(self._max, float(block.max()))
        # Chan et al.'s pairwise combination of (count, mean, M2).
        count = self._count + block.size
        delta = block_mean - self._mean
        self._mean += delta * block.size / count
        self._m2 += block_m2 + delta * delta * self._count * block.size / count
        self._count = count

    def result(self) -> SampleStats:
        if self._pending_size:
            self._reduce_block(np.concatenate(self._pending))
            self._pending, self._pending_size = [], 0
        if self._count == 0:
            return SampleStats(
                count=self._seen, mean=None, var=None, std=None, min=None, max=None, nonfinite=self._nonfinite
            )
        var = max(self._m2 / self._count, 0.0)
        return SampleStats(
            count=self._seen,
            mean=self._mean,
            var=var,
            std=math.sqrt(var),
            min=self._min,
            max=self._max,
            nonfinite=self._nonfinite,
        )

    def ks_sample(self) -> np.ndarray:
        """The systematic subsample (every `ks_stride`-th element), finite values only.

        float32 for float32 tensors, float64 otherwise (every value exactly as stored).
        """
        if not self._ks_parts:
            return np.empty(0)
        sample = self._ks_parts[0] if len(self._ks_parts) == 1 else np.concatenate(self._ks_parts)
        return sample if self._nonfinite == 0 and not self._pending else sample[np.isfinite(sample)]


def describe(values: np.ndarray) -> tuple[SampleStats, np.ndarray]:
    """Statistics and KS subsample of a whole array (the same arithmetic as chunked feeding)."""
    accumulator = StatsAccumulator(int(np.asarray(values).size))
    accumulator.update(values)
    return accumulator.result(), accumulator.ks_sample()
