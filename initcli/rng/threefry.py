"""Threefry-2x32 (20 rounds), the block function behind `jax.random`'s default PRNG, in numpy.

One application maps a 64-bit key (k0, k1) and a 64-bit counter (x0, x1) to two 32-bit words. The
rounds are Salmon et al.'s (Random123) with JAX's rotation schedule; every operation is uint32
arithmetic modulo 2^32, vectorised over any number of counters.
"""

from __future__ import annotations

import numpy as np

# Threefry-2x32 rotation constants, in two alternating groups of four rounds.
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA  # Skein's key-schedule parity constant
_MASK32 = 0xFFFFFFFF


def _rotate_left(x: np.ndarray, bits: int, out: np.ndarray, tmp: np.ndarray) -> None:
    """out = rotl32(x, bits), with `tmp` as scratch (out may not be x)."""
    np.left_shift(x, np.uint32(bits), out=out)
    np.right_shift(x, np.uint32(32 - bits), out=tmp)
    np.bitwise_or(out, tmp, out=out)


def threefry2x32(key: tuple[int, int], x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two output words of threefry2x32 for key (k0, k1) and counters (x0[i], x1[i]).

    Twenty rounds: five groups of four mixes (add, rotate, xor) with the key injected before the
    first group and after each one (word 1 also gets the injection number).
    """
    k0, k1 = key[0] & _MASK32, key[1] & _MASK32
    schedule = (k0, k1, k0 ^ k1 ^ _PARITY)
    a = np.add(np.asarray(x0, dtype=np.uint32), np.uint32(schedule[0]), dtype=np.uint32)
    b = np.add(np.asarray(x1, dtype=np.uint32), np.uint32(schedule[1]), dtype=np.uint32)
    rotated, tmp = np.empty_like(b), np.empty_like(b)
    for injection in range(1, 6):
        for bits in ROTATIONS[(injection - 1) % 2]:
            np.add(a, b, out=a)
            _rotate_left(b, bits, rotated, tmp)
            np.bitwise_xor(rotated, a, out=b)
        np.add(a, np.uint32(schedule[injection % 3]), out=a)
        np.add(b, np.uint32((schedule[(injection + 1) % 3] + injection) & _MASK32), out=b)
    return a, b
