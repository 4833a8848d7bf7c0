"""`initcli explain`: an initializer's formula with a shape's numbers plugged in, the Keras call, numpy code.

The generic frame (formula, fans, the Keras line) is here; the lines and code that depend on the
initializer come from its family.
"""

from __future__ import annotations

from dataclasses import dataclass

from initcli.initializers import InitializerSpec
from initcli.initializers.base import receptive_rule
from initcli.stats.theory import Theory


def formula_lines(spec: InitializerSpec, theory: Theory | None, shape: tuple[int, ...] | None) -> list[str]:
    """The formula, then the fans and the numbers for `shape`."""
    kind = spec.kind
    lines = [f"{kind.class_name} ({kind.snake_name}): {kind.formula}"]
    if shape is None or theory is None:
        lines.append("Pass --shape to see the numbers for a tensor (and --seed for its values).")
        return lines
    shape_text = "x".join(str(d) for d in shape) or "()"
    lines.append(
        f"shape {shape_text}: fan_in = {theory.fan_in}, fan_out = {theory.fan_out}" + receptive_rule(shape, spec)
    )
    return lines + spec.family.explain(spec, theory, shape)


def keras_call(
    spec: InitializerSpec, shape: tuple[int, ...] | None, dtype: str, seed: int | None, backend: str = "tensorflow"
) -> str:
    """The Keras 3 line that builds the initializer (and calls it, given a shape), on `backend`."""
    defaults = spec.kind.defaults
    arguments = {
        key: value
        for key, value in spec.config.items()
        if key != "seed" and value is not None and (key not in defaults or value != defaults[key])
    }
    if spec.family.random and seed is not None:
        arguments["seed"] = seed
    constructor = f"keras.initializers.{spec.class_name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
    prefix = ""
    if backend != "tensorflow":  # initializers.backends loads the jax and torch generators
        from initcli.initializers.backends import keras_prefix

        prefix = keras_prefix(backend)
    if shape is None:
        return prefix + constructor
    return f"{prefix}{constructor}(shape={tuple(shape)!r}, dtype={dtype!r})"


@dataclass(frozen=True, kw_only=True)
class Code:
    """A titled numpy snippet; `exact` when it prints the very values Keras draws."""

    title: str
    code: str
    exact: bool

    def lines(self) -> list[str]:
        return [self.title, self.code]


def numpy_code(
    spec: InitializerSpec,
    theory: Theory,
    shape: tuple[int, ...],
    dtype: str,
    seed: int | None,
    backend: str = "tensorflow",
) -> tuple[list[Code], str | None]:
    """numpy snippets for `shape`, and why exact values need more than numpy where they do.

    A deterministic initializer's snippet gives its values; a random one's gives the same
    distribution, plus, with a seed and where it is short, code for the exact values.
    """
    family = spec.family
    if not family.random:
        snippet = family.numpy_snippet(spec, theory, shape, dtype)
        return [Code(title="numpy, the same values:", code=snippet, exact=True)], None
    codes = [
        Code(
            title="numpy, the same distribution (not the same values):",
            code=family.numpy_snippet(spec, theory, shape, dtype),
            exact=False,
        )
    ]
    if seed is None:
        return codes, "pass --seed to see the exact values Keras draws"
    if backend != "tensorflow":
        from initcli.initializers.backends import backend_flags, generator_line, keras_backend

        program = family.backend_program(spec, shape, dtype, seed, backend)
        if program is not None:
            backend_code, bit_exact = program
            if bit_exact:
                title = f"numpy alone, the exact values Keras draws with seed {seed} ({generator_line(backend, seed)})"
                return [*codes, Code(title=title, code=backend_code, exact=True)], None
            title = (
                f"numpy alone, NOT bit-exact: Keras's values with seed {seed} to within the ulps the program "
                f"states ({generator_line(backend, seed)})"
            )
            return [*codes, Code(title=title, code=backend_code, exact=False)], (
                f"the printed program is not bit-exact (see its comments): initcli sample {backend_flags(backend)} "
                f"--seed {seed} --save FILE.npy writes the exact values"
            )
        return codes, (
            f"{generator_line(backend, seed)} No short numpy program is printed for this backend: "
            f"initcli sample {backend_flags(backend)} --seed {seed} --save FILE.npy writes the exact values "
            f"(initcli.rng.{keras_backend(backend)} is the numpy code)"
        )
    exact = family.exact_numpy_snippet(spec, theory, shape, dtype, seed)
    if exact is None:
        return codes, family.why_not_exact(spec, theory, dtype)
    title = f"numpy alone, the exact values Keras draws with seed {seed} (Philox4x32-10 as TensorFlow runs it on CPU):"
    return [*codes, Code(title=title, code=exact, exact=True)], None
