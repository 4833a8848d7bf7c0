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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from initcli.analysis.inspection import Measurement, WeightRow, measure_record, weight_bytes, weight_row
from initcli.errors import InitcliError
from initcli.parallel.dask import Cluster, map_in_order
from initcli.readers import ModelFile, WeightRecord
from initcli.safety import budget

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
        return _measure_shard(task) if task.shard else _measure_model(task)


def _measured(record: WeightRecord, reader: WeightRecord | Any, task: Task, outcomes: list[Outcome]) -> bool:
    try:
        outcomes.append(
            measure_record(replace(record, read=reader.read, read_chunks=reader.read_chunks), task.interval_alpha)
        )
    except Exception as error:  # noqa: BLE001 - the client raises it at this weight's turn
        outcomes.append(error)
        return False
    return True


def _measure_model(task: Task) -> list[Outcome]:
    from initcli.readers import open_model

    outcomes: list[Outcome] = []
    try:
        model = open_model(task.path, timeout=task.timeout, config=task.config)  # the budget caps it
    except Exception as error:  # noqa: BLE001 - said at the task's first weight
        return [error]
    try:
        records = list(model.records())
        for position, record in zip(task.locators, task.records):
            assert isinstance(position, int)
            found = records[position] if position < len(records) else None
            if found is None or found.identity() != record.identity() or found.location != record.location:
                outcomes.append(_differs(task.path, record))
                break
            if not _measured(record, found, task, outcomes):
                break
    except Exception as error:  # noqa: BLE001
        outcomes.append(error)
    finally:
        model.close()
    return outcomes


def _measure_shard(task: Task) -> list[Outcome]:
    from initcli.readers.h5snapshot import H5Dataset, H5Source, Limits, snapshot
    from initcli.safety.files import FileIdentity, open_inside

    outcomes: list[Outcome] = []
    try:
        assert task.directory is not None
        fd = open_inside(task.path, task.directory)
    except Exception as error:  # noqa: BLE001
        return [error]
    try:
        identity = FileIdentity.of(fd)
        if task.size is not None and identity.size != task.size:
            return [
                InitcliError(
                    f"{task.path}: a Dask worker sees {identity.size} bytes where the client read {task.size}: "
                    "the workers must see the same files at the same path"
                )
            ]
        limits = Limits(timeout=task.timeout)  # the HDF5 walk's worker is capped by the budget, as locally
        source = H5Source(fd=fd, start=0, size=identity.size, label=task.path, identity=identity, limits=limits)
        root = snapshot(source)
        for name, record in zip(task.locators, task.records):
            assert isinstance(name, str)
            dataset = root.resolve(name.strip("/"))
            if not isinstance(dataset, H5Dataset) or dataset.shape != record.shape:
                outcomes.append(_differs(task.path, record))
                break
            if not _measured(record, dataset, task, outcomes):
                break
    except Exception as error:  # noqa: BLE001
        outcomes.append(error)
    finally:
        os.close(fd)
    return outcomes


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
    metadata = [replace(record, read=_no_reader, read_chunks=None) for record in selected]
    sizes = [weight_bytes(record.shape, record.dtype) for record in selected]
    target = max(MIN_TASK_BYTES, math.ceil(sum(sizes) / max(1, workers * TASKS_PER_WORKER)))
    groups: dict[tuple[str, bool, int | None], list[tuple[int, str | int]]] = {}
    shards = [_shard_of(record) for record in selected] if saved.format in _SHARDED_FORMATS else []
    if shards and all(shard is not None for shard in shards):
        for index, found in enumerate(shards):
            assert found is not None
            groups.setdefault((found[0], True, found[2]), []).append((index, found[1]))
    else:
        positions = _positions(saved, selected)
        groups[(os.path.abspath(path), False, None)] = list(zip(range(len(selected)), positions))
    tasks: list[Task] = []
    members: list[list[int]] = []
    for (file, shard, size), entries in groups.items():
        for piece in _pieces(entries, sizes, target):
            tasks.append(
                Task(
                    version=_version(),
                    path=file,
                    shard=shard,
                    directory=os.path.dirname(file) if shard else None,
                    size=size,
                    config=None if shard else config,
                    locators=tuple(locator for _, locator in piece),
                    records=tuple(metadata[index] for index, _ in piece),
                    interval_alpha=interval_alpha,
                    timeout=command.timeout,
                    remaining=command.remaining(),
                )
            )
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
    """Where each selected record is among all of `saved`'s records (they are a subsequence of them)."""
    positions = []
    records = iter(enumerate(saved.records()))
    for record in selected:
        for position, candidate in records:
            if candidate.identity() == record.identity() and candidate.location == record.location:
                positions.append(position)
                break
        else:
            raise InitcliError(f"{saved.source}: its weights changed while it was being read")
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
