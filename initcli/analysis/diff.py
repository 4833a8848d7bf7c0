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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from initcli.readers.records import ModelFile, WeightRecord
from initcli.report_views import ReportViews

if TYPE_CHECKING:
    from initcli.analysis.inspection import WeightRow

CHUNK_ELEMENTS = 1 << 20
"""Elements read from each side at a time: 8 MB of float64 per side while reducing."""


def _dot(left: np.ndarray, right: np.ndarray) -> float:
    """sum(left * right) in float64, not by BLAS (as `stats.chunkmoments`): a threaded Dask worker that
    forks (the HDF5 walk's child) while another thread is in OpenBLAS's pool hung there for good."""
    return float(np.einsum("i,i->", left, right))


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
        self.merge(size, chunk_mean, _dot(centred, centred))

    def merge(self, size: int, chunk_mean: float, chunk_m2: float) -> None:
        """Add a chunk of `size` values known by its mean and sum of squared deviations."""
        if not size:
            return
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
        correlation: Pearson's correlation of A and B (numpy's `corrcoef`), from co-moments merged
            chunk by chunk; None when either side is constant.
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
    correlation: float | None = None

    @property
    def relative_change(self) -> float | None:
        return None if self.sums is None else self.sums.relative_change

    @property
    def std_ratio(self) -> float | None:
        """std_b / std_a: how much the spread grew (None when A is constant)."""
        if self.std_a is None or self.std_b is None or self.std_a == 0:
            return None
        return self.std_b / self.std_a

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
            "std_ratio": self.std_ratio,
            "cosine": None if sums is None else sums.cosine,
            "correlation": self.correlation,
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
        "std_ratio",
        "cosine",
        "correlation",
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

    @property
    def failed(self) -> bool:
        """The `--threshold` gate fails (exit 3): a weight moved more, nothing was compared, or a weight is
        on one side only (the architectures differ: nothing says it is unchanged). False without one."""
        return self.threshold is not None and (bool(self.exceeded) or not self.rows or bool(self.only))

    def matched_rows(self) -> list[dict[str, Any]]:
        """The matched weights' records, as the table shows them (shapes as `3x3`, `inf` spelled)."""
        rows = []
        for row in self.rows:
            record = row.to_json()
            record["shape_a"] = "x".join(map(str, row.shape_a)) or "scalar"
            record["shape_b"] = "x".join(map(str, row.shape_b)) or "scalar"
            if record["relative_change"] == math.inf:
                record["relative_change"] = "inf"  # A is all zeros and B is not
            rows.append(record)
        return rows

    def flat_rows(self) -> list[dict[str, Any]]:
        """CSV/Markdown records: the matched weights, then each weight on one side only (`matched`
        `only_a` or `only_b`, its path and shape on its side, the compared columns empty)."""
        rows = self.matched_rows()
        for entry in self.only:
            shape = "x".join(map(str, entry.shape)) or "scalar"
            rows.append(
                {"path": entry.path, "shape_a": shape, "matched": "only_a"}
                if entry.side == "a"
                else {"path_b": entry.path, "shape_b": shape, "matched": "only_b"}
            )
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
    comoment = 0.0  # sum of (a - mean_a)(b - mean_b), merged as the moments are
    chunks_b = _float64_chunks(b, elements)
    for left in _float64_chunks(a, elements):
        right = next(chunks_b, None)
        if right is None or right.size != left.size:
            raise ValueError(f"{b.path}: read {size} elements, then a chunk that does not match A's")
        if not left.size:
            continue
        # Each pass is over the chunk in float64; the centred chunks serve the moments and the
        # co-moment alike (no pass is made twice).
        difference = right - left
        squared_difference += _dot(difference, difference)
        dot += _dot(left, right)
        max_abs = max(max_abs, float(difference.max()), -float(difference.min()))
        chunk_a, chunk_b = float(left.mean()), float(right.mean())
        np.subtract(left, chunk_a, out=left)
        np.subtract(right, chunk_b, out=right)
        total = size + left.size
        comoment += (
            _dot(left, right) + (chunk_a - moments_a.mean) * (chunk_b - moments_b.mean) * size * left.size / total
        )
        m2_a, m2_b = _dot(left, left), _dot(right, right)
        # ||x||^2 = sum of squared deviations + n * mean^2: both terms non-negative, no cancellation.
        squared_a += m2_a + left.size * chunk_a * chunk_a
        squared_b += m2_b + right.size * chunk_b * chunk_b
        moments_a.merge(left.size, chunk_a, m2_a)
        moments_b.merge(right.size, chunk_b, m2_b)
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
    spread = math.sqrt(max(moments_a.m2, 0.0) * max(moments_b.m2, 0.0))
    return WeightDiff(
        **common,
        sums=sums,
        mean_a=moments_a.mean if size else None,
        std_a=moments_a.std,
        mean_b=moments_b.mean if size else None,
        std_b=moments_b.std,
        correlation=max(-1.0, min(1.0, comoment / spread)) if spread > 0 else None,
    )


Pairs = Sequence[tuple[WeightRecord, WeightRecord, str]]


def diff_files(
    saved_a: ModelFile,
    saved_b: ModelFile,
    threshold: float | None = None,
    elements: int = CHUNK_ELEMENTS,
    compare_pairs: Callable[[Pairs, int], Sequence[WeightDiff]] | None = None,
) -> DiffReport:
    """Compare every weight of two opened model files (see the module docstring).

    `compare_pairs(pairs, elements)`: what `compare` gives for each pair, computed elsewhere (on Dask
    workers: `initcli.analysis.remote.diff_on_cluster`); by default `compare` in this process.
    """
    records_a = list(saved_a.records())
    records_b = list(saved_b.records())
    pairs, only_a, only_b = match(records_a, records_b)
    if compare_pairs is None:
        rows = tuple(compare(left, right, how, elements) for left, right, how in pairs)
    else:
        rows = tuple(compare_pairs(pairs, elements))
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


InitDraw = Literal["exact", "global-seed", "independent"]
"""What the re-drawn init of `inspect --fresh` is to a saved weight:

- "exact": the file's own init, for a constant initializer or one whose config carries a seed
  (Keras of the file's line, Keras 3 or tf_keras, draws a seeded initializer the same every time);
- "global-seed": the file's own init only if the model was built after
  `keras.utils.set_random_seed(N)` with the `--seed N` given (Keras cannot tell);
- "independent": no seed anywhere, an independent draw of the same initializer: the change and
  correlation are then statistical (an unmoved weight shows a correlation near 0 and a relative
  change near sqrt(1 + std_ratio²)), not the weight's own movement.
"""

INIT_DRAW_NOTES: dict[str, str] = {
    "exact": "the re-drawn init is the file's own (a constant, or a seeded initializer)",
    "global-seed": "the re-drawn init is the file's own only if the model was built with this --seed",
    "independent": "the re-drawn init is an independent draw (no seed): change and correlation are statistical, "
    "not this file's own movement",
}


@dataclass(frozen=True, kw_only=True)
class Drift:
    """How far one weight of a model is from its initializer (`inspect`).

    Attributes:
        std_ratio: the weight's std over its initializer's theoretical std (population std, ddof=0;
            None for a constant initializer, whose theoretical std is 0).
        init: with --fresh, what the re-drawn init is to this file (`InitDraw`), else None.
        fresh: with --fresh, the saved weight (B) against the re-drawn init (A): relative change
            ||W - W0|| / ||W0||, max |W - W0|, cosine and correlation; None without --fresh or when
            the rebuilt model has no such weight.
    """

    std_ratio: float | None
    init: InitDraw | None = None
    fresh: WeightDiff | None = None

    @property
    def relative_change(self) -> float | None:
        return None if self.fresh is None else self.fresh.relative_change

    @property
    def correlation(self) -> float | None:
        return None if self.fresh is None else self.fresh.correlation

    @property
    def cosine(self) -> float | None:
        return None if self.fresh is None or self.fresh.sums is None else self.fresh.sums.cosine

    def to_json(self) -> dict[str, Any]:
        fresh = self.fresh
        return {
            "std_ratio": self.std_ratio,
            "init": self.init,
            "fresh_path": None if fresh is None else fresh.path,
            "matched": None if fresh is None else fresh.matched,
            "relative_change": self.relative_change,
            "max_abs_diff": None if fresh is None or fresh.sums is None else fresh.sums.max_abs_difference,
            "cosine": self.cosine,
            "correlation": self.correlation,
        }


def std_ratio(row: WeightRow) -> float | None:
    """The weight's population std over its initializer's theoretical std (None when that is 0 or unknown)."""
    theory, sample = row.assessment.theory, row.assessment.sample
    if theory is None or not theory.std or sample.std is None:
        return None
    return sample.std / theory.std


def init_draw(row: WeightRow, seed: int | None, same_draws: bool = True) -> InitDraw:
    """What the re-drawn init of `--fresh` is to this weight (see `InitDraw`).

    `same_draws`: the rebuilding Keras draws a seed as the file's did (not so for a multi-backend
    Keras 2 file: `initcli.analysis.fresh.same_draws`); else only a constant is re-drawn exactly.
    """
    spec = row.initializer
    if spec is not None and not spec.family.random:
        return "exact"
    if not same_draws:
        return "independent"
    if spec is not None and spec.config.get("seed") is not None:
        return "exact"
    return "global-seed" if seed is not None else "independent"


def pair_fresh(saved: Sequence[WeightRecord], rebuilt: Sequence[WeightRecord]) -> dict[str, tuple[WeightRecord, str]]:
    """Each saved weight's counterpart in the rebuilt model (by path, name, then position; see `match`)."""
    pairs, _, _ = match(saved, rebuilt)
    return {left.path: (right, how) for left, right, how in pairs}


def drift_rows(
    rows: Sequence[WeightRow],
    fresh: Mapping[str, tuple[WeightRecord, str]] | None = None,
    seed: int | None = None,
    elements: int = CHUNK_ELEMENTS,
    keras_version: str | None = None,
) -> dict[str, Drift]:
    """Each row's drift from its initializer; with `fresh` (`pair_fresh`), from the re-drawn init too.

    Reads each saved weight and its re-drawn init side by side (`compare`, A = the init).
    """
    from initcli.analysis.fresh import same_draws

    same = same_draws(keras_version)
    out: dict[str, Drift] = {}
    for row in rows:
        path = row.record.path
        if fresh is None:
            out[path] = Drift(std_ratio=std_ratio(row))
            continue
        pair = fresh.get(path)
        measured = None if pair is None else compare(pair[0], row.record, pair[1], elements)
        out[path] = Drift(std_ratio=std_ratio(row), init=init_draw(row, seed, same), fresh=measured)
    return out


def drift_note(drift: Mapping[str, Drift]) -> str | None:
    """One line saying what the --fresh change and correlation are measured against, or None without --fresh."""
    kinds = Counter(entry.init for entry in drift.values() if entry.fresh is not None and entry.init is not None)
    if not kinds:
        return None
    parts = []
    if kinds["exact"]:
        parts.append(f"{kinds['exact']} exact (a constant or seeded initializer: the file's own init)")
    if kinds["global-seed"]:
        parts.append(f"{kinds['global-seed']} exact only if the model was built with this --seed")
    if kinds["independent"]:
        parts.append(f"{kinds['independent']} against an independent draw (no seed; marked ~: statistical)")
    return "change = ||W - W0|| / ||W0||, corr = correlation with the re-drawn init W0: " + "; ".join(parts)
