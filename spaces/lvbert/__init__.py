"""The LV-BERT reference space (Yu et al., Findings of ACL 2021): layers, supernet, HF export.

Public API (stable names other modules build on):

Space and codecs (``space.py``, ``codec.py``, ``sizes.py``)
    ``LVBertSpace(size="small", slots=24, allowed=None, counts=None, max_params=None,
    max_flops=None, seq_len=128, vocab_size=None, max_positions=None, type_vocab_size=None,
    hidden=None, heads=None, ffn=None, embedding=None, generator_hidden=None)``; choice keys
    ``L00..L23``, values ``conv`` / ``attn`` / ``ffn``; ``parse``/``format`` (compact letters),
    ``metrics(arch) -> {"params", "flops"}`` (analytic), ``violation``, ``sample`` (exactly
    uniform over valid archs), ``num_valid()``, ``build_supernet(**kw)``,
    ``build(arch, head=None, seed=None, **config_kw)``.
    ``arch_from_string``, ``arch_to_string``, ``arch_from_ints``, ``arch_to_ints``,
    ``arch_from_layers``, ``arch_to_layers``, ``arch_from_text``, ``interleaved(slots)``,
    ``LVBERT_SMALL_SEARCHED`` (``"CCAFFACFFACCAFCFACFCAAFA"``), ``LAYER_TYPES``, ``SIZES``,
    ``LVBertDims`` (analytic ``params`` / ``flops`` per layer sequence).

Models (``config.py``, ``layers.py``, ``embeddings.py``, ``heads.py``, ``model.py``, ``hf.py``)
    ``LVBertConfig`` (``from_size``, ``lvbert_small``, ``electra_small_interleaved``,
    ``generator_config``, ``with_layers``), ``LVBertModel``, ``LVBertForMaskedLM`` (logits only at
    masked positions when labels are given), ``LVBertForPreTraining`` (ELECTRA
    discriminator), ``LVBertForSequenceClassification``; registered with ``AutoConfig`` /
    ``AutoModel*`` on import. ``layer_index(param_name, num_slots)`` for layer-wise LR decay.

Supernet (``supernet.py``)
    ``LVBertSupernet(config, num_slots=None, kinds=..., embeddings=None, mlm_head=True,
    discriminator_head=True, num_labels=0, seed=None)``: ``forward(input_ids,
    attention_mask=None, token_type_ids=None) -> [B, T, H]``, ``embed``, ``run_layer(i, kind,
    hidden, attention_mask)``, ``slots[i][kind]``, ``mlm_logits(hidden, labels)``,
    ``discriminator_logits(hidden)``, ``classify(hidden)``, ``extract(arch, head=None)``,
    ``generator(seed=None)`` (ELECTRA generator sharing the embeddings).

Importing this package imports torch and transformers (for the Auto registration).
"""

from __future__ import annotations

from nasplug.spaces.lvbert.codec import (
    LAYER_TYPES,
    LVBERT_SMALL_SEARCHED,
    LVBERT_SMALL_SEARCHED_INTS,
    arch_from_ints,
    arch_from_layers,
    arch_from_string,
    arch_from_text,
    arch_to_ints,
    arch_to_layers,
    arch_to_string,
    interleaved,
    slot_key,
)
from nasplug.spaces.lvbert.config import LVBertConfig, generator_config
from nasplug.spaces.lvbert.embeddings import LVBertEmbeddings
from nasplug.spaces.lvbert.heads import IGNORE_INDEX, layer_index, mlm_loss, num_layer_groups
from nasplug.spaces.lvbert.hf import register_auto
from nasplug.spaces.lvbert.layers import (
    LVBertDynamicConv,
    LVBertFeedForward,
    LVBertSelfAttention,
    make_layer,
    padding_mask,
)
from nasplug.spaces.lvbert.model import (
    LVBertForMaskedLM,
    LVBertForPreTraining,
    LVBertForSequenceClassification,
    LVBertModel,
    LVBertPreTrainedModel,
)
from nasplug.spaces.lvbert.sizes import SIZES, LVBertDims
from nasplug.spaces.lvbert.space import LVBertSpace
from nasplug.spaces.lvbert.supernet import LVBertSupernet

__all__ = [
    "IGNORE_INDEX",
    "LAYER_TYPES",
    "LVBERT_SMALL_SEARCHED",
    "LVBERT_SMALL_SEARCHED_INTS",
    "SIZES",
    "LVBertConfig",
    "LVBertDims",
    "LVBertDynamicConv",
    "LVBertEmbeddings",
    "LVBertFeedForward",
    "LVBertForMaskedLM",
    "LVBertForPreTraining",
    "LVBertForSequenceClassification",
    "LVBertModel",
    "LVBertPreTrainedModel",
    "LVBertSelfAttention",
    "LVBertSpace",
    "LVBertSupernet",
    "arch_from_ints",
    "arch_from_layers",
    "arch_from_string",
    "arch_from_text",
    "arch_to_ints",
    "arch_to_layers",
    "arch_to_string",
    "generator_config",
    "interleaved",
    "layer_index",
    "make_layer",
    "mlm_loss",
    "num_layer_groups",
    "padding_mask",
    "register_auto",
    "slot_key",
]
