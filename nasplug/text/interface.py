"""The one interface the text tasks drive a model through, routed supernet or standalone.

The ``mlm`` and ``electra`` tasks call nothing else on a model than the methods below, the
same for a supernet routed through an arch (``supernet.using(arch)``), a model extracted from
it, and a model built fresh for retraining. A space whose models have these methods works
with the text tasks; ``nasplug run`` checks every model its stages will build against them
before anything is trained (one line naming every missing method).

Shapes: ``B`` rows of ``T`` tokens, hidden width ``H``, vocabulary ``V``; ``N`` masked
positions (``labels != -100``), in row-major ``(b, t)`` order.

A plain Hugging Face masked LM (``BertForMaskedLM``, ``RobertaForMaskedLM``, ...: a base
model under ``base_model_prefix`` and a ``cls`` or ``lm_head`` head) needs none of this: it
is seen through :class:`HFMaskedLM`, which adds ``encode`` and ``masked_logits``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

IGNORE_INDEX = -100

#: What each task calls (ELECTRA's generator, built by ``make_generator``, needs :data:`MLM`).
MLM = ("encode", "masked_logits")
ELECTRA = ("encode", "discriminator_logits", "make_generator")


@runtime_checkable
class TextModel(Protocol):
    """A text encoder with an MLM head: what the ``mlm`` task (and ELECTRA's generator) calls."""

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, T] (0/1 ``attention_mask`` [B, T]: 1 at real tokens; segment ids [B, T] or
        None) -> last hidden state [B, T, H]. A supernet runs its active arch."""
        ...

    def masked_logits(self, hidden: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Vocabulary logits [N, V] at the masked positions of ``labels`` [B, T] (every
        position, [B, T, V], when ``labels`` is None), from ``hidden`` [B, T, H]."""
        ...


@runtime_checkable
class ElectraModel(Protocol):
    """An ELECTRA discriminator: what the ``electra`` task calls besides :meth:`TextModel.encode`."""

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`TextModel.encode`."""
        ...

    def discriminator_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Replaced-token logit per position [B, T] from ``hidden`` [B, T, H]."""
        ...

    def make_generator(self, seed: int) -> TextModel:
        """The generator (a :class:`TextModel`, sharing this model's token embeddings),
        initialised from ``seed``, on this model's device. A supernet's generator is a
        supernet routed through the same archs."""
        ...


class HFMaskedLM:
    """A Hugging Face masked LM seen as a :class:`TextModel` (the model is not changed)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.head = _hf_head(model)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        base = getattr(self.model, self.model.base_model_prefix)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return base(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **extra).last_hidden_state

    def masked_logits(self, hidden: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.head(hidden if labels is None else hidden[labels != IGNORE_INDEX])


def _hf_head(model: Any) -> nn.Module | None:
    if not isinstance(getattr(model, "base_model_prefix", None), str) or not model.base_model_prefix:
        return None
    if not isinstance(getattr(model, model.base_model_prefix, None), nn.Module):
        return None
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    return None


def text_model(model: Any) -> Any:
    """``model`` itself when it has the interface's methods, else an :class:`HFMaskedLM` view
    of a Hugging Face masked LM, else ``model`` (whose missing method then fails by name)."""
    if callable(getattr(model, "encode", None)) or _hf_head(model) is None:
        return model
    return HFMaskedLM(model)


def missing_methods(model: Any, names: tuple[str, ...]) -> list[str]:
    """The names of ``names`` that ``model`` (seen through :func:`text_model`) lacks."""
    view = text_model(model)
    return [name for name in names if not callable(getattr(view, name, None))]
