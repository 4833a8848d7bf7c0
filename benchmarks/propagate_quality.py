"""How well `propagate --static`'s mean-field prediction matches Keras's forward pass, on whole models.

Builds each architecture with Keras 3 at its initializers (seed 0, no pretrained weights), saves it,
and runs `initcli propagate MODEL --format json` (the measured pass: one training-mode batch of 32
N(0, 1) inputs through TensorFlow, with the static prediction from the same weights beside it). Per
model: the layers predicted, where the prediction stops, and |rms / predicted rms - 1| over the
predicted layers (median, 90th percentile, worst) and at the last predicted layer.

    python benchmarks/propagate_quality.py [OUT_DIR]     # the README's table (about a minute on 2 cores)
    python benchmarks/propagate_quality.py OUT_DIR LSTM GRU   # only the rows whose name has one of these

The recurrent rows are the mean-field approximation of initcli/propagate/recurrent.py (gates,
states and time steps independent); each model's layers are listed with --layers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def build(directory: Path, only: list[str]) -> dict[str, Path]:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    from keras import layers

    def vgg() -> keras.Model:
        inputs = keras.Input((32, 32, 3))
        x = inputs
        for filters in (32, 64, 128):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.Conv2D(filters, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.MaxPooling2D(2)(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.5)(x)
        x = layers.Dense(128, activation="relu")(x)
        return keras.Model(inputs, layers.Dense(10)(x), name="vgg_like")

    makers = {
        "VGG-like CNN (32x32)": vgg,
        "ResNet50 (224x224)": lambda: keras.applications.ResNet50(weights=None),
        "MobileNetV2 (224x224)": lambda: keras.applications.MobileNetV2(weights=None),
        "LSTM (2 layers)": lambda: keras.Sequential(
            [keras.Input((20, 8)), layers.LSTM(32, return_sequences=True), layers.LSTM(32), layers.Dense(10)]
        ),
        "GRU (2 layers)": lambda: keras.Sequential(
            [keras.Input((20, 8)), layers.GRU(32, return_sequences=True), layers.GRU(32), layers.Dense(10)]
        ),
    }
    makers = {name: make for name, make in makers.items() if not only or any(word in name for word in only)}
    paths = {}
    for index, (name, make) in enumerate(makers.items()):
        keras.utils.set_random_seed(0)
        path = directory / f"model{index}.keras"
        make().save(path)
        paths[name] = path
    return paths


def quality(path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "initcli", "propagate", str(path), "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    report = json.loads(out)
    run = report["runs"][0]
    layers = run["layers"]
    errors = [abs(layer["rms_ratio"] - 1) for layer in layers if layer["rms_ratio"] is not None]
    stops = [note for note in run.get("notes", []) if "stops at" in note]
    errors_sorted = sorted(errors)

    def pick(q: float) -> float | None:
        return errors_sorted[min(int(q * len(errors_sorted)), len(errors_sorted) - 1)] if errors_sorted else None

    per_layer = [(layer["layer"], abs(layer["rms_ratio"] - 1)) for layer in layers if layer["rms_ratio"] is not None]
    last = next((abs(layer["rms_ratio"] - 1) for layer in reversed(layers) if layer["rms_ratio"] is not None), None)
    return {
        "layers": len(layers),
        "predicted": len(errors),
        "median": pick(0.5),
        "p90": pick(0.9),
        "worst": errors_sorted[-1] if errors_sorted else None,
        "last": last,
        "stops": stops[0].split("stops at ", 1)[1] if stops else "",
        "per_layer": per_layer,
    }


def pct(value: object) -> str:
    return "" if value is None else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="initcli-quality-"))
    directory.mkdir(parents=True, exist_ok=True)
    layers = "--layers" in sys.argv
    only = [word for word in sys.argv[2:] if word != "--layers"]
    print("| model | layers predicted | median | 90th pct. | worst | last layer | stops at |")
    print("|---|---|---|---|---|---|---|")
    for name, path in build(directory, only).items():
        q = quality(path)
        if layers:
            print(f"{name}: " + ", ".join(f"{k} {pct(v)}" for k, v in q["per_layer"]))  # type: ignore[attr-defined]

        print(
            f"| {name} | {q['predicted']}/{q['layers']} | {pct(q['median'])} | {pct(q['p90'])} | "
            f"{pct(q['worst'])} | {pct(q['last'])} | {q['stops']} |"
        )


if __name__ == "__main__":
    main()
