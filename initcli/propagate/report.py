"""Typed records of a propagation run: one per layer, a verdict, and the run around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from initcli.report_views import ReportViews

#: Flat per-layer columns, in order: the CSV header and the keys of each JSON layer object.
LAYER_COLUMNS = (
    "index",
    "layer",
    "layer_class",
    "activation",
    "output_shape",
    "mean",
    "std",
    "rms",
    "channel_sq_mean",
    "channel_var",
    "dead_fraction",
    "saturated_fraction",
    "nonfinite",
    "predicted_mean",
    "predicted_var",
    "predicted_rms",
    "predicted_channel_sq_mean",
    "predicted_channel_var",
    "rms_ratio",
    "forward_gain",
    "chi",
    "grad_rms",
    "predicted_grad_rms",
    "kernel_rms",
    "kernel_grad_rms",
    "grad_to_weight",
)

#: Columns of `--compare`'s CSV: the layer columns prefixed with the run's initializer.
COMPARE_COLUMNS = ("init", *LAYER_COLUMNS)


@dataclass(kw_only=True)
class WeightGradient:
    """One weight's size and its gradient's size after the backward pass (rms over its entries)."""

    path: str
    weight_rms: float
    grad_rms: float | None

    @property
    def grad_to_weight(self) -> float | None:
        if self.grad_rms is None or self.weight_rms == 0.0:
            return None
        return self.grad_rms / self.weight_rms

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "weight_rms": self.weight_rms,
            "grad_rms": self.grad_rms,
            "grad_to_weight": self.grad_to_weight,
        }


@dataclass(kw_only=True)
class Measured:
    """Statistics of one layer's output over the batch, computed from the forward pass.

    Attributes:
        mean, std, rms: over every element (std is the population std; rms = sqrt(mean(y²))).
        channel_sq_mean: the average over channels (last axis) of the squared channel mean, where a
            channel's mean is over batch and spatial positions (Brock, De and Smith 2021).
        channel_var: the average over channels of the channel's variance.
        dead_fraction: ReLU-family outputs: the fraction of channels that are never positive in the batch.
        saturated_fraction: tanh (|y| > 0.99) and sigmoid (y < 0.01 or y > 0.99): fraction of elements.
        nonfinite: how many elements are NaN or infinite.
    """

    mean: float
    std: float
    rms: float
    channel_sq_mean: float
    channel_var: float
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    nonfinite: int = 0
    grad_rms: float | None = None


@dataclass(kw_only=True)
class Predicted:
    """The mean-field prediction for one layer's output (TensorFlow-free, from config and weights).

    Attributes:
        mean, var: predicted mean and variance of the output's elements.
        channel_sq_mean, channel_var: the predicted average squared channel mean and average
            within-channel variance (they add up to the second moment).
        forward_gain: predicted E[y²] / E[x²] (the second moment's change through this layer).
        chi: the backward gain: predicted E[(dL/dx)²] / E[(dL/dy)²] (Pennington et al.'s chi for a
            Dense/Conv with its activation: fan_out · v_w · E[φ'(h)²]).
        grad_rms: predicted rms of dL/dy for L = Σ y_out · g with g ~ N(0, 1) at the model's outputs.
    """

    mean: float
    var: float
    channel_sq_mean: float | None = None
    channel_var: float | None = None
    forward_gain: float | None = None
    chi: float | None = None
    grad_rms: float | None = None

    @property
    def rms(self) -> float:
        return float(max(self.var + self.mean * self.mean, 0.0) ** 0.5)


@dataclass(kw_only=True)
class LayerRecord:
    """One layer of the model, in graph order: what it is, what was measured, what theory says."""

    index: int
    layer: str
    layer_class: str
    activation: str | None
    output_shape: tuple[int | None, ...] | None
    measured: Measured | None = None
    predicted: Predicted | None = None
    weights: list[WeightGradient] = field(default_factory=list)

    def kernel(self) -> WeightGradient | None:
        for weight in self.weights:
            if weight.path.rsplit("/", 1)[-1] in ("kernel", "depthwise_kernel", "embeddings"):
                return weight
        return None

    def to_flat(self) -> dict[str, Any]:
        """The layer as one flat row with exactly LAYER_COLUMNS (unknown values are None)."""
        measured, predicted, kernel = self.measured, self.predicted, self.kernel()
        rms_ratio = None
        if measured is not None and predicted is not None and predicted.rms > 0:
            rms_ratio = measured.rms / predicted.rms
        return {
            "index": self.index,
            "layer": self.layer,
            "layer_class": self.layer_class,
            "activation": self.activation,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "mean": measured.mean if measured else None,
            "std": measured.std if measured else None,
            "rms": measured.rms if measured else None,
            "channel_sq_mean": measured.channel_sq_mean if measured else None,
            "channel_var": measured.channel_var if measured else None,
            "dead_fraction": measured.dead_fraction if measured else None,
            "saturated_fraction": measured.saturated_fraction if measured else None,
            "nonfinite": measured.nonfinite if measured else None,
            "predicted_mean": predicted.mean if predicted else None,
            "predicted_var": predicted.var if predicted else None,
            "predicted_rms": predicted.rms if predicted else None,
            "predicted_channel_sq_mean": predicted.channel_sq_mean if predicted else None,
            "predicted_channel_var": predicted.channel_var if predicted else None,
            "rms_ratio": rms_ratio,
            "forward_gain": predicted.forward_gain if predicted else None,
            "chi": predicted.chi if predicted else None,
            "grad_rms": measured.grad_rms if measured else None,
            "predicted_grad_rms": predicted.grad_rms if predicted else None,
            "kernel_rms": kernel.weight_rms if kernel else None,
            "kernel_grad_rms": kernel.grad_rms if kernel else None,
            "grad_to_weight": kernel.grad_to_weight if kernel else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.to_flat(), "weights": [weight.to_dict() for weight in self.weights]}


@dataclass(kw_only=True)
class Verdict:
    """`stable`, `exploding`, `vanishing`, `nan` (with the first layer), or `n/a` (nothing to judge).

    Attributes:
        kind: the verdict.
        quantity: what was judged: "activations" or "gradients".
        ratio: last / first scale over the depth (activations) or first / last (gradients).
        factor: the threshold: exploding when ratio > factor, vanishing when ratio < 1 / factor.
        layer: for `nan`, the first layer whose output holds NaN or inf.
        basis: "measured" or "predicted".
    """

    kind: str
    quantity: str
    ratio: float | None
    factor: float
    basis: str
    layer: str | None = None
    first_layer: str | None = None
    last_layer: str | None = None

    @property
    def message(self) -> str:
        if self.kind == "nan":
            return f"{self.quantity}: nan at layer {self.layer} ({self.basis})"
        if self.ratio is None:
            return f"{self.quantity}: {self.kind}"
        start, end = (
            (self.last_layer, self.first_layer)
            if self.quantity == "gradients"
            else (
                self.first_layer,
                self.last_layer,
            )
        )
        if self.ratio == 0:
            return f"{self.quantity}: {self.kind} ({self.basis}: the rms falls to 0 from {start} to {end})"
        direction = "grows" if self.ratio >= 1 else "shrinks"
        size = self.ratio if self.ratio >= 1 else 1 / self.ratio
        return (
            f"{self.quantity}: {self.kind} ({self.basis}: the rms {direction} {size:.3g}x from "
            f"{start} to {end}; the threshold is {self.factor:g}x)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "quantity": self.quantity,
            "basis": self.basis,
            "ratio": self.ratio,
            "factor": self.factor,
            "layer": self.layer,
            "first_layer": self.first_layer,
            "last_layer": self.last_layer,
            "message": self.message,
        }


@dataclass(kw_only=True)
class PropagationRun:
    """One pass through the model, as saved or re-initialized with `init`."""

    init: str | None
    layers: list[LayerRecord]
    verdicts: list[Verdict]
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The worst verdict: nan, then exploding/vanishing, then stable."""
        kinds = [verdict.kind for verdict in self.verdicts]
        for kind in ("nan", "exploding", "vanishing", "stable"):
            if kind in kinds:
                return kind
        return "n/a"

    def to_dict(self) -> dict[str, Any]:
        return {
            "init": self.init,
            "verdict": self.verdict,
            "verdicts": [verdict.to_dict() for verdict in self.verdicts],
            "layers": [layer.to_dict() for layer in self.layers],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, kw_only=True)
class PropagateReport(ReportViews):
    """What `initcli propagate` found: the settings of the pass and one run per initializer.

    `to_json()` is the `--format json` object without `schema_version`; `to_dict()` (from
    `ReportViews`) is that object exactly, with `to_pandas()` and the terminal's tables beside it.
    """

    source: str
    format: str
    mode: str  # "measured" (TensorFlow forward pass, with the static prediction beside it) or "static"
    batch: int
    input: str
    seed: int
    dtype: str
    training: bool
    backward: bool
    factor: float
    runs: list[PropagationRun]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "mode": self.mode,
            "batch": self.batch,
            "input": self.input,
            "seed": self.seed,
            "dtype": self.dtype,
            "training": self.training,
            "backward": self.backward,
            "factor": self.factor,
            "runs": [run.to_dict() for run in self.runs],
            "notes": list(self.notes),
        }
