"""The elastic-BERT space: depth, hidden width, heads and FFN width per layer (DynaBERT,
AutoTinyBERT, HAT), built from nasplug.nn's blocks.

Public API: ``ElasticBertSpace`` (``space.py``), ``ElasticBertSupernet`` (``supernet.py``),
``ElasticBertConfig``, ``ElasticBertModel``, ``ElasticBertForMaskedLM`` (``modeling.py``:
torch and transformers only, copied into exported folders), ``arch_config`` / ``is_plain``
(``convert.py``: which archs are plain ``transformers.BertForMaskedLM``).
"""

from __future__ import annotations

from nasplug.spaces.elastic_bert.convert import arch_config, is_plain
from nasplug.spaces.elastic_bert.modeling import ElasticBertConfig, ElasticBertForMaskedLM, ElasticBertModel
from nasplug.spaces.elastic_bert.space import ElasticBertSpace
from nasplug.spaces.elastic_bert.supernet import ElasticBertSupernet

__all__ = ["ElasticBertConfig", "ElasticBertForMaskedLM", "ElasticBertModel", "ElasticBertSpace",
           "ElasticBertSupernet", "arch_config", "is_plain"]
