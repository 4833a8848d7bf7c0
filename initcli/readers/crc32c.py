"""CRC-32C (Castagnoli), as TensorFlow checksums its checkpoint blocks and tensors, in numpy.

A byte-at-a-time table loop in Python runs at ~10 MB/s, too slow for a 100 MB checkpoint. Here the
data is cut into many equal lanes that numpy advances together, four bytes per step (the
"slicing-by-4" tables), and the lanes' checksums are then merged: a CRC register is linear over
GF(2), so crc(A || B) = shift(crc(A), len(B)) xor crc(B), where shifting by n zero bytes is a
32x32 bit matrix applied through four 256-entry tables.
"""

from __future__ import annotations

from functools import cache

import numpy as np

_POLYNOMIAL = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8
_SMALL = 1024  # below this many bytes, a plain Python loop is faster than numpy's per-call cost
_MAX_LANES = 4096
_MAX_LANE_WORDS = 1024


def _byte_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLYNOMIAL if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _byte_table()


@cache
def _word_tables() -> np.ndarray:
    """(4, 256) tables: row k maps a byte to its effect after k more bytes (slicing-by-4).

    Held as int64 so that numpy indexes and combines them without converting index arrays.
    """
    tables = np.zeros((4, 256), dtype=np.int64)
    tables[0] = _TABLE
    for k in range(1, 4):
        previous = tables[k - 1]
        tables[k] = (previous >> 8) ^ tables[0][previous & 0xFF]
    return tables


def _advance_words(state: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Feed one little-endian 32-bit word per lane into the lanes' CRC registers (int64 arrays)."""
    table0, table1, table2, table3 = _word_tables()
    x = state ^ words
    return table3[x & 0xFF] ^ table2[(x >> 8) & 0xFF] ^ table1[(x >> 16) & 0xFF] ^ table0[x >> 24]


def _tables_from_columns(columns: np.ndarray) -> np.ndarray:
    """(4, 256) lookup tables applying the GF(2) matrix whose column j is the image of bit j."""
    tables = np.zeros((4, 256), dtype=np.int64)
    values = np.arange(256)
    for k in range(4):
        for bit in range(8):
            tables[k][(values >> bit) & 1 == 1] ^= columns[8 * k + bit]
    return tables


def _apply(tables: np.ndarray, registers: np.ndarray) -> np.ndarray:
    return (
        tables[0][registers & 0xFF]
        ^ tables[1][(registers >> 8) & 0xFF]
        ^ tables[2][(registers >> 16) & 0xFF]
        ^ tables[3][registers >> 24]
    )


@cache
def _shift_tables(words: int) -> np.ndarray:
    """Tables of the linear map 'feed `words` zero words' (words is a power of two)."""
    if words == 1:
        basis = np.left_shift(1, np.arange(32, dtype=np.int64))
        return _tables_from_columns(_advance_words(basis, np.zeros(32, dtype=np.int64)))
    half = _shift_tables(words // 2)
    basis = np.left_shift(1, np.arange(32, dtype=np.int64))
    return _tables_from_columns(_apply(half, _apply(half, basis)))


def _lanes_register(words: np.ndarray, lanes: int, lane_words: int) -> int:
    """The CRC register (from zero) of lanes·lane_words words, both powers of two."""
    block = words.reshape(lanes, lane_words)
    state = np.zeros(lanes, dtype=np.int64)
    for column in range(lane_words):
        state = _advance_words(state, block[:, column])
    span = lane_words
    while len(state) > 1:
        state = _apply(_shift_tables(span), state[0::2]) ^ state[1::2]
        span *= 2
    return int(state[0])


def _power_of_two_at_most(value: int) -> int:
    return 1 << (value.bit_length() - 1)


def _register(register: int, data: memoryview) -> int:
    """Advance a raw CRC register (no pre/post inversion) over `data`."""
    position = 0
    total = len(data)
    while total - position >= _SMALL:
        available_words = (total - position) // 4
        lanes = min(_MAX_LANES, _power_of_two_at_most(available_words))
        lane_words = min(_MAX_LANE_WORDS, _power_of_two_at_most(available_words // lanes))
        count = lanes * lane_words
        words = np.frombuffer(data[position : position + 4 * count], dtype="<u4")
        segment = _lanes_register(words, lanes, lane_words)
        shifted = _apply(_shift_tables(count), np.array([register], dtype=np.int64))
        register = int(shifted[0]) ^ segment
        position += 4 * count
    table = _TABLE
    for byte in data[position:]:
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-32C of `data`, continuing from the checksum `value` of earlier data (0 to start)."""
    view = memoryview(data).cast("B")
    return _register(value ^ 0xFFFFFFFF, view) ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """TensorFlow's (LevelDB's) masked CRC, stored so that a CRC of data holding CRCs stays robust."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    """Inverse of `mask`."""
    rotated = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF
