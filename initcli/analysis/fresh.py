"""What `inspect --fresh` rebuilds a saved model from, and the init draws its Keras made otherwise.

A `.keras` or Keras 3 `.h5` file carries its config (`ModelFile.config`), rebuilt by Keras 3 or, for a
tf.keras file, by tf_keras. A multi-backend Keras 2.0-2.3 `.h5` carries its own (`older_config`),
which tf_keras reads; where that Keras drew an initializer otherwise than tf_keras (a
VarianceScaling 'normal' before 2.2.0, a convolution's fans before 2.0.6: `initcli.keras.eras`),
the weight's init is re-drawn from the translated initializer the inspection already resolved.
A tf_keras SavedModel keeps the model config in `keras_metadata.pb` (tf.keras 2.0-2.4 in
`saved_model.pb`); a Keras 3 `model.export()` SavedModel keeps none. A Keras 1 config is read
by neither Keras 3 nor tf_keras: refused, with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initcli.errors import InitcliError
from initcli.keras.eras import era_of, translate
from initcli.readers.records import ModelFile, WeightRecord

if TYPE_CHECKING:
    from initcli.analysis.inspection import WeightRow


def rebuild_source(saved: ModelFile) -> tuple[Mapping[str, Any], str | None]:
    """The model config `--fresh` rebuilds and the Keras version that wrote it.

    Raises:
        InitcliError: one line saying why the file cannot be rebuilt.
    """
    if saved.config is not None:
        return saved.config, saved.keras_version
    era = era_of(saved.keras_version)
    if saved.older_config is not None:
        if era.line == "keras1":
            raise InitcliError(
                f"--fresh cannot rebuild {saved.source}: a {era.label} config (Dense(output_dim, init=...), "
                "Convolution2D(nb_filter, ...)), which neither Keras 3 nor tf_keras reads"
            )
        return saved.older_config, saved.keras_version
    if saved.format == "savedmodel":
        return _saved_model_config(Path(saved.source))
    from initcli.keras.building import no_config_reason

    raise InitcliError(no_config_reason(saved.source, saved.format, saved.keras_version))


def _saved_model_config(path: Path) -> tuple[Mapping[str, Any], str | None]:
    from initcli.readers.tfmodel import keras_metadata, saved_model_metadata

    if (path / "keras_metadata.pb").is_file():
        root = keras_metadata(path / "keras_metadata.pb").get("root", {})
    else:
        root = saved_model_metadata(path / "saved_model.pb").get("root", {})
    config = root.get("model_config") if isinstance(root, Mapping) else None
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise InitcliError(
            f"--fresh cannot rebuild {path}: the SavedModel holds no Keras model config (no keras_metadata.pb "
            "with one; Keras 3's model.export() writes none): save the model as .keras to rebuild it"
        )
    version = root.get("keras_version")
    return _tuples_as_lists(config), version if isinstance(version, str) else None


def _tuples_as_lists(value: Any) -> Any:
    """tf_keras's SavedModel JSON writes tuples as {"class_name": "__tuple__", "items": [...]}."""
    if isinstance(value, Mapping):
        if value.get("class_name") == "__tuple__" and isinstance(value.get("items"), list):
            return [_tuples_as_lists(item) for item in value["items"]]
        return {key: _tuples_as_lists(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tuples_as_lists(item) for item in value]
    return value


def same_draws(keras_version: str | None) -> bool:
    """Whether the Keras that rebuilds the file draws a seed as the Keras that wrote it did.

    Keras 3 and tf_keras re-draw their own files' seeded initializers; nothing re-draws what
    multi-backend Keras 2 (TF 1 or Theano random ops) drew.
    """
    return era_of(keras_version).line != "keras2"


def era_redrawn(
    rows: Sequence[WeightRow],
    pairs: Mapping[str, tuple[WeightRecord, str]],
    keras_version: str | None,
    seed: int | None,
) -> tuple[dict[str, tuple[WeightRecord, str]], int, int]:
    """`pairs` as the file's Keras 2 drew its init: each rebuilt init that tf_keras draws otherwise is
    replaced by a draw of the initializer as that Keras drew it (the row's resolved one), or left out
    where initcli has no equivalent of that draw (Theano's clipped normal); and how many of each."""
    era = era_of(keras_version)
    out = dict(pairs)
    if era.line != "keras2":
        return out, 0, 0
    from initcli.analysis.sampling import draw_whole

    redrawn = dropped = 0
    for row in rows:
        record, spec = row.record, row.initializer
        pair = out.get(record.path)
        config = record.layer_config
        if pair is None or record.argument is None or not isinstance(config, Mapping):
            continue
        configured = config.get(record.argument)
        if spec is None and configured is not None:
            # Configured, yet no Keras 3 equivalent (Keras 2.0-2.1 on Theano clipped its truncated
            # normal: initcli.readers.resolution): tf_keras's draw is not that init.
            del out[record.path]
            dropped += 1
            continue
        if spec is None or not spec.family.random or translate(configured, record.shape, era).note is None:
            continue

        def read(spec: Any = spec, shape: tuple[int, ...] = record.shape) -> Any:
            return draw_whole(spec, shape, "float32", seed)

        out[record.path] = (dataclasses.replace(pair[0], read=read, read_chunks=None), pair[1])
        redrawn += 1
    return out, redrawn, dropped
