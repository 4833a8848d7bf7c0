"""Static prediction through LSTM, GRU and SimpleRNN layers (an approximation, not exact).

Forward: a sampled pass in numpy (`simulate`, the layer's own equations with the file's weights) of
up to 512 input sequences (seed 0). The first recurrent layer's input is drawn Gaussian with the
predicted per-feature mean and variance, independent over samples and time steps (exact in
distribution for an i.i.d. Gaussian model input); a recurrent layer fed by another gets that
layer's sampled output, which keeps its correlation over time. A mean-field recursion (every
pre-activation z_t = x_t W + h_{t-1} U + b Gaussian, gates, states and steps independent) was
measured 2x low on a second stacked LSTM: its inputs are correlated over time, so the cell state
adds them coherently, which no per-step independence can see.

Backward: that mean-field recursion, through time (∂L/∂h_{t-1} gets U² times the gates' gradients,
∂L/∂c_{t-1} f² times ∂L/∂c_t), from h_0 = c_0 = 0:

- LSTM (gates i, f, c, o): c_t = f c_{t-1} + i g, h_t = o tanh(c_t), with c_t taken as Gaussian for tanh.
- GRU (z, r, h; `reset_after=True`, Keras 3's and tf.keras 2's default): h_t = z h_{t-1} + (1 - z) h̃_t.
- SimpleRNN: h_t = φ(z_t).

benchmarks/propagate_quality.py measures both against Keras's forward and backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from initcli.propagate import gaussian
from initcli.propagate.graph import activation_name

Vector = np.ndarray
RECURRENT = {"LSTM", "GRU", "SimpleRNN"}


class RecurrentUnsupported(Exception):
    """A recurrent configuration the approximation does not cover."""


def _phi(config: Mapping[str, Any], key: str, default: str) -> gaussian.Activation:
    name = activation_name(config.get(key, default)) or "linear"
    phi = gaussian.activation(name)
    if phi is None:
        raise RecurrentUnsupported(f"{key} {name!r}")
    return phi


def _moments(phi: gaussian.Activation, means: Vector, variances: Vector) -> tuple[Vector, Vector, Vector]:
    mean, second, slope_second = gaussian.moments_per_channel(phi, means, np.maximum(variances, 0.0))
    return mean, second, slope_second


SAMPLES = 512
MIN_SAMPLES = 16  # fewer: the layer is too large to sample, and the prediction stops there
FLOP_BUDGET = 2e9  # the sampled forward pass stays within about a second
MEMORY_BUDGET = 256e6


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def simulate(
    class_name: str,
    config: Mapping[str, Any],
    W: np.ndarray,
    U: np.ndarray,
    bias: np.ndarray,
    inputs: np.ndarray,
) -> np.ndarray:
    """The layer's output sequence (samples, steps, units) for the input sample (samples, steps, features)."""
    act = _phi(config, "activation", "tanh").function
    gate = _phi(config, "recurrent_activation", "sigmoid").function if class_name != "SimpleRNN" else act
    samples, steps, _ = inputs.shape
    units = U.shape[0]
    h = np.zeros((samples, units))
    c = np.zeros((samples, units))
    order = range(steps - 1, -1, -1) if config.get("go_backwards") else range(steps)
    outputs = np.empty((samples, steps, units))
    if class_name == "GRU":
        input_bias, recurrent_bias = (bias[0], bias[1]) if bias.ndim == 2 else (bias, np.zeros_like(bias))
    for index, t in enumerate(order):
        x = inputs[:, t, :] @ W
        if class_name == "SimpleRNN":
            h = act(x + h @ U + bias)
        elif class_name == "LSTM":
            z = x + h @ U + bias
            i, f = gate(z[:, :units]), gate(z[:, units : 2 * units])
            g, o = act(z[:, 2 * units : 3 * units]), gate(z[:, 3 * units :])
            c = f * c + i * g
            h = o * act(c)
        else:
            x = x + input_bias
            r_part = h @ U + recurrent_bias
            u = gate(x[:, :units] + r_part[:, :units])
            r = gate(x[:, units : 2 * units] + r_part[:, units : 2 * units])
            n = act(x[:, 2 * units :] + r * r_part[:, 2 * units :])
            h = u * h + (1.0 - u) * n
        outputs[:, index, :] = h
    return outputs


def sample_count(steps: int, features: int, units: int, gates: int) -> int:
    """How many input sequences the sampled forward pass can afford (at most SAMPLES): by its
    arithmetic (FLOP_BUDGET) and by the memory of its sequences (MEMORY_BUDGET bytes)."""
    per_sequence = 2.0 * steps * (features + units) * gates * units
    memory = 8.0 * steps * (features + units)
    return int(min(SAMPLES, FLOP_BUDGET // max(per_sequence, 1.0), MEMORY_BUDGET // memory))


def predict_recurrent(
    class_name: str,
    config: Mapping[str, Any],
    weights: Mapping[str, np.ndarray],
    shape: tuple[int | None, ...],
    means: Vector,
    variances: Vector,
    sequence: np.ndarray | None = None,
) -> tuple[Vector, Vector, tuple[int | None, ...], Callable[[Vector], list[Vector]], np.ndarray | None]:
    """The output's per-unit mean and variance, its shape, the backward map and the output sample.

    The forward moments are those of a sampled pass (`simulate`) of `sequence` (the sample a
    recurrent layer before returned, which keeps its correlation over time) or of Gaussian inputs
    with the given per-feature moments, independent over samples and time steps (seed 0). The
    backward map is the mean-field one.
    """
    if len(shape) != 2 or shape[0] is None:
        raise RecurrentUnsupported(f"input shape {shape} (a known number of time steps is needed)")
    for key in ("stateful", "return_state"):  # go_backwards: every step's input has the same statistics
        if config.get(key):
            raise RecurrentUnsupported(f"{key}=True")
    if class_name == "GRU" and not config.get("reset_after", True):
        raise RecurrentUnsupported("reset_after=False")
    if config.get("dropout") or config.get("recurrent_dropout"):
        raise RecurrentUnsupported("dropout inside the recurrent layer")
    kernel = weights.get("kernel")
    recurrent = weights.get("recurrent_kernel")
    if kernel is None or recurrent is None:
        raise RecurrentUnsupported("no kernel and recurrent_kernel among the saved weights")
    W = np.asarray(kernel, dtype=np.float64)
    U = np.asarray(recurrent, dtype=np.float64)
    units = U.shape[0]
    bias_value = weights.get("bias")
    bias = np.zeros((2, W.shape[1]) if class_name == "GRU" and config.get("reset_after", True) else W.shape[1])
    if bias_value is not None:
        bias = np.asarray(bias_value, dtype=np.float64)
    steps = int(shape[0])
    if means.size not in (1, W.shape[0]) or U.shape != (units, W.shape[1]) or W.shape[1] % units:
        raise RecurrentUnsupported(f"{means.size} input features for a kernel of shape {W.shape}")
    gates = {"LSTM": 4, "GRU": 3}.get(class_name, 1)
    count = sample_count(steps, W.shape[0], units, gates)
    if count < MIN_SAMPLES:
        raise RecurrentUnsupported(f"{steps} steps of {units} units: too large to sample within the budget")
    m_x = np.broadcast_to(means, (W.shape[0],)).astype(np.float64)
    v_x = np.broadcast_to(variances, (W.shape[0],)).astype(np.float64)
    x_mean, x_var = m_x @ W, v_x @ (W * W)  # the input's part of z, the same at every step
    W2, U2 = W * W, U * U
    act = _phi(config, "activation", "tanh")
    gate = _phi(config, "recurrent_activation", "sigmoid") if class_name != "SimpleRNN" else act
    m_h = np.zeros(units)
    s_h = np.zeros(units)  # E[h²]
    m_c = np.zeros(units)
    s_c = np.zeros(units)
    history: list[dict[str, Vector]] = []
    for _ in range(steps):
        v_h = np.maximum(s_h - m_h * m_h, 0.0)
        record: dict[str, Vector] = {"s_h_prev": s_h.copy(), "m_h_prev": m_h.copy(), "s_c_prev": s_c.copy()}
        if class_name == "SimpleRNN":
            z_mean = x_mean + m_h @ U + bias
            z_var = x_var + v_h @ U2
            m, s, d = _moments(act, z_mean, z_var)
            record["d"] = d
            m_h, s_h = m, s
        elif class_name == "LSTM":
            z_mean = x_mean + m_h @ U + bias
            z_var = x_var + v_h @ U2
            parts = [slice(k * units, (k + 1) * units) for k in range(4)]
            i_m, i_s, i_d = _moments(gate, z_mean[parts[0]], z_var[parts[0]])
            f_m, f_s, f_d = _moments(gate, z_mean[parts[1]], z_var[parts[1]])
            g_m, g_s, g_d = _moments(act, z_mean[parts[2]], z_var[parts[2]])
            o_m, o_s, o_d = _moments(gate, z_mean[parts[3]], z_var[parts[3]])
            new_m_c = f_m * m_c + i_m * g_m
            new_s_c = f_s * s_c + 2.0 * f_m * m_c * i_m * g_m + i_s * g_s
            t_m, t_s, t_d = _moments(act, new_m_c, new_s_c - new_m_c * new_m_c)
            record.update(i_s=i_s, i_d=i_d, f_s=f_s, f_d=f_d, g_s=g_s, g_d=g_d, o_s=o_s, o_d=o_d, t_s=t_s, t_d=t_d)
            m_c, s_c = new_m_c, new_s_c
            m_h, s_h = o_m * t_m, o_s * t_s
        else:  # GRU, gates z, r, h
            input_bias, recurrent_bias = (bias[0], bias[1]) if bias.ndim == 2 else (bias, np.zeros_like(bias))
            zr = slice(0, 2 * units)
            cand = slice(2 * units, 3 * units)
            rec_mean = m_h @ U + recurrent_bias
            rec_var = v_h @ U2
            zr_mean = x_mean[zr] + input_bias[zr] + rec_mean[zr]
            zr_var = x_var[zr] + rec_var[zr]
            u_m, u_s, u_d = _moments(gate, zr_mean[:units], zr_var[:units])
            r_m, r_s, r_d = _moments(gate, zr_mean[units:], zr_var[units:])
            a_mean, a_second = rec_mean[cand], rec_var[cand] + rec_mean[cand] ** 2
            c_mean = x_mean[cand] + input_bias[cand] + r_m * a_mean
            c_var = x_var[cand] + r_s * a_second - (r_m * a_mean) ** 2
            n_m, n_s, n_d = _moments(act, c_mean, c_var)
            new_m_h = u_m * m_h + (1.0 - u_m) * n_m
            cross = u_m - u_s  # E[z(1 - z)]
            new_s_h = u_s * s_h + 2.0 * cross * m_h * n_m + (1.0 - 2.0 * u_m + u_s) * n_s
            record.update(u_m=u_m, n_m=n_m, u_s=u_s, u_d=u_d, r_s=r_s, r_d=r_d, n_s=n_s, n_d=n_d, a_second=a_second)
            m_h, s_h = new_m_h, new_s_h
        history.append(record)
    sequences = bool(config.get("return_sequences"))
    if sequence is None or sequence.shape[1:] != (steps, W.shape[0]):
        noise = np.random.default_rng(0).standard_normal((count, steps, W.shape[0]))
        sequence = m_x + np.sqrt(np.maximum(v_x, 0.0)) * noise
    with np.errstate(all="ignore"):
        outputs = simulate(class_name, config, W, U, bias, sequence)
    returned = outputs if sequences else outputs[:, -1:, :]
    flat = returned.reshape(-1, units)
    mean, variance = flat.mean(axis=0), flat.var(axis=0)
    out_shape: tuple[int | None, ...] = (steps, units) if sequences else (units,)

    def backward(g: Vector) -> list[Vector]:
        """Per input feature E[(∂L/∂x)²], averaged over the steps, for E[(∂L/∂h)²] = g per unit."""
        d_h_next = np.zeros(units)  # from step t+1 through U
        d_c_next = np.zeros(units)
        f_next = np.zeros(units)
        d_x = np.zeros(W.shape[0])
        for t in range(steps - 1, -1, -1):
            rec = history[t]
            d_h = d_h_next + (g if sequences or t == steps - 1 else 0.0)
            if class_name == "SimpleRNN":
                d_z = rec["d"] * d_h
                d_h_next = U2 @ d_z
            elif class_name == "LSTM":
                d_c = rec["o_s"] * rec["t_d"] * d_h + f_next * d_c_next
                d_z = np.concatenate(
                    [
                        rec["g_s"] * rec["i_d"] * d_c,
                        rec["s_c_prev"] * rec["f_d"] * d_c,
                        rec["i_s"] * rec["g_d"] * d_c,
                        rec["t_s"] * rec["o_d"] * d_h,
                    ]
                )
                d_h_next = U2 @ d_z
                d_c_next, f_next = d_c, rec["f_s"]
            else:
                d_n = (1.0 - 2.0 * rec["u_m"] + rec["u_s"]) * rec["n_d"] * d_h
                gap = rec["s_h_prev"] + rec["n_s"] - 2.0 * rec["m_h_prev"] * rec["n_m"]  # E[(h_{t-1} - h̃)²]
                d_u = np.maximum(gap, 0.0) * rec["u_d"] * d_h
                d_r = rec["a_second"] * rec["r_d"] * d_n
                d_z = np.concatenate([d_u, d_r, d_n])
                d_h_next = (
                    rec["u_s"] * d_h + U2[:, : 2 * units] @ d_z[: 2 * units] + U2[:, 2 * units :] @ (rec["r_s"] * d_n)
                )
            d_x += W2 @ d_z
        return [d_x / steps]

    return mean, variance, out_shape, backward, outputs if sequences else None
