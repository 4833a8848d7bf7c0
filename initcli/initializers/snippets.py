"""Self-contained numpy code that reproduces Keras's uniform draws exactly (TensorFlow backend, CPU).

The code printed by `initcli explain NAME --shape S --seed N` for the uniform family: Philox4x32-10
(Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011) keyed from the seed as
TensorFlow's stateless ops key it, the words turned into floats as TensorFlow's `Uint32ToFloat` /
`Uint64ToDouble` / `Uint16ToHalf` do, then `u * (maxval - minval) + minval` in the dtype. It needs
numpy alone; a test runs it in a subprocess and compares with TensorFlow.
"""

from __future__ import annotations

EXACT_DTYPES = ("float32", "float64", "float16")

_PHILOX = '''\
import numpy as np

M32 = np.uint64(0xFFFFFFFF)
U32 = np.uint64(32)


def philox(counter, key):
    """Philox4x32-10: four uint32 counter words (arrays), two key words."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for _ in range(10):
        p0 = c0 * np.uint64(0xD2511F53)
        p1 = c2 * np.uint64(0xCD9E8D57)
        c0, c1, c2, c3 = (
            (p1 >> U32) ^ c1 ^ k0, p1 & M32, (p0 >> U32) ^ c3 ^ k1, p0 & M32
        )
        k0 = (k0 + np.uint64(0x9E3779B9)) & M32
        k1 = (k1 + np.uint64(0xBB67AE85)) & M32
    return c0, c1, c2, c3


def tf_words(seed, count):
    """`count` words of TensorFlow's stateless stream for Keras's int seed."""
    s0, s1 = seed % 2147483646, 0  # Keras: [seed mod (2**31 - 2), 0]
    seed_words = [[s0 & 0xFFFFFFFF], [s0 >> 32], [s1 & 0xFFFFFFFF], [s1 >> 32]]
    mixed = [int(w[0]) for w in philox(seed_words, (0x3EC8F720, 0x02461E29))]
    blocks = np.arange(-(-count // 4), dtype=np.uint64)
    counter = [blocks & M32, blocks >> U32,
               np.full_like(blocks, mixed[2]), np.full_like(blocks, mixed[3])]
    words = philox(counter, mixed[:2])
    # block i gives words 4i .. 4i+3
    return np.stack(words, axis=-1).reshape(-1)[:count]
'''

_UNIT = {
    "float32": (
        "words = tf_words(seed, n)\n"
        "bits = ((words & 0x7FFFFF) | 0x3F800000).astype(np.uint32)\n"
        "u = bits.view(np.float32) - np.float32(1)  # in [0, 1)\n"
        "low, high = np.float32(minval), np.float32(maxval)\n"
    ),
    "float64": (
        "words = tf_words(seed, 2 * n).reshape(-1, 2)  # two words per value\n"
        "bits = ((np.uint64(0x3FF) << np.uint64(52))\n"
        "        | ((words[:, 0] & np.uint64(0xFFFFF)) << U32) | words[:, 1])\n"
        "u = bits.view(np.float64) - 1.0  # in [0, 1)\n"
        "# Keras casts the bounds through float32\n"
        "low, high = np.float64(np.float32(minval)), np.float64(np.float32(maxval))\n"
    ),
    "float16": (
        "words = tf_words(seed, n)\n"
        "bits = ((words & 0x3FF) | (15 << 10)).astype(np.uint16)\n"
        "u = bits.view(np.float16) - np.float16(1)  # in [0, 1)\n"
        "# Keras casts the bounds through float32\n"
        "low, high = np.float16(np.float32(minval)), np.float16(np.float32(maxval))\n"
    ),
}


def uniform_exact(minval: float, maxval: float, shape: tuple[int, ...], dtype: str, seed: int, bounds: str) -> str:
    """numpy code printing the values `keras.random.uniform(shape, minval, maxval, dtype, seed)` gives.

    `bounds` says where minval and maxval come from (a comment in the code).
    """
    if dtype not in EXACT_DTYPES:
        raise ValueError(f"no exact numpy snippet for {dtype}")
    return (
        _PHILOX
        + "\n\n"
        + f"seed, shape = {seed!r}, {tuple(shape)!r}\n"
        + f"# {bounds}\n"
        + f"minval, maxval = {minval!r}, {maxval!r}\n"
        + f"n = {_product(shape)}\n"
        + _UNIT[dtype]
        + "# u * (high - low) + low, each op rounded in the dtype, as TensorFlow\n"
        + "w = (u * (high - low) + low).reshape(shape)\n"
        + 'print(np.array2string(w, separator=", ", floatmode="unique",\n'
        + "                      threshold=w.size + 1))\n"
    )


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for dimension in shape:
        total *= dimension
    return total


def torch_uniform_exact(minval: float, maxval: float, shape: tuple[int, ...], dtype: str, seed: int) -> str:
    """numpy code printing what Keras 3's torch backend draws for `uniform(shape, minval, maxval, dtype, seed)`."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"no exact torch numpy snippet for {dtype}")
    if dtype == "float32":
        unit = (
            "words = mt.random_raw(n)\n"
            "u = (words & 0xFFFFFF).astype(np.float32) * np.float32(2.0**-24)  # torch.rand: 24 bits\n"
        )
    else:
        unit = (
            "words = mt.random_raw(2 * n).reshape(-1, 2)  # two words per value, the first high\n"
            "bits = ((words[:, 0] << np.uint64(32)) | words[:, 1]) & np.uint64(2**53 - 1)\n"
            "u = bits.astype(np.float64) * 2.0**-53  # torch.rand: 53 bits\n"
        )
    return (
        "import numpy as np\n\n"
        f"seed, shape, dtype = {seed!r}, {tuple(shape)!r}, np.{dtype}\n"
        f"minval, maxval = {minval!r}, {maxval!r}\n"
        f"n = {_product(shape)}\n"
        "# torch.Generator().manual_seed(seed & 0xFFFFFFFF): mt19937's init_genrand, as numpy's legacy seeding\n"
        "_, key, pos, *_ = np.random.RandomState(seed & 0xFFFFFFFF).get_state(legacy=True)\n"
        "mt = np.random.MT19937()\n"
        'mt.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": int(pos)}}\n'
        + unit
        + "# Keras: (maxval - minval) * rand + minval, each op rounded in the dtype\n"
        "w = (dtype(maxval - minval) * u.astype(dtype) + dtype(minval)).reshape(shape)\n"
        'print(np.array2string(w, separator=", ", floatmode="unique",\n'
        "                      threshold=w.size + 1))\n"
    )
