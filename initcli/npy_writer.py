"""Streaming `.npy` writing for `sample --save` (placeholder moved from cli.py; hardened separately)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from initcli.errors import InitcliError


def write_npy(
    path: Path, shape: tuple[int, ...], dtype: str, chunks: Iterable[np.ndarray], *, force: bool
) -> Iterator[np.ndarray]:
    """Write chunks into an .npy file as they stream by, and pass them on."""
    from numpy.lib.format import open_memmap

    if path.exists() and not force:
        raise InitcliError(f"{path} already exists; pass --force to overwrite it.")
    if path.is_dir():
        raise InitcliError(f"{path} is a directory.")
    # .npy has no bfloat16 type numpy can read back without ml_dtypes; float32 holds it exactly.
    store_dtype = np.float32 if dtype == "bfloat16" else np.dtype(dtype)
    temporary = path.with_name(path.name + ".partial")
    try:
        array = open_memmap(temporary, mode="w+", dtype=store_dtype, shape=shape)
    except OSError as error:
        raise InitcliError(f"Cannot write {path}: {error.strerror}") from None
    flat = array.reshape(-1)
    position = 0
    try:
        for chunk in chunks:
            flat[position : position + chunk.size] = chunk
            position += chunk.size
            yield chunk
        array.flush()
        del array, flat
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
