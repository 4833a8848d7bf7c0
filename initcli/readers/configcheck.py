"""Checking the types of a model config read from a file before the readers walk it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from initcli.errors import InitcliError
from initcli.safety.files import shown

MAX_LAYERS = 100_000


def check_model_config(config: Any, where: str) -> None:
    """Refuse a model config whose layer entries have the wrong types.

    Each layer entry is a mapping with a text `class_name`; its `config` is a mapping (or, in
    Keras <= 2.2 Sequential models, a list of layers); `name` is text; `layers` is a list of layer
    entries; `layer` and `backward_layer` are layer entries.

    Raises:
        InitcliError: naming the first entry that is wrong (`where` names the file).
    """
    pending: list[tuple[Any, str]] = [(config, "config")]
    count = 0
    while pending:
        entry, location = pending.pop()
        count += 1
        if count > MAX_LAYERS:
            raise InitcliError(f"{where}: more than {MAX_LAYERS} layers in the model config")
        if not isinstance(entry, Mapping):
            raise InitcliError(f"{where}: {location} is {type(entry).__name__}, not a layer mapping")
        class_name = entry.get("class_name")
        if not isinstance(class_name, str):
            raise InitcliError(f"{where}: {location}.class_name is not text")
        inner = entry.get("config")
        if inner is None:
            continue
        if isinstance(inner, list):
            pending.extend((child, f"{location}.config[{i}]") for i, child in enumerate(inner))
            continue
        if not isinstance(inner, Mapping):
            raise InitcliError(
                f"{where}: {location}.config of {shown(class_name)} is {type(inner).__name__}, not a mapping"
            )
        name = inner.get("name")
        if name is not None and not isinstance(name, str):
            raise InitcliError(f"{where}: {location}.config.name is {type(name).__name__}, not text")
        layers = inner.get("layers")
        if layers is not None:
            if not isinstance(layers, list):
                raise InitcliError(f"{where}: {location}.config.layers is {type(layers).__name__}, not a list")
            pending.extend((child, f"{location}.config.layers[{i}]") for i, child in enumerate(layers))
        for key in ("layer", "backward_layer", "cell"):
            child = inner.get(key)
            if child is not None and key != "cell":
                pending.append((child, f"{location}.config.{key}"))
            elif isinstance(child, Mapping) and "class_name" in child:
                pending.append((child, f"{location}.config.{key}"))
        equation = inner.get("equation")
        if equation is not None and not isinstance(equation, str):
            raise InitcliError(f"{where}: {location}.config.equation is not text")
