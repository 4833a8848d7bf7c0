"""A live Keras model opened as a saved one: the `ModelFile` its `.keras` file would give, from memory.

`open_live(model, label)` takes the model's config and weights tree from its own Keras
(`initcli.keras.live.capture`), builds the same `H5Group` tree the `.keras` reader builds from
`model.weights.h5` (group and dataset names, `vars` attributes, children in HDF5's name order), and
walks it with the same `TreeWalker`: the records are those of the saved file, with each weight's
values read from the model's variable when asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from initcli.errors import InitcliError
from initcli.keras.eras import era_of
from initcli.keras.live import Captured, capture
from initcli.readers.configcheck import check_model_config
from initcli.readers.h5snapshot import H5Dataset, H5Group, H5Source, _numpy_dtype
from initcli.readers.h5tree import TreeWalker
from initcli.readers.records import ModelFile, WeightRecord
from initcli.safety.documents import parse_json


@dataclass(kw_only=True)
class LiveDataset(H5Dataset):
    """A variable of the live model where the file has a dataset; read from memory."""

    value: Callable[[], np.ndarray] = field(repr=False)
    label: str = ""

    def checked_dtype(self) -> str:
        if self.dtype is None:
            raise InitcliError(
                f"{self.label}: weight {self.name} has dtype {self.dtype_description}, which initcli does not read"
            )
        return str(_numpy_dtype(self.dtype).name)

    def read(self) -> np.ndarray:
        dtype = self.checked_dtype()
        values = self.value()
        if tuple(values.shape) != self.shape or values.dtype.name != dtype:
            raise InitcliError(
                f"{self.label}: weight {self.name} changed while it was read "
                f"(now {values.dtype.name} {tuple(values.shape)}, was {dtype} {self.shape})"
            )
        return values

    def read_chunks(self, elements: int) -> Iterator[np.ndarray]:
        flat = self.read().reshape(-1)
        for start in range(0, flat.size, elements):
            yield flat[start : start + elements]


def _dtype(name: str) -> str | None:
    """The dtype's name as the HDF5 reader reports it, or None for one initcli does not read."""
    try:
        dtype = _numpy_dtype(name)
    except (TypeError, ValueError, ImportError):
        return None
    return name if dtype.kind in "fiub" else None


def _dataset(name: str, value: Any, captured: Captured, label: str) -> LiveDataset:
    dtype_name = captured.dtype_of(value)
    dtype = _dtype(dtype_name)
    shape = tuple(int(size) for size in value.shape)
    itemsize = _numpy_dtype(dtype).itemsize if dtype else 0

    def read(value: Any = value) -> np.ndarray:
        return captured.to_numpy(value)

    return LiveDataset(
        name=name,
        address=0,
        attrs={"dtype": "bfloat16"} if dtype == "bfloat16" else {},
        shape=shape,
        dtype=dtype,
        dtype_description=dtype_name,
        nbytes=math.prod(shape) * itemsize,
        offset=None,
        via_hdf5=False,
        source=cast(H5Source, None),  # no file: every method that reads one is replaced
        value=read,
        label=label,
    )


def _tree(captured: Captured, label: str) -> H5Group:
    """The `model.weights.h5` tree: every group on the way to a `vars` group, children by name."""
    plain: dict[Any, Any] = {}  # a path component -> its node; None -> the vars group
    for path, group in captured.groups.items():
        node = plain
        for part in [part for part in path.split("/") if part] + ["vars"]:
            node = node.setdefault(part, {})
        node[None] = group

    def build(node: dict[Any, Any], name: str) -> H5Group:
        children: dict[str, H5Group | H5Dataset] = {}
        group = node.get(None)
        attrs = dict(group.attrs) if group is not None else {}
        keys = sorted((key for key in node if key is not None), key=lambda key: key.encode("utf-8"))
        for key in keys:
            children[key] = build(node[key], f"{name.rstrip('/')}/{key}")
        if group is not None:
            for key in sorted(group.values, key=lambda key: key.encode("utf-8")):
                children[key] = _dataset(f"{name}/{key}", group.values[key], captured, label)
        return H5Group(name=name, address=0, attrs=attrs, children=children)

    return build(plain, "/")


def open_live(model: Any, label: str) -> ModelFile:
    """The `ModelFile` of `model.save("x.keras")`, taken from the live model.

    Raises:
        initcli.keras.live.LiveModelUnsupported: the model's Keras has no saver walk initcli knows.
        InitcliError: a config initcli refuses.
    """
    captured = capture(model)
    config = parse_json(captured.config_json, f"{label}: config")
    if not isinstance(config, dict) or "class_name" not in config:
        raise InitcliError(f"{label}: the model's config does not describe a Keras model")
    check_model_config(config, f"{label}: config")
    root = _tree(captured, label)
    walker = TreeWalker(has_config=True, era=era_of(captured.keras_version))

    def records() -> Iterator[WeightRecord]:
        return walker.walk(root, config)

    return ModelFile(label, "keras", captured.keras_version, records, lambda: None, [], config)
