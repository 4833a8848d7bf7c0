"""Philox4x32-10 as TensorFlow's stateless kernels use it, vectorized over blocks.

A block is one application of the 10-round Philox bijection to a 128-bit counter; it yields four
32-bit words. TensorFlow's stateless ops derive a key and a counter from the two seed words and
then number blocks 0, 1, 2, ... in the low 64 bits of the counter, so any range of blocks can be
generated directly: that is what makes chunked generation exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MULTIPLIER_0 = np.uint64(0xD2511F53)  # 64-bit so the product keeps its high half
_MULTIPLIER_1 = np.uint64(0xCD9E8D57)
_KEY_INCREMENT_0 = 0x9E3779B9
_KEY_INCREMENT_1 = 0xBB67AE85
_MASK32 = 0xFFFFFFFF
_ROUNDS = 10
# TensorFlow hashes the user seed with this fixed key (stateless_random_ops_v2's GetKeyCounter).
_SEED_MIX_KEY = (0x3EC8F720, 0x02461E29)


def philox_rounds(counter: list[np.ndarray], key: tuple[int, int]) -> list[np.ndarray]:
    """Apply the 10 Philox rounds to counter words given as uint32 arrays.

    The state stays in uint32 (half the memory traffic of uint64) and only the two multiplies
    are widened to 64 bits, whose high and low halves feed the next round.

    Args:
        counter: four equally shaped uint32 arrays (c0, c1, c2, c3).
        key: the two 32-bit key words.

    Returns:
        The four output words as uint32 arrays.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    shift = np.uint64(32)
    for _ in range(_ROUNDS):
        product0 = c0.astype(np.uint64)
        product0 *= _MULTIPLIER_0
        product1 = c2.astype(np.uint64)
        product1 *= _MULTIPLIER_1
        high1 = (product1 >> shift).astype(np.uint32)
        high1 ^= c1
        high1 ^= np.uint32(k0)
        high0 = (product0 >> shift).astype(np.uint32)
        high0 ^= c3
        high0 ^= np.uint32(k1)
        c0, c1, c2, c3 = high1, product1.astype(np.uint32), high0, product0.astype(np.uint32)
        k0 = (k0 + _KEY_INCREMENT_0) & _MASK32
        k1 = (k1 + _KEY_INCREMENT_1) & _MASK32
    return [c0, c1, c2, c3]


@dataclass(frozen=True)
class PhiloxStream:
    """The block stream TensorFlow derives from a two-word stateless seed."""

    key: tuple[int, int]
    counter_high: tuple[int, int]

    @classmethod
    def from_seed(cls, seed0: int, seed1: int) -> PhiloxStream:
        """Derive key and counter from the int32/int64 seed pair as TensorFlow does.

        Both seed words are sign-extended to 64 bits and hashed by one Philox block under a
        fixed key; the first two output words are the key, the last two the counter's high half.
        """
        words = []
        for value in (seed0, seed1):
            as_uint64 = value & 0xFFFFFFFFFFFFFFFF
            words += [as_uint64 & _MASK32, as_uint64 >> 32]
        mixed = philox_rounds([np.array([w], dtype=np.uint32) for w in words], _SEED_MIX_KEY)
        m0, m1, m2, m3 = (int(w[0]) for w in mixed)
        return cls(key=(m0, m1), counter_high=(m2, m3))

    def blocks(self, block_indices: np.ndarray) -> np.ndarray:
        """Return the words of the given blocks as a (len(block_indices), 4) uint32 array."""
        indices = np.asarray(block_indices, dtype=np.uint64)
        counter = [
            (indices & np.uint64(_MASK32)).astype(np.uint32),
            (indices >> np.uint64(32)).astype(np.uint32),
            np.full(indices.shape, self.counter_high[0], dtype=np.uint32),
            np.full(indices.shape, self.counter_high[1], dtype=np.uint32),
        ]
        return np.stack(philox_rounds(counter, self.key), axis=-1)

    def block_range(self, start: int, stop: int) -> np.ndarray:
        """Words of blocks start..stop-1, shape (stop - start, 4), dtype uint32."""
        return self.blocks(np.arange(start, stop, dtype=np.uint64))
