"""numpy programs that print what Keras 3 draws for the normal families on JAX and torch (CPU).

`explain --backend jax|torch --seed N` prints them for RandomNormal, TruncatedNormal and the
variance-scaling normals (Glorot/He/Lecun normal, VarianceScaling truncated/untruncated normal):

- jax, float32 (either threefry mode): threefry2x32, the bits' layout, then `jax.random.normal`'s
  `sqrt(2) * erf_inv(u)` or `truncated_normal`'s clipped `sqrt(2) * erf_inv(erf(-2/sqrt2) .. erf(2/sqrt2))`
  with XLA's CPU float32 kernels, and Keras's `* stddev + mean`. Exact: the kernels are
  `initcli.rng.xla`'s source, copied into the program, so the program and initcli's sampler are one code.
- torch, float32: mt19937 (numpy's), then `torch.normal`'s CPU kernel: 16 values at a time by Box-Muller
  with avx_mathfun's log/sincos and GCC's fused multiply-adds (`initcli.rng.torch`'s source), the last 16
  recomputed, and below 16 values ATen's double Box-Muller. Exact.
- torch, float64: below 16 values exact (the double path); from 16 on, ATen's `normal_fill<double>`
  with numpy's log/sin/cos in place of glibc's (initcli.rng.glibc64 ports them, too long to print):
  not bit-exact, and the program says so with the largest difference measured against torch.
- Keras's torch `truncated_normal`: `normal(shape + (4,))`, the first of each 4 inside (-2, 2).

Other dtypes (float16, bfloat16) get no program: `initcli sample --save` writes their exact values.
"""

from __future__ import annotations

import inspect
import math

from initcli.rng import torch as rt
from initcli.rng import xla

#: The largest difference, in float64 ulps, between the torch float64 program (16 values and more)
#: and torch itself: 3 over 165 Keras cases, 2 over the 55 float64 ones in tests/golden/torch_normal_programs.npz
#: (tests/test_backends_explain.py checks the bound).
TORCH_FLOAT64_MAX_ULP = 3

_PRINT = 'print(np.array2string(w, separator=", ", floatmode="unique",\n                      threshold=w.size + 1))\n'


def _module_body(module: object, start: str, stop: str | None = None) -> str:
    """The module's source from the line starting with `start` up to the one starting with `stop`."""
    lines = inspect.getsource(module).splitlines(keepends=True)  # type: ignore[arg-type]
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = len(lines) if stop is None else next(i for i, line in enumerate(lines) if line.startswith(stop))
    return "".join(lines[first:last])


def _xla_kernels() -> str:
    """XLA's CPU float32 fma, log, log1p, erf_inv and erf, as initcli.rng.xla has them."""
    return _module_body(xla, "_F32 = ")


def jax_normal_program(unit: str, mean: float, stddev: float, shape: tuple[int, ...], seed: int, backend: str) -> str:
    """numpy code printing Keras-on-JAX's float32 `normal` or `truncated_normal(shape) * stddev + mean`, in the
    threefry mode of `backend` (jax or jax:unpartitioned)."""
    from initcli.initializers.backends import THREEFRY_PROGRAM, threefry_counters

    if unit == "normal":
        transform = (
            "# jax.random.normal: a uniform on (nextafter(-1, 0), 1), then sqrt(2) * erf_inv\n"
            "low = np.nextafter(np.float32(-1), np.float32(0))\n"
            "u = np.maximum(low, fma32(u01, np.float32(1) - low, low))\n"
            "z = erfinv_f32(u) * np.float32(np.sqrt(2))\n"
        )
    else:
        transform = (
            "# jax.random.truncated_normal(key, -2, 2): a uniform on (erf(-2/sqrt2), erf(2/sqrt2)),\n"
            "# sqrt(2) * erf_inv, clipped inside (-2, 2); XLA multiplies by float32(1/sqrt(2))\n"
            "a = erf_f32(np.float32(-2) * np.float32(0.707106769))[()]\n"
            "b = erf_f32(np.float32(2) * np.float32(0.707106769))[()]\n"
            "u = np.maximum(a, fma32(u01, np.float32(b - a), a))\n"
            "z = erfinv_f32(u) * np.float32(np.sqrt(2))\n"
            "z = np.minimum(np.maximum(z, np.nextafter(np.float32(-2), np.float32(np.inf))),\n"
            "               np.nextafter(np.float32(2), np.float32(-np.inf)))\n"
        )
    return (
        "from __future__ import annotations\n\n"
        "import numpy as np\n\n"
        f"seed, shape = {seed!r}, {tuple(shape)!r}\n"
        f"mean, stddev = np.float32({mean!r}), np.float32({stddev!r})\n"
        f"n = {math.prod(shape)}\n\n"
        "# ---- XLA's CPU float32 kernels (FMAs where LLVM contracts them) ----\n"
        + _xla_kernels()
        + "\n\n"
        + THREEFRY_PROGRAM
        + "\n\n"
        + threefry_counters(backend)
        + "u01 = ((bits >> np.uint32(9)) | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)  # [0, 1)\n"
        + transform
        + "# Keras: * stddev, then + mean, each rounded to float32\n"
        "w = (z * stddev + mean).reshape(shape)\n" + _PRINT
    )


def _torch_kernels() -> str:
    """avx_mathfun's float32 log and sincos with GCC's FMAs, and ATen's 16-value Box-Muller."""
    return (
        "_F32 = np.float32\n\n\n"
        + inspect.getsource(xla.fma32)
        + "\n\n_fma = fma32\n"
        + _module_body(rt, "_MIN_NORM_POS", "def _fma(")
        + "\n"
        + inspect.getsource(rt.log256_ps)
        + "\n\n"
        + inspect.getsource(rt.sincos256_ps)
        + "\n\n"
        + "_TWO_PI_F32 = _F32(2.0 * math.pi)\n\n\n"
        + inspect.getsource(rt._box_muller_16)
    )


_TORCH_STREAM = (
    "# torch.Generator().manual_seed(seed & 0xFFFFFFFF): mt19937's init_genrand, as numpy's legacy seeding\n"
    "_, key, pos, *_ = np.random.RandomState(seed & 0xFFFFFFFF).get_state(legacy=True)\n"
    "mt = np.random.MT19937()\n"
    'mt.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": int(pos)}}\n\n\n'
    "def words64(count):  # torch's random64(): two words, the first high\n"
    "    pairs = mt.random_raw(2 * count).reshape(-1, 2)\n"
    "    return (pairs[:, 0] << np.uint64(32)) | pairs[:, 1]\n\n\n"
    "def units53(count):  # 53-bit double uniforms in [0, 1)\n"
    "    return (words64(count) & np.uint64(2**53 - 1)).astype(np.float64) * 2.0**-53\n\n\n"
    "def fma64(a, b, c):  # one rounding of a * b + c\n"
    "    return float(Fraction(a) * Fraction(b) + Fraction(c))\n\n\n"
    "def normal_small(count, mean, std):  # ATen's normal_distribution<double>, below 16 values\n"
    "    u = units53(2 * ((count + 1) // 2)).tolist()\n"
    "    out = []\n"
    "    for k in range(0, count, 2):\n"
    "        radius = math.sqrt(-2.0 * math.log1p(-u[k + 1]))\n"
    "        theta = 2.0 * math.pi * u[k]\n"
    "        out += [fma64(radius * math.cos(theta), std, mean), fma64(radius * math.sin(theta), std, mean)]\n"
    "    return np.asarray(out[:count], np.float64)\n"
)

_TORCH_GROUPS = (
    "def normal(count, mean, std):\n"
    "    # torch.normal(mean, std, size=(count,)): all uniforms first, Box-Muller 16 at a time; when count\n"
    "    # is not a multiple of 16 the last 16 values are redone from 16 fresh uniforms\n"
    "    if count < 16:\n"
    "        return normal_small(count, mean, std).astype(DTYPE)\n"
    "    out = box_muller_16(units(count // 16 * 16).reshape(-1, 16), mean, std).reshape(-1)\n"
    "    if count % 16:\n"
    "        units(count % 16)  # the tail's uniforms, drawn and overwritten\n"
    "        out = np.concatenate([out[: count - 16], box_muller_16(units(16).reshape(1, 16), mean, std)[0]])\n"
    "    return out\n"
)

_TORCH_FLOAT32 = (
    "DTYPE = np.float32\n\n\n"
    "def units(count):  # torch.rand: 24 bits per float32\n"
    "    return (mt.random_raw(count) & 0xFFFFFF).astype(np.float32) * np.float32(2.0**-24)\n\n\n"
    "def box_muller_16(uniforms, mean, std):\n"
    "    return _box_muller_16(uniforms, np.float32(mean), np.float32(std))\n"
)

_TORCH_FLOAT64 = (
    "DTYPE = np.float64\n"
    "units = units53\n\n\n"
    "def box_muller_16(uniforms, mean, std):  # ATen's normal_fill_16<double>\n"
    "    radius = np.sqrt(-2.0 * np.log(1.0 - uniforms[:, :8]))  # NOT glibc's log: see above\n"
    "    theta = (2.0 * math.pi) * uniforms[:, 8:]\n"
    "    z = np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1)\n"
    "    if std == 1 and mean == 0:\n"
    "        return z\n"
    "    return np.vectorize(fma64, otypes=[np.float64])(z, std, mean)  # GCC fuses z * std + mean\n"
)


def torch_normal_program(
    unit: str, mean: float, stddev: float, shape: tuple[int, ...], dtype: str, seed: int
) -> tuple[str, bool]:
    """numpy code printing Keras-on-torch's `normal(shape, mean, stddev)` or `truncated_normal`, and
    whether it is bit-exact (float32 always; float64 below 16 values drawn)."""
    size = math.prod(shape)
    drawn = size if unit == "normal" else 4 * size
    exact = dtype == "float32" or drawn < 16
    header = (
        "from __future__ import annotations\n\nimport math\nfrom fractions import Fraction\n\nimport numpy as np\n\n"
    )
    if not exact:
        header += (
            f"# NOT bit-exact: torch's float64 normals use glibc's log/sin/cos; numpy's stand in here, and\n"
            f"# differ from torch by up to {TORCH_FLOAT64_MAX_ULP} ulp (measured against torch 2 on x86-64).\n"
            "# initcli sample --backend torch --dtype float64 --save FILE.npy writes the exact values.\n"
        )
    header += f"seed, shape = {seed!r}, {tuple(shape)!r}\nmean, stddev = {mean!r}, {stddev!r}\nn = {size}\n\n"
    kernels = (_torch_kernels() + "\n\n" + _TORCH_FLOAT32) if dtype == "float32" else _TORCH_FLOAT64
    if unit == "normal":
        body = "w = normal(n, mean, stddev).reshape(shape)\n"
    else:
        body = (
            "# Keras on torch: normal(shape + (4,)), the first of each 4 inside (-2, 2) (the first if none),\n"
            "# then * stddev + mean, each rounded to the dtype\n"
            "z = normal(4 * n, 0.0, 1.0).reshape(n, 4)\n"
            "z = z[np.arange(n), np.argmax((z > -2) & (z < 2), axis=1)]\n"
            "w = (z * DTYPE(stddev) + DTYPE(mean)).reshape(shape)\n"
        )
    program = header + _TORCH_STREAM + "\n\n" + kernels + "\n\n" + _TORCH_GROUPS + "\n\n" + body + _PRINT
    return program, exact
