"""Put the measurement and the static prediction together into per-layer records."""

from __future__ import annotations

from initcli.propagate.graph import layer_activation
from initcli.propagate.measure import Measurement
from initcli.propagate.report import LayerRecord
from initcli.propagate.static import StaticPrediction


def records_from_static(prediction: StaticPrediction) -> list[LayerRecord]:
    """One record per layer of the prediction (input layers left out), predictions only."""
    records: list[LayerRecord] = []
    for node in prediction.nodes:
        if node.class_name == "InputLayer":
            continue
        records.append(
            LayerRecord(
                index=len(records),
                layer=node.name,
                layer_class=node.class_name,
                activation=layer_activation(node.class_name, node.config),
                output_shape=prediction.shapes.get(node.name),
                predicted=prediction.predicted.get(node.name),
            )
        )
    return records


def records_from_measurement(measurement: Measurement, prediction: StaticPrediction | None) -> list[LayerRecord]:
    """One record per measured layer, with the prediction beside it where there is one."""
    predicted = prediction.predicted if prediction is not None else {}
    return [
        LayerRecord(
            index=index,
            layer=info.name,
            layer_class=info.class_name,
            activation=info.activation,
            output_shape=info.output_shape,
            measured=measurement.measured.get(info.name),
            predicted=predicted.get(info.name),
            weights=measurement.weights.get(info.name, []),
        )
        for index, info in enumerate(measurement.layers)
    ]
