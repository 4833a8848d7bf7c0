"""KerasHub preset directories: `config.json`, the backbone's weights, `metadata.json`, assets.

`Backbone.save_to_preset(dir, max_shard_size=10)` (keras_hub/src/utils/preset_utils.py,
`KerasPresetSaver.save_backbone`) writes `config.json` (the backbone serialized: `module`,
`class_name`, `config` of its constructor arguments, `registered_name`), `metadata.json`
(`keras_version`, `keras_hub_version`, `parameter_count`, ...), and the weights with Keras's own
`save_weights`: `model.weights.h5`, or, for a backbone larger than `max_shard_size` GB, the index
`model.weights.json` and its shards `model_00000.weights.h5`, ... (readers/sharded.py). Tokenizer
and preprocessor files and `assets/` are not weights and are not read.

The weights are read by the `.weights.h5` and sharded readers, the rows named as Keras names the
backbone's variables (KerasHub's top-level embedding layers by `KERAS_HUB_VARIABLES`; the sublayers
of its transformer layers by their slot for a backbone `initcli.keras.kerashub` lists, else by
their index in the file). `config.json` holds the backbone's
constructor arguments, not the layer graph a Keras model config has, so the rows have no initializer
information from it: for the backbones `initcli.keras.kerashub` lists (BertBackbone, GPT2Backbone,
GemmaBackbone) they are the ones KerasHub's code passes, cited there; for others a note says so;
the backbone class and the versions from `metadata.json` are
given as notes. The preset's own files are read only from inside its directory (a symlink out of it
is refused, `safety.files.open_inside`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from initcli.errors import InitcliError
from initcli.keras import kerashub
from initcli.readers.records import ModelFile, WeightRecord
from initcli.safety.documents import MAX_DOCUMENT_BYTES, parse_json
from initcli.safety.files import open_inside, read_regular

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
SHARDED_INDEX = "model.weights.json"

# KerasHub's own layers at a backbone's top level, by their group in the weights file (Keras names a
# functional model's layer groups by the class in snake case, `_1`, `_2`, ... for repeats): their
# variables in creation order. keras_hub/src/layers/modeling/reversible_embedding.py (a
# keras.layers.Embedding: `embeddings`, then `reverse_embeddings` when tie_weights=False) and
# position_embedding.py (`add_weight(name="embeddings")`).
KERAS_HUB_VARIABLES = {
    "reversible_embedding": ("embeddings", "reverse_embeddings"),
    "position_embedding": ("embeddings",),
}
_TOP_LEVEL = re.compile(r"^/?layers/(?P<group>[a-z_]+?)(?:_\d+)?/vars/(?P<index>\d+)$")


def is_preset_directory(path: Path) -> bool:
    """A directory with KerasHub's `config.json` (what KerasHub's own loader requires first)."""
    return path.is_dir() and (path / CONFIG_FILE).is_file()


def open_preset(path: Path, open_weights: Callable[[Path], ModelFile]) -> ModelFile:
    """Open a KerasHub preset directory: its backbone weights through `open_weights`, its config as notes.

    Raises:
        InitcliError: a config.json that is not a KerasHub backbone's, no weights file, or unreadable files.
    """
    label = str(path)
    config = _document(path, CONFIG_FILE)
    class_name = config.get("class_name") if isinstance(config, Mapping) else None
    if not isinstance(class_name, str) or not isinstance(config.get("config"), Mapping):
        raise InitcliError(f"{label}: {CONFIG_FILE} is not a KerasHub preset config (no class_name and config)")
    module, registered = config.get("module"), config.get("registered_name")
    if not (
        (isinstance(module, str) and module.startswith("keras_hub"))
        or (isinstance(registered, str) and registered.startswith("keras_hub>"))
    ):
        # An unzipped .keras archive has the same three files; its config is a Keras model's.
        raise InitcliError(
            f"{label}: {CONFIG_FILE} is not a KerasHub backbone's (its module is not keras_hub); "
            "an unpacked .keras archive is read zipped, as the .keras file"
        )
    metadata: Mapping[str, Any] = {}
    if (path / METADATA_FILE).exists():
        read = _document(path, METADATA_FILE)
        metadata = read if isinstance(read, Mapping) else {}
    if (path / SHARDED_INDEX).exists():
        weights_path = path / SHARDED_INDEX
    elif (path / WEIGHTS_FILE).exists():
        weights_path = path / WEIGHTS_FILE
    else:
        raise InitcliError(f"{label}: a KerasHub preset config, but neither {WEIGHTS_FILE} nor {SHARDED_INDEX}")
    os.close(open_inside(weights_path, path))  # a link out of the preset is refused, as for its documents
    model = open_weights(weights_path)
    versions = ", ".join(
        f"{key} {value}"
        for key in ("keras_hub_version", "keras_version")
        if isinstance(value := metadata.get(key), str) and len(value) <= 40
    )
    known = kerashub.BACKBONES.get(class_name)
    notes = [
        f"KerasHub preset: {_short(class_name)} backbone ({weights_path.name}"
        + (f"; saved by {versions}" if versions else "")
        + ")",
        f"initializers as KerasHub's code passes them: {known.source}"
        if known is not None
        else f"{CONFIG_FILE} gives the backbone's constructor arguments, not its layers' initializers: "
        "fans and statistics only",
        *(note for note in model.notes if not note.startswith("weights-only file")),
    ]
    keras_version = metadata.get("keras_version")
    return ModelFile(
        label,
        "kerashub-preset",
        keras_version if isinstance(keras_version, str) and len(keras_version) <= 40 else model.keras_version,
        lambda: _named(model.records(), class_name, _einsum_fans(metadata.get("keras_version"))),
        model.close,
        notes,
        None,
    )


def _einsum_fans(version: object) -> bool:
    """Did the Keras that saved the preset draw EinsumDense kernels with the equation's fan axes
    (3.15+, `readers.resolution`), or with the kernel shape's `compute_fans`? Unknown: 3.15+."""
    found = re.match(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    return found is None or (int(found[1]), int(found[2])) >= (3, 15)


def _named(records: Iterator[WeightRecord], backbone: str = "", einsum_fans: bool = True) -> Iterator[WeightRecord]:
    """Records of KerasHub's own top-level layers named as Keras names their variables (not
    `token_embedding/0`); for a backbone `initcli.keras.kerashub` knows, every weight it places
    given its initializer, and named by it where the file gave only an index."""
    for record in records:
        found = _TOP_LEVEL.match(record.location or "")
        names = KERAS_HUB_VARIABLES.get(found["group"], ()) if found else ()
        if found and record.path == f"{record.layer}/{record.weight}" and record.weight == found["index"]:
            index = int(found["index"])
            if index < len(names):
                record = replace(record, path=f"{record.layer}/{names[index]}", weight=names[index])
        known = kerashub.slot(backbone, record.location, len(record.shape)) if record.initializer is None else None
        if known is not None:
            changes: dict[str, Any] = {"initializer": dict(known.initializer), "argument": known.argument}
            if known.fan_axes is not None and einsum_fans:
                changes["fan_axes"] = known.fan_axes
            suffix = f"/{record.weight}"
            if record.weight.isdigit() and record.path.endswith(suffix):
                changes.update(path=record.path[: -len(suffix)] + f"/{known.weight}", weight=known.weight)
            if record.layer_class is None:
                changes["layer_class"] = known.layer_class
            record = replace(record, **changes)
        yield record


def _document(directory: Path, name: str) -> Any:
    """A JSON file of the preset, bounded by the document budget and read only from inside its directory."""
    return parse_json(
        read_regular(directory / name, MAX_DOCUMENT_BYTES, name, inside=directory), f"{directory}: {name}"
    )


def _short(text: str) -> str:
    from initcli.safety.sanitize import one_line

    return one_line(text, max_length=80)
