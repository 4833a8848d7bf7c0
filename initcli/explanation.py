"""`initcli explain`: an initializer's formula with a shape's numbers plugged in, and numpy code."""

from __future__ import annotations

import math

from initcli.initializers import InitializerSpec
from initcli.output import format_value
from initcli.theory import Theory, theory_for


def explain_lines(spec: InitializerSpec, shape: tuple[int, ...] | None, dtype: str) -> list[str]:
    """The explanation, line by line (the last lines are runnable numpy snippets)."""
    kind = spec.kind
    lines = [f"{kind.class_name} ({kind.snake_name}): {kind.formula}"]
    if shape is None:
        lines.append("Pass --shape to see the numbers for a tensor.")
        return lines
    theory = theory_for(spec, shape, dtype)
    shape_text = format_value(list(shape)) or "()"
    lines.append(f"shape {shape_text}: fan_in = {theory.fan_in}, fan_out = {theory.fan_out}" + _fan_rule(shape, spec))
    if theory.n is not None:
        s = theory.scale / theory.n  # type: ignore[operator]
        lines.append(
            f"mode {theory.mode}: n = max(1, {_mode_expression(theory)}) = {theory.n:g}; "
            f"s = scale / n = {theory.scale:g} / {theory.n:g} = {s:.6g}"
        )
    if theory.distribution == "uniform":
        lines.append(
            f"uniform on [{theory.low:.6g}, {theory.high:.6g}): limit (half-width) = {theory.limit:.6g}, "
            f"std = limit / sqrt(3) = {theory.std:.6g}"
        )
    elif theory.distribution == "truncated_normal":
        lines.append(
            f"stddev_param (the underlying normal's stddev, before truncation) = {theory.stddev_param:.6g}; "
            f"values outside mean ± 2·stddev_param = ±{theory.limit:.6g} are redrawn; "
            f"std of the values = 0.87962566·stddev_param = {theory.std:.6g}"
        )
    elif theory.distribution == "normal":
        lines.append(f"normal: mean {theory.mean:g}, stddev_param = std of the values = {theory.std:.6g}")
    elif theory.distribution == "orthogonal":
        rows, cols = math.prod(shape[:-1]), shape[-1]
        lines.append(f"flattened to ({rows}, {cols}); element RMS = gain / sqrt(max(rows, cols)) = {theory.std:.6g}")
    else:
        lines.append(f"deterministic: mean {theory.mean:.6g}, std {theory.std:.6g}")
    lines.append("")
    lines.append("numpy, same distribution (not the same values):")
    lines.append(_numpy_snippet(theory, shape, dtype))
    lines.append("numpy, the exact values Keras draws (TensorFlow backend, CPU):")
    seed = spec.seed if spec.seed is not None else 0
    lines.append(
        f"  from initcli.initializers import resolve\n  from initcli.sampling import draw\n"
        f"  w = draw(resolve({spec.to_dict()!r}), {tuple(shape)!r}, {dtype!r}, seed={seed})"
    )
    return lines


def _mode_expression(theory: Theory) -> str:
    return {
        "fan_in": f"fan_in = {theory.fan_in}",
        "fan_out": f"fan_out = {theory.fan_out}",
        "fan_avg": f"(fan_in + fan_out) / 2 = ({theory.fan_in} + {theory.fan_out}) / 2",
    }[theory.mode or "fan_in"]


def _fan_rule(shape: tuple[int, ...], spec: InitializerSpec) -> str:
    if spec.config.get("input_axes") is not None and spec.config.get("output_axes") is not None:
        return f" (products over input_axes {spec.config['input_axes']} and output_axes {spec.config['output_axes']})"
    if len(shape) >= 3:
        receptive = math.prod(shape[:-2])
        return (
            f" (receptive field {'·'.join(map(str, shape[:-2]))} = {receptive}; "
            f"fan_in = {shape[-2]}·{receptive}, fan_out = {shape[-1]}·{receptive})"
        )
    return {0: " (scalar: 1, 1)", 1: " (rank 1: both equal the length)", 2: " (rows, cols)"}[len(shape)]


def _numpy_snippet(theory: Theory, shape: tuple[int, ...], dtype: str) -> str:
    header = "  import numpy as np\n  rng = np.random.default_rng(0)\n"
    size = tuple(shape)
    np_dtype = "float32" if dtype == "bfloat16" else dtype
    if theory.distribution == "uniform":
        body = f"  w = rng.uniform({theory.low!r}, {theory.high!r}, size={size!r}).astype({np_dtype!r})"
    elif theory.distribution == "normal":
        body = f"  w = rng.normal({theory.mean!r}, {theory.stddev_param!r}, size={size!r}).astype({np_dtype!r})"
    elif theory.distribution == "truncated_normal":
        body = (
            f"  z = rng.standard_normal(size={size!r})\n"
            f"  while (bad := np.abs(z) >= 2).any():\n      z[bad] = rng.standard_normal(bad.sum())\n"
            f"  w = ({theory.mean!r} + {theory.stddev_param!r} * z).astype({np_dtype!r})"
        )
    elif theory.distribution == "orthogonal":
        rows, cols = math.prod(shape[:-1]), shape[-1]
        body = (
            f"  q, r = np.linalg.qr(rng.standard_normal(({max(rows, cols)}, {min(rows, cols)})))\n"
            f"  q *= np.sign(np.diag(r))\n"
            f"  w = {theory.high!r} * ({'q.T' if rows < cols else 'q'}).reshape({size!r}).astype({np_dtype!r})"
        )
    elif theory.distribution == "identity":
        body = f"  w = {theory.high or theory.low!r} * np.eye(*{size!r}, dtype={np_dtype!r})"
    else:
        body = f"  w = np.full({size!r}, {theory.mean!r}, dtype={np_dtype!r})"
    return header + body
