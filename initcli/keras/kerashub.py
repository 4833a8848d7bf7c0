"""KerasHub backbones' initializers, as KerasHub's own code passes them (keras-hub 0.32 source).

A preset's `config.json` holds a backbone's constructor arguments, not its layers' initializers:
KerasHub fixes those in the backbone's `__init__`. This table records, per backbone class and per
kind of layer, the initializer that code passes (file and class cited on each entry), so a preset's
rows get their configured initializer, theory and verdict. A backbone not listed keeps "fans and
statistics only".

Kinds of layer, as a preset's weights file places them (`layers/<group>/.../<sublayer>/vars/<i>`):
- the token embedding (`reversible_embedding`): `keras.layers.ReversibleEmbedding`, whose
  `reverse_embeddings` (untied) are drawn by the same `embeddings_initializer`
  (keras/src/layers/core/reversible_embedding.py, `build`);
- `position_embedding` (keras_hub/src/layers/modeling/position_embedding.py, `initializer`);
- a top-level `embedding` (BertBackbone's segment embedding);
- dense and attention kernels inside the transformer blocks (`TransformerEncoder`/`TransformerDecoder`
  pass their `kernel_initializer` to every Dense and MultiHeadAttention, `bias_initializer`
  default "zeros": keras_hub/src/layers/modeling/transformer_encoder.py and transformer_decoder.py);
  a top-level Dense (BertBackbone's `pooled_dense`);
- LayerNormalization (Keras's defaults, ones and zeros: no backbone passes others), and Gemma's
  `RMSNormalization` scale (`add_weight(initializer="zeros")`,
  keras_hub/src/models/gemma/rms_normalization.py).

Tested against the layers' own initializers in keras-hub-built presets (tests/test_kerashub_preset.py).

May import: `initcli.keras.layers` (EinsumDense's fan axes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from initcli.keras.layers import ATTENTION_SUBLAYERS, attention_fan_axes, einsum_fan_axes

Config = Mapping[str, Any]

ZEROS: Config = {"class_name": "Zeros", "config": {}}
ONES: Config = {"class_name": "Ones", "config": {}}
GLOROT_UNIFORM: Config = {"class_name": "GlorotUniform", "config": {"seed": None}}


def _truncated_normal(stddev: float) -> Config:
    return {"class_name": "TruncatedNormal", "config": {"mean": 0.0, "stddev": stddev, "seed": None}}


def _random_normal(stddev: float) -> Config:
    return {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": stddev, "seed": None}}


@dataclass(frozen=True)
class BackboneInitializers:
    """What one backbone class passes: `embeddings` (token), `position`, `segment` (a top-level
    Embedding), `kernels` (the transformer blocks' Dense/EinsumDense kernels), `dense` (a top-level
    Dense's kernel); None: the backbone has no such layer."""

    source: str
    embeddings: Config
    kernels: Config
    position: Config | None = None
    segment: Config | None = None
    dense: Config | None = None


BACKBONES: dict[str, BackboneInitializers] = {
    # keras_hub/src/models/bert/bert_backbone.py, BertBackbone.__init__: `bert_kernel_initializer()`,
    # TruncatedNormal(stddev=0.02), for the token, position and segment embeddings, every
    # TransformerEncoder's kernel_initializer and pooled_dense.
    "BertBackbone": BackboneInitializers(
        source="keras_hub/src/models/bert/bert_backbone.py (BertBackbone)",
        embeddings=_truncated_normal(0.02),
        kernels=_truncated_normal(0.02),
        position=_truncated_normal(0.02),
        segment=_truncated_normal(0.02),
        dense=_truncated_normal(0.02),
    ),
    # keras_hub/src/models/gpt2/gpt2_backbone.py, GPT2Backbone.__init__: `_gpt_2_kernel_initializer`,
    # RandomNormal: stddev 0.01 for the token embedding, 0.02 for the position embedding and every
    # TransformerDecoder's kernel_initializer.
    "GPT2Backbone": BackboneInitializers(
        source="keras_hub/src/models/gpt2/gpt2_backbone.py (GPT2Backbone)",
        embeddings=_random_normal(0.01),
        kernels=_random_normal(0.02),
        position=_random_normal(0.02),
    ),
    # keras_hub/src/models/gemma/gemma_backbone.py, GemmaBackbone.__init__: the token embedding's
    # VarianceScaling(scale=1.0, mode="fan_in", distribution="untruncated_normal"); GemmaDecoderBlock
    # (gemma_decoder_block.py) builds its EinsumDense ffw layers with Keras's default kernel
    # initializer and CachedGemmaAttention (gemma_attention.py) with kernel_initializer="glorot_uniform".
    "GemmaBackbone": BackboneInitializers(
        source="keras_hub/src/models/gemma/gemma_backbone.py (GemmaBackbone)",
        embeddings={
            "class_name": "VarianceScaling",
            "config": {"scale": 1.0, "mode": "fan_in", "distribution": "untruncated_normal", "seed": None},
        },
        kernels=GLOROT_UNIFORM,
    ),
}

_LOCATION = re.compile(r"^/?layers/(?P<groups>.+)/vars/(?P<index>\d+)$")
_REPEAT = re.compile(r"_\d+$")
# EinsumDense equations of Gemma's layers, by sublayer: keras_hub/src/models/gemma/gemma_attention.py
# (CachedGemmaAttention.build) and gemma_decoder_block.py (GemmaDecoderBlock.__init__). From Keras
# 3.15 EinsumDense draws a VarianceScaling kernel with the equation's fan axes (readers/resolution.py).
_GEMMA_EQUATIONS = {
    "query_dense": "btd,ndh->btnh",
    "key_dense": "bsd,kdh->bskh",
    "value_dense": "bsd,kdh->bskh",
    "output_dense": "btnh,nhd->btd",
    "gating_ffw": "btd,df->btf",
    "gating_ffw_2": "btd,df->btf",
    "ffw_linear": "btf,fd->btd",
}
_GEMMA_FFW = ("gating_ffw", "gating_ffw_2", "ffw_linear")


@dataclass(frozen=True)
class Slot:
    """A preset weight's initializer: the configured one, the argument that takes it, the weight's
    name, its layer's class, and an EinsumDense kernel's fan axes (as Keras 3.15+ counts them)."""

    initializer: Config
    argument: str
    weight: str
    layer_class: str
    fan_axes: tuple[list[int], list[int]] | None = None


def slot(backbone: str, location: str | None, rank: int = 2) -> Slot | None:
    """The initializer KerasHub's `backbone` gives the weight at `location` in its weights file; None
    when the backbone or the kind of layer is not in the table. `rank`: the weight's rank."""
    known = BACKBONES.get(backbone)
    found = _LOCATION.match(location or "")
    if known is None or found is None:
        return None
    groups = [_REPEAT.sub("", group.lstrip("_")) for group in found["groups"].split("/")]
    index, leaf, top = int(found["index"]), groups[-1], len(groups) == 1
    if leaf == "reversible_embedding" and index <= 1:
        return Slot(
            known.embeddings, "embeddings_initializer", ("embeddings", "reverse_embeddings")[index], "Embedding"
        )
    if leaf == "position_embedding" and index == 0 and known.position is not None:
        return Slot(known.position, "initializer", "embeddings", "PositionEmbedding")
    if top and leaf == "embedding" and index == 0 and known.segment is not None:
        return Slot(known.segment, "embeddings_initializer", "embeddings", "Embedding")
    if leaf == "layer_normalization" or leaf.endswith("layer_norm"):
        if index <= 1:
            return Slot(
                (ONES, ZEROS)[index],
                ("gamma_initializer", "beta_initializer")[index],
                ("gamma", "beta")[index],
                "LayerNormalization",
            )
        return None
    if leaf == "rms_normalization" or (backbone == "GemmaBackbone" and leaf.endswith("_norm")):
        return Slot(ZEROS, "initializer", "scale", "RMSNormalization") if index == 0 else None
    if leaf.endswith("dense") or leaf in _GEMMA_FFW:
        kernel = known.dense if top else known.kernels
        if kernel is None or index > 1:
            return None
        einsum = leaf in _GEMMA_FFW or leaf in ATTENTION_SUBLAYERS
        layer_class = "EinsumDense" if einsum else "Dense"
        if index == 0:
            fan_axes = None
            if backbone == "GemmaBackbone" and leaf in _GEMMA_EQUATIONS:
                fan_axes = einsum_fan_axes(_GEMMA_EQUATIONS[leaf])
            elif leaf in ATTENTION_SUBLAYERS:  # Keras MultiHeadAttention's (TransformerEncoder/Decoder)
                fan_axes = attention_fan_axes(leaf, rank)
            return Slot(kernel, "kernel_initializer", "kernel", layer_class, fan_axes)
        return Slot(ZEROS, "bias_initializer", "bias", layer_class)
    return None
