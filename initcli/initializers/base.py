"""What every initializer family answers: theory, draw, exact values, how to judge, explanation.

A family is one object per kind of initializer (uniform, normal, variance scaling, orthogonal,
...). It owns everything that depends on which initializer it is, so the rest of initcli asks the
family and never compares class names. `InitializerKind` is one Keras class the family serves
(VarianceScaling serves six presets).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from initcli.errors import BadInputError
from initcli.initializers.fans import compute_fans

if TYPE_CHECKING:
    from initcli.stats.comparisons import Comparator
    from initcli.stats.theory import Theory

DEFAULT_CHUNK_ELEMENTS = 1 << 22


class SpecLike(Protocol):
    """What a family reads of a resolved spec (`initcli.initializers.spec.InitializerSpec` is one).

    A protocol, so that the families need not import the resolver that imports them.
    """

    @property
    def class_name(self) -> str: ...

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def kind(self) -> InitializerKind: ...


@dataclass(frozen=True, kw_only=True)
class InitializerKind:
    """One Keras initializer class.

    Attributes:
        class_name: Keras's class name, e.g. "GlorotUniform".
        aliases: other names `keras.initializers.get` (or common usage) accepts.
        defaults: every constructor parameter with its Keras default.
        formula: a one-line description of the distribution.
        preset: for the VarianceScaling presets (Glorot, Lecun, He), their fixed (scale, mode,
            distribution).
    """

    class_name: str
    aliases: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    formula: str
    preset: tuple[float, str, str] | None = None

    @property
    def snake_name(self) -> str:
        """Keras's `to_snake_case` of the class name (GlorotUniform -> glorot_uniform, STFT -> stft)."""
        name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", self.class_name)
        return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def as_float(name: str, value: Any, initializer: str) -> float:
    """A finite number parameter, as Keras's constructors accept it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"Argument `{name}` of {initializer} must be a number. Received: {name}={value!r}")
    if not math.isfinite(value):
        raise BadInputError(f"Argument `{name}` of {initializer} must be finite. Received: {name}={value!r}")
    return float(value)


def flat_index_chunks(total: int, chunk_elements: int) -> Iterator[tuple[int, int]]:
    """[start, stop) ranges covering `total` flat elements, `chunk_elements` at a time."""
    step = max(1, chunk_elements)
    for start in range(0, total, step):
        yield start, min(total, start + step)


class Family(ABC):
    """One family of initializers. Subclasses list their `kinds` and answer for them."""

    kinds: tuple[InitializerKind, ...] = ()
    #: Values are independent draws from a distribution (so seeds, duplicates and statistics apply).
    random: bool = True
    #: Scaled by Keras's fans (so Keras's fan caveats and EinsumDense's fan axes matter).
    uses_fans: bool = False

    def validate(self, kind: InitializerKind, config: dict[str, Any]) -> dict[str, Any]:
        """The config with values checked and normalized as Keras's constructor does.

        Raises:
            BadInputError: with Keras's reason.
        """
        return config

    def check_asked(self, kind: InitializerKind, asked: dict[str, Any]) -> None:  # noqa: B027
        """Raise BadInputError for a value a user typed that Keras accepts but draws other than meant (default: none).

        `asked` holds the validated values of the parameters given as overrides (flags, `NAME:param=value`,
        the public API's keyword arguments); a saved model's config is read as Keras read it.
        """

    def check_request(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> None:  # noqa: B027
        """Raise BadInputError, with Keras's reason, when the initializer cannot fill this tensor (default: any)."""

    def fans(self, spec: SpecLike, shape: tuple[int, ...]) -> tuple[int, int]:
        return compute_fans(shape, spec.config.get("input_axes"), spec.config.get("output_axes"))

    @abstractmethod
    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        """What the initializer produces at `shape` in `dtype` (the request is already checked)."""

    @abstractmethod
    def chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int
    ) -> Iterator[np.ndarray]:
        """The flattened tensor Keras (TensorFlow backend, CPU) draws, in order, piece by piece."""

    def draw_chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int, backend: str
    ) -> Iterator[np.ndarray]:
        """`chunks` as Keras 3 draws them on `backend` (tensorflow, jax or torch; CPU).

        A deterministic family's values are the same on every backend.

        Raises:
            BadInputError: initcli does not reproduce this family's draws on that backend.
        """
        if backend != "tensorflow" and self.random:
            raise BadInputError(f"initcli reproduces {spec.class_name}'s draws on the tensorflow backend only")
        return self.chunks(spec, shape, dtype, seed, chunk_elements)

    @abstractmethod
    def comparator(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, theory: Theory, *, interval_alpha: float
    ) -> Comparator:
        """How a tensor's values are judged against this initializer: statistically or exactly.

        `interval_alpha` sizes the intervals shown beside statistics (the std ratio's).
        """

    def explain(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...]) -> list[str]:
        """Lines with the numbers for this shape plugged in (after the formula and the fans)."""
        return [f"deterministic: mean {theory.mean:.6g}, std {theory.std:.6g}"]

    @abstractmethod
    def numpy_snippet(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...], dtype: str) -> str:
        """Self-contained numpy code for the same distribution (not the same values)."""

    def exact_numpy_snippet(
        self, spec: SpecLike, theory: Theory, shape: tuple[int, ...], dtype: str, seed: int
    ) -> str | None:
        """numpy-only code printing exactly the values Keras draws with `seed`, where such code is short."""
        return None

    def exact_backend_snippet(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, backend: str
    ) -> str | None:
        """numpy-only code printing the values Keras 3 draws on a backend other than TensorFlow, where short."""
        return None

    def backend_program(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, backend: str
    ) -> tuple[str, bool] | None:
        """numpy-only code printing the values Keras 3 draws on `backend`, and whether it is bit-exact
        (a program that is not says so in its comments, with the difference measured); default:
        `exact_backend_snippet`."""
        code = self.exact_backend_snippet(spec, shape, dtype, seed, backend)
        return None if code is None else (code, True)

    def why_not_exact(self, spec: SpecLike, theory: Theory, dtype: str) -> str:
        """Why `exact_numpy_snippet` gives no code for this initializer and dtype."""
        return "no short numpy code reproduces these values exactly"


def snippet_dtype(dtype: str) -> str:
    """numpy has no bfloat16 of its own: snippets use float32, which holds bfloat16 exactly."""
    return "float32" if dtype == "bfloat16" else dtype


def streamed(values_for: Any, total: int, chunk_elements: int) -> Iterator[np.ndarray]:
    """Chunks `values_for(start, stop)` of a tensor computed from flat indices."""
    for start, stop in flat_index_chunks(total, chunk_elements):
        yield values_for(start, stop)


def receptive_rule(shape: tuple[int, ...], spec: SpecLike) -> str:
    """How Keras's compute_fans read this shape, for explanations."""
    if spec.config.get("input_axes") is not None and spec.config.get("output_axes") is not None:
        return f" (products over input_axes {spec.config['input_axes']} and output_axes {spec.config['output_axes']})"
    if len(shape) >= 3:
        receptive = math.prod(shape[:-2])
        return (
            f" (receptive field {'·'.join(map(str, shape[:-2]))} = {receptive}; "
            f"fan_in = {shape[-2]}·{receptive}, fan_out = {shape[-1]}·{receptive})"
        )
    return {0: " (scalar: 1, 1)", 1: " (rank 1: both equal the length)", 2: " (rows, cols)"}[len(shape)]
