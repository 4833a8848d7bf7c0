"""Chunked moments and their merging (`initcli.stats.chunkmoments`), numpy on the whole array as the oracle."""

from __future__ import annotations

import json
import math

import ml_dtypes
import numpy as np
import pytest

from initcli.stats.chunkmoments import BLOCK_ELEMENTS, EMPTY, Moments, MomentStream, block_moments, fold, merge

TOLERANCE = 1e-12  # mean and std, relative to numpy's float64 pass (the module's stated bound is far below)


def _values() -> list[np.ndarray]:
    rng = np.random.default_rng(25)
    return [
        (rng.standard_normal(3 * BLOCK_ELEMENTS + 1234) * 0.02 + 0.5).astype(np.float32),
        (rng.uniform(-3, 5, 2 * BLOCK_ELEMENTS + 7)).astype(ml_dtypes.bfloat16),
        rng.standard_normal(BLOCK_ELEMENTS - 1) * 1e3,
    ]


def _streamed(values: np.ndarray, chunk: int, **options: object) -> MomentStream:
    stream = MomentStream(**options)  # type: ignore[arg-type]
    for start in range(0, values.size, chunk):
        stream.update(values[start : start + chunk])
    stream.finish()
    return stream


def _assert_like_numpy(moments: Moments, values: np.ndarray) -> None:
    exact = values.astype(np.float64)
    finite = exact[np.isfinite(exact)]
    assert moments.count == finite.size
    assert moments.nonfinite == values.size - finite.size
    assert moments.min == finite.min() and moments.max == finite.max()
    assert moments.mean == pytest.approx(finite.mean(), rel=TOLERANCE)
    assert moments.variance is not None
    assert math.sqrt(moments.variance) == pytest.approx(finite.std(), rel=TOLERANCE)


@pytest.mark.parametrize("chunk", [1000, BLOCK_ELEMENTS, 1 << 22])
def test_streamed_moments_equal_numpy_and_do_not_depend_on_the_chunking(chunk: int) -> None:
    for values in _values():
        stream = _streamed(values, chunk)
        _assert_like_numpy(stream.total, values)
        assert stream.total == _streamed(values, 4099).total  # bit for bit


def test_merging_two_halves_equals_numpy_on_the_whole() -> None:
    rng = np.random.default_rng(7)
    left = rng.normal(3.0, 0.5, 5000)
    right = rng.normal(-1.0, 2.0, 3000)  # different means: the delta term matters
    merged = merge(block_moments(left), block_moments(right))
    _assert_like_numpy(merged, np.concatenate([left, right]))
    assert merge(merged, EMPTY) == merged
    assert fold([]) == EMPTY


def test_block_aligned_ranges_computed_apart_fold_to_the_same_bits() -> None:
    """What a Dask or fan-out path does: ranges read elsewhere, blocks folded in global order."""
    values = _values()[0]
    whole = _streamed(values, 1 << 20).total
    cut = 2 * BLOCK_ELEMENTS
    first = _streamed(values[:cut], 5000, keep_blocks=True)
    second = _streamed(values[cut:], 777, first_index=cut, keep_blocks=True)
    assert first.blocks is not None and second.blocks is not None
    assert len(first.blocks) + len(second.blocks) == -(-values.size // BLOCK_ELEMENTS)
    assert fold(first.blocks + second.blocks) == whole
    assert fold(second.blocks, start=fold(first.blocks)) == whole
    # Folded partials merged as a tree: exact where it can be, within the bound on the rest.
    tree = merge(first.total, second.total)
    assert (tree.count, tree.min, tree.max) == (whole.count, whole.min, whole.max)
    assert tree.mean == pytest.approx(whole.mean, rel=TOLERANCE)
    with pytest.raises(ValueError, match="multiple of"):
        MomentStream(first_index=100)


def test_nonfinite_values_are_counted_apart() -> None:
    values = np.arange(3 * BLOCK_ELEMENTS, dtype=np.float32)
    values[[5, BLOCK_ELEMENTS + 1]] = np.nan
    values[-1] = np.inf
    values[BLOCK_ELEMENTS * 2 : BLOCK_ELEMENTS * 2 + 10] = -np.inf
    _assert_like_numpy(_streamed(values, 12345).total, values)
    only_nan = _streamed(np.full(10, np.nan, np.float32), 3).total
    assert (only_nan.count, only_nan.nonfinite, only_nan.variance) == (0, 10, None)


def test_moments_survive_json() -> None:
    for moments in (_streamed(_values()[0], 1 << 20).total, EMPTY, Moments(nonfinite=3)):
        assert Moments.from_dict(json.loads(json.dumps(moments.to_dict()))) == moments
