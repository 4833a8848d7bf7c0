"""The same initializer in PyTorch and Flax (JAX), and where it differs from Keras's.

Facts from each library's documentation and source: `torch.nn.init` (PyTorch 2.x) and
`jax.nn.initializers` (which `flax.linen.initializers` re-exports). PyTorch computes fans from its
own weight layout (out, in, *kernel): the same layer gives the same fan_in and fan_out as in
Keras (in, out) / (*kernel, in, out), but an array passed across in the other framework's layout
gets them swapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Equivalent:
    """One framework's closest call, and how its values differ from Keras's."""

    framework: str
    call: str
    differences: str

    @property
    def label(self) -> str:
        """The framework's name as people write it."""
        return _LABELS[self.framework]

    def to_dict(self) -> dict[str, Any]:
        return {"call": self.call, "differences": self.differences}


_LABELS = {"pytorch": "PyTorch", "flax": "Flax (jax.nn.initializers)"}
_TORCH_FANS = "fans from torch's (out, in, *kernel) layout: the same numbers for the same layer"
_TORCH_UNTRUNCATED = "not truncated (Keras redraws beyond ±2 stddev and rescales so the std matches)"

_TABLE: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "RandomNormal": (
        ("torch.nn.init.normal_(w, mean=0.0, std=0.05)", "torch's default std is 1.0, Keras's 0.05"),
        (
            "jax.nn.initializers.normal(stddev=0.05)",
            "no mean argument (add it yourself); JAX's default stddev is 0.01",
        ),
    ),
    "TruncatedNormal": (
        (
            "torch.nn.init.trunc_normal_(w, mean=0.0, std=0.05, a=-0.1, b=0.1)",
            "a and b are absolute bounds (default ±2.0, whatever std is): pass mean ± 2·std to match Keras",
        ),
        (
            "jax.nn.initializers.truncated_normal(stddev=0.05)",
            "same ±2 stddev truncation (lower/upper are in stddev units); no mean argument",
        ),
    ),
    "RandomUniform": (
        ("torch.nn.init.uniform_(w, a=-0.05, b=0.05)", "torch's default interval is [0, 1)"),
        (
            "lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -0.05, 0.05)",
            "jax.nn.initializers.uniform(scale) draws from [0, scale), not a symmetric interval",
        ),
    ),
    "VarianceScaling": (
        (
            "no general form: torch.nn.init.kaiming_*/xavier_* cover the presets",
            "compute std = sqrt(scale / n) yourself and call trunc_normal_/normal_/uniform_",
        ),
        (
            "jax.nn.initializers.variance_scaling(1.0, 'fan_in', 'truncated_normal')",
            "JAX's 'normal' is untruncated (Keras maps 'normal' to truncated_normal); fans from "
            "in_axis=-2, out_axis=-1 (Keras's rule for kernels; JAX needs at least 2 dimensions)",
        ),
    ),
    "GlorotUniform": (
        ("torch.nn.init.xavier_uniform_(w)", f"same distribution; {_TORCH_FANS}"),
        ("jax.nn.initializers.glorot_uniform()", "same distribution"),
    ),
    "GlorotNormal": (
        ("torch.nn.init.xavier_normal_(w)", f"{_TORCH_UNTRUNCATED}; same std"),
        ("jax.nn.initializers.glorot_normal()", "same: truncated at ±2 stddev with the 0.8796 correction"),
    ),
    "LecunUniform": (
        ("torch.nn.init.kaiming_uniform_(w, nonlinearity='linear')", f"same distribution; {_TORCH_FANS}"),
        ("jax.nn.initializers.lecun_uniform()", "same distribution"),
    ),
    "LecunNormal": (
        ("torch.nn.init.kaiming_normal_(w, nonlinearity='linear')", f"{_TORCH_UNTRUNCATED}; same std"),
        ("jax.nn.initializers.lecun_normal()", "same: truncated at ±2 stddev with the 0.8796 correction"),
    ),
    "HeUniform": (
        (
            "torch.nn.init.kaiming_uniform_(w, nonlinearity='relu')",
            "same distribution; torch layers' own default is kaiming_uniform_(a=sqrt(5)) = "
            "U(±1/sqrt(fan_in)), a third of He's variance",
        ),
        ("jax.nn.initializers.he_uniform()", "same distribution"),
    ),
    "HeNormal": (
        ("torch.nn.init.kaiming_normal_(w, nonlinearity='relu')", f"{_TORCH_UNTRUNCATED}; same std"),
        ("jax.nn.initializers.he_normal()", "same: truncated at ±2 stddev with the 0.8796 correction"),
    ),
    "Orthogonal": (
        (
            "torch.nn.init.orthogonal_(w, gain=1.0)",
            "torch flattens to (shape[0], rest) and Keras to (rest, shape[-1]): for the same array the "
            "orthogonal axis differs unless it is 2-D",
        ),
        (
            "jax.nn.initializers.orthogonal(scale=1.0, column_axis=-1)",
            "same flattening as Keras (columns on the last axis)",
        ),
    ),
    "Identity": (
        ("torch.nn.init.eye_(w)", "no gain argument (multiply afterwards); 2-D only, as in Keras"),
        ("lambda key, shape, dtype=jnp.float32: 1.0 * jnp.eye(*shape, dtype=dtype)", "no built-in"),
    ),
    "Constant": (
        ("torch.nn.init.constant_(w, 0.0)", "same"),
        ("jax.nn.initializers.constant(0.0)", "same"),
    ),
    "Zeros": (("torch.nn.init.zeros_(w)", "same"), ("jax.nn.initializers.zeros", "same")),
    "Ones": (("torch.nn.init.ones_(w)", "same"), ("jax.nn.initializers.ones", "same")),
    "STFT": (
        ("no built-in", "build the windowed DFT basis yourself (torch.stft computes the transform, not a kernel)"),
        ("no built-in", "build the windowed DFT basis yourself"),
    ),
}


def equivalents(class_name: str, config: dict[str, Any] | None = None) -> list[Equivalent]:
    """PyTorch's and Flax's closest calls for a Keras initializer class, with its config's numbers."""
    entry = _TABLE.get(class_name)
    if entry is None:
        return []
    (torch_call, torch_diff), (flax_call, flax_diff) = entry
    torch_call, flax_call = _with_numbers(class_name, config or {}, torch_call, flax_call)
    return [
        Equivalent(framework="pytorch", call=torch_call, differences=torch_diff),
        Equivalent(framework="flax", call=flax_call, differences=flax_diff),
    ]


def _with_numbers(class_name: str, config: dict[str, Any], torch_call: str, flax_call: str) -> tuple[str, str]:
    """The calls with the config's parameters in place of Keras's defaults."""
    if class_name in ("RandomNormal", "TruncatedNormal"):
        mean, std = float(config.get("mean", 0.0)), float(config.get("stddev", 0.05))
        if class_name == "RandomNormal":
            torch_call = f"torch.nn.init.normal_(w, mean={mean!r}, std={std!r})"
            flax_call = f"jax.nn.initializers.normal(stddev={std!r})"
        else:
            bounds = f"a={mean - 2 * std!r}, b={mean + 2 * std!r}"
            torch_call = f"torch.nn.init.trunc_normal_(w, mean={mean!r}, std={std!r}, {bounds})"
            flax_call = f"jax.nn.initializers.truncated_normal(stddev={std!r})"
        if mean:
            flax_call += f"  # then add {mean!r}"
    elif class_name == "RandomUniform":
        low, high = float(config.get("minval", -0.05)), float(config.get("maxval", 0.05))
        torch_call = f"torch.nn.init.uniform_(w, a={low!r}, b={high!r})"
        flax_call = f"lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, {low!r}, {high!r})"
    elif class_name == "VarianceScaling":
        distribution = {"normal": "truncated_normal", "untruncated_normal": "normal"}.get(
            config.get("distribution", "truncated_normal"), config.get("distribution", "truncated_normal")
        )
        flax_call = (
            f"jax.nn.initializers.variance_scaling({float(config.get('scale', 1.0))!r}, "
            f"{config.get('mode', 'fan_in')!r}, {distribution!r})"
        )
    elif class_name == "Orthogonal":
        gain = float(config.get("gain", 1.0))
        torch_call = f"torch.nn.init.orthogonal_(w, gain={gain!r})"
        flax_call = f"jax.nn.initializers.orthogonal(scale={gain!r}, column_axis=-1)"
    elif class_name == "Identity":
        gain = float(config.get("gain", 1.0))
        if gain != 1.0:
            torch_call = f"torch.nn.init.eye_(w); w.mul_({gain!r})"
        flax_call = f"lambda key, shape, dtype=jnp.float32: {gain!r} * jnp.eye(*shape, dtype=dtype)"
    elif class_name == "Constant":
        value = config.get("value", 0.0)
        torch_call = f"torch.nn.init.constant_(w, {value!r})"
        flax_call = f"jax.nn.initializers.constant({value!r})"
    return torch_call, flax_call
