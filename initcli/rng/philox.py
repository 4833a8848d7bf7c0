"""Philox4x32-10 as TensorFlow's stateless kernels use it, vectorized over blocks.

A block is one application of the 10-round Philox bijection to a 128-bit counter; it yields four
32-bit words. TensorFlow's stateless ops derive a key and a counter from the two seed words and
then number blocks 0, 1, 2, ... in the low 64 bits of the counter, so any range of blocks can be
generated directly: that is what makes chunked generation exact.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from initcli.scratch import Scratch, counting

_MULTIPLIER_0 = np.uint64(0xD2511F53)  # 64-bit so the product keeps its high half
_MULTIPLIER_1 = np.uint64(0xCD9E8D57)
_KEY_INCREMENT_0 = 0x9E3779B9
_KEY_INCREMENT_1 = 0xBB67AE85
_MASK32 = 0xFFFFFFFF
_ROUNDS = 10
# TensorFlow hashes the user seed with this fixed key (stateless_random_ops_v2's GetKeyCounter).
_SEED_MIX_KEY = (0x3EC8F720, 0x02461E29)


def philox_rounds(counter: list[np.ndarray], key: tuple[int, int]) -> list[np.ndarray]:
    """Apply the 10 Philox rounds to counter words given as 1-D uint32 arrays; return the 4 output words."""
    even, odd = _rounds(counter, key, Scratch())
    size = counter[0].size
    return [even[:size], odd[:size], even[size:], odd[size:]]


def _rounds(counter: list[np.ndarray], key: tuple[int, int], scratch: Scratch) -> tuple[np.ndarray, np.ndarray]:
    """The 10 Philox rounds; returns the output words as (c0 | c2, c1 | c3), each 2n long.

    The state stays in uint32 and only the two multiplies are widened to 64 bits; the high and low
    halves of each product are read in place as uint32 views of it (no shifts or casts). Every
    round writes into `scratch` buffers, alternating between two sets so that a round never
    overwrites the words it reads. The result is those buffers (c1 | c3 a strided view), valid
    until the scratch's Philox buffers are next used.
    """
    c0, c1, c2, c3 = counter
    size = c0.size
    k0, k1 = key
    # The two sets of buffers and their views, looked up once (per round they cost a tenth of it).
    products = [scratch(f"philox-products-{parity}", np.uint64, 2 * size) for parity in (0, 1)]
    evens = [scratch(f"philox-even-{parity}", np.uint32, 2 * size) for parity in (0, 1)]
    halves = [_halves(product) for product in products]
    multiply, xor = np.multiply, np.bitwise_xor
    for round_index in range(_ROUNDS):
        parity = round_index % 2
        # product[:size] = c2 * M1 and product[size:] = c0 * M0: their low halves are the next
        # c1 | c3, their high halves (xor the old c1 | c3 and the key) the next c0 | c2.
        product, even, (low, high) = products[parity], evens[parity], halves[parity]
        multiply(c2, _MULTIPLIER_1, out=product[:size])
        multiply(c0, _MULTIPLIER_0, out=product[size:])
        even_0, even_2 = even[:size], even[size:]
        xor(high[:size], c1, out=even_0)
        xor(high[size:], c3, out=even_2)
        xor(even_0, np.uint32(k0), out=even_0)
        xor(even_2, np.uint32(k1), out=even_2)
        c0, c1, c2, c3 = even_0, low[:size], even_2, low[size:]
        k0 = (k0 + _KEY_INCREMENT_0) & _MASK32
        k1 = (k1 + _KEY_INCREMENT_1) & _MASK32
    return even, low


def _halves(products: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) 32-bit halves of uint64 values, as strided uint32 views."""
    words = products.view(np.uint32)
    return (words[0::2], words[1::2]) if sys.byteorder == "little" else (words[1::2], words[0::2])


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

    def word_pairs(
        self,
        start: int,
        count: int,
        scratch: Scratch,
        stride: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Words of blocks start, start + stride, ... (count blocks) as two arrays of 2 * count.

        The arrays are (w0 | w2) and (w1 | w3): word k of the i-th block is element i of w_k. This
        is the layout the kernels consume without copies, one Box-Muller input (or one uniform
        word) per array. They are views of `scratch` buffers (the second strided).
        """
        low = scratch("philox-counter-low", np.uint32, count)
        high = scratch("philox-counter-high", np.uint32, count)
        last = start + (count - 1) * stride
        if count and start >> 32 == last >> 32:  # no carry into the high word inside the range
            if stride == 1:
                np.add(counting(count, np.uint32), np.uint32(start & _MASK32), out=low)
            else:
                np.multiply(counting(count, np.uint32), np.uint32(stride), out=low)
                np.add(low, np.uint32(start & _MASK32), out=low)
            high.fill(start >> 32)
        else:
            indices = np.arange(start, last + 1, stride, dtype=np.uint64)
            np.copyto(low, indices & np.uint64(_MASK32), casting="unsafe")
            np.copyto(high, indices >> np.uint64(32), casting="unsafe")
        return self._pairs_from_counter(low, high, scratch)

    def word_pairs_at(self, block_indices: np.ndarray, scratch: Scratch) -> tuple[np.ndarray, np.ndarray]:
        """`word_pairs` for arbitrary block indices (a 1-D integer array)."""
        indices = np.asarray(block_indices, dtype=np.uint64)
        low = scratch("philox-counter-low", np.uint32, indices.size)
        high = scratch("philox-counter-high", np.uint32, indices.size)
        np.copyto(low, indices & np.uint64(_MASK32), casting="unsafe")
        np.copyto(high, indices >> np.uint64(32), casting="unsafe")
        return self._pairs_from_counter(low, high, scratch)

    def _pairs_from_counter(
        self,
        low: np.ndarray,
        high: np.ndarray,
        scratch: Scratch,
    ) -> tuple[np.ndarray, np.ndarray]:
        counter_2 = scratch("philox-counter-2", np.uint32, low.size)
        counter_2.fill(self.counter_high[0])
        counter_3 = scratch("philox-counter-3", np.uint32, low.size)
        counter_3.fill(self.counter_high[1])
        return _rounds([low, high, counter_2, counter_3], self.key, scratch)
