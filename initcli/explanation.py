"""`initcli explain`: an initializer's formula with a shape's numbers plugged in, and numpy code.

The generic frame (formula, fans) is here; the lines that depend on the initializer come from its
family.
"""

from __future__ import annotations

from initcli.families.base import receptive_rule
from initcli.initializers import InitializerSpec
from initcli.output import format_value
from initcli.theory import Theory


def explain_lines(spec: InitializerSpec, theory: Theory | None, shape: tuple[int, ...] | None, dtype: str) -> list[str]:
    """The explanation, line by line (the last lines are runnable numpy snippets)."""
    kind = spec.kind
    family = spec.family
    lines = [f"{kind.class_name} ({kind.snake_name}): {kind.formula}"]
    if shape is None or theory is None:
        lines.append("Pass --shape to see the numbers for a tensor.")
        return lines
    shape_text = format_value(list(shape)) or "()"
    lines.append(
        f"shape {shape_text}: fan_in = {theory.fan_in}, fan_out = {theory.fan_out}" + receptive_rule(shape, spec)
    )
    lines += family.explain(spec, theory, shape)
    lines.append("")
    lines.append("numpy, same distribution (not the same values):" if family.random else "numpy, the same values:")
    lines.append(family.numpy_snippet(spec, theory, shape, dtype))
    if family.random:
        lines.append("numpy, the exact values Keras draws (TensorFlow backend, CPU):")
        seed = spec.seed if spec.seed is not None else 0
        lines.append(
            f"  from initcli.initializers import resolve\n  from initcli.sampling import draw\n"
            f"  w = draw(resolve({spec.to_dict()!r}), {tuple(shape)!r}, {dtype!r}, seed={seed})"
        )
    return lines
