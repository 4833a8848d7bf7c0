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

from initcli.parallel.scratch import Scratch, counting

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
    c0, c1, c2, c3 = (np.ascontiguousarray(word, dtype=np.uint32) for word in counter)
    words = [np.empty(c0.size, dtype=np.uint32) for _ in range(4)]
    # The rounds take the counter's last two words as numbers: one run per distinct pair of them.
    high = (c2.astype(np.uint64) << np.uint64(32)) | c3
    for pair in _distinct(high):
        where = np.flatnonzero(high == pair)
        even, odd = _rounds(c0[where], c1[where], pair >> 32, pair & _MASK32, key, Scratch())
        size = where.size
        for word, part in zip(words, (even[:size], odd[:size], even[size:], odd[size:])):
            word[where] = part
    return words


def _distinct(values: np.ndarray) -> list[int]:
    """The distinct values, ascending, as `np.unique(values).tolist()` gives them, without `np.unique`:
    it imports `numpy.ma` on its first call (7 ms of a 0.15 s start-up target, issue 25)."""
    if (values == values[:1]).all():  # the usual case: one stream's counter high half (or no values)
        return values[:1].tolist()
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))].tolist()


def _rounds(
    c0: np.ndarray, c1: np.ndarray, c2: int, c3: int, key: tuple[int, int], scratch: Scratch
) -> tuple[np.ndarray, np.ndarray]:
    """The 10 Philox rounds on counters (c0[i], c1[i], c2, c3); returns the output words as
    (c0 | c2, c1 | c3), each 2n long, the first contiguous and the second a strided view.

    A round is two 32x32 -> 64-bit multiplies, c2 * M1 and c0 * M0, whose high halves, xored
    with the other words and the key, are the next c0 and c2, and whose low halves are the next
    c1 and c3. Here the products of a round are one uint64 array [c2 * M1 | c0 * M0] and the
    next (c0 | c2) are computed as uint64 too, so every operation reads and writes contiguous
    memory: as uint32 words, the high half of product i is word 2i + 1 and the low half of the
    previous round's product i is word 2i, so one xor of the two arrays offset by one word puts
    each next c0 or c2 in an even word; the odd words, filled with other bits, are masked off.
    The first round is cheaper: c2 and c3 are the same for every block (the counter's high
    half), so c2 * M1 is one number. The last round writes (c0 | c2) as contiguous uint32.
    Buffers come from `scratch`; the result is valid until its Philox buffers are next used.
    """
    size = c0.size
    k0, k1 = key
    products = [scratch(f"philox-products-{parity}", np.uint64, 2 * size) for parity in (0, 1)]
    words = [product.view(np.uint32) for product in products]
    evens = scratch("philox-evens", np.uint64, 2 * size)  # next (c0 | c2), one per uint64
    even_words = evens.view(np.uint32)
    multiply, xor = np.multiply, np.bitwise_xor
    # Round 1: c2 * M1 is a number, and so its high half xor k0 (to go with c1) and its low half.
    first = c2 * int(_MULTIPLIER_1)
    products[0][:size].fill(first)
    multiply(c0, _MULTIPLIER_0, out=products[0][size:])
    xor(c1, np.uint32((first >> 32) ^ k0), out=evens[:size])
    np.right_shift(products[0][size:], np.uint64(32), out=evens[size:])
    xor(evens[size:], np.uint64(c3 ^ k1), out=evens[size:])
    # Rounds 2 to 9: words of the product xor words of the previous one, one word apart.
    high_first = sys.byteorder == "little"  # the high half of a uint64 is its second word
    for round_index in range(1, _ROUNDS):
        k0 = (k0 + _KEY_INCREMENT_0) & _MASK32
        k1 = (k1 + _KEY_INCREMENT_1) & _MASK32
        product = products[round_index % 2]
        multiply(evens[size:], _MULTIPLIER_1, out=product[:size])
        multiply(evens[:size], _MULTIPLIER_0, out=product[size:])
        if round_index == _ROUNDS - 1:
            break
        current, previous = words[round_index % 2], words[(round_index - 1) % 2]
        if high_first:
            xor(current[1:], previous[:-1], out=even_words[:-1])
        else:
            xor(current[:-1], previous[1:], out=even_words[1:])
        xor(even_words[: 2 * size], np.uint32(k0), out=even_words[: 2 * size])
        xor(even_words[2 * size :], np.uint32(k1), out=even_words[2 * size :])
        np.bitwise_and(evens, np.uint64(_MASK32), out=evens)
    # Round 10: (c0 | c2) into contiguous uint32, (c1 | c3) are the product's low halves.
    low, high = _halves(products[(_ROUNDS - 1) % 2])
    previous_low, _ = _halves(products[_ROUNDS % 2])
    even = scratch("philox-even", np.uint32, 2 * size)
    xor(high[:size], previous_low[:size], out=even[:size])
    xor(high[size:], previous_low[size:], out=even[size:])
    xor(even[:size], np.uint32(k0), out=even[:size])
    xor(even[size:], np.uint32(k1), out=even[size:])
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
        return _rounds(low, high, self.counter_high[0], self.counter_high[1], self.key, scratch)
