"""Which standard Keras class a sublayer group is, from the weights file's own structure.

A custom layer's config (`config.json`) holds only what its `get_config` returns: the standard
sublayers it builds in `__init__` (a MultiHeadAttention, a Sequential of Dense, LayerNormalization,
Embedding ...) are not in it. The weights file still shows them: each sublayer is a group named by
the attribute that holds it (`att`, `ffn`, `layernorm1`), whose `vars` group carries the layer's
name in Keras 3 (`multi_head_attention`, `sequential`, `layer_normalization_1`) and whose datasets
have shapes. Where that structure and those shapes identify a class unambiguously, `infer` returns
a config entry for the class with its default config, marked `inferred`; the caller names the
variables as that class does and shows Keras's defaults, never as the file's configuration.
Otherwise it says why the names stay indices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from initcli.keras.layers import ATTENTION_SUBLAYERS

# Layer names Keras 3 generates from a class (`naming.auto_name`: snake case and a counter).
_AUTO_NAMES = {
    "dense": "Dense",
    "einsum_dense": "EinsumDense",
    "embedding": "Embedding",
    "layer_normalization": "LayerNormalization",
    "batch_normalization": "BatchNormalization",
    "group_normalization": "GroupNormalization",
    "multi_head_attention": "MultiHeadAttention",
    "sequential": "Sequential",
    "lstm": "LSTM",
    "gru": "GRU",
    "simple_rnn": "SimpleRNN",
}
# Attribute names hand-written layers commonly give these classes (`self.token_emb`, `self.layernorm1`).
_ATTRIBUTE_HINTS = (
    (re.compile(r"(^|_)(emb|embed|embeds|embedding|embeddings)(_|\d|$)|_emb(ed)?(ding)?s?\d*$"), "Embedding"),
    (re.compile(r"(^|_)(layer_?norm|ln)(_?\d+)?$"), "LayerNormalization"),
    (re.compile(r"(^|_)(batch_?norm|bn)(_?\d+)?$"), "BatchNormalization"),
)
STRUCTURE_NOTE = "inferred from the file's structure"


@dataclass(frozen=True)
class Inference:
    """A sublayer's class and the default config that fits the file's variables, or why none is certain."""

    entry: Mapping[str, Any] | None
    reason: str


def _hinted_class(names: Sequence[str | None]) -> tuple[str | None, str]:
    """The class a layer name or attribute name points to, and which name said so."""
    for name in names:
        if name is None:
            continue
        base = re.sub(r"_\d+$", "", name)
        if base in _AUTO_NAMES:
            return _AUTO_NAMES[base], f"name {name!r}"
    for name in names:
        if name is None:
            continue
        for pattern, class_name in _ATTRIBUTE_HINTS:
            if pattern.search(name.lower()):
                return class_name, f"name {name!r}"
    return None, ""


def _entry(class_name: str, config: Mapping[str, Any], why: str) -> Inference:
    entry = {"class_name": class_name, "config": dict(config), "inferred": True, "inferred_from": why}
    return Inference(entry, why)


def infer(
    key: str,
    layer_name: str | None,
    shapes: Sequence[tuple[int, ...]],
    sublayers: Mapping[str, Sequence[tuple[int, ...]] | None],
) -> Inference:
    """The standard class of the sublayer group `key`, from its structure.

    Args:
        key: the group's name (the attribute of the parent layer that holds the sublayer).
        layer_name: the name Keras 3 wrote on its `vars` group (None for tf_keras).
        shapes: the shapes of the group's own variables, in creation order.
        sublayers: the group's child layer groups: name -> shapes of their own variables (None for
            a child that holds layers of its own, `layers`).
    """
    names = (layer_name, key)
    attention = {name.removeprefix("_") for name in sublayers} & set(ATTENTION_SUBLAYERS)
    if attention:
        return _attention(sublayers, shapes, attention)
    if "cell" in sublayers:
        return _recurrent(sublayers["cell"], shapes)
    if "layers" in sublayers:
        class_name, said = _hinted_class(names)
        if class_name == "Sequential" and not shapes:
            return _entry("Sequential", {}, f"a layers group named {said}")
        return Inference(None, f"a model of layers whose class its name {key!r} does not tell (Sequential?)")
    if any(child for child in sublayers.values()):
        return Inference(None, f"a layer with sublayers {', '.join(sorted(sublayers))} initcli does not recognize")
    if not shapes:
        return Inference(None, "no variables")
    class_name, said = _hinted_class(names)
    if class_name is None:
        named = f"names {key!r}, {layer_name!r}"
        return Inference(None, f"variable shapes {_shown(shapes)} and {named}: no standard class fits for sure")
    rule = _LEAF_RULES.get(class_name)
    config = rule(shapes) if rule else None
    if config is None:
        why = _why_not(class_name, shapes) or "do not fit one"
        return Inference(None, f"the {said} suggests {class_name}, but its variables {_shown(shapes)} {why}")
    return _entry(class_name, config, f"the {said} and variable shapes {_shown(shapes)}")


def _shown(shapes: Sequence[tuple[int, ...]]) -> str:
    return ", ".join("(" + ", ".join(str(d) for d in shape) + ")" for shape in shapes)


def _attention(
    sublayers: Mapping[str, Sequence[tuple[int, ...]] | None], shapes: Sequence[tuple[int, ...]], found: set[str]
) -> Inference:
    if found != set(ATTENTION_SUBLAYERS) or shapes:
        return Inference(None, f"attention-like sublayers {', '.join(sorted(found))} but not MultiHeadAttention's four")
    by_name = {name.removeprefix("_"): value for name, value in sublayers.items()}
    counts = set()
    for name in ATTENTION_SUBLAYERS:
        variables = by_name[name] or []
        if not variables or len(variables) > 2:
            return Inference(None, f"{name} holds {len(variables)} variables, not a kernel and an optional bias")
        kernel = variables[0]
        if len(kernel) < 3 or (len(variables) == 2 and len(variables[1]) < 1):
            return Inference(None, f"{name}'s kernel {_shown([kernel])} is not an attention projection")
        counts.add(len(variables))
    if len(counts) != 1:
        return Inference(None, "some projections have a bias and others not")
    query = by_name["query_dense"] or []
    key = by_name["key_dense"] or []
    if query[0][1:] != key[0][1:]:
        return Inference(None, "query and key kernels disagree on heads and key_dim")
    return _entry(
        "MultiHeadAttention",
        {"use_bias": counts == {2}},
        "query_dense, key_dense, value_dense and output_dense sublayers (MultiHeadAttention's EinsumDense)",
    )


def _recurrent(cell: Sequence[tuple[int, ...]] | None, shapes: Sequence[tuple[int, ...]]) -> Inference:
    variables = list(cell or [])
    if shapes or len(variables) not in (2, 3) or any(len(s) != 2 for s in variables[:2]):
        return Inference(None, "a cell whose variables are not kernel, recurrent_kernel and bias")
    (_inputs, columns), (units, recurrent_columns) = variables[0], variables[1]
    if columns != recurrent_columns or units == 0 or columns % units:
        return Inference(None, f"cell kernels {_shown(variables[:2])} do not share gate columns")
    gates = columns // units
    names = {1: "SimpleRNN", 3: "GRU", 4: "LSTM"}
    if gates not in names:
        return Inference(None, f"{gates} gates: not SimpleRNN, GRU or LSTM")
    config: dict[str, Any] = {"use_bias": len(variables) == 3}
    if gates == 4 and len(variables) == 3:
        config["unit_forget_bias"] = True  # LSTM's default: the forget gate's bias quarter starts at ones
    if len(variables) == 3:
        bias = variables[2]
        if gates == 3 and bias in ((2, columns), (columns,)):
            config["reset_after"] = bias == (2, columns)
        elif bias != (columns,):
            return Inference(None, f"cell bias {_shown([bias])} does not fit {names[gates]}")
    why = f"a cell with kernels {_shown(variables[:2])} ({gates} gate(s) of {units} units)"
    return _entry(names[gates], config, why)


def _same_vectors(shapes: Sequence[tuple[int, ...]]) -> bool:
    return all(shape == shapes[0] for shape in shapes)


def _dense(shapes: Sequence[tuple[int, ...]]) -> dict[str, Any] | None:
    if len(shapes[0]) != 2 or len(shapes) > 2:
        return None
    if len(shapes) == 2 and shapes[1] != (shapes[0][1],):
        return None
    return {"use_bias": len(shapes) == 2}


def _einsum(shapes: Sequence[tuple[int, ...]]) -> dict[str, Any] | None:
    # Its fans come from its equation, which only its own config holds: a 2-D kernel's are the plain ones.
    if len(shapes[0]) != 2 or len(shapes) > 2:
        return None
    if len(shapes) == 2 and shapes[1] != (shapes[0][1],):
        return None
    return {"equation": "...a,ab->...b", "bias_axes": "b" if len(shapes) == 2 else None}


def _embedding(shapes: Sequence[tuple[int, ...]]) -> dict[str, Any] | None:
    return {} if len(shapes) == 1 and len(shapes[0]) == 2 else None


def _layer_normalization(shapes: Sequence[tuple[int, ...]]) -> dict[str, Any] | None:
    # One vector could be gamma (center=False) or beta (scale=False): not certain.
    return {"scale": True, "center": True} if len(shapes) == 2 and _same_vectors(shapes) else None


def _batch_normalization(shapes: Sequence[tuple[int, ...]]) -> dict[str, Any] | None:
    if not _same_vectors(shapes) or len(shapes[0]) != 1:
        return None
    if len(shapes) == 4:
        return {"scale": True, "center": True}
    if len(shapes) == 2:
        return {"scale": False, "center": False}  # only the moving statistics
    return None  # three: gamma or beta is missing, which one the file does not say


def _why_not(class_name: str, shapes: Sequence[tuple[int, ...]]) -> str | None:
    """Why variables that almost fit a class stay by index (the ambiguous cases)."""
    if class_name in ("LayerNormalization", "GroupNormalization") and len(shapes) == 1:
        return "are one vector: gamma (center=False) or beta (scale=False), the file does not say"
    if class_name == "BatchNormalization" and len(shapes) == 3 and _same_vectors(shapes):
        return "are three vectors: gamma or beta is missing (scale=False or center=False), the file does not say which"
    if class_name == "EinsumDense" and shapes and len(shapes[0]) > 2:
        return (
            f"hold a rank-{len(shapes[0])} kernel: its names and fans follow the equation, which only its config holds"
        )
    return None


_LEAF_RULES = {
    "Dense": _dense,
    "EinsumDense": _einsum,
    "Embedding": _embedding,
    "LayerNormalization": _layer_normalization,
    "GroupNormalization": _layer_normalization,
    "BatchNormalization": _batch_normalization,
}
