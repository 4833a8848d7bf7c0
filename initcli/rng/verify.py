"""Check the numpy ports of glibc's math functions against this machine's C library.

    python -m initcli.rng.verify

float32 (`logf`, `sincosf`): every input TensorFlow's float32 Box-Muller step can pass them (2^23
each). float64 (`log`, `sincos`): their inputs cannot be enumerated (2^52 each), so a fixed
sample of 2^23 drawn as the Box-Muller step draws them, every branch boundary of both algorithms
(thresholds, the Taylor cut at 0.126, the rounding points of the 128-entry sine table and of the
quadrant) with the 64 doubles either side, and a sweep of every `log` table index at every
exponent in the domain. Prints the mismatches (expected: 0; about a minute). Linux/glibc only;
the test suite runs smaller versions of the same comparisons.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import time

import numpy as np

from initcli.rng import glibc64
from initcli.rng.glibc import logf, sincosf

_OFF = 0x3FE6000000000000  # e_log.c's subinterval origin
_EPSILON_64 = 1.0e-7  # BoxMullerDouble's lower bound on u1


def box_muller_inputs() -> tuple[np.ndarray, np.ndarray]:
    """All (u1, v1) BoxMullerFloat can compute: logf's and sincosf's inputs, 2^23 each."""
    mantissas = np.arange(1 << 23, dtype=np.uint32)
    unit = (mantissas | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)
    u1 = np.maximum(unit, np.float32(1e-7))
    v1 = (2.0 * np.pi * unit.astype(np.float64)).astype(np.float32)
    return u1, v1


def _libm() -> ctypes.CDLL:
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    libm.logf.restype, libm.logf.argtypes = ctypes.c_float, [ctypes.c_float]
    libm.sincosf.restype = None
    libm.sincosf.argtypes = [ctypes.c_float, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    return libm


def c_logf(values: np.ndarray) -> np.ndarray:
    function = _libm().logf
    return np.fromiter((function(v) for v in values.tolist()), np.float32, values.size)


def c_sincosf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    function = _libm().sincosf
    sin_out, cos_out = ctypes.c_float(), ctypes.c_float()
    sin_pointer, cos_pointer = ctypes.byref(sin_out), ctypes.byref(cos_out)
    sines, cosines = np.empty(values.size, np.float32), np.empty(values.size, np.float32)
    for index, value in enumerate(values.tolist()):
        function(value, sin_pointer, cos_pointer)
        sines[index], cosines[index] = sin_out.value, cos_out.value
    return sines, cosines


def c_sincos(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The C library's double sincos, which TensorFlow calls on Linux (it can differ from sin and cos)."""
    reference = glibc64.c_sincos(values)
    if reference is None:
        raise RuntimeError("no C library sincos to compare with")
    return reference


def mismatches(u1: np.ndarray, v1: np.ndarray) -> dict[str, int]:
    """Count the results of the ports that differ from the C library in any bit."""
    ours_sin, ours_cos = sincosf(v1)
    reference_sin, reference_cos = c_sincosf(v1)
    return {
        "logf": int(np.sum(logf(u1).view(np.uint32) != c_logf(u1).view(np.uint32))),
        "sincosf (sin)": int(np.sum(ours_sin.view(np.uint32) != reference_sin.view(np.uint32))),
        "sincosf (cos)": int(np.sum(ours_cos.view(np.uint32) != reference_cos.view(np.uint32))),
    }


def _around(values: np.ndarray | list[float], spread: int) -> np.ndarray:
    """The doubles within `spread` ulps of each value (value's own double included)."""
    bits = np.asarray(values, dtype=np.float64).view(np.int64)
    return (bits[:, None] + np.arange(-spread, spread + 1)).reshape(-1).view(np.float64)


def double_sample(count: int, seed: int = 2024) -> tuple[np.ndarray, np.ndarray]:
    """(u1, v1) as BoxMullerDouble computes them from `count` pairs of 52 random mantissa bits."""
    mantissas = np.random.default_rng(seed).integers(0, 1 << 52, (2, count), dtype=np.uint64)
    units = (mantissas | np.uint64(0x3FF << 52)).view(np.float64) - 1.0
    return np.maximum(units[0], _EPSILON_64), 2.0 * math.pi * units[1]


def double_log_boundaries(spread: int = 64, per_index: int = 32, seed: int = 7) -> np.ndarray:
    """log's hard inputs in [1e-7, 1): domain ends, the near-1 path's edges, and every table
    subinterval at every exponent (its first and last doubles and `per_index` inside)."""
    edges = [_EPSILON_64, 1.0 - 2.0**-4, 1.0 - 2.0**-52, 2.0**-15, 2.0**-16, 0.5, 0.25]
    rng = np.random.default_rng(seed)
    sweep = []
    for exponent in range(-24, 1):
        for index in range(128):
            base = _OFF + (exponent << 52) + (index << 45)
            inside = rng.integers(1, (1 << 45) - 1, per_index).tolist()
            sweep += [base + m for m in (0, (1 << 45) - 1, *inside)]
    swept = np.array(sweep, dtype=np.int64).view(np.float64)
    values = np.concatenate([_around(edges, spread), swept])
    return values[(values >= _EPSILON_64) & (values < 1.0)]


def double_sincos_boundaries(spread: int = 64) -> np.ndarray:
    """sincos's hard inputs in [0, 2*pi): branch thresholds, the Taylor cut, the sine table's
    rounding points and the quadrant's, in each branch, with `spread` doubles either side."""
    thresholds = [float(np.array([high << 32], dtype=np.int64).view(np.float64)[0]) for high in glibc64.THRESHOLDS]
    half_pi = math.pi / 2
    reduced = [0.126] + [(k + 0.5) / 128 for k in range(110)]  # Taylor cut; table rounding points
    centres = [0.0, half_pi, 2 * half_pi, 3 * half_pi, 4 * half_pi]
    points = thresholds + [1.5 * half_pi, 2.5 * half_pi, 3.5 * half_pi] + centres
    points += [centre + sign * a for centre in centres for sign in (-1, 1) for a in reduced]
    values = _around(points, spread)
    return values[(values >= 0) & (values < 2 * math.pi)]


def double_mismatches(u1: np.ndarray, v1: np.ndarray) -> dict[str, int]:
    """Count the results of the double ports that differ in any bit from the C library's log
    (through Python's math) and sincos (through ctypes)."""
    sines, cosines = glibc64.sincos(v1)
    reference_sin, reference_cos = c_sincos(v1)
    return {
        "log": int(np.sum(glibc64.log(u1) != np.array([math.log(u) for u in u1.tolist()]))),
        "sincos (sin)": int(np.sum(sines != reference_sin)),
        "sincos (cos)": int(np.sum(cosines != reference_cos)),
    }


def numpy_sincos_mismatches(v1: np.ndarray) -> dict[str, int]:
    """Count the results of `glibc64.sincos_through_numpy_into` that differ from the C library's sincos."""
    sines, cosines = np.empty_like(v1), np.empty_like(v1)
    glibc64.sincos_through_numpy_into(v1, sines, cosines)
    reference_sin, reference_cos = c_sincos(v1)
    return {
        "sincos through numpy (sin)": int(np.sum(sines != reference_sin)),
        "sincos through numpy (cos)": int(np.sum(cosines != reference_cos)),
    }


def c_library_build() -> str:
    """Which build of glibc's double routines this CPU selects (glibc's ifunc test: FMA and AVX2)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return "unknown CPU"
    return "FMA build (the CPU has fma and avx2)" if {"fma", "avx2"} <= set(flags) else "plain build (no fma/avx2)"


def main() -> int:
    started = time.perf_counter()
    u1, v1 = box_muller_inputs()
    counts = mismatches(u1, v1)
    for name, count in counts.items():
        print(f"float32 {name}: {count} mismatches of {u1.size} inputs")
    print(f"glibc double routines: {c_library_build()}; the ports match it: {glibc64.matches_c_library()}")
    print(f"numpy's float64 sin and cos reach the C library's: {glibc64.numpy_sincos_matches()}")
    sample_u, sample_v = double_sample(1 << 23)
    log_edges, sincos_edges = double_log_boundaries(), double_sincos_boundaries()
    for label, u, v in [
        ("sample", sample_u, sample_v),
        ("boundaries", log_edges, sincos_edges),
    ]:
        route = numpy_sincos_mismatches(v) if glibc64.numpy_sincos_matches() else {}
        for name, count in {**double_mismatches(u, v), **route}.items():
            print(f"float64 {name} ({label}): {count} mismatches of {(u if name == 'log' else v).size} inputs")
            counts[f"{name} {label}"] = count
    print(f"({time.perf_counter() - started:.1f} s)")
    return 1 if any(counts.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
