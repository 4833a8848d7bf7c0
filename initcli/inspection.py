"""Inspect a saved model: each weight record checked against its configured initializer."""

from __future__ import annotations

import fnmatch
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initcli.assessment import Assessment, assess
from initcli.errors import BadInputError
from initcli.fans import compute_fans
from initcli.initializers import InitializerSpec, check_request, resolve
from initcli.layers import FORGET_GATE_CELLS
from initcli.readers import WeightRecord
from initcli.rng.stateless import FLOAT_DTYPES
from initcli.sampling import draw_whole
from initcli.stats import DEFAULT_ALPHA
from initcli.theory import Theory, theory_for

_IGNORED_FOR_DEFAULT = ("seed", "input_axes", "output_axes")


@dataclass
class WeightRow:
    """One inspected weight: the record, the resolved initializers, and the assessment."""

    record: WeightRecord
    initializer: InitializerSpec | None
    default: InitializerSpec | None
    fan_in: int
    fan_out: int
    assessment: Assessment
    notes: list[str] = field(default_factory=list)
    digest: str | None = None  # hash of dtype, shape and bytes, when asked for (identical-tensor check)

    @property
    def is_default(self) -> bool | None:
        if self.initializer is None or self.default is None:
            return None
        return self.initializer.class_name == self.default.class_name and _comparable(self.initializer) == _comparable(
            self.default
        )

    def to_dict(self) -> dict[str, Any]:
        record = self.record
        initializer = (
            self.initializer.to_dict()
            if self.initializer
            else (dict(record.initializer) if record.initializer else None)
        )
        if initializer is not None:
            initializer = {"class_name": initializer.get("class_name"), "config": initializer.get("config")}
        return {
            "path": record.path,
            "layer": record.layer,
            "layer_class": record.layer_class,
            "weight": record.weight,
            "shape": list(record.shape),
            "dtype": record.dtype,
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "initializer": initializer,
            "default_initializer": self.default.to_dict() if self.default else None,
            "is_default": self.is_default,
            **self.assessment.to_dict(),
            "settings": record.settings,
            "notes": self.notes,
        }


def _comparable(spec: InitializerSpec) -> dict[str, Any]:
    return {k: v for k, v in spec.config.items() if k not in _IGNORED_FOR_DEFAULT}


def _theory_dtype(dtype: str) -> str:
    return dtype if dtype in FLOAT_DTYPES else "float32"


def _resolve(identifier: Any, notes: list[str], what: str) -> InitializerSpec | None:
    if identifier is None:
        return None
    try:
        return resolve(identifier)
    except BadInputError as error:
        notes.append(f"{what}: {error} (not a Keras built-in; no theory)")
        return None


def _with_axes(spec: InitializerSpec, fan_axes: tuple[list[int], list[int]] | None) -> InitializerSpec:
    """Give a VarianceScaling-family initializer the fan axes EinsumDense derives, as Keras does."""
    if fan_axes is None or spec.variance_scaling() is None:
        return spec
    if spec.config.get("input_axes") is not None and spec.config.get("output_axes") is not None:
        return spec
    return InitializerSpec(spec.class_name, {**spec.config, "input_axes": fan_axes[0], "output_axes": fan_axes[1]})


def _forget_bias_theory(spec: InitializerSpec, shape: tuple[int, ...]) -> tuple[Theory, np.ndarray] | None:
    """LSTM unit_forget_bias: bias = [init(units), ones(units), init(2·units)] for constant inits."""
    if spec.class_name not in ("Zeros", "Ones", "Constant") or len(shape) != 1 or shape[0] % 4:
        return None
    units = shape[0] // 4
    value = float(draw_whole(spec, (1,), "float64")[0])
    expected = np.concatenate([np.full(units, value), np.ones(units), np.full(2 * units, value)])
    mean, var = float(expected.mean()), float(expected.var())
    fans = compute_fans(shape)
    theory = Theory(
        "constant", mean, math.sqrt(var), var, None, None, float(expected.min()), float(expected.max()), None, *fans
    )
    return theory, expected


def inspect_record(record: WeightRecord, alpha: float = DEFAULT_ALPHA, digest: bool = False) -> WeightRow:
    """Check one weight against its initializer; with `digest`, also hash its values."""
    notes = list(record.notes)
    spec = _resolve(record.initializer, notes, "initializer")
    default = _resolve(record.default_initializer, notes, "default") if record.default_initializer else None
    if spec is not None:
        spec = _with_axes(spec, record.fan_axes)
    dtype = _theory_dtype(record.dtype)
    theory: Theory | None = None
    expected = None
    if spec is not None:
        try:
            check_request(spec, record.shape, dtype)
            theory = theory_for(spec, record.shape, dtype)
        except BadInputError as error:
            notes.append(f"initializer cannot produce this shape: {error}")
        if (
            record.layer_class in FORGET_GATE_CELLS
            and record.weight == "bias"
            and record.settings.get("unit_forget_bias")
        ):
            special = _forget_bias_theory(spec, record.shape)
            if special is not None:
                theory, expected = special
            else:
                theory = None
                notes.append("unit_forget_bias with a random bias initializer: no single theory")
        elif theory is not None and theory.distribution in ("constant", "identity"):
            expected = draw_whole(spec, record.shape, "float64")
    values = record.read()
    if theory is not None:
        fan_in, fan_out = theory.fan_in, theory.fan_out
    else:
        axes = record.fan_axes or (None, None)
        fan_in, fan_out = compute_fans(record.shape, *axes)
    assessment = assess(
        [values.reshape(-1)], int(values.size), theory, dtype, expected=expected, whole=values, alpha=alpha
    )
    fingerprint = None
    if digest:
        hasher = hashlib.blake2b(f"{values.dtype}{values.shape}".encode(), digest_size=16)
        hasher.update(np.ascontiguousarray(values).tobytes())
        fingerprint = hasher.hexdigest()
    return WeightRow(record, spec, default, fan_in, fan_out, assessment, notes, fingerprint)


def matches(record: WeightRecord, patterns: Sequence[str]) -> bool:
    """--layer filter: a glob against the weight path or the layer name (plain text matches inside)."""
    if not patterns:
        return True
    for pattern in patterns:
        glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
        if fnmatch.fnmatchcase(record.path, glob) or fnmatch.fnmatchcase(record.layer, glob):
            return True
    return False


def inspect_records(
    records: Iterator[WeightRecord], patterns: Sequence[str] = (), alpha: float = DEFAULT_ALPHA, digest: bool = False
) -> Iterator[WeightRow]:
    for record in records:
        if matches(record, patterns):
            yield inspect_record(record, alpha, digest)
