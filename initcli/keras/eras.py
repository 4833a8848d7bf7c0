"""What an initializer name or config meant in the Keras version that wrote a file.

A legacy `.h5` records `keras_version` (and, from Keras 2.0, `backend`). Old Keras drew some
initializers differently from Keras 3; each old initializer is translated here into the Keras 3
initializer that draws the same distribution on that weight's shape (fans included), with a note
saying what changed. Sources (keras-team/keras tags): `keras/initializations.py@1.2.2`,
`keras/initializers.py@2.0.0`, `@2.0.6`, `@2.1.6`, `@2.2.0`, `@2.3.1`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from initcli.initializers.fans import compute_fans

# scipy.stats.truncnorm.std(a=-2, b=2): the std of a normal truncated at ±2 sigma, per sigma.
TRUNCATED_STD = 0.87962566103423978


@dataclass(frozen=True, kw_only=True)
class Era:
    """The Keras that wrote a file.

    Attributes:
        version: the `keras_version` text as stored ("1.2.2", "2.2.4-tf", "2.13.1"), or None.
        line: "keras1", "keras2" (multi-backend Keras 2.0-2.3), "tf.keras" (TensorFlow's Keras 2,
            tf_keras), "keras3", or "unknown".
        numbers: (major, minor, patch) parsed from `version`, or None.
        backend: the `backend` attribute ("tensorflow", "theano", "cntk"), or None.
    """

    version: str | None
    line: str
    numbers: tuple[int, int, int] | None
    backend: str | None = None

    @property
    def label(self) -> str:
        if self.version:
            return f"Keras {self.version}"
        names = {"tf.keras": "tf_keras", "keras3": "Keras 3", "keras1": "Keras 1"}
        return names.get(self.line, "Keras (version unknown)")


UNKNOWN = Era(version=None, line="unknown", numbers=None)


def era_of(version: Any, backend: Any = None) -> Era:
    """The era of a `keras_version` attribute (bytes or text) and `backend` attribute."""
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    if isinstance(backend, bytes):
        backend = backend.decode("utf-8", "replace")
    backend = backend if isinstance(backend, str) else None
    if not isinstance(version, str):
        return Era(version=None, line="unknown", numbers=None, backend=backend)
    match = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return Era(version=version, line="unknown", numbers=None, backend=backend)
    numbers = (int(match[1]), int(match[2]), int(match[3] or 0))
    if numbers[0] <= 1:
        line = "keras1"
    elif numbers[0] >= 3:
        line = "keras3"
    elif "tf" in version[match.end() :] or numbers >= (2, 4, 0):
        # TensorFlow's bundled Keras wrote "2.1.6-tf" ... "2.3.0-tf", then its own 2.4+ numbers;
        # multi-backend Keras stopped at 2.3.1.
        line = "tf.keras"
    else:
        line = "keras2"
    return Era(version=version, line=line, numbers=numbers, backend=backend)


def keras1_fans(
    shape: Sequence[int], dim_ordering: str, version: tuple[int, int, int] = (1, 2, 2)
) -> tuple[float, float]:
    """`get_fans(shape, dim_ordering)` of keras/initializations.py@1.2.2 (the same from 1.0.4).

    The 'tf' receptive field is prod(shape[:2]) even for 5-D kernels (a Keras 1 quirk). Up to 1.0.3
    (keras/initializations.py@1.0.0) fan_out had no receptive field: 'th' (prod(shape[1:]), shape[0]),
    'tf' (prod(shape[:-1]), shape[-1]).
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) in (4, 5) and version < (1, 0, 4):
        if dim_ordering == "th":
            return math.prod(shape[1:]), shape[0]
        return math.prod(shape[:-1]), shape[-1]
    if len(shape) in (4, 5):
        if dim_ordering == "th":
            field = math.prod(shape[2:])
            return shape[1] * field, shape[0] * field
        field = math.prod(shape[:2])
        return shape[-2] * field, shape[-1] * field
    side = math.sqrt(math.prod(shape))
    return side, side


def keras2_fans(shape: Sequence[int], version: tuple[int, int, int]) -> tuple[float, float]:
    """`_compute_fans(shape)` of multi-backend Keras 2.0-2.3 (keras/initializers.py).

    VarianceScaling calls it without `data_format`, so kernels are always channels_last. Up to
    2.0.5 the receptive field is prod(shape[:2]) (keras/initializers.py@2.0.0), from 2.0.6
    prod(shape[:-2]) (@2.0.6); ranks other than 2-5 use sqrt(prod(shape)) for both fans (@2.3.1).
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) in (3, 4, 5):
        field = math.prod(shape[:2]) if version < (2, 0, 6) else math.prod(shape[:-2])
        return shape[-2] * field, shape[-1] * field
    side = math.sqrt(math.prod(shape))
    return side, side


def _axes_for(shape: Sequence[int], fans: tuple[float, float]) -> tuple[list[int], list[int]] | None:
    """Keras 3 `input_axes`/`output_axes` that give `fans` on `shape`, for the fan rules old Keras had."""
    shape = tuple(int(d) for d in shape)
    rank = len(shape)
    if rank < 2:
        return None
    candidates = [
        # channels_last: receptive field prod(shape[:-2]) (Keras 3's own rule).
        (list(range(rank - 1)), [*range(rank - 2), rank - 1]),
        # Keras 1 'th': (out, in, *k).
        ([1, *range(2, rank)], [0, *range(2, rank)]),
        # Keras 1 'tf' / Keras 2.0.0-2.0.5: receptive field prod(shape[:2]).
        ([0, 1, rank - 2], [0, 1, rank - 1]),
        # Keras 1.0.0-1.0.3 'th' and 'tf': fan_out without a receptive field.
        (list(range(1, rank)), [0]),
        (list(range(rank - 1)), [rank - 1]),
    ]
    for input_axes, output_axes in candidates:
        if len(set(input_axes)) != len(input_axes) or len(set(output_axes)) != len(output_axes):
            continue
        if (math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)) == fans:
            return input_axes, output_axes
    return None


@dataclass(frozen=True, kw_only=True)
class Translation:
    """An old initializer as the Keras 3 initializer that draws the same values' distribution."""

    identifier: Mapping[str, Any] | None
    note: str | None = None


def _dict(class_name: str, **config: Any) -> dict[str, Any]:
    return {"class_name": class_name, "config": config}


def _scaled(
    scale: float,
    mode: str,
    distribution: str,
    shape: Sequence[int],
    fans: tuple[float, float],
    *,
    seed: Any = None,
) -> tuple[dict[str, Any], str | None]:
    """VarianceScaling(scale, mode, distribution) computed with `fans` instead of Keras 3's.

    Where the old fans are products of the shape's axes, they become `input_axes`/`output_axes`;
    otherwise (old Keras's sqrt(prod(shape)) fans) the stddev or limit is fixed explicitly.
    """
    if tuple(float(f) for f in compute_fans(shape)) == tuple(float(f) for f in fans):
        return _dict("VarianceScaling", scale=scale, mode=mode, distribution=distribution, seed=seed), None
    axes = _axes_for(shape, fans)
    if axes is not None:
        config = dict(scale=scale, mode=mode, distribution=distribution, seed=seed)
        return _dict("VarianceScaling", **config, input_axes=axes[0], output_axes=axes[1]), (
            f"fans ({_fan_text(fans[0])}, {_fan_text(fans[1])}) as that Keras computed them"
        )
    fan = {"fan_in": fans[0], "fan_out": fans[1]}.get(mode, (fans[0] + fans[1]) / 2)
    variance = scale / max(1.0, float(fan))
    note = f"fans sqrt(prod(shape)) = {_fan_text(fans[0])} as that Keras computed them"
    if distribution == "uniform":
        limit = math.sqrt(3 * variance)
        return _dict("RandomUniform", minval=-limit, maxval=limit, seed=seed), note
    if distribution == "untruncated_normal":
        return _dict("RandomNormal", mean=0.0, stddev=math.sqrt(variance), seed=seed), note
    return _dict("TruncatedNormal", mean=0.0, stddev=math.sqrt(variance) / TRUNCATED_STD, seed=seed), note


def _fan_text(fan: float) -> str:
    return str(int(fan)) if float(fan).is_integer() else f"{fan:.6g}"


# keras/initializations.py@1.2.2: name -> (scale, mode, distribution) for the fan-based ones.
_KERAS1_SCALED = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),  # U(±sqrt(6/(fan_in+fan_out)))
    "glorot_normal": (1.0, "fan_avg", "untruncated_normal"),  # N(0, sqrt(2/(fan_in+fan_out)))
    "he_uniform": (2.0, "fan_in", "uniform"),  # U(±sqrt(6/fan_in))
    "he_normal": (2.0, "fan_in", "untruncated_normal"),  # N(0, sqrt(2/fan_in))
    "lecun_uniform": (1.0, "fan_in", "uniform"),  # U(±sqrt(3/fan_in))
}
# Keras 3 names that draw exactly what the Keras 1 initializer drew with Keras 3's own fans.
_KERAS3_NAME = {
    ("glorot_uniform", "uniform"): "GlorotUniform",
    ("he_uniform", "uniform"): "HeUniform",
    ("lecun_uniform", "uniform"): "LecunUniform",
}


def translate_keras1(
    name: Any,
    shape: Sequence[int],
    dim_ordering: str = "th",
    version: str = "1",
    numbers: tuple[int, int, int] | None = None,
) -> Translation:
    """A Keras 1 `init` name (keras/initializations.py@1.2.2) as a Keras 3 initializer on `shape`.

    Args:
        name: the name in the layer config ("glorot_uniform", "one", ...).
        shape: the weight's shape.
        dim_ordering: the ordering the layer passed to the initializer ('th' or 'tf'); Keras 1
            layers other than Convolution2D/3D and SeparableConvolution2D passed the default 'th'.
        version: the Keras version, for the notes.
        numbers: the parsed version, for the fan rule of 1.0.0-1.0.3 (None: 1.0.4 and later).
    """
    if not isinstance(name, str):
        return Translation(identifier=None, note=f"Keras {version} initializer {name!r} is not a Keras 1 name")
    label = f"Keras {version} {name}"
    if name in _KERAS1_SCALED:
        scale, mode, distribution = _KERAS1_SCALED[name]
        fans = keras1_fans(shape, dim_ordering, numbers or (1, 2, 2))
        identifier, fan_note = _scaled(scale, mode, distribution, shape, fans)
        keras3 = _KERAS3_NAME.get((name, distribution))
        if keras3 is not None and fan_note is None:
            return Translation(identifier=_dict(keras3, seed=None), note=f"{label}: the same as Keras 3's")
        what = "untruncated normal" if distribution == "untruncated_normal" else distribution
        note = f"{label}: {what}, VarianceScaling({scale:g}, {mode})"
        return Translation(identifier=identifier, note=f"{note}; {fan_note}" if fan_note else note)
    if name == "uniform":
        return Translation(
            identifier=_dict("RandomUniform", minval=-0.05, maxval=0.05), note=f"{label}: U(-0.05, 0.05)"
        )
    if name == "normal":
        return Translation(identifier=_dict("RandomNormal", mean=0.0, stddev=0.05), note=f"{label}: N(0, 0.05)")
    if name == "orthogonal":
        # flat shape (shape[0], prod(shape[1:])), SVD, scale 1.1: the same as Keras 3's for 2-D weights.
        if len(shape) != 2:
            return Translation(
                identifier=None, note=f"{label}: flattened as (shape[0], rest), unlike Keras 3: no theory"
            )
        return Translation(identifier=_dict("Orthogonal", gain=1.1), note=f"{label}: orthogonal with gain 1.1")
    if name == "identity":
        return Translation(identifier=_dict("Identity", gain=1.0), note=None)
    if name == "zero":
        return Translation(identifier=_dict("Zeros"), note=None)
    if name == "one":
        return Translation(identifier=_dict("Ones"), note=None)
    return Translation(identifier=None, note=f"{label}: not a Keras 1 built-in initializer")


def translate_keras2(identifier: Any, shape: Sequence[int], era: Era) -> Translation:
    """A multi-backend Keras 2.0-2.3 initializer config as a Keras 3 initializer on `shape`.

    Only VarianceScaling (which glorot_*/he_*/lecun_* serialize as) drew differently: its 'normal'
    is a truncated normal with stddev sqrt(scale/n) up to 2.1.6 (so the values' std is 0.8796 of
    that; keras/initializers.py@2.1.6) and sqrt(scale/n)/0.8796 from 2.2.0 (@2.2.0), on Keras 2's
    own fans (`keras2_fans`).
    """
    if isinstance(identifier, str):
        return Translation(identifier={"class_name": identifier, "config": {}})
    if not (isinstance(identifier, Mapping) and identifier.get("class_name") == "VarianceScaling"):
        return Translation(identifier=identifier if isinstance(identifier, Mapping) else None)
    config = identifier.get("config")
    config = dict(config) if isinstance(config, Mapping) else {}
    numbers = era.numbers or (2, 3, 0)
    scale = config.get("scale", 1.0)
    mode = config.get("mode", "fan_in")
    distribution = config.get("distribution", "normal")
    seed = config.get("seed")
    if not (isinstance(scale, (int, float)) and isinstance(mode, str) and isinstance(distribution, str)):
        return Translation(identifier=identifier)
    mode, distribution = mode.lower(), distribution.lower()
    fans = keras2_fans(shape, numbers)
    if distribution == "normal" and numbers < (2, 2, 0):
        fan = {"fan_in": fans[0], "fan_out": fans[1]}.get(mode, (fans[0] + fans[1]) / 2)
        stddev = math.sqrt(float(scale) / max(1.0, float(fan)))
        return Translation(
            identifier=_dict("TruncatedNormal", mean=0.0, stddev=stddev, seed=seed),
            note=(
                f"{era.label} VarianceScaling({float(scale):g}, {mode}, normal): truncated normal with stddev "
                f"sqrt(scale/n) = {stddev:.6g} before truncation, so values' std is 0.8796 of it "
                "(corrected in Keras 2.2.0)"
            ),
        )
    modern = {"normal": "truncated_normal"}.get(distribution, distribution)
    translated, fan_note = _scaled(float(scale), mode, modern, shape, fans, seed=seed)
    return Translation(identifier=translated, note=f"{era.label}: {fan_note}" if fan_note else None)


def translate(identifier: Any, shape: Sequence[int], era: Era, dim_ordering: str = "th") -> Translation:
    """The Keras 3 initializer that draws what `identifier` drew in `era` on `shape`."""
    if era.line == "keras1":
        if isinstance(identifier, str):
            return translate_keras1(identifier, shape, dim_ordering, era.version or "1", era.numbers)
        return Translation(identifier=identifier if isinstance(identifier, Mapping) else None)
    if era.line == "keras2":
        return translate_keras2(identifier, shape, era)
    if isinstance(identifier, str):
        return Translation(identifier={"class_name": identifier, "config": {}})
    return Translation(
        identifier=identifier if isinstance(identifier, Mapping) and "class_name" in identifier else None
    )
