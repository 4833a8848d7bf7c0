"""`--custom-objects`: a saved model's records as Keras, rebuilding it with the user's code, says they are.

See `initcli.keras.custom_objects` (the only place user code is imported) and docs/custom-layers.md.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initcli.errors import BadInputError, InitcliError
from initcli.keras.eras import Era, era_of
from initcli.readers.records import ModelFile, WeightRecord
from initcli.readers.resolution import Resolution, canonical_class, resolve_slot, slots_of

if TYPE_CHECKING:
    # The --custom-objects machinery is imported when asked for: a plain inspect needs only the notes.
    from initcli.keras.custom_objects import RealVariable


def use_custom_objects(saved: ModelFile, path: Path, references: Sequence[str]) -> None:
    """Pair each record of `saved` with the variable Keras loads at its location, with the user's classes."""
    from initcli.keras import custom_objects

    if saved.format != "keras":
        raise BadInputError(
            f"--custom-objects rebuilds a Keras 3 .keras archive; {saved.source} is a {saved.format} file"
        )
    objects = custom_objects.load_custom_objects(references)
    custom_objects.refuse_unprovided(saved.config, objects)
    real = custom_objects.real_variables(path, objects)
    era = era_of(saved.keras_version)
    read = saved.records

    def records() -> Iterator[WeightRecord]:
        for record in read():
            found = real.get(_normalized(record.location) or "")
            yield with_real(record, found, era)

    saved.records = records
    saved.notes.append(
        f"--custom-objects {' '.join(references)}: classes, names and initializers from Keras's model "
        "rebuilt with that code (the only code initcli runs, imported because the command line names it)"
    )


def rebuild_fresh_with(
    config: Mapping[str, Any], seed: int | None, references: Sequence[str], scratch: Path, timeout: float | None
) -> ModelFile:
    """--fresh with --custom-objects: the model re-created from its config with the user's classes."""
    from initcli.keras import building, custom_objects
    from initcli.readers import open_model

    objects = custom_objects.load_custom_objects(references)
    custom_objects.refuse_unprovided(config, objects)
    keras = building._keras(seed)
    config = building.without_compile_config(config)  # compiling would create variables in the probe

    def rebuild() -> Any:
        try:
            with keras.saving.custom_object_scope(dict(objects)):
                return keras.saving.deserialize_keras_object(
                    copy.deepcopy(dict(config)), custom_objects=dict(objects), safe_mode=True
                )
        except Exception as error:  # the user's code or Keras failed
            lines = str(error).strip().splitlines()
            raise InitcliError(
                f"Keras cannot rebuild the model with the given --custom-objects: {lines[0] if lines else error!r}"
            ) from None

    model = building._ensure_built(building._within_budget(keras, rebuild, seed, "the saved config"), "the config")
    directory = scratch / "fresh"
    directory.mkdir(exist_ok=True)
    path = building.save_temporary(model, directory)
    rebuilt = open_model(path, timeout=timeout)
    use_custom_objects(rebuilt, path, references)
    return rebuilt


def with_real(record: WeightRecord, real: RealVariable | None, era: Era) -> WeightRecord:
    """The record as Keras's model rebuilt with the user's code says it is (class, name, initializer)."""
    if real is None:
        return replace(
            record, notes=[*record.notes, "--custom-objects: Keras's rebuilt model has no variable stored here"]
        )
    raw = real.owner.get("config")
    config: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    owner_class = canonical_class(real.owner_class) or real.owner_class
    slots = [] if real.custom else (slots_of(owner_class, config) or [])
    slot = next((s for s in slots if s.name == real.name), None)
    if slot is not None:
        resolution = resolve_slot(real.owner, slot, shape=record.shape, era=era, owner_class=owner_class)
    else:
        resolution = Resolution(layer_class=owner_class, layer_config=config, initializer=real.initializer)
        resolution.notes.append(
            f"{'custom ' if real.custom else ''}layer {owner_class}: the initializer its code passed to "
            "add_weight (imported with --custom-objects)"
        )
    prefix = record.path[: len(record.path) - len(record.weight)] if record.path.endswith(record.weight) else ""
    path = f"{prefix}{real.name}" if prefix or record.path == record.weight else record.path
    # Keras's own path where the file has no layer names, or where Keras's drops a scope the file
    # implied (a Sequential made with an Input inside a custom layer); else the file's names, which
    # a reload can auto-name differently (docs/custom-layers.md).
    if real.path and (not real.file_names or path.endswith("/" + real.path)):
        path = real.path
    return resolution.record(
        path=path,
        layer=record.layer,
        weight=real.name,
        shape=record.shape,
        dtype=record.dtype,
        read=record.read,
        read_chunks=record.read_chunks,
        custom_layer=record.custom_layer,
        location=record.location,
    )


def _normalized(location: str | None) -> str | None:
    return location.strip("/") if location else None


def custom_layer_notes(records: Sequence[WeightRecord]) -> list[str]:
    """One note per custom layer the weights are inside: its class and its own config from config.json."""
    notes: dict[str, str] = {}
    for record in records:
        custom = record.custom_layer
        if custom is None:
            continue
        name = str(custom.get("name"))
        if name in notes:
            continue
        config = custom.get("config")
        settings = ", ".join(f"{k}={v!r}" for k, v in config.items()) if isinstance(config, Mapping) else ""
        registered = custom.get("registered_name")
        label = f"{custom.get('class_name')}" + (f", {registered}" if registered else "")
        notes[name] = f"custom layer {name} ({label}) config: {settings or '(none of its own)'}"
    return list(notes.values())
