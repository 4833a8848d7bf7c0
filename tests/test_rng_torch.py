"""initcli.rng.torch against PyTorch itself (CPU), run in a subprocess so torch's threads stay out.

Bit-exact over many seeds and sizes: every size 1..40 (the path below 16 values, 16-boundaries and
recomputed tails), larger sizes, chunked streaming, float32 and float64 uniforms, float64 normals
below 16 values and from 16 on. Those need torch (the `backends` extra); golden vectors made once by
torch (tests/golden/make_torch_normals.py, make_torch_keras_cases.py) keep the suite exact without it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from initcli.rng import torch as rt

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")

SEEDS = (0, 1, 7, 42, 1337, 2**31 - 1, 2**32 - 1, 123456789)
SIZES = (*range(1, 41), 47, 48, 49, 63, 64, 65, 255, 1000, 4099, 70001)
NORMAL_PARAMETERS = ((0.0, 1.0), (0.3, 0.05), (-1.7, 3.3))

_TORCH = """
import json, sys, torch
out = []
for kind, seed, size, mean, std, dtype in json.load(sys.stdin):
    g = torch.Generator().manual_seed(seed)
    dt = getattr(torch, dtype)
    if kind == "rand":
        t = torch.rand(size, generator=g, dtype=dt)
    else:
        t = torch.normal(mean, std, size=(size,), generator=g, dtype=dt)
    out.append(t.numpy().tobytes().hex())
json.dump(out, sys.stdout)
"""


def _torch(cases: list[tuple]) -> list[np.ndarray]:
    done = subprocess.run(
        [sys.executable, "-c", _TORCH], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    return [
        np.frombuffer(bytes.fromhex(h), dtype=case[5]) for h, case in zip(json.loads(done.stdout), cases, strict=True)
    ]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@needs_torch
def test_normal_float32_every_path():
    cases = [("normal", s, n, m, d, "float32") for s in SEEDS for n in SIZES for m, d in NORMAL_PARAMETERS]
    wrong = [c for c, t in zip(cases, _torch(cases), strict=True) if not _same(rt.normal(*c[1:]), t)]
    assert wrong == []


@needs_torch
def test_normal_float64_below_16_and_uniforms():
    cases = [("normal", s, n, 0.2, 0.7, "float64") for s in SEEDS for n in range(1, 16)]
    cases += [
        ("rand", s, n, 0.0, 1.0, d) for s in SEEDS for n in (1, 2, 15, 16, 17, 1001) for d in ("float32", "float64")
    ]
    for case, expected in zip(cases, _torch(cases), strict=True):
        kind, seed, size, mean, std, dtype = case
        got = rt.normal(seed, size, mean, std, dtype) if kind == "normal" else rt.rand(seed, size, dtype)
        assert _same(got, expected), case


@needs_torch
def test_float16_and_bfloat16_rand_and_normal():
    """torch.rand rounds the float32 uniform (1 becomes 0); torch.normal is the float32 kernel rounded,
    but for the tail, redrawn from the words right after the whole groups."""
    sizes = (1, 5, 15, 16, 17, 31, 33, 1000, 4099)
    for dtype in ("float16", "bfloat16"):
        cases = [("normal", s, n, m, d, dtype) for s in SEEDS[:3] for n in sizes for m, d in NORMAL_PARAMETERS]
        cases += [("rand", s, 100_000, 0.0, 1.0, dtype) for s in SEEDS[:3]]
        for case, expected in zip(cases, _torch_bits(cases), strict=True):
            kind, seed, size, mean, std, _ = case
            got = rt.normal(seed, size, mean, std, dtype) if kind == "normal" else rt.rand(seed, size, dtype)
            assert got.dtype.name == dtype and got.view(np.uint16).tobytes() == expected.tobytes(), case


def _torch_bits(cases: list[tuple]) -> list[np.ndarray]:
    """`_torch` for float16/bfloat16 draws: their uint16 bits."""
    code = _TORCH.replace("t.numpy()", "t.view(torch.int16).numpy()")
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    return [np.frombuffer(bytes.fromhex(h), np.uint16) for h in json.loads(done.stdout)]


@needs_torch
def test_chunks_equal_the_whole_draw():
    (expected,) = _torch([("normal", 3, 70001, 0.3, 0.05, "float32")])
    for chunk in (16, 1000, 4096, 69999):
        parts = list(rt.NormalDraw(3, 70001, 0.3, 0.05).chunks(chunk))
        assert _same(np.concatenate(parts), expected), chunk


@needs_torch
def test_normal_float64_of_16_or_more():
    """ATen's normal_fill<double>: glibc's log/sin/cos, the fused multiply-add, the recomputed tail."""
    sizes = (16, 17, 31, 32, 33, 47, 64, 65, 1000, 4099, 70001)
    cases = [("normal", s, n, m, d, "float64") for s in SEEDS[:4] for n in sizes for m, d in NORMAL_PARAMETERS]
    wrong = [c for c, t in zip(cases, _torch(cases), strict=True) if not _same(rt.normal(*c[1:]), t)]
    assert wrong == []
    (expected,) = _torch([("normal", 3, 4099, 0.3, 0.05, "float64")])
    for chunk in (16, 1000, 4083):
        parts = list(rt.NormalDraw(3, 4099, 0.3, 0.05, "float64").chunks(chunk))
        assert _same(np.concatenate(parts), expected), chunk


def test_float64_golden_vectors_made_by_torch():
    """Without torch: tests/golden/torch_keras_cases.npz (make_torch_keras_cases.py), float64 normals of 16+ values."""
    from pathlib import Path

    parameters = ((0.0, 1.0), (0.3, 0.05), (-1.7, 3.3))
    with np.load(Path(__file__).parent / "golden" / "torch_keras_cases.npz") as golden:
        names = [name for name in golden.files if name.startswith("normal_")]
        assert len(names) == 81
        for name in names:
            _, seed, size, case = name.split("_")
            mean, std = parameters[int(case)]
            assert _same(rt.normal(int(seed), int(size), mean, std, "float64"), golden[name]), name


def test_golden_vectors_made_by_torch():
    """Without torch too: tests/golden/torch_normals.npz, made once by torch (make_torch_normals.py)."""
    from pathlib import Path

    golden = np.load(Path(__file__).parent / "golden" / "torch_normals.npz")
    assert len(golden.files) > 150
    for name in golden.files:
        kind, seed, size, dtype = name.split("_")
        if kind == "normal":
            got = rt.normal(int(seed), int(size), 0.3, 0.05, dtype)
        else:
            got = rt.rand(int(seed), int(size), dtype)
        assert _same(got, golden[name]), name
