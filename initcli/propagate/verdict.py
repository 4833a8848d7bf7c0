"""Verdicts on a run: does the signal keep its scale over the depth?

The scale is the rms of a weight layer's output (Dense, Conv, ...). Over the weight layers in graph
order, `ratio` = rms(last) / rms(first) for activations and grad_rms(first) / grad_rms(last) for
gradients (the gradient flows backwards). `exploding` when ratio > factor, `vanishing` when
ratio < 1 / factor, otherwise `stable`; the default factor is 10. A gradient that is zero at the
last weight layer (a saturated softmax passes nothing back) is `vanishing`. A last weight layer with a softmax
or sigmoid (a classifier's probabilities, small by design) is left out. `nan at layer L` names the
first layer whose output holds NaN or inf (measured), or whose predicted second moment is not finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from initcli.errors import InitcliError
from initcli.propagate.assemble import records_from_static
from initcli.propagate.report import LayerRecord, Predicted, Verdict
from initcli.propagate.static import InputSignal, StaticPrediction, predict, saved_weights

DEFAULT_FACTOR = 10.0
WEIGHT_LAYERS = frozenset(
    {
        "Dense",
        "EinsumDense",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
    }
)


def _signal_layers(layers: Sequence[LayerRecord]) -> list[LayerRecord]:
    chosen = [layer for layer in layers if layer.layer_class in WEIGHT_LAYERS]
    if len(chosen) > 1 and chosen[-1].activation in ("softmax", "sigmoid"):
        chosen = chosen[:-1]
    return chosen


def _classify(ratio: float, factor: float) -> str:
    if ratio > factor:
        return "exploding"
    if ratio < 1.0 / factor:
        return "vanishing"
    return "stable"


def _scale_verdict(
    pairs: list[tuple[LayerRecord, float | None]], factor: float, quantity: str, basis: str, backward: bool
) -> Verdict:
    known = [(layer, value) for layer, value in pairs if value is not None and math.isfinite(value)]
    if len(known) < 2:
        return Verdict(kind="n/a", quantity=quantity, ratio=None, factor=factor, basis=basis)
    (first, first_value), (last, last_value) = known[0], known[-1]
    numerator, denominator = (first_value, last_value) if backward else (last_value, first_value)
    if denominator > 0:
        ratio = numerator / denominator
    else:
        ratio = math.inf if numerator > 0 else 0.0
    return Verdict(
        kind=_classify(ratio, factor),
        quantity=quantity,
        ratio=ratio,
        factor=factor,
        basis=basis,
        first_layer=first.layer,
        last_layer=last.layer,
    )


def judge(layers: Sequence[LayerRecord], *, factor: float = DEFAULT_FACTOR, basis: str) -> list[Verdict]:
    """Verdicts on activations (and gradients when known) from the measured or the predicted values."""
    verdicts = []
    for quantity in ("activations", "gradients"):
        first_bad = None
        for layer in layers:
            if basis == "measured" and layer.measured is not None:
                bad = (
                    layer.measured.nonfinite > 0 if quantity == "activations" else _not_finite(layer.measured.grad_rms)
                )
            elif basis == "predicted" and layer.predicted is not None:
                value = layer.predicted.rms if quantity == "activations" else layer.predicted.grad_rms
                bad = _not_finite(value)
            else:
                bad = False
            if bad:
                first_bad = layer.layer
                break
        if first_bad is not None:
            verdicts.append(
                Verdict(kind="nan", quantity=quantity, ratio=None, factor=factor, basis=basis, layer=first_bad)
            )
            continue
        pairs = [(layer, _scale(layer, quantity, basis)) for layer in _signal_layers(layers)]
        verdict = _scale_verdict(pairs, factor, quantity, basis, backward=quantity == "gradients")
        if verdict.kind != "n/a" or quantity == "activations":
            verdicts.append(verdict)
    return verdicts


def _not_finite(value: float | None) -> bool:
    return value is not None and not math.isfinite(value)


def _scale(layer: LayerRecord, quantity: str, basis: str) -> float | None:
    if basis == "measured":
        if layer.measured is None:
            return None
        return layer.measured.rms if quantity == "activations" else layer.measured.grad_rms
    predicted: Predicted | None = layer.predicted
    if predicted is None:
        return None
    return predicted.rms if quantity == "activations" else predicted.grad_rms


def judge_predicted(prediction: StaticPrediction, *, factor: float = DEFAULT_FACTOR) -> list[Verdict]:
    """Verdicts from a StaticPrediction alone."""
    return judge(records_from_static(prediction), factor=factor, basis="predicted")


@dataclass(frozen=True, kw_only=True)
class PropagationFinding:
    """A finding for `initcli check`'s `propagation` check."""

    path: str
    message: str
    severity: str  # "error" | "warning"


def propagation_findings(saved_model: Any, *, factor: float = 10.0) -> list[PropagationFinding]:
    """Findings of the static prediction (no TensorFlow) for `initcli check`'s `propagation` check.

    An error when the predicted activation or gradient rms changes by more than `factor` from the
    first to the last weight layer (exploding/vanishing) or becomes non-finite; a warning when the
    prediction cannot cover the model (no config, or a layer it does not model). Inputs are N(0, 1)
    and BatchNormalization uses batch statistics, as in a training step.
    """
    try:
        prediction = predict(
            config=saved_model.config,
            weights=saved_weights(saved_model.records()),
            signal=InputSignal.named("normal"),
        )
    except InitcliError as error:
        return [PropagationFinding(path=str(saved_model.source), message=f"no prediction: {error}", severity="warning")]
    findings = []
    for verdict in judge_predicted(prediction, factor=factor):
        if verdict.kind in ("exploding", "vanishing", "nan"):
            path = verdict.layer or verdict.last_layer or str(saved_model.source)
            findings.append(PropagationFinding(path=path, message=verdict.message, severity="error"))
    if prediction.stopped_at is not None:
        findings.append(
            PropagationFinding(path=prediction.stopped_at, message="; ".join(prediction.notes), severity="warning")
        )
    return findings
