"""A checked, plain-Python description of an HDF5 file's groups and datasets, and reading their values.

The HDF5 structure is read once, in a worker process (`initcli.readers.worker`), by a walk that
follows only hard links, visits every object once (the same object reached twice, e.g. through
hard-link cycles, is refused), caps depth and object count, refuses soft and external links and
datasets stored outside the file, reads only the few attributes Keras writes, and checks every
dataset's declared size against the storage the file holds for it. The parent then reads
contiguous data with plain file reads (interruptible) and everything else through HDF5 in a
worker, and checks that the file did not change meanwhile. A weight over the per-weight budget
(`Limits.max_weight_bytes`) is only streamed in chunks (`H5Dataset.read_chunks`), never held whole.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import mmap
import os
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initcli.errors import InitcliError, WeightTooLargeError
from initcli.readers.worker import Isolated, progress, readable, run_isolated, stall_seconds_for
from initcli.safety.files import FileIdentity, pread_into, shown
from initcli.safety.numbers import check_holdable_shape

ATTRIBUTES = ("model_config", "keras_version", "backend", "layer_names", "weight_names", "name", "dtype")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Budgets for reading one model file.

    Attributes:
        timeout: seconds the HDF5 structure walk (and each read through HDF5) may take.
        max_objects: groups, datasets and links in the file.
        max_depth: group nesting.
        max_weight_bytes: the declared size of any one dataset.
        max_attribute_bytes: one attribute's text (e.g. `model_config`).
        max_compression_ratio: declared bytes per stored byte of a compressed dataset (deflate's
            own limit is about 1032).
        max_chunks: chunks of one dataset.
        worker_memory: address space the worker may use beyond what it inherits.
    """

    timeout: float = 60.0
    max_objects: int = 100_000
    max_depth: int = 64
    max_weight_bytes: int = 1 << 30
    max_attribute_bytes: int = 16 * 1024 * 1024
    max_compression_ratio: int = 1100
    max_chunks: int = 1_000_000
    worker_memory: int = 1 << 30


class _FileView(io.RawIOBase):
    """A read-only view of bytes [start, start + size) of a descriptor, for h5py's file-object driver."""

    def __init__(self, fd: int, start: int, size: int) -> None:
        self._fd, self._start, self._size, self._position = fd, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), max(0, self._size - self._position))
        if wanted == 0:
            return 0
        data = os.pread(self._fd, wanted, self._start + self._position)
        memoryview(buffer)[: len(data)] = data
        self._position += len(data)
        return len(data)


@dataclass(frozen=True, kw_only=True)
class H5Source:
    """Where an HDF5 image lives: bytes [start, start + size) of an open descriptor."""

    fd: int
    start: int
    size: int
    label: str
    identity: FileIdentity
    limits: Limits

    def open_h5(self) -> Any:
        import h5py

        view = io.BufferedReader(_FileView(self.fd, self.start, self.size), buffer_size=1 << 16)
        try:
            return h5py.File(view, "r")
        except (OSError, ValueError) as error:
            raise InitcliError(f"not a readable HDF5 file ({shown(' '.join(str(error).split()))})") from None

    def check_unchanged(self) -> None:
        if FileIdentity.of(self.fd) != self.identity:
            raise InitcliError(f"{self.label}: the file changed while it was being read")


@dataclass(kw_only=True)
class H5Dataset:
    """A dataset as the structure walk found it."""

    name: str
    address: int
    attrs: dict[str, Any]
    shape: tuple[int, ...]
    dtype: str | None
    dtype_description: str
    nbytes: int
    offset: int | None
    via_hdf5: bool
    source: H5Source = field(repr=False)
    chunk_shape: tuple[int, ...] | None = None

    def checked_dtype(self) -> str:
        """The dtype's name ("float32", "bfloat16"), or a refusal naming the weight and its dtype."""
        if self.dtype is None:
            raise InitcliError(
                f"{self.source.label}: weight {shown(self.name)} has dtype {self.dtype_description}, "
                "which initcli does not read"
            )
        return _numpy_dtype(self.dtype).name

    def read(self) -> np.ndarray:
        """The values, checked against the declared shape and dtype; the file must not have changed.

        Raises:
            InitcliError: a weight over the per-weight budget (`Limits.max_weight_bytes`), which is
                only streamed (`read_chunks`), never held whole.
        """
        self.checked_dtype()
        budget = self.source.limits.max_weight_bytes
        if self.nbytes > budget:
            raise WeightTooLargeError(
                f"{self.source.label}: weight {shown(self.name)} is {self.nbytes:,} bytes, over the "
                f"{budget:,}-byte budget for one weight held whole (it is only read in chunks)",
                weight=self.name,
                nbytes=self.nbytes,
                budget=budget,
            )
        dtype = _numpy_dtype(str(self.dtype))
        buffer = np.empty(self.nbytes, dtype=np.uint8)
        if self.nbytes and not self.via_hdf5:
            assert self.offset is not None
            pread_into(self.source.fd, buffer, self.source.start + self.offset, self.source.label)
        elif self.nbytes:
            _read_through_hdf5(self, buffer)
        self.source.check_unchanged()
        values = buffer.view(dtype).reshape(self.shape)
        if values.dtype.byteorder == ">":
            values = values.astype(values.dtype.newbyteorder("="))
        return values

    def read_chunks(self, elements: int) -> Iterator[np.ndarray]:
        """The flattened values in C order, `elements` at a time (the last chunk shorter), each valid
        only until the next is asked for.

        Contiguous data is read piece by piece into one buffer (no memory the size of the weight,
        no fresh pages to fault in). Data stored otherwise (chunked, compressed, compact) is read
        whole through HDF5 in a worker when it fits the per-weight budget, and otherwise streamed:
        hyperslabs of at most `elements` values (`_hyperslabs`) read by a worker into two shared
        slots (`_stream_through_hdf5`), regrouped into chunks of exactly `elements` (`_exactly`).
        The file's identity is checked after the last chunk, as `read` checks it.
        """
        self.checked_dtype()
        dtype = _numpy_dtype(str(self.dtype))
        count = math.prod(self.shape)
        elements = max(1, min(elements, count))
        held = self.nbytes <= self.source.limits.max_weight_bytes
        if count * dtype.itemsize != self.nbytes or (self.via_hdf5 and held):
            flat = self.read().reshape(-1)
            for start in range(0, flat.size, elements):
                yield flat[start : start + elements]
            return
        if self.via_hdf5:
            slabs = _hyperslabs(self.shape, self.chunk_shape or (), elements)
            yield from _exactly(_stream_through_hdf5(self, dtype, slabs), elements)
            return
        assert self.offset is not None
        buffer = np.empty(elements * dtype.itemsize, dtype=np.uint8)
        native = dtype.newbyteorder("=")
        for start in range(0, count, elements):
            size = min(elements, count - start)
            piece = buffer[: size * dtype.itemsize]
            pread_into(
                self.source.fd, piece, self.source.start + self.offset + start * dtype.itemsize, self.source.label
            )
            values = piece.view(dtype)
            if dtype.byteorder == ">":
                values = values.byteswap().view(native)
            yield values
        self.source.check_unchanged()


def _exactly(pieces: Iterator[np.ndarray], elements: int) -> Iterator[np.ndarray]:
    """The values of `pieces` (each at most `elements`) regrouped `elements` at a time, the last shorter.

    Callers rely on that (`diff` reads two weights side by side, chunk against chunk). A piece of
    exactly `elements` that starts a chunk is passed on as it is; others are gathered in one buffer.
    """
    buffer: np.ndarray | None = None
    filled = 0
    for piece in pieces:
        if filled == 0 and piece.size == elements:
            yield piece
            continue
        if buffer is None:
            buffer = np.empty(elements, dtype=piece.dtype)
        start = 0
        while start < piece.size:
            take = min(elements - filled, piece.size - start)
            buffer[filled : filled + take] = piece[start : start + take]
            filled += take
            start += take
            if filled == elements:
                yield buffer
                filled = 0
    if filled and buffer is not None:
        yield buffer[:filled]


WORKER_LIFETIME = 0.5
"""A streaming worker hands over to a fresh one after this fraction of the read timeout."""

Selection = tuple[int | slice, ...]
Slab = tuple[Selection, tuple[int, ...]]


def _hyperslabs(shape: tuple[int, ...], chunk_shape: tuple[int, ...], elements: int) -> list[Slab]:
    """Selections that tile an array of `shape` in C order, each of at most `elements` values (at least one row).

    The outermost axis k whose trailing rows (the product of the axes after it) fit in `elements`
    is cut into runs of that many rows, rounded down to whole HDF5 chunks along k where a chunk
    fits (so no chunk is decompressed twice); the axes before k are taken one index at a time.
    Each selection's values, flattened, are the next values of the array in C order.
    """
    if math.prod(shape) == 0:
        return []
    rank = len(shape)
    axis = next(k for k in range(rank) if math.prod(shape[k + 1 :]) <= elements)
    inner = math.prod(shape[axis + 1 :])
    step = min(shape[axis], max(1, elements // inner))
    along = chunk_shape[axis] if axis < len(chunk_shape) else 1
    if along <= step:
        step -= step % along
    slabs: list[Slab] = []
    for outer in itertools.product(*(range(d) for d in shape[:axis])):
        for start in range(0, shape[axis], step):
            stop = min(start + step, shape[axis])
            slabs.append(((*outer, slice(start, stop)), (*([1] * axis), stop - start, *shape[axis + 1 :])))
    return slabs


@dataclass(kw_only=True)
class H5Group:
    """A group as the structure walk found it; children are reached only through hard links."""

    name: str
    address: int
    attrs: dict[str, Any]
    children: dict[str, H5Group | H5Dataset]

    def __contains__(self, key: str) -> bool:
        return key in self.children

    def __getitem__(self, key: str) -> H5Group | H5Dataset:
        return self.children[key]

    def keys(self) -> Iterator[str]:
        return iter(self.children)

    def resolve(self, path: str) -> H5Group | H5Dataset | None:
        """The object at a relative path, component by component (no `.`, `..`, empty or absolute parts)."""
        node: H5Group | H5Dataset = self
        for component in path.split("/"):
            if component in ("", ".", "..") or not isinstance(node, H5Group) or component not in node.children:
                return None
            node = node.children[component]
        return node


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _worker_dataset(dataset: H5Dataset) -> Any:
    """In a worker: the h5py dataset the structure walk found (same object address, same shape)."""
    import h5py

    handle = dataset.source.open_h5()
    item = handle.get(dataset.name)
    if not isinstance(item, h5py.Dataset) or h5py.h5o.get_info(item.id).addr != dataset.address:
        raise InitcliError(f"{shown(dataset.name)} is not the dataset the structure walk found")
    if tuple(item.shape) != dataset.shape:
        raise InitcliError(f"{shown(dataset.name)} changed its shape")
    return item


def _read_through_hdf5(dataset: H5Dataset, buffer: np.ndarray) -> None:
    shared = mmap.mmap(-1, dataset.nbytes)
    source = dataset.source

    def task() -> bool:
        item = _worker_dataset(dataset)
        target = np.ndarray(dataset.shape, dtype=item.dtype, buffer=shared)
        if target.nbytes != dataset.nbytes:
            raise InitcliError(f"{shown(dataset.name)} changed its size")
        item.read_direct(target)
        return True

    try:
        run_isolated(
            task,
            timeout=source.limits.timeout,
            memory=source.limits.worker_memory,
            label=source.label,
            what=f"reading {shown(dataset.name)}",
            stall=stall_seconds_for(dataset.nbytes),
        )
        buffer[:] = np.frombuffer(shared, dtype=np.uint8, count=dataset.nbytes)
    finally:
        shared.close()


def _stream_through_hdf5(dataset: H5Dataset, dtype: np.dtype, slabs: list[Slab]) -> Iterator[np.ndarray]:
    """The hyperslabs' values in order, read through HDF5 by a worker into two shared slots.

    The worker reads slab i into slot i % 2, tells the parent (a byte on `ready`), and before
    reusing a slot waits until the parent has moved past the slab in it (a byte on `go`): it reads
    one slab ahead while the caller works on the other, and memory is two slabs. A worker stops
    after half the read timeout (`Limits.timeout`) and a fresh one goes on from where it stopped,
    so no worker outlives its time and CPU limits however large the weight. A worker that fails,
    crashes or makes no progress is reported as `run_isolated` reports it.
    """
    slot_bytes = max(1, max((math.prod(shape) for _, shape in slabs), default=0) * dtype.itemsize)
    shared = mmap.mmap(-1, 2 * slot_bytes)
    try:
        done = 0
        while done < len(slabs):
            done = yield from _streaming_worker(dataset, dtype, slabs, done, shared, slot_bytes)
        dataset.source.check_unchanged()
    finally:
        with contextlib.suppress(BufferError):  # a caller kept a chunk: the mapping goes with it
            shared.close()


def _streaming_worker(
    dataset: H5Dataset, dtype: np.dtype, slabs: list[Slab], first: int, shared: mmap.mmap, slot_bytes: int
) -> Generator[np.ndarray, None, int]:
    source = dataset.source
    limits = source.limits
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()

    def task() -> int:
        os.close(ready_read)
        os.close(go_write)
        item = _worker_dataset(dataset)
        started = time.monotonic()
        index = first
        while index < len(slabs):
            if index - first >= 2 and os.read(go_read, 1) != b"g":
                return index  # the parent stopped reading
            selection, shape = slabs[index]
            target = np.ndarray(shape, dtype=item.dtype, buffer=shared, offset=(index % 2) * slot_bytes)
            item.read_direct(target, source_sel=selection)
            progress()
            os.write(ready_write, b"r")
            index += 1
            if time.monotonic() - started > limits.timeout * WORKER_LIFETIME:
                break
        return index

    what = f"reading {shown(dataset.name)} from value {sum(math.prod(shape) for _, shape in slabs[:first])}"
    try:
        background = Isolated(task, timeout=limits.timeout, memory=limits.worker_memory, label=source.label, what=what)
    except BaseException:
        for fd in (ready_read, ready_write, go_read, go_write):
            os.close(fd)
        raise
    os.close(ready_write)
    os.close(go_read)
    native = dtype.newbyteorder("=")
    stall = stall_seconds_for(slot_bytes)
    index = first
    try:
        while True:
            remaining = background.deadline - time.monotonic()
            if not readable(ready_read, min(stall, remaining)):
                background.cancel()
                raise InitcliError(
                    f"{source.label}: {what} made no progress for {min(stall, max(remaining, 0)):.0f} s: "
                    "a corrupt file (it made HDF5 loop), or the read timeout"
                )
            if not os.read(ready_read, 1):
                break  # the worker finished, stopped or failed: its answer says which
            selection, shape = slabs[index]
            values = np.frombuffer(shared, dtype=dtype, count=math.prod(shape), offset=(index % 2) * slot_bytes)
            if dtype.byteorder == ">":
                values = values.byteswap().view(native)
            yield values
            del values  # the mapping cannot close while a view of it lives
            index += 1
            with contextlib.suppress(OSError):  # a worker that has stopped reads no more
                os.write(go_write, b"g")
        answer = background.wait()
    finally:
        background.cancel()
        os.close(ready_read)
        os.close(go_write)
    if answer != index or index == first:
        raise InitcliError(f"{source.label}: {what} gave a broken answer")
    return index


def snapshot(source: H5Source, meanwhile: Callable[[], None] | None = None) -> H5Group:
    """Walk the HDF5 structure of `source` in a worker and return it (`meanwhile` runs in parallel).

    Raises:
        InitcliError: unreadable, or anything the walk refuses (links, repeats, budgets, sizes).
    """
    import h5py  # noqa: F401 - imported once here rather than in every worker

    tree = run_isolated(
        lambda: _Walk(source).run(),
        timeout=source.limits.timeout,
        memory=source.limits.worker_memory,
        label=source.label,
        what="reading the HDF5 structure",
        meanwhile=meanwhile,
        stall=stall_seconds_for(source.size),
    )
    return _root(tree, source)


def _root(tree: dict[str, Any], source: H5Source) -> H5Group:
    root = _from_plain(tree, source)
    if not isinstance(root, H5Group):
        raise InitcliError(f"{source.label}: the HDF5 root is not a group")
    return root


def snapshot_all(sources: list[H5Source], label: str) -> list[H5Group]:
    """The HDF5 structures of several files (a sharded model's shards), walked by one worker.

    One worker for all, not one each: forking a worker per file costs some 9 ms of CPU (measured
    on 300 one-layer shards: 2.6 s of CPU with a worker each, 0.5 s with one for all), so an index of
    MAX_SHARDS shards still answers within seconds.

    Raises:
        InitcliError: as `snapshot`, the message naming the shard.
    """
    import h5py  # noqa: F401 - imported once here rather than in the worker

    def walk_all() -> list[dict[str, Any]]:
        trees = []
        for source in sources:
            try:
                trees.append(_Walk(source).run())
            except InitcliError as error:
                raise InitcliError(f"{source.label}: {error}") from None
        return trees

    trees = run_isolated(
        walk_all,
        timeout=sources[0].limits.timeout,
        memory=sources[0].limits.worker_memory,
        label=label,
        what="reading the HDF5 structure of its shards",
        stall=stall_seconds_for(sum(source.size for source in sources)),
    )
    return [_root(tree, source) for tree, source in zip(trees, sources, strict=True)]


def _from_plain(node: dict[str, Any], source: H5Source) -> H5Group | H5Dataset:
    if node["kind"] == "group":
        return H5Group(
            name=node["name"],
            address=node["address"],
            attrs=node["attrs"],
            children={key: _from_plain(child, source) for key, child in node["children"]},
        )
    return H5Dataset(
        name=node["name"],
        address=node["address"],
        attrs=node["attrs"],
        shape=tuple(node["shape"]),
        dtype=node["dtype"],
        dtype_description=node["dtype_description"],
        nbytes=node["nbytes"],
        offset=node["offset"],
        via_hdf5=node["via_hdf5"],
        source=source,
        chunk_shape=None if node["chunk_shape"] is None else tuple(node["chunk_shape"]),
    )


class _Walk:
    """The structure walk; runs in the worker process. Uses h5py's low-level API (it is 2x faster)."""

    def __init__(self, source: H5Source) -> None:
        self.source = source
        self.limits = source.limits
        self.seen: dict[int, str] = {}
        self.count = 0

    def run(self) -> dict[str, Any]:
        import h5py

        self.h5py = h5py
        handle = self.source.open_h5()
        return self._group(handle.id, "/", 0)

    def _info(self, object_id: Any, path: str) -> Any:
        info = self.h5py.h5o.get_info(object_id)
        address = int(info.addr)
        if address in self.seen:
            raise InitcliError(
                f"the same HDF5 object is linked at {shown(self.seen[address])} and {shown(path)} "
                "(hard-link cycles and repeated objects are refused)"
            )
        self.seen[address] = path
        return info

    def _group(self, group_id: Any, path: str, depth: int) -> dict[str, Any]:
        h5py = self.h5py
        if depth > self.limits.max_depth:
            raise InitcliError(f"groups nested more than {self.limits.max_depth} deep at {shown(path)}")
        info = self._info(group_id, path)
        children = []
        for raw in list(group_id):
            progress()
            self.count += 1
            if self.count > self.limits.max_objects:
                raise InitcliError(f"more than {self.limits.max_objects} HDF5 objects")
            key = raw.decode("utf-8", "replace")
            child_path = f"{path.rstrip('/')}/{key}"
            if not key or key in (".", "..") or "/" in key:
                raise InitcliError(f"malformed HDF5 link name {shown(key)!r} in {shown(path)}")
            link_type = group_id.links.get_info(raw).type
            if link_type != h5py.h5l.TYPE_HARD:
                kind = {h5py.h5l.TYPE_SOFT: "SoftLink", h5py.h5l.TYPE_EXTERNAL: "ExternalLink"}.get(
                    link_type, "user-defined link"
                )
                raise InitcliError(f"refusing to follow an HDF5 {kind} at {shown(child_path)}")
            child_id = h5py.h5o.open(group_id, raw)
            if isinstance(child_id, h5py.h5g.GroupID):
                children.append((key, self._group(child_id, child_path, depth + 1)))
            elif isinstance(child_id, h5py.h5d.DatasetID):
                children.append((key, self._dataset(child_id, child_path)))
            else:
                self._info(child_id, child_path)
        return {
            "kind": "group",
            "name": path,
            "address": int(info.addr),
            "attrs": self._attributes(h5py.Group(group_id), path) if info.num_attrs else {},
            "children": children,
        }

    def _attributes(self, item: Any, path: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        attrs = item.attrs  # h5py makes a new manager on every `.attrs`
        for name in ATTRIBUTES:
            if not self.h5py.h5a.exists(item.id, name.encode()):
                continue
            attribute = self.h5py.h5a.open(item.id, name.encode())
            try:
                stored = attribute.get_storage_size()
            except RuntimeError:  # h5py treats an empty attribute's size 0 as a failure
                stored = 0
            if stored > self.limits.max_attribute_bytes:
                raise InitcliError(f"attribute {name} of {shown(path)} is larger than initcli reads")
            found[name] = _text_value(attrs[name], f"attribute {name} of {shown(path)}")
            size = sum(len(text) for text in found[name]) if isinstance(found[name], list) else len(found[name])
            if size > self.limits.max_attribute_bytes:
                raise InitcliError(f"attribute {name} of {shown(path)} is larger than initcli reads")
        return found

    def _dataset(self, dataset_id: Any, path: str) -> dict[str, Any]:
        progress()
        h5py = self.h5py
        h5d = h5py.h5d
        info = self._info(dataset_id, path)
        attrs = self._attributes(h5py.Dataset(dataset_id), path) if info.num_attrs else {}
        plist = dataset_id.get_create_plist()
        layout = plist.get_layout()
        if layout == h5d.VIRTUAL or plist.get_external_count() > 0:
            raise InitcliError(f"refusing an HDF5 dataset stored outside the file at {shown(path)}")
        space = dataset_id.get_space()
        if space.get_simple_extent_type() == h5py.h5s.NULL:
            raise InitcliError(f"dataset {shown(path)} has no dataspace")
        shape = tuple(int(d) for d in space.shape)
        check_holdable_shape(shape, f"dataset {shown(path)}")
        dtype, description, itemsize = _classify(h5py, dataset_id, attrs)
        nbytes = math.prod(shape) * itemsize
        # Over the per-weight budget a dataset is streamed, never held whole, but only if the file's
        # storage really holds its bytes: the checks below refuse every other declared size, and
        # say so with the budget when it is exceeded.
        declared = f"declares {nbytes} bytes"
        if nbytes > self.limits.max_weight_bytes:
            declared = (
                f"declares shape {shape} ({nbytes} bytes, more than the {self.limits.max_weight_bytes}-byte "
                "per-weight budget)"
            )
        offset = None
        via_hdf5 = True
        chunk_shape = None
        if layout == h5d.CONTIGUOUS:
            stored = dataset_id.get_storage_size()
            offset = dataset_id.get_offset()
            if nbytes and (offset is None or stored < nbytes):
                raise InitcliError(
                    f"dataset {shown(path)} {declared} but the file stores {stored} for it (never written or truncated)"
                )
            if nbytes and offset is not None and offset + nbytes > self.source.size:
                raise InitcliError(f"dataset {shown(path)} lies past the end of the file (truncated?)")
            via_hdf5 = False
        elif layout == h5d.CHUNKED:
            chunk_shape = [int(c) for c in plist.get_chunk()]
            if nbytes:
                self._check_chunks(dataset_id, path, shape, nbytes, plist, declared)
        elif layout != h5d.COMPACT:
            raise InitcliError(f"dataset {shown(path)} has an unknown storage layout")
        return {
            "kind": "dataset",
            "name": path,
            "address": int(info.addr),
            "attrs": attrs,
            "shape": list(shape),
            "dtype": dtype,
            "dtype_description": description,
            "nbytes": nbytes,
            "offset": offset,
            "via_hdf5": via_hdf5,
            "chunk_shape": chunk_shape,
        }

    def _check_chunks(
        self, dataset_id: Any, path: str, shape: tuple[int, ...], nbytes: int, plist: Any, declared: str
    ) -> None:
        chunk_shape = plist.get_chunk()
        expected = math.prod(math.ceil(d / c) for d, c in zip(shape, chunk_shape))
        if expected > self.limits.max_chunks:
            raise InitcliError(f"dataset {shown(path)} has {expected} chunks, more than initcli reads")
        stored_chunks = dataset_id.get_num_chunks()
        if stored_chunks < expected:
            raise InitcliError(
                f"dataset {shown(path)} {declared} in {expected} chunks but the file stores "
                f"{stored_chunks} of them (never written)"
            )
        stored = dataset_id.get_storage_size()
        ratio = self.limits.max_compression_ratio if plist.get_nfilters() else 1
        if nbytes > max(stored, 1) * ratio:
            raise InitcliError(
                f"dataset {shown(path)} {declared} but the file stores {stored} for it "
                "(more than compression can explain)"
            )
        end = 0

        def visit(info: Any) -> None:
            nonlocal end
            progress()
            end = max(end, int(info.byte_offset) + int(info.size))

        dataset_id.chunk_iter(visit)
        if end > self.source.size:
            raise InitcliError(f"dataset {shown(path)} has chunks past the end of the file (truncated?)")


def _classify(h5py: Any, dataset_id: Any, attrs: dict[str, Any]) -> tuple[str | None, str, int]:
    """(numpy dtype name or None if initcli does not read it, a description, bytes per element)."""
    h5t = h5py.h5t
    type_id = dataset_id.get_type()
    size = int(type_id.get_size())
    kind = type_id.get_class()
    if kind == h5t.FLOAT:
        for standard, name in (
            (h5t.IEEE_F16LE, "<f2"),
            (h5t.IEEE_F16BE, ">f2"),
            (h5t.IEEE_F32LE, "<f4"),
            (h5t.IEEE_F32BE, ">f4"),
            (h5t.IEEE_F64LE, "<f8"),
            (h5t.IEEE_F64BE, ">f8"),
        ):
            if type_id.equal(standard):
                return name, name, size
        return None, f"a non-standard {size}-byte float", size
    if kind == h5t.INTEGER and size in (1, 2, 4, 8):
        if type_id.get_precision() == 8 * size and type_id.get_offset() == 0:
            signed = type_id.get_sign() == h5t.SGN_2
            order = ">" if type_id.get_order() == h5t.ORDER_BE else "<"
            return f"{order}{'i' if signed else 'u'}{size}", f"{'int' if signed else 'uint'}{8 * size}", size
        return None, f"a {type_id.get_precision()}-bit integer in {size} bytes", size
    if kind == h5t.OPAQUE and size == 2 and attrs.get("dtype") == "bfloat16":
        return "bfloat16", "bfloat16", size
    names = {
        h5t.STRING: "string",
        h5t.COMPOUND: "compound",
        h5t.ENUM: "enum",
        h5t.VLEN: "variable-length",
        h5t.ARRAY: "array",
        h5t.OPAQUE: "opaque",
        h5t.REFERENCE: "reference",
        h5t.BITFIELD: "bitfield",
        h5t.TIME: "time",
    }
    description = f"{names.get(kind, 'unknown')} ({size} bytes per element)"
    if kind == h5t.COMPOUND and type_id.dtype.kind == "c":
        description = f"complex ({size} bytes per element)"
    return None, description, size


def _text_value(value: Any, where: str) -> str | list[str]:
    """An attribute's text, or list of texts; anything else is malformed."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.size == 0:
        return []
    if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "U", "O") and value.ndim <= 1:
        items = []
        for element in value.reshape(-1).tolist():
            if isinstance(element, bytes):
                items.append(element.decode("utf-8", "replace"))
            elif isinstance(element, str):
                items.append(element)
            else:
                raise InitcliError(f"{where} is not text")
        return items if value.ndim == 1 else items[0]
    raise InitcliError(f"{where} is not text")
