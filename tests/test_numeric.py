"""Numeric options: NaN, infinities, out-of-range values and impossible shapes are usage errors (exit 2)."""

from __future__ import annotations

import math
import re

import click
import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.errors import BadInputError
from initcli.safety.numbers import (
    DEFAULT_MAX_ELEMENTS,
    FINITE_FLOAT,
    POSITIVE_FLOAT,
    POSITIVE_FLOAT32,
    PROBABILITY,
    UNIT_INTERVAL,
    FloatType,
    ShapeType,
    check_in_dtype,
    parse_float,
    parse_shape,
)


def command_with(option_type: click.ParamType, default: object = None) -> click.Command:
    @click.command()
    @click.option("--value", type=option_type, default=default)
    def command(value: object) -> None:
        click.echo(repr(value))

    return command


def invoke(option_type: click.ParamType, *args: str) -> click.testing.Result:
    return CliRunner().invoke(command_with(option_type), list(args))


def assert_usage_error(result: click.testing.Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_click_float_range_lets_nan_through_and_probability_does_not():
    # The bug being fixed: every comparison with NaN is false, so click's own range check passes it.
    assert math.isnan(click.FloatRange(0, 1, min_open=True, max_open=True).convert("nan", None, None))
    for text in ("nan", "NaN", "-nan", "inf", "-inf", "infinity", "1e999"):
        assert_usage_error(invoke(PROBABILITY, "--value", text), "'--value'", text)
    assert invoke(PROBABILITY, "--value", "0.001").stdout == "0.001\n"


@pytest.mark.parametrize(
    ("option_type", "accepted", "refused"),
    [
        (FINITE_FLOAT, ["0", "-3.5", "1e300", "-0.0", " 2 "], ["nan", "inf", "-inf", "1e999", "x", ""]),
        (POSITIVE_FLOAT, ["1e-300", "5"], ["0", "-0.0", "-1e-9", "nan", "inf"]),
        (PROBABILITY, ["1e-12", "0.5", "0.999999"], ["0", "1", "-0.1", "1.5", "nan"]),
        (UNIT_INTERVAL, ["0", "1", "0.99"], ["-1e-12", "1.0000001", "nan", "inf"]),
        (FloatType(-1, 1, max_open=True), ["-1", "0.5"], ["1", "-1.5", "nan"]),
        (FloatType(maximum=2), ["-5", "2"], ["2.5", "nan"]),
    ],
)
def test_float_types(option_type, accepted, refused):
    for text in accepted:
        result = invoke(option_type, "--value", text)
        assert result.exit_code == 0, result.output
        assert float(result.stdout) == float(text)
    for text in refused:
        assert_usage_error(invoke(option_type, "--value", text), "'--value'", "value must be")


def test_float_messages_name_the_requirement_and_value():
    with pytest.raises(BadInputError, match=r"^alpha must be a finite number in \(0, 1\); received alpha=nan$"):
        parse_float("nan", minimum=0, maximum=1, min_open=True, max_open=True, name="alpha")
    with pytest.raises(BadInputError, match=r"^momentum must be a finite number in \[0, 1\]; received momentum=1.5$"):
        parse_float(1.5, minimum=0, maximum=1, name="momentum")
    with pytest.raises(BadInputError, match=r"received epsilon=0$"):
        parse_float("0", minimum=0, min_open=True, name="epsilon")
    with pytest.raises(BadInputError, match="received flag=True"):
        parse_float(True, name="flag")
    assert parse_float(np.float32(0.25)) == 0.25


def test_defaults_are_converted_too():
    result = CliRunner().invoke(command_with(PROBABILITY, default=0.001), [])
    assert result.exit_code == 0 and result.stdout == "0.001\n"


@pytest.mark.parametrize(
    ("value", "dtype", "nonzero", "message"),
    [
        (1e-200, "float32", True, "stddev 1e-200 rounds to 0 in float32"),
        (1e-46, "float32", True, "stddev 1e-46 rounds to 0 in float32"),
        (1e-8, "float16", True, "stddev 1e-08 rounds to 0 in float16"),
        (1e-50, "bfloat16", True, "stddev 1e-50 rounds to 0 in bfloat16"),
        (1e39, "float32", False, "stddev 1e+39 overflows float32"),
        (70000.0, "float16", False, "stddev 70000 overflows float16"),
    ],
)
def test_check_in_dtype_refuses(value, dtype, nonzero, message):
    oracle = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}[dtype]
    with np.errstate(over="ignore", under="ignore"):
        rounded = float(np.array([value]).astype(oracle)[0])
    assert rounded == 0 or math.isinf(rounded)  # numpy's own cast says so
    with pytest.raises(BadInputError, match=f"^{re.escape(message)}$"):
        check_in_dtype(value, dtype, name="stddev", nonzero=nonzero)


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(1e-200, "float64"), (1e-40, "float32"), (1e-7, "float16"), (0.0, "float32"), (3e38, "float32")],
)
def test_check_in_dtype_accepts(value, dtype):
    check_in_dtype(value, dtype, name="stddev", nonzero=True)


def test_positive_float32_option():
    assert_usage_error(
        invoke(POSITIVE_FLOAT32, "--value", "1e-200"), "'--value'", "value 1e-200 rounds to 0 in float32"
    )
    assert_usage_error(invoke(POSITIVE_FLOAT32, "--value", "1e39"), "overflows float32")
    assert invoke(POSITIVE_FLOAT32, "--value", "1e-40").exit_code == 0  # a float32 subnormal: not zero


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("3x3x64x128", (3, 3, 64, 128)),
        ("3,3,64,128", (3, 3, 64, 128)),
        ("(3, 3, 64, 128)", (3, 3, 64, 128)),
        ("784x256", (784, 256)),
        ("3×3", (3, 3)),
        (" 7 ", (7,)),
        ("(3,)", (3,)),
        ("()", ()),
        ("", ()),
        ("scalar", ()),
        ("007x+2", (7, 2)),
        ((4, 5), (4, 5)),
        ([2], (2,)),
    ],
)
def test_shape_forms(text, shape):
    assert parse_shape(text) == shape
    result = invoke(ShapeType(), "--value", text if isinstance(text, str) else "x".join(map(str, text)) or "()")
    assert result.exit_code == 0, result.output
    assert result.stdout == repr(shape) + "\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("3x0", "dimension 0 must be positive"),
        ("3x-4", "dimension -4 must be positive"),
        ("3x", "dimension '' is not an integer"),
        ("3.5x2", "dimension '3.5' is not an integer"),
        ("3x٣", "dimension '٣' is not an integer"),  # a Unicode digit int() would accept
        ("axb", "dimension 'a' is not an integer"),
        ("3037000500x3037000500", "9223372037000250000 elements, more than int64 can count"),
        ("99999999999999999999", "larger than int64"),
        ("1" * 5000, "larger than int64"),  # int() would refuse more than 4300 digits with a ValueError
        ("x".join(["2"] * 33), "33 dimensions; at most 32"),
        ("131072x131073", "17,180,000,256 elements, more than the limit of 17,179,869,184"),
        ((3, True), "dimension 'True' is not an integer"),
        ((3, 2.5), "dimension '2.5' is not an integer"),
    ],
)
def test_shape_refused(text, fragment):
    with pytest.raises(BadInputError) as raised:
        parse_shape(text)
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)
    if isinstance(text, str):
        assert_usage_error(invoke(ShapeType(), "--value", text), "'--value'", fragment)


def test_shape_budget_is_configurable_and_exact():
    assert DEFAULT_MAX_ELEMENTS == 2**34
    assert parse_shape("131072x131072") == (131072, 131072)  # exactly 2**34
    assert parse_shape("10x10", max_elements=100) == (10, 10)
    with pytest.raises(BadInputError, match="101 elements, more than the limit of 100"):
        parse_shape("101", max_elements=100)
    assert_usage_error(invoke(ShapeType(max_elements=1000), "--value", "1001"), "more than the limit of 1,000")
    with pytest.raises(BadInputError, match="at most 2 are supported"):
        parse_shape("1x1x1", max_ndim=2)
