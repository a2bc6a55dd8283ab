"""Hugging Face export: ``Auto*`` registration and the reference architectures.

Importing ``nasplug.spaces.lvbert`` calls :func:`register_auto`, after which the usual
``transformers`` entry points work for a found architecture::

    model = space.build(arch, head="mlm")          # or supernet.extract(arch, head="mlm")
    model.save_pretrained("out/")                    # config.json holds the layer sequence
    AutoModelForMaskedLM.from_pretrained("out/")     # -> LVBertForMaskedLM, same logits
    pipeline("fill-mask", model="out/", tokenizer=tok)

Mappings: ``AutoConfig`` ("lvbert"), ``AutoModel``, ``AutoModelForMaskedLM``,
``AutoModelForPreTraining`` (the ELECTRA discriminator) and
``AutoModelForSequenceClassification``.
"""

from __future__ import annotations

from typing import Any

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
)

from nasplug.spaces.lvbert.config import LVBertConfig
from nasplug.spaces.lvbert.model import (
    LVBertForMaskedLM,
    LVBertForPreTraining,
    LVBertForSequenceClassification,
    LVBertModel,
)


def register_auto() -> None:
    """Register ``lvbert`` with ``AutoConfig`` and the ``AutoModel*`` classes (idempotent)."""
    AutoConfig.register("lvbert", LVBertConfig, exist_ok=True)
    AutoModel.register(LVBertConfig, LVBertModel, exist_ok=True)
    AutoModelForMaskedLM.register(LVBertConfig, LVBertForMaskedLM, exist_ok=True)
    AutoModelForPreTraining.register(LVBertConfig, LVBertForPreTraining, exist_ok=True)
    AutoModelForSequenceClassification.register(LVBertConfig, LVBertForSequenceClassification, exist_ok=True)


def lvbert_small(**kwargs: Any) -> LVBertForMaskedLM:
    """LV-BERT-small (searched sequence) with an MLM head and fresh weights."""
    return LVBertForMaskedLM(LVBertConfig.lvbert_small(**kwargs))


def electra_small_interleaved(**kwargs: Any) -> LVBertForMaskedLM:
    """The ELECTRA-small-shaped baseline (attention / feed-forward interleaved), MLM head."""
    return LVBertForMaskedLM(LVBertConfig.electra_small_interleaved(**kwargs))


register_auto()
