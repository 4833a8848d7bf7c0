"""The records readers produce."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class WeightRecord:
    """One weight of a saved model, with what the model's config says about it.

    Attributes:
        path: Keras's `variable.path`, e.g. "lstm/lstm_cell/recurrent_kernel".
        layer: name of the layer that owns the variable (a cell or sublayer for nested ones).
        layer_class: that layer's class, or None when the file does not say.
        weight: the variable's name ("kernel"), or its index when unknown.
        shape, dtype: as stored.
        read: returns the values.
        read_chunks: the flattened values in chunks of a given size, read into one reused buffer
            (see `chunks`); readers that cannot stream leave it None.
        initializer: the configured initializer as a Keras `{"class_name", "config"}` dict, or
            None when the file holds no config for it.
        argument: the constructor argument that configures it ("kernel_initializer").
        default_initializer: the layer class's default for that argument (a Keras name).
        fan_axes: (input_axes, output_axes) Keras uses for fans when not in the initializer config.
        notes: remarks on fans or initialization that a user should know.
        settings: non-initializer settings of the layer users ask about (momentum, epsilon, ...).
        fan_caveat: how Keras's fans differ from the layer's real connectivity, if they do.
        forget_gate_bias: an LSTM bias whose forget-gate quarter (gate order i, f, c, o) is ones
            and the rest drawn by `initializer` (Keras 2/3 `unit_forget_bias`, Keras 1
            `forget_bias_init='one'`).
        inferred: the name, class, fans and default come from the file's structure
            (`initcli.readers.structure`), not from a config: a standard sublayer of a custom layer.
        custom_layer: the custom layer the weight is inside (class, registered name, module and its
            own config from config.json), or None.
        location: the dataset in a `layers/...` weights tree (`layers/dense/vars/0`), or None.
    """

    path: str
    layer: str
    layer_class: str | None
    weight: str
    shape: tuple[int, ...]
    dtype: str
    read: Callable[[], np.ndarray]
    initializer: Mapping[str, Any] | None = None
    argument: str | None = None
    default_initializer: str | Mapping[str, Any] | None = None
    fan_axes: tuple[list[int], list[int]] | None = None
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    fan_caveat: str | None = None
    layer_config: Mapping[str, Any] | None = field(default=None, repr=False)
    forget_gate_bias: bool = False
    read_chunks: Callable[[int], Iterator[np.ndarray]] | None = field(default=None, repr=False)
    inferred: bool = False
    custom_layer: Mapping[str, Any] | None = None
    location: str | None = field(default=None, repr=False)

    def chunks(self, elements: int) -> Iterator[np.ndarray]:
        """The flattened values, `elements` at a time; a chunk may be overwritten by the next one."""
        if self.read_chunks is not None:
            yield from self.read_chunks(elements)
            return
        flat = self.read().reshape(-1)
        for start in range(0, flat.size, elements):
            yield flat[start : start + elements]

    def identity(self) -> dict[str, Any]:
        """What names the weight in every report: path, layer, layer_class, weight, shape, dtype."""
        return {
            "path": self.path,
            "layer": self.layer,
            "layer_class": self.layer_class,
            "weight": self.weight,
            "shape": list(self.shape),
            "dtype": self.dtype,
        }


@dataclass
class ModelFile:
    """An opened model file: its format, Keras version, and a generator of weight records."""

    source: str
    format: str
    keras_version: str | None
    records: Callable[[], Iterator[WeightRecord]]
    close: Callable[[], None]
    notes: list[str] = field(default_factory=list)
    config: Mapping[str, Any] | None = None
    finish: Callable[[], None] = field(default=lambda: None, repr=False)
    """Raises if a check left running in the background (`open_model(background_checks=True)`) failed."""
    older_config: Mapping[str, Any] | None = None
    """A Keras 1/2 file's own model config, which `config` leaves out (Keras 3 cannot rebuild it for
    `inspect --fresh`); `propagate --static` reads it (Keras 2) or names why not (Keras 1)."""
