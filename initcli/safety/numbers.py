"""Validated numbers and shapes for the command line: finite floats, ranges that reject NaN, bounded shapes.

`click.FloatRange` lets NaN through (every comparison with NaN is false, so `--alpha nan` passes a
(0, 1) range), `float` accepts "inf", and a shape's element count can exceed int64 or any memory budget.
Each check is a plain function raising `BadInputError` (for specs and rule files) and a Click ParamType
that reports the same reason as a usage error naming the option and the value (exit 2).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import click

from initcli.errors import BadInputError, InitcliError

if TYPE_CHECKING:
    import numpy as np

INT64_MAX = 2**63 - 1
DEFAULT_MAX_ELEMENTS = 2**34
"""Default element budget of a shape: 16 GiB of float8, 64 GiB of float32 (streamed, never held at once)."""
DEFAULT_MAX_NDIM = 32
NUMPY_MAX_NDIM = 64
MAX_ITEMSIZE = 16  # complex128, the widest element initcli reads


def check_holdable_shape(dims: tuple[int, ...] | list[int], where: str) -> None:
    """Refuse a shape read from a file that no numpy array can have, before anything is built from it.

    numpy holds at most 64 dimensions, and refuses a shape whose nonzero dimensions multiply past
    int64 even when another dimension is 0 (`[0, 2**62, 2**62]`: "array is too big").

    Raises:
        InitcliError: rank above 64, or nonzero dimensions whose product (in bytes) exceeds int64.
    """
    if len(dims) > NUMPY_MAX_NDIM:
        raise InitcliError(f"{where}: a shape of rank {len(dims)}; numpy arrays have at most {NUMPY_MAX_NDIM}")
    product = MAX_ITEMSIZE
    for dim in dims:
        product *= dim or 1
    if product > INT64_MAX:
        shown = list(dims) if len(dims) <= 8 else [*list(dims)[:8], "..."]
        raise InitcliError(
            f"{where}: shape {shown} is larger than any array can be (its dimensions multiply past int64)"
        )


_DIMENSION = re.compile(r"[+-]?[0-9]+")
_SEPARATORS = re.compile(r"[x,×]")


def _describe_range(
    minimum: float | None, maximum: float | None, min_open: bool, max_open: bool
) -> str:  # "a finite number in (0, 1)"
    if minimum is None and maximum is None:
        return "a finite number"
    if minimum == 0 and maximum is None and min_open:
        return "a finite number > 0"
    if maximum is None:
        return f"a finite number {'>' if min_open else '>='} {minimum:g}"
    if minimum is None:
        return f"a finite number {'<' if max_open else '<='} {maximum:g}"
    left, right = "(" if min_open else "[", ")" if max_open else "]"
    return f"a finite number in {left}{minimum:g}, {maximum:g}{right}"


def parse_float(
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    name: str = "value",
) -> float:
    """A finite float within the bounds, from a string or a number; NaN and infinities are refused.

    Args:
        value: text as typed ("0.5", "1e-3") or a number.
        minimum, maximum: bounds, or None for none.
        min_open, max_open: whether the bound itself is excluded.
        name: what the value is, for the message.

    Raises:
        BadInputError: not a number, not finite (NaN, ±inf, or beyond float64 such as 1e999), or out of range.
    """
    requirement = _describe_range(minimum, maximum, min_open, max_open)
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, bool):
        raise BadInputError(f"{name} must be {requirement}; received {name}={text}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise BadInputError(f"{name} must be {requirement}; received {name}={text!r}") from None
    if not math.isfinite(number):
        raise BadInputError(f"{name} must be {requirement}; received {name}={text.strip()}")
    below = minimum is not None and (number <= minimum if min_open else number < minimum)
    above = maximum is not None and (number >= maximum if max_open else number > maximum)
    if below or above:
        raise BadInputError(f"{name} must be {requirement}; received {name}={text.strip()}")
    return number


def _numpy_dtype(dtype: str) -> np.dtype[Any]:
    import numpy as np

    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def check_in_dtype(value: float, dtype: str = "float32", *, name: str = "value", nonzero: bool = False) -> None:
    """Refuse a value that overflows `dtype`, or (with `nonzero`) that is nonzero but rounds to 0 in it.

    Keras casts stddev, mean, limits and gains to the weight's dtype before drawing: `--stddev 1e-200`
    draws all zeros in float32, and `--stddev 1e39` infinities.

    Raises:
        BadInputError: "stddev 1e-200 rounds to 0 in float32", "stddev 1e+39 overflows float32".
    """
    # numpy is imported here so that `initcli --version` and `--help` need not load it.
    import numpy as np

    with np.errstate(over="ignore", under="ignore"):
        rounded = float(np.asarray(value, dtype=np.float64).astype(_numpy_dtype(dtype)))
    if math.isfinite(value) and not math.isfinite(rounded):
        raise BadInputError(f"{name} {value:g} overflows {dtype}")
    if nonzero and value != 0 and rounded == 0:
        raise BadInputError(f"{name} {value:g} rounds to 0 in {dtype}")


class FloatType(click.ParamType):
    """A finite float, optionally bounded: NaN, inf and 1e999 are usage errors naming the option and value.

    With `nonzero_in` set to a dtype, a value that overflows it or rounds to 0 in it is refused too
    (for parameters such as stddev or scale, when the dtype is known when options are parsed; otherwise
    call `check_in_dtype` once the dtype is).
    """

    name = "float"

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        *,
        min_open: bool = False,
        max_open: bool = False,
        nonzero_in: str | None = None,
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.min_open = min_open
        self.max_open = max_open
        self.nonzero_in = nonzero_in

    def parse(self, value: Any, name: str = "value") -> float:
        """`value` as this type takes it (the API's rule as the option's); BadInputError if refused."""
        number = parse_float(
            value, minimum=self.minimum, maximum=self.maximum, min_open=self.min_open, max_open=self.max_open, name=name
        )
        if self.nonzero_in is not None:
            check_in_dtype(number, self.nonzero_in, name=name, nonzero=True)
        return number

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        name = (param.name if param is not None and param.name else None) or "value"
        try:
            return self.parse(value, name)
        except BadInputError as error:
            self.fail(str(error), param, ctx)

    def __repr__(self) -> str:
        return f"FloatType({_describe_range(self.minimum, self.maximum, self.min_open, self.max_open)})"


FINITE_FLOAT = FloatType()
"""Any finite float (mean, minval, maxval, value)."""
POSITIVE_FLOAT = FloatType(0, min_open=True)
"""A finite float > 0 (epsilon)."""
POSITIVE_FLOAT32 = FloatType(0, min_open=True, nonzero_in="float32")
"""A finite float > 0 that stays nonzero and finite in float32 (stddev, scale, gain of a float32 weight)."""
PROBABILITY = FloatType(0, 1, min_open=True, max_open=True)
"""A probability strictly between 0 and 1 (alpha)."""
UNIT_INTERVAL = FloatType(0, 1)
"""A number in [0, 1] (momentum)."""


def parse_alpha(value: Any) -> float:
    """A false-alarm rate, as `--alpha` (a PROBABILITY) takes it: the API's rule too."""
    return PROBABILITY.parse(value, name="alpha")


def parse_shape(
    value: Any, *, max_elements: int = DEFAULT_MAX_ELEMENTS, max_ndim: int = DEFAULT_MAX_NDIM
) -> tuple[int, ...]:
    """A tensor shape: `3x3x64x128`, `3,3,64,128`, `(3, 3, 64, 128)`, `784x256`, `(3,)`, `()` or a sequence of ints.

    Args:
        value: the text as typed, or a tuple/list of ints.
        max_elements: the element budget; the product of the dimensions may not exceed it.
        max_ndim: the most dimensions accepted.

    Raises:
        BadInputError: a dimension that is not a positive integer, too many dimensions, more elements
            than int64 can count, or more than `max_elements`.
    """
    if isinstance(value, (tuple, list)):
        text = repr(tuple(value))
        parts = [str(dim) if isinstance(dim, int) and not isinstance(dim, bool) else repr(dim) for dim in value]
    else:
        text = str(value).strip()
        inner = text[1:-1] if text.startswith("(") and text.endswith(")") else text
        inner = inner.strip()
        if inner in ("", "scalar"):
            return ()
        parts = [part.strip() for part in _SEPARATORS.split(inner)]
        if len(parts) > 1 and parts[-1] == "" and "," in inner:
            parts = parts[:-1]  # "(3,)" is a one-element tuple
    shown = text if len(text) <= 80 else text[:77] + "..."
    if len(parts) > max_ndim:
        raise BadInputError(f"shape {shown!r} has {len(parts)} dimensions; at most {max_ndim} are supported")
    dims = []
    for part in parts:
        if not _DIMENSION.fullmatch(part):
            raise BadInputError(f"shape {shown!r}: dimension {part[:40]!r} is not an integer")
        # int() of a long digit string is slow or refused; any dimension past int64 is refused anyway.
        if len(part.lstrip("+-").lstrip("0")) > len(str(INT64_MAX)):
            raise BadInputError(f"shape {shown!r}: dimension {part[:40]}... is larger than int64")
        dim = int(part)
        if dim <= 0:
            raise BadInputError(f"shape {shown!r}: dimension {part} must be positive")
        dims.append(dim)
    elements = math.prod(dims)
    if elements > INT64_MAX:
        raise BadInputError(f"shape {shown!r} has {elements} elements, more than int64 can count (2**63 - 1)")
    if elements > max_elements:
        raise BadInputError(f"shape {shown!r} has {elements:,} elements, more than the limit of {max_elements:,}")
    return tuple(dims)


class ShapeType(click.ParamType):
    """A tensor shape option (see `parse_shape` for the forms), bounded by int64 and an element budget."""

    name = "shape"

    def __init__(self, max_elements: int = DEFAULT_MAX_ELEMENTS, max_ndim: int = DEFAULT_MAX_NDIM) -> None:
        self.max_elements = max_elements
        self.max_ndim = max_ndim

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        try:
            return parse_shape(value, max_elements=self.max_elements, max_ndim=self.max_ndim)
        except BadInputError as error:
            self.fail(str(error), param, ctx)
