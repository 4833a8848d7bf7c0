"""`inspect --scheduler`: each weight measured on a Dask worker by the function the local path uses.

The client opens the model as one machine does (its structure, names and configs: the records),
splits the selected weights into tasks, and sends each task the records' metadata (everything but
their readers). A worker opens the file by the same path (shared storage, the same mount point),
finds each weight's values there, and runs `inspection.measure_record` on the client's metadata with
its own reader; the client turns the measurements into rows with `inspection.weight_row`, in the
model's order. The rows are therefore the local path's, bit for bit, whatever the number of workers
(tests/test_dask.py compares every field). A weight is never split between workers: its statistics
come from one pass over its chunks, as locally.

The tasks:
- Keras sharded weights (a `.weights.json` index, or a KerasHub preset's): one task per shard (a
  large shard is split in pieces), the worker opening only that shard and walking its HDF5 structure
  with the same isolated walk (`readers.h5snapshot.snapshot`); each weight is found by its dataset.
- every other input `open_model` reads from a path (a `.keras`, `.h5` or `.weights.h5` file,
  safetensors, a SavedModel or TF checkpoint, a KerasHub preset with one weights file): pieces of
  consecutive weights, the worker opening the whole model (with the client's `--config`) and taking
  each weight by its position, checked to be the same weight (path, shape, dtype).

On the workers the rules of one machine hold: files are opened by `open_model` or, for a shard,
`safety.files.open_inside` the index's directory (regular files only, no link out of it); the
command's budget is re-made on the worker with the time the command has left (the HDF5 walk, every
parser and the reads spend from it), and the client stops waiting, and cancels, at the deadline.
A file a worker sees differently (another size, other weights) is a one-line error, not a row.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from initcli.analysis.inspection import Measurement, WeightRow, measure_record, weight_bytes, weight_row
from initcli.errors import InitcliError
from initcli.parallel.dask import Cluster, map_in_order
from initcli.readers import ModelFile, WeightRecord
from initcli.safety import budget

if TYPE_CHECKING:
    from initcli.analysis.diff import WeightDiff

Result = TypeVar("Result")

MIN_TASK_BYTES = 256 << 20
"""A task reads at least this much (or one weight): a task costs some 40 ms (its file opened and
walked, the round trip), and one process measures ~1 GB/s of float32 (benchmarks/bench_dask.py)."""
TASKS_PER_WORKER = 2
"""Tasks per worker of the cluster (when the bytes allow), so that a slow worker leaves work to the others."""
_SHARDED_FORMATS = ("sharded-weights", "kerashub-preset")


def _version() -> str:
    """initcli's version (the package is imported whenever this module is: no import of the root's API)."""
    return str(getattr(sys.modules.get("initcli"), "__version__", "unknown"))


def _no_reader() -> Any:
    raise InitcliError("a record sent to a Dask worker has no reader of its own")


@dataclass(frozen=True, kw_only=True)
class Task:
    """The weights one worker measures: where to find them, their metadata, the time left.

    Attributes:
        path: the file the worker opens (absolute, as the client sees it).
        shard: True: `path` is one shard of sharded weights, `locators` its datasets; False: `path`
            is the model `open_model` reads, `locators` the weights' positions among its records.
        directory: for a shard, the directory it must lie in.
        size: the shard's size in bytes on the client (a worker seeing another file refuses it).
    """

    version: str
    path: str
    shard: bool
    directory: str | None
    size: int | None
    config: Mapping[str, Any] | None
    locators: tuple[str | int, ...]
    records: tuple[WeightRecord, ...]
    interval_alpha: float
    timeout: float
    remaining: float


Outcome = Measurement | Exception


def measure_task(task: Task) -> list[Outcome]:
    """On a worker: each weight of `task` measured, in order, up to the first that fails (its exception,
    returned as the last outcome, so that the client raises the error a plain loop would)."""
    if task.version != _version():
        raise InitcliError(f"a Dask worker runs initcli {_version()}, the client {task.version}: install the same")
    # The command's budget again, with the time it has left: every parser, walk and read here spends from it.
    with budget.scope(budget.Budget(timeout=task.timeout, deadline=time.monotonic() + task.remaining)):
        return _outcomes(_located(task), lambda record: measure_record(record, task.interval_alpha))


def _located(task: Task) -> Generator[WeightRecord, None, None]:
    """Each of `task`'s records with the worker's own reader, in order (its file opened, and closed
    when the generator is); raises where a weight is not found as the client read it."""
    if task.shard:
        yield from _in_shard(task)
    else:
        yield from _in_model(task)


def _outcomes(located: Iterator[Any], measure: Callable[[Any], Result]) -> list[Result | Exception]:
    """`measure` of each located record (or pair), up to the first failure (its exception, the last outcome)."""
    outcomes: list[Result | Exception] = []
    try:
        for record in located:
            try:
                outcomes.append(measure(record))
            except Exception as error:  # noqa: BLE001 - the client raises it at this weight's turn
                outcomes.append(error)
                break
    except Exception as error:  # noqa: BLE001 - a file not opened, a weight not found: said at its turn
        outcomes.append(error)
    finally:
        close = getattr(located, "close", None)
        if close is not None:
            close()
    return outcomes


def _in_model(task: Task) -> Iterator[WeightRecord]:
    from initcli.readers import open_model

    model = open_model(task.path, timeout=task.timeout, config=task.config)  # the budget caps it
    try:
        records = list(model.records())
        for position, record in zip(task.locators, task.records):
            assert isinstance(position, int)
            found = records[position] if position < len(records) else None
            if found is None or found.identity() != record.identity() or found.location != record.location:
                raise _differs(task.path, record)
            yield replace(record, read=found.read, read_chunks=found.read_chunks)
    finally:
        model.close()


def _in_shard(task: Task) -> Iterator[WeightRecord]:
    from initcli.readers.h5snapshot import H5Dataset, H5Source, Limits, snapshot
    from initcli.safety.files import FileIdentity, open_inside

    assert task.directory is not None
    fd = open_inside(task.path, task.directory)
    try:
        identity = FileIdentity.of(fd)
        if task.size is not None and identity.size != task.size:
            raise InitcliError(
                f"{task.path}: a Dask worker sees {identity.size} bytes where the client read {task.size}: "
                "the workers must see the same files at the same path"
            )
        limits = Limits(timeout=task.timeout)  # the HDF5 walk's worker is capped by the budget, as locally
        source = H5Source(fd=fd, start=0, size=identity.size, label=task.path, identity=identity, limits=limits)
        root = snapshot(source)
        for name, record in zip(task.locators, task.records):
            assert isinstance(name, str)
            dataset = root.resolve(name.strip("/"))
            if not isinstance(dataset, H5Dataset) or dataset.shape != record.shape:
                raise _differs(task.path, record)
            yield replace(record, read=dataset.read, read_chunks=dataset.read_chunks)
    finally:
        os.close(fd)


def _differs(path: str, record: WeightRecord) -> InitcliError:
    from initcli.safety.files import shown

    return InitcliError(
        f"{path}: a Dask worker does not find weight {shown(record.path)} {list(record.shape)} {record.dtype} "
        "where the client read it: the workers must see the same files at the same path"
    )


def _shard_of(record: WeightRecord) -> tuple[str, str, int] | None:
    """(shard file, dataset, shard size) of a record read from an HDF5 shard of its own; None otherwise."""
    from initcli.readers.h5snapshot import H5Dataset

    dataset = getattr(record.read, "__self__", None)
    if not isinstance(dataset, H5Dataset) or dataset.source.start != 0:
        return None
    return os.path.abspath(dataset.source.label), dataset.name, dataset.source.identity.size


Group = tuple[str, bool, int | None]
"""Where a worker finds a weight: (file, is it one shard, the shard's size)."""


def _locate(saved: ModelFile, path: str, selected: Sequence[WeightRecord]) -> list[tuple[Group, str | int]]:
    """For each selected record of `saved` (opened from `path`): its group and its locator there
    (its dataset in its shard, for sharded weights; else its position among the model's records)."""
    shards = [_shard_of(record) for record in selected] if saved.format in _SHARDED_FORMATS else []
    if shards and all(shard is not None for shard in shards):
        return [((found[0], True, found[2]), found[1]) for found in shards if found is not None]
    whole: Group = (os.path.abspath(path), False, None)
    return [(whole, position) for position in _positions(saved, selected)]


def _task(
    group: Group,
    config: Mapping[str, Any] | None,
    locators: Sequence[str | int],
    records: Sequence[WeightRecord],
    interval_alpha: float,
    command: budget.Budget,
) -> Task:
    file, shard, size = group
    return Task(
        version=_version(),
        path=file,
        shard=shard,
        directory=os.path.dirname(file) if shard else None,
        size=size,
        config=None if shard else config,
        locators=tuple(locators),
        records=tuple(replace(record, read=_no_reader, read_chunks=None) for record in records),
        interval_alpha=interval_alpha,
        timeout=command.timeout,
        remaining=command.remaining(),
    )


def _target(sizes: Sequence[int], workers: int) -> int:
    return max(MIN_TASK_BYTES, math.ceil(sum(sizes) / max(1, workers * TASKS_PER_WORKER)))


def plan(
    saved: ModelFile,
    path: str,
    config: Mapping[str, Any] | None,
    selected: Sequence[WeightRecord],
    workers: int,
    interval_alpha: float,
    command: budget.Budget,
) -> tuple[list[Task], list[list[int]]]:
    """The tasks for the `selected` records of `saved` (opened from `path` with `config`), and for each
    task the indices in `selected` of its weights."""
    sizes = [weight_bytes(record.shape, record.dtype) for record in selected]
    groups: dict[Group, list[tuple[int, str | int]]] = {}
    for index, (group, locator) in enumerate(_locate(saved, path, selected)):
        groups.setdefault(group, []).append((index, locator))
    tasks: list[Task] = []
    members: list[list[int]] = []
    for group, entries in groups.items():
        for piece in _pieces(entries, sizes, _target(sizes, workers)):
            records = [selected[index] for index, _ in piece]
            tasks.append(_task(group, config, [locator for _, locator in piece], records, interval_alpha, command))
            members.append([index for index, _ in piece])
    return tasks, members


def _pieces(entries: list[tuple[int, Any]], sizes: Sequence[int], target: int) -> list[list[tuple[int, Any]]]:
    """Consecutive entries in pieces of about `target` bytes (a weight larger than that alone)."""
    pieces: list[list[tuple[int, Any]]] = []
    current: list[tuple[int, Any]] = []
    total = 0
    for entry in entries:
        if current and total + sizes[entry[0]] > target:
            pieces.append(current)
            current, total = [], 0
        current.append(entry)
        total += sizes[entry[0]]
    if current:
        pieces.append(current)
    return pieces


def _positions(saved: ModelFile, selected: Sequence[WeightRecord]) -> list[int]:
    """Where each selected record is among all of `saved`'s records (in any order; a weight that
    appears twice, the same, is taken in file order)."""

    def key(record: WeightRecord) -> tuple[str, str | None]:
        return repr(sorted(record.identity().items())), record.location

    found: dict[tuple[str, str | None], list[int]] = {}
    for position, candidate in enumerate(saved.records()):
        found.setdefault(key(candidate), []).append(position)
    positions = []
    for record in selected:
        left = found.get(key(record))
        if not left:
            raise InitcliError(f"{saved.source}: its weights changed while it was being read")
        positions.append(left.pop(0))
    return positions


def measure_on_cluster(
    cluster: Cluster,
    saved: ModelFile,
    path: str,
    config: Mapping[str, Any] | None,
    records: Sequence[WeightRecord],
    interval_alpha: float,
    advance: Callable[[WeightRow], None] | None = None,
) -> list[WeightRow]:
    """The rows `inspection.inspect_records(records, (), interval_alpha)` gives, measured on `cluster`.

    Raises:
        InitcliError: what the local path raises for the first weight that fails; the deadline spent
            (the tasks cancelled); a worker that sees another file.
    """
    command = budget.active()
    tasks, members = plan(saved, path, config, records, cluster.workers(), interval_alpha, command)
    outcomes: dict[int, Outcome] = {}

    def done(index: int, result: list[Outcome]) -> None:
        for member, outcome in zip(members[index], result):
            outcomes[member] = outcome
            if advance is not None and isinstance(outcome, Measurement):
                advance(weight_row(records[member], outcome))

    map_in_order(
        cluster,
        measure_task,
        tasks,
        remaining=command.remaining(),
        timeout=command.timeout,
        what=f"inspecting {saved.source} on the Dask cluster",
        done=done,
    )
    rows = []
    for index, record in enumerate(records):
        outcome = outcomes.get(index)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is None:  # cannot happen: a task stops only after a failed weight, raised above
            raise InitcliError(f"{saved.source}: the Dask cluster returned no result for {record.path}")
        rows.append(weight_row(record, outcome))
    return rows


@dataclass(frozen=True, kw_only=True)
class DiffTask:
    """Pairs of weights one worker compares (`diff --scheduler`): A's found as `a` says, B's as `b`
    says (each as an inspect task finds its weights), paired in order, each pair `matched` so."""

    a: Task
    b: Task
    matched: tuple[str, ...]
    elements: int


def compare_task(task: DiffTask) -> list[WeightDiff | Exception]:
    """On a worker: `diff.compare` of each pair of `task`, in order, up to the first that fails."""
    from initcli.analysis.diff import compare

    if task.a.version != _version():
        raise InitcliError(f"a Dask worker runs initcli {_version()}, the client {task.a.version}: install the same")
    with budget.scope(budget.Budget(timeout=task.a.timeout, deadline=time.monotonic() + task.a.remaining)):
        return _outcomes(_paired(task), lambda pair: compare(pair[0], pair[1], pair[2], task.elements))


def _paired(task: DiffTask) -> Iterator[tuple[WeightRecord, WeightRecord, str]]:
    right = _located(task.b)
    try:
        for left, matched in zip(_located(task.a), task.matched):
            yield left, next(right), matched
    finally:
        right.close()


def diff_on_cluster(
    cluster: Cluster,
    sides: tuple[tuple[ModelFile, str], tuple[ModelFile, str]],
    pairs: Sequence[tuple[WeightRecord, WeightRecord, str]],
    elements: int,
) -> list[WeightDiff]:
    """`[diff.compare(a, b, matched, elements) for a, b, matched in pairs]`, computed on `cluster`:
    `sides` are A and B opened here, with the paths the workers open them by.

    Raises:
        InitcliError: what the local path raises for the first pair that fails; the deadline spent;
            a worker that sees another file.
    """
    command = budget.active()
    (saved_a, path_a), (saved_b, path_b) = sides
    sizes = [weight_bytes(a.shape, a.dtype) + weight_bytes(b.shape, b.dtype) for a, b, _ in pairs]
    located_a = _locate(saved_a, path_a, [a for a, _, _ in pairs])
    located_b = _locate(saved_b, path_b, [b for _, b, _ in pairs])
    groups: dict[tuple[Group, Group], list[tuple[int, tuple[str | int, str | int]]]] = {}
    for index, ((group_a, locator_a), (group_b, locator_b)) in enumerate(zip(located_a, located_b)):
        groups.setdefault((group_a, group_b), []).append((index, (locator_a, locator_b)))
    tasks: list[DiffTask] = []
    members: list[list[int]] = []
    for (group_a, group_b), entries in groups.items():
        for piece in _pieces(entries, sizes, _target(sizes, cluster.workers())):
            chosen = [pairs[index] for index, _ in piece]
            tasks.append(
                DiffTask(
                    a=_task(group_a, None, [ab[0] for _, ab in piece], [a for a, _, _ in chosen], 0.0, command),
                    b=_task(group_b, None, [ab[1] for _, ab in piece], [b for _, b, _ in chosen], 0.0, command),
                    matched=tuple(matched for _, _, matched in chosen),
                    elements=elements,
                )
            )
            members.append([index for index, _ in piece])
    outcomes: dict[int, WeightDiff | Exception] = {}
    for index, result in enumerate(
        map_in_order(
            cluster,
            compare_task,
            tasks,
            remaining=command.remaining(),
            timeout=command.timeout,
            what=f"comparing {saved_a.source} with {saved_b.source} on the Dask cluster",
        )
    ):
        outcomes.update(zip(members[index], result))
    rows = []
    for index, (a, _, _) in enumerate(pairs):
        outcome = outcomes.get(index)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is None:  # cannot happen: a task stops only after a failed pair, raised above
            raise InitcliError(f"{saved_a.source}: the Dask cluster returned no result for {a.path}")
        rows.append(outcome)
    return rows
