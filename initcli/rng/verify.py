"""Check the numpy ports of glibc's logf and sincosf against this machine's C library.

    python -m initcli.rng.verify

Feeds both every input TensorFlow's float32 Box-Muller step can pass them (2^23 each) and prints
the number of mismatched results (expected: 0; about 15 s). Linux/glibc only. The test suite
runs the same comparison.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

import numpy as np

from initcli.rng.glibc import logf, sincosf


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


def mismatches(u1: np.ndarray, v1: np.ndarray) -> dict[str, int]:
    """Count the results of the ports that differ from the C library in any bit."""
    ours_sin, ours_cos = sincosf(v1)
    reference_sin, reference_cos = c_sincosf(v1)
    return {
        "logf": int(np.sum(logf(u1).view(np.uint32) != c_logf(u1).view(np.uint32))),
        "sincosf (sin)": int(np.sum(ours_sin.view(np.uint32) != reference_sin.view(np.uint32))),
        "sincosf (cos)": int(np.sum(ours_cos.view(np.uint32) != reference_cos.view(np.uint32))),
    }


def main() -> int:
    started = time.perf_counter()
    u1, v1 = box_muller_inputs()
    counts = mismatches(u1, v1)
    for name, count in counts.items():
        print(f"{name}: {count} mismatches of {u1.size} inputs")
    print(f"({time.perf_counter() - started:.1f} s)")
    return 1 if any(counts.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
