"""KerasHub preset directories: `config.json`, `model.weights.h5` (or a sharded `model.weights.json`
index and its shards), `metadata.json` and `assets/`.

The layout is keras-hub's `keras_hub/src/utils/preset_utils.py` (`CONFIG_FILE = "config.json"`,
`METADATA_FILE = "metadata.json"`, `MODEL_WEIGHTS_FILE = "model.weights.h5"`): `config.json` is the
backbone serialized by `keras.saving.serialize_keras_object` (`{"module", "class_name", "config",
"registered_name"}`: the constructor's arguments, not a list of layers), and the weights file is
`backbone.save_weights(...)`, an ordinary Keras 3 weights tree. The weights are read as that file (or
index) is; the backbone class and its config are named in a note. KerasHub backbones build their
layers in code from those arguments, so their initializers are not in the file: rows carry fans and
statistics, as for any weights-only file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from initcli.errors import BadInputError, InitcliError
from initcli.readers.records import ModelFile
from initcli.safety.documents import MAX_DOCUMENT_BYTES, parse_json
from initcli.safety.files import read_regular, shown

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
MODEL_WEIGHTS_FILE = "model.weights.h5"
SHARDED_WEIGHTS_FILE = "model.weights.json"


def is_preset_directory(path: Path) -> bool:
    """Whether `path` is a directory laid out as a KerasHub preset (a config.json and its weights)."""
    return (
        path.is_dir()
        and (path / CONFIG_FILE).is_file()
        and ((path / MODEL_WEIGHTS_FILE).is_file() or (path / SHARDED_WEIGHTS_FILE).is_file())
    )


def backbone_class(config: Any, label: str) -> str:
    """The class a preset's config.json serializes (e.g. `GemmaBackbone`), the config checked.

    Raises:
        InitcliError: not a serialized Keras object (no string class_name, or no config mapping).
    """
    if not isinstance(config, Mapping) or not isinstance(config.get("class_name"), str):
        raise InitcliError(f"{label}: not a KerasHub preset config (no class_name)")
    if not isinstance(config.get("config", {}), Mapping):
        raise InitcliError(f"{label}: not a KerasHub preset config (its config is not an object)")
    return str(config["class_name"])


def open_preset(path: Path, limits: Any, config: Mapping[str, Any] | None = None) -> ModelFile:
    """Open a KerasHub preset directory: its weights file (or sharded index), named by config.json.

    Raises:
        BadInputError: --config given for a preset (its config.json is the config).
        InitcliError: an unreadable or hostile config.json, or weights file.
    """
    label = str(path)
    if config is not None:
        raise BadInputError(f"--config is for weights-only HDF5 files; {label} is a KerasHub preset with its own")
    config_label = str(path / CONFIG_FILE)
    preset_config = parse_json(read_regular(path / CONFIG_FILE, MAX_DOCUMENT_BYTES, "preset config"), config_label)
    class_name = backbone_class(preset_config, config_label)
    if (path / SHARDED_WEIGHTS_FILE).is_file():
        from initcli.readers.sharded import open_sharded

        model = open_sharded(path / SHARDED_WEIGHTS_FILE, limits)
        weights = SHARDED_WEIGHTS_FILE
    else:
        from initcli.readers.open import open_model

        model = open_model(path / MODEL_WEIGHTS_FILE, timeout=limits.timeout, limits=limits)
        weights = MODEL_WEIGHTS_FILE
    model.source = label
    model.notes = [n for n in model.notes if not n.startswith("weights-only file")]
    model.notes.insert(0, f"KerasHub preset: {shown(class_name)} (config.json), weights from {weights}")
    model.notes.append(
        "KerasHub builds a backbone's layers in code from config.json: no initializer information in the"
        " preset; fans and statistics only"
    )
    return model
