"""Reusable work buffers for the hot loops (generation kernels, streaming statistics).

Those loops run numpy operations on arrays of a few hundred kilobytes to a few megabytes, over and
over. Letting each operation allocate its result costs more than the arithmetic: arrays that size
are above the C library's mmap threshold, so every temporary is fresh memory that page-faults on
first touch (this tripled the time of a normal draw). The loops therefore write intermediates into
named buffers, allocated once per thread and reused.
"""

from __future__ import annotations

import threading

import numpy as np


class Scratch:
    """Named buffers that grow to the largest size asked for and are then reused.

    A buffer handed out stays valid until the same name is asked for again; callers copy what they
    keep into their own arrays.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def __call__(self, name: str, dtype: np.dtype | type, size: int) -> np.ndarray:
        """A 1-D buffer of `size` elements of `dtype` (contents undefined)."""
        dtype = np.dtype(dtype)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = np.empty(size, dtype=dtype)
            self._buffers[name] = buffer
        return buffer[:size]


_per_thread = threading.local()


def thread_scratch() -> Scratch:
    """The calling thread's Scratch (each worker thread of a parallel draw gets its own)."""
    scratch = getattr(_per_thread, "scratch", None)
    if scratch is None:
        scratch = _per_thread.scratch = Scratch()
    return scratch


def replace_thread_scratch(new: Scratch) -> None:
    """Make `new` the calling thread's Scratch (a forked worker process starts its own)."""
    _per_thread.scratch = new


_counting: dict[np.dtype, np.ndarray] = {}
_counting_lock = threading.Lock()


def counting(size: int, dtype: np.dtype | type, at_least: int = 0) -> np.ndarray:
    """0, 1, ..., size - 1 in `dtype`, as a read-only view of a cached array grown as needed.

    Every piece of a draw and every KS test of a run start from such a sequence; building it once
    saves an allocation and its page faults each time. `at_least` sizes the first allocation.
    """
    dtype = np.dtype(dtype)
    with _counting_lock:  # worker threads of a draw ask for it at once
        cached = _counting.get(dtype)
        if cached is None or cached.size < size:
            cached = np.arange(max(size, at_least), dtype=dtype)
            cached.flags.writeable = False
            _counting[dtype] = cached
    return cached[:size]
