"""STFT: Keras 3's deterministic kernel for Conv1D-based short-time Fourier transforms.

Keras builds it in the dtype: `freq = arange(F) / (2·(F − 1))`, `time = arange(T)`,
`args = (−2·time)·freq·π`, kernel = cos(args) (side "real") or sin(args) ("imag"), shaped
(T, 1, F), then times the window and divided by its L2 ("density") or L1 ("spectrum") norm.
TensorFlow's float cos/sin are not glibc's, so values are compared within a rounding tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from initcli.errors import BadInputError, MissingDependencyError
from initcli.initializers.base import Family, InitializerKind, SpecLike, snippet_dtype
from initcli.rng.stateless import numpy_dtype
from initcli.stats.comparisons import Comparator, Exact, rounding_tolerance
from initcli.stats.theory import Theory, exact_theory

_SIDES = ("real", "imag")
_SCALINGS = (None, "density", "spectrum")
MAX_ELEMENTS = 1 << 26


def _window(window: Any, length: int, periodic: bool) -> np.ndarray | None:
    if window is None:
        return None
    if isinstance(window, str):
        try:
            import scipy.signal
        except ImportError:
            raise MissingDependencyError(
                f"STFT's window {window!r} comes from scipy.signal, which is not installed: pip install scipy"
            ) from None
        return np.asarray(scipy.signal.get_window(window, length, periodic), dtype=np.float64)
    return np.asarray(window, dtype=np.float64)


def stft_values(spec: SpecLike, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """The kernel as float64, from arguments rounded to the dtype as Keras computes them."""
    target = numpy_dtype(dtype)
    frames, _, bins = shape
    config = spec.config
    freq = (np.arange(bins, dtype=target) / np.asarray((bins - 1) * 2, target)).reshape(1, 1, bins)
    time = np.arange(frames, dtype=target).reshape(frames, 1, 1)
    pi = np.asarray(math.pi, target)
    args = ((np.asarray(-2, target) * time) * freq * pi).astype(np.float64)
    kernel = np.cos(args) if config["side"] == "real" else np.sin(args)
    window = _window(config["window"], frames, bool(config["periodic"]))
    if window is None:
        return kernel
    window = window.astype(target).astype(np.float64).reshape(frames, 1, 1)
    scaling = 1.0
    if config["scaling"] == "density":
        scaling = math.sqrt(float(np.sum(np.square(window))))
    elif config["scaling"] == "spectrum":
        scaling = float(np.sum(np.abs(window)))
    return kernel * window / scaling


class STFTFamily(Family):
    random = False
    kinds = (
        InitializerKind(
            class_name="STFT",
            aliases=("STFTInitializer",),
            defaults={"side": "real", "window": "hann", "scaling": "density", "periodic": False},
            formula="cos (real) or sin (imag) of −2π·t·k/(2(F−1)), t < T, k < F, shape (T, 1, F), "
            "times the window over its L2 (density) or L1 (spectrum) norm",
        ),
    )

    def validate(self, kind: InitializerKind, config: dict[str, Any]) -> dict[str, Any]:
        if config["side"] not in _SIDES:
            raise BadInputError(f"side should be 'real' or 'imag', not {config['side']}")
        if config["scaling"] not in _SCALINGS:
            raise BadInputError(
                f"Scaling is invalid, it must be `None`, 'density' or 'spectrum'. Received scaling={config['scaling']}"
            )
        window = config["window"]
        valid_list = isinstance(window, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in window
        )
        if not (window is None or isinstance(window, str) or valid_list):
            raise BadInputError(
                f"`window` must be a scipy window name, a list of numbers or None. Received: {window!r}"
            )
        if isinstance(window, str):
            try:
                _window(window, 1, False)  # an unknown name fails here, as in Keras's constructor
            except ValueError as error:
                raise BadInputError(f"Unknown STFT window {window!r}: {error}") from None
        if not isinstance(config["periodic"], bool):
            raise BadInputError(f"`periodic` must be true or false. Received: {config['periodic']!r}")
        return config

    def check_request(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> None:
        if len(shape) != 3 or shape[1] != 1:
            raise BadInputError(
                "STFT fills Conv1D kernels of shape (frame_length, 1, fft_bins): Keras builds (T, 1, F) "
                f"whatever the input channels. Received: shape={shape}."
            )
        if shape[2] < 2:
            raise BadInputError(f"STFT needs at least 2 frequency bins (it divides by 2·(F − 1)). Received: {shape}.")
        window = spec.config["window"]
        if isinstance(window, (list, tuple)) and len(window) != shape[0]:
            raise BadInputError(
                f"The shape of `window` must be equal to [frame_length]. Received: window of length {len(window)}, "
                f"frame_length {shape[0]}."
            )
        if math.prod(shape) > MAX_ELEMENTS:
            raise BadInputError(f"STFT of shape {shape}: initcli computes at most {MAX_ELEMENTS} elements.")

    def theory(self, spec: SpecLike, shape: tuple[int, ...], dtype: str) -> Theory:
        values = stft_values(spec, shape, dtype)
        return exact_theory(
            "stft",
            values.size,
            float(values.sum()),
            float(np.square(values).sum()),
            float(values.min()),
            float(values.max()),
            self.fans(spec, shape),
        )

    def chunks(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, seed: int, chunk_elements: int
    ) -> Iterator[np.ndarray]:
        yield stft_values(spec, shape, dtype).astype(numpy_dtype(dtype)).reshape(-1)

    def comparator(
        self, spec: SpecLike, shape: tuple[int, ...], dtype: str, theory: Theory, *, interval_alpha: float
    ) -> Comparator:
        expected = stft_values(spec, shape, dtype).reshape(-1)
        return Exact(lambda start, stop: expected[start:stop], 4 * rounding_tolerance(dtype, 1.0))

    def explain(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...]) -> list[str]:
        frames, _, bins = shape
        config = spec.config
        return [
            f"{frames} time steps × {bins} frequency bins (fft length {2 * (bins - 1)}), side {config['side']}, "
            f"window {config['window']!r} (periodic {config['periodic']}), scaling {config['scaling']}; "
            f"values in [{theory.low:.6g}, {theory.high:.6g}], mean {theory.mean:.6g}, std {theory.std:.6g}"
        ]

    def numpy_snippet(self, spec: SpecLike, theory: Theory, shape: tuple[int, ...], dtype: str) -> str:
        frames, _, bins = shape
        config = spec.config
        trig = "np.cos" if config["side"] == "real" else "np.sin"
        lines = [
            "  import numpy as np",
            f"  t = np.arange({frames}).reshape({frames}, 1, 1)",
            f"  k = np.arange({bins}).reshape(1, 1, {bins})",
            f"  w = {trig}(-2 * np.pi * t * k / {2 * (bins - 1)})",
        ]
        if config["window"] is not None:
            window = config["window"]
            source = (
                f"scipy.signal.get_window({window!r}, {frames}, {config['periodic']!r})"
                if isinstance(window, str)
                else f"np.asarray({list(window)!r})"
            )
            if isinstance(window, str):
                lines.insert(1, "  import scipy.signal")
            lines.append(f"  win = {source}.reshape({frames}, 1, 1)")
            norm = {"density": "np.sqrt(np.sum(win ** 2))", "spectrum": "np.sum(np.abs(win))", None: "1.0"}
            lines.append(f"  w = w * win / {norm[config['scaling']]}")
        lines.append(f"  w = w.astype({snippet_dtype(dtype)!r})")
        return "\n".join(lines)
