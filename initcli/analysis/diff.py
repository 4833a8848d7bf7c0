"""`initcli diff A B`: how far each weight of model B is from the same weight of model A.

Weights are matched by path (Keras's `variable.path`, with a TF `:0` suffix ignored), then by
layer and weight name, then, for the weights left over on both sides, by position in file order
where the shapes agree (each row's `matched` says which). Each pair is read in chunks of both
files at once and reduced in float64, so memory stays near one chunk of each side whatever the
model's size.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initcli.readers.records import ModelFile, WeightRecord
from initcli.report_views import ReportViews

CHUNK_ELEMENTS = 1 << 20
"""Elements read from each side at a time: 8 MB of float64 per side while reducing."""


@dataclass
class _Moments:
    """Chunked count, mean and sum of squared deviations (Chan et al.'s merge), in float64."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        size = int(values.size)
        if not size:
            return
        chunk_mean = float(values.mean())
        centred = values - chunk_mean
        chunk_m2 = float(np.dot(centred, centred))
        total = self.count + size
        delta = chunk_mean - self.mean
        self.mean += delta * size / total
        self.m2 += chunk_m2 + delta * delta * self.count * size / total
        self.count = total

    @property
    def std(self) -> float | None:
        """Population standard deviation (numpy's `std` with ddof=0)."""
        return math.sqrt(max(self.m2, 0.0) / self.count) if self.count else None


@dataclass(frozen=True, kw_only=True)
class Sums:
    """What totals over several weights add up: squared norms, dot product, the largest |B-A|."""

    weights: int = 0
    elements: int = 0
    squared_a: float = 0.0
    squared_b: float = 0.0
    squared_difference: float = 0.0
    dot: float = 0.0
    max_abs_difference: float = 0.0

    def __add__(self, other: Sums) -> Sums:
        return Sums(
            weights=self.weights + other.weights,
            elements=self.elements + other.elements,
            squared_a=self.squared_a + other.squared_a,
            squared_b=self.squared_b + other.squared_b,
            squared_difference=self.squared_difference + other.squared_difference,
            dot=self.dot + other.dot,
            max_abs_difference=max(self.max_abs_difference, other.max_abs_difference),
        )

    @property
    def norm_a(self) -> float:
        return math.sqrt(self.squared_a)

    @property
    def norm_b(self) -> float:
        return math.sqrt(self.squared_b)

    @property
    def relative_change(self) -> float:
        """||B - A|| / ||A||: 0 when both are zero, infinite when only A is."""
        difference = math.sqrt(self.squared_difference)
        if self.squared_a > 0:
            return difference / self.norm_a
        return 0.0 if difference == 0 else math.inf

    @property
    def cosine(self) -> float | None:
        """<A, B> / (||A|| ||B||); None when either side is all zeros."""
        if self.squared_a <= 0 or self.squared_b <= 0:
            return None
        return max(-1.0, min(1.0, self.dot / (self.norm_a * self.norm_b)))

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "elements": self.elements,
            "norm_a": self.norm_a,
            "norm_b": self.norm_b,
            "relative_change": self.relative_change,
            "max_abs_diff": self.max_abs_difference,
            "cosine": self.cosine,
        }


@dataclass(frozen=True, kw_only=True)
class WeightDiff:
    """One matched pair of weights.

    Attributes:
        path: the weight's path in A; `path_b` its path in B (the same unless matched by position).
        matched: "path"; "name" when the paths differ but the layer and weight names agree (a
            `.weights.h5` file's paths lack the model's name); "position" when file order paired them.
        sums: the reductions (None when the shapes differ and nothing was compared).
        mean_a, std_a, mean_b, std_b: each side's mean and population std (ddof=0).
    """

    path: str
    path_b: str
    layer: str
    matched: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    dtype_a: str
    dtype_b: str
    sums: Sums | None
    mean_a: float | None = None
    std_a: float | None = None
    mean_b: float | None = None
    std_b: float | None = None

    @property
    def relative_change(self) -> float | None:
        return None if self.sums is None else self.sums.relative_change

    def moved_more_than(self, threshold: float) -> bool:
        """The weight changed by more than `threshold` (relative), or its shape changed."""
        return self.sums is None or self.sums.relative_change > threshold

    def to_json(self) -> dict[str, Any]:
        sums = self.sums
        return {
            "path": self.path,
            "path_b": self.path_b,
            "layer": self.layer,
            "matched": self.matched,
            "shape_a": list(self.shape_a),
            "shape_b": list(self.shape_b),
            "dtype_a": self.dtype_a,
            "dtype_b": self.dtype_b,
            "relative_change": None if sums is None else sums.relative_change,
            "max_abs_diff": None if sums is None else sums.max_abs_difference,
            "mean_a": self.mean_a,
            "std_a": self.std_a,
            "mean_b": self.mean_b,
            "std_b": self.std_b,
            "cosine": None if sums is None else sums.cosine,
            "norm_a": None if sums is None else sums.norm_a,
            "norm_b": None if sums is None else sums.norm_b,
        }


@dataclass(frozen=True, kw_only=True)
class OneSided:
    """A weight only one of the two models holds."""

    side: str
    path: str
    shape: tuple[int, ...]
    dtype: str

    def to_json(self) -> dict[str, Any]:
        return {"side": self.side, "path": self.path, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True, kw_only=True)
class DiffReport(ReportViews):
    """`initcli diff A B`: one row per matched weight, totals per layer and for the model."""

    source_a: str
    source_b: str
    format_a: str
    format_b: str
    rows: tuple[WeightDiff, ...]
    only: tuple[OneSided, ...]
    threshold: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    columns = (
        "path",
        "path_b",
        "matched",
        "shape_a",
        "shape_b",
        "relative_change",
        "max_abs_diff",
        "mean_a",
        "std_a",
        "mean_b",
        "std_b",
        "cosine",
    )

    @property
    def layers(self) -> dict[str, Sums]:
        """Totals per layer (A's layer names), in file order, over the rows whose shapes agree."""
        totals: dict[str, Sums] = {}
        for row in self.rows:
            if row.sums is not None:
                totals[row.layer] = totals.get(row.layer, Sums()) + row.sums
        return totals

    @property
    def total(self) -> Sums:
        result = Sums()
        for row in self.rows:
            if row.sums is not None:
                result = result + row.sums
        return result

    @property
    def exceeded(self) -> tuple[WeightDiff, ...]:
        """The rows that moved more than `threshold` (none without one)."""
        if self.threshold is None:
            return ()
        threshold = self.threshold
        return tuple(row for row in self.rows if row.moved_more_than(threshold))

    def flat_rows(self) -> list[dict[str, Any]]:
        rows = []
        for row in self.rows:
            record = row.to_json()
            record["shape_a"] = "x".join(map(str, row.shape_a)) or "scalar"
            record["shape_b"] = "x".join(map(str, row.shape_b)) or "scalar"
            if record["relative_change"] == math.inf:
                record["relative_change"] = "inf"  # A is all zeros and B is not
            rows.append(record)
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "a": {"source": self.source_a, "format": self.format_a},
            "b": {"source": self.source_b, "format": self.format_b},
            "weights": [row.to_json() for row in self.rows],
            "layers": [{"layer": name, **sums.to_json()} for name, sums in self.layers.items()],
            "total": self.total.to_json(),
            "only": [entry.to_json() for entry in self.only],
            "threshold": self.threshold,
            "exceeded": [row.path for row in self.exceeded],
            "notes": list(self.notes),
        }


def _path_key(record: WeightRecord) -> str:
    """A path as both sides can agree on it: TF's `:0` output suffix dropped."""
    return record.path[:-2] if record.path.endswith(":0") else record.path


def _name_key(record: WeightRecord) -> str:
    """The owning layer and the weight's name: a `.weights.h5` file omits the model's name from paths."""
    return f"{record.layer}/{record.weight}"


def _pair_by(
    key: Callable[[WeightRecord], str], rest_a: list[WeightRecord], rest_b: list[WeightRecord], how: str
) -> tuple[list[tuple[WeightRecord, WeightRecord, str]], list[WeightRecord], list[WeightRecord]]:
    """Pair the records whose key is the same on both sides and unique on each."""
    counts_a = Counter(key(record) for record in rest_a)
    by_key: dict[str, list[WeightRecord]] = {}
    for record in rest_b:
        by_key.setdefault(key(record), []).append(record)
    pairs = []
    paired_b: set[int] = set()
    left_a = []
    for record in rest_a:
        others = by_key.get(key(record), [])
        if counts_a[key(record)] == 1 and len(others) == 1:
            pairs.append((record, others[0], how))
            paired_b.add(id(others[0]))
        else:
            left_a.append(record)
    return pairs, left_a, [record for record in rest_b if id(record) not in paired_b]


def match(
    a: Sequence[WeightRecord], b: Sequence[WeightRecord]
) -> tuple[list[tuple[WeightRecord, WeightRecord, str]], list[WeightRecord], list[WeightRecord]]:
    """Pairs, A-only, B-only: by path, then by layer and weight name, then by position among the rest.

    Position pairs only records whose shapes agree, in file order; each pair says how it was made.
    """
    pairs, rest_a, rest_b = _pair_by(_path_key, list(a), list(b), "path")
    by_name, rest_a, rest_b = _pair_by(_name_key, rest_a, rest_b, "name")
    pairs += by_name
    only_a: list[WeightRecord] = []
    only_b: list[WeightRecord] = []
    for index in range(max(len(rest_a), len(rest_b))):
        left = rest_a[index] if index < len(rest_a) else None
        right = rest_b[index] if index < len(rest_b) else None
        if left is not None and right is not None and left.shape == right.shape:
            pairs.append((left, right, "position"))
            continue
        if left is not None:
            only_a.append(left)
        if right is not None:
            only_b.append(right)
    order = {id(record): index for index, record in enumerate(a)}
    pairs.sort(key=lambda pair: order[id(pair[0])])
    return pairs, only_a, only_b


def _float64_chunks(record: WeightRecord, elements: int) -> Iterator[np.ndarray]:
    for chunk in record.chunks(elements):
        yield np.asarray(chunk).reshape(-1).astype(np.float64)


def compare(a: WeightRecord, b: WeightRecord, matched: str, elements: int = CHUNK_ELEMENTS) -> WeightDiff:
    """Reduce one pair of weights chunk by chunk (both files read side by side, float64)."""
    common: dict[str, Any] = {
        "path": a.path,
        "path_b": b.path,
        "layer": a.layer,
        "matched": matched,
        "shape_a": tuple(a.shape),
        "shape_b": tuple(b.shape),
        "dtype_a": a.dtype,
        "dtype_b": b.dtype,
    }
    if tuple(a.shape) != tuple(b.shape):
        return WeightDiff(**common, sums=None)
    moments_a, moments_b = _Moments(), _Moments()
    squared_a = squared_b = squared_difference = dot = 0.0
    max_abs = 0.0
    size = 0
    chunks_b = _float64_chunks(b, elements)
    for left in _float64_chunks(a, elements):
        right = next(chunks_b, None)
        if right is None or right.size != left.size:
            raise ValueError(f"{b.path}: read {size} elements, then a chunk that does not match A's")
        difference = right - left
        squared_a += float(np.dot(left, left))
        squared_b += float(np.dot(right, right))
        squared_difference += float(np.dot(difference, difference))
        dot += float(np.dot(left, right))
        if difference.size:
            max_abs = max(max_abs, float(np.max(np.abs(difference))))
        moments_a.add(left)
        moments_b.add(right)
        size += left.size
    sums = Sums(
        weights=1,
        elements=size,
        squared_a=squared_a,
        squared_b=squared_b,
        squared_difference=squared_difference,
        dot=dot,
        max_abs_difference=max_abs,
    )
    return WeightDiff(
        **common,
        sums=sums,
        mean_a=moments_a.mean if size else None,
        std_a=moments_a.std,
        mean_b=moments_b.mean if size else None,
        std_b=moments_b.std,
    )


def diff_files(
    saved_a: ModelFile, saved_b: ModelFile, threshold: float | None = None, elements: int = CHUNK_ELEMENTS
) -> DiffReport:
    """Compare every weight of two opened model files (see the module docstring)."""
    records_a = list(saved_a.records())
    records_b = list(saved_b.records())
    pairs, only_a, only_b = match(records_a, records_b)
    rows = tuple(compare(left, right, how, elements) for left, right, how in pairs)
    notes = []
    by_name = sum(1 for row in rows if row.matched == "name")
    if by_name:
        notes.append(f"{by_name} weights matched by layer and weight name (their paths differ)")
    by_position = sum(1 for row in rows if row.matched == "position")
    if by_position:
        notes.append(f"{by_position} weights matched by position in file order (their paths differ)")
    different = sum(1 for row in rows if row.sums is None)
    if different:
        notes.append(f"{different} matched weights have different shapes and were not compared")
    only = tuple(OneSided(side="a", path=r.path, shape=tuple(r.shape), dtype=r.dtype) for r in only_a) + tuple(
        OneSided(side="b", path=r.path, shape=tuple(r.shape), dtype=r.dtype) for r in only_b
    )
    return DiffReport(
        source_a=saved_a.source,
        source_b=saved_b.source,
        format_a=saved_a.format,
        format_b=saved_b.format,
        rows=rows,
        only=only,
        threshold=threshold,
        notes=tuple(notes),
    )


def diff_models(
    path_a: str | os.PathLike[str],
    path_b: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    timeout: float | None = None,
) -> DiffReport:
    """Open two model files (any format `open_model` reads) and compare their weights.

    Raises:
        InitcliError: either file cannot be read.
    """
    from initcli.readers import open_model

    saved_a = open_model(path_a, timeout=timeout)
    try:
        saved_b = open_model(path_b, timeout=timeout)
        try:
            report = diff_files(saved_a, saved_b, threshold)
            saved_a.finish()
            saved_b.finish()
            return report
        finally:
            saved_b.close()
    finally:
        saved_a.close()
