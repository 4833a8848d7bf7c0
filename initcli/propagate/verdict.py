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

from initcli.propagate.report import LayerRecord, Predicted, Verdict

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


def judge_predicted(prediction: object, *, factor: float = DEFAULT_FACTOR) -> list[Verdict]:
    """Verdicts from a StaticPrediction alone."""
    from initcli.propagate.assemble import records_from_static

    return judge(records_from_static(prediction), factor=factor, basis="predicted")  # type: ignore[arg-type]
