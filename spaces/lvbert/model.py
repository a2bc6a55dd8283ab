"""Standalone LV-BERT models as Hugging Face ``PreTrainedModel`` subclasses.

* :class:`LVBertModel`: embeddings (+ E -> H projection) and the sub-layers of
  ``config.layers``; returns ``BaseModelOutput`` (``last_hidden_state`` [B, T, H]).
* :class:`LVBertForMaskedLM`: + MLM head tied to the word embeddings. **With labels, ``logits``
  holds only the masked positions** (``labels != -100``), shape [N_masked, V] in row-major
  (batch, position) order, and ``loss`` is their mean cross-entropy. Without labels (e.g. the
  fill-mask pipeline) ``logits`` is the usual [B, T, V].
* :class:`LVBertForPreTraining`: ELECTRA discriminator, per-token "replaced" logit [B, T].
* :class:`LVBertForSequenceClassification`: GLUE head on [CLS]; regression when
  ``num_labels == 1``.

Parameter names: ``lvbert.embeddings.*``, ``lvbert.embeddings_project.*``,
``lvbert.layers.{i}.*`` and the heads ``mlm_head.*`` / ``discriminator_head.*`` /
``classifier.*`` -- the supernet uses the same names (``slots.{i}.{kind}`` for the layers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput
from transformers.utils import ModelOutput

from nasplug.spaces.lvbert.config import LVBertConfig
from nasplug.spaces.lvbert.embeddings import LVBertEmbeddings
from nasplug.spaces.lvbert.heads import (
    LVBertClassificationHead,
    LVBertDiscriminatorHead,
    LVBertMLMHead,
    discriminator_loss,
    mlm_loss,
    sequence_loss,
)
from nasplug.spaces.lvbert.layers import glorot, init_module, make_layer, padding_mask


class LVBertPreTrainedModel(PreTrainedModel):
    """Shared plumbing: config class, weight init (official TF scheme), base model prefix."""

    config: LVBertConfig
    config_class = LVBertConfig
    base_model_prefix = "lvbert"
    main_input_name = "input_ids"
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        init_module(module, self.config.initializer_range)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, T] -> last hidden state [B, T, H] (nasplug's text-model interface)."""
        base = getattr(self, self.base_model_prefix, self)
        return base(input_ids, attention_mask, token_type_ids, return_dict=True).last_hidden_state

    def compile_parts(self) -> None:
        """``torch.compile`` the encoder and each head in place (the training loop's
        ``compile: true``)."""
        for name in (self.base_model_prefix, "mlm_head", "discriminator_head", "classifier"):
            part = getattr(self, name, None)
            if part is not None:
                part.compile()


class LVBertModel(LVBertPreTrainedModel):
    """The encoder: ``embeddings`` -> ``embeddings_project`` (if E != H) -> ``layers``.

    Args:
        config: Holds the layer sequence (``config.layers``) and the widths.
        embeddings: An existing :class:`LVBertEmbeddings` to share (ELECTRA's generator
            shares the discriminator's); it is not re-initialised.
    """

    def __init__(self, config: LVBertConfig, embeddings: LVBertEmbeddings | None = None) -> None:
        super().__init__(config)
        if embeddings is not None:
            for module in embeddings.modules():  # already initialised by its owner: keep it
                module._is_hf_initialized = True
        self.embeddings = embeddings if embeddings is not None else LVBertEmbeddings(config)
        self.embeddings_project = (  # official: tf.layers.dense without initializer, so Glorot
            glorot(nn.Linear(config.embedding_size, config.hidden_size))
            if config.embedding_size != config.hidden_size else None
        )
        self.layers = nn.ModuleList(make_layer(kind, config) for kind in config.layers)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, T] -> first hidden state [B, T, H] (embeddings, then the projection)."""
        x = self.embeddings(input_ids, token_type_ids)
        return x if self.embeddings_project is None else self.embeddings_project(x)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput | tuple[torch.Tensor, ...]:
        """ids [B, T] (+ 0/1 ``attention_mask`` [B, T]) -> ``last_hidden_state`` [B, T, H]."""
        mask = padding_mask(attention_mask)
        hidden = self.embed(input_ids, token_type_ids)
        states = [hidden] if output_hidden_states else None
        for layer in self.layers:
            hidden = layer(hidden, mask)
            if states is not None:
                states.append(hidden)
        out = BaseModelOutput(last_hidden_state=hidden, hidden_states=tuple(states) if states else None)
        return out if _return_dict(self.config, return_dict) else out.to_tuple()


class LVBertForMaskedLM(LVBertPreTrainedModel):
    """LV-BERT with the MLM head (the ELECTRA generator, or BERT-style MLM pre-training)."""

    _tied_weights_keys = {"mlm_head.decoder.weight": "lvbert.embeddings.word_embeddings.weight"}

    def __init__(self, config: LVBertConfig, embeddings: LVBertEmbeddings | None = None) -> None:
        super().__init__(config)
        self.lvbert = LVBertModel(config, embeddings=embeddings)
        self.mlm_head = LVBertMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.mlm_head.decoder = new_embeddings

    def masked_logits(self, hidden: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Logits [N_masked, V] at ``labels != -100`` ([B, T, V] without labels)."""
        return self.mlm_head.masked_logits(hidden, labels)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MaskedLMOutput | tuple[torch.Tensor, ...]:
        """With ``labels`` [B, T] (-100 = not masked): ``logits`` [N_masked, V] and mean CE
        ``loss``; without: ``logits`` [B, T, V]."""
        base = self.lvbert(input_ids, attention_mask, token_type_ids, output_hidden_states, return_dict=True)
        logits = self.mlm_head.masked_logits(base.last_hidden_state, labels)
        loss = None if labels is None else mlm_loss(logits, labels)
        out = MaskedLMOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)
        return out if _return_dict(self.config, return_dict) else out.to_tuple()


@dataclass
class LVBertForPreTrainingOutput(ModelOutput):
    """ELECTRA discriminator output: ``logits`` [B, T] (replaced-token logit per position)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class LVBertForPreTraining(LVBertPreTrainedModel):
    """LV-BERT with the ELECTRA discriminator head (replaced-token detection)."""

    def __init__(self, config: LVBertConfig, embeddings: LVBertEmbeddings | None = None) -> None:
        super().__init__(config)
        self.lvbert = LVBertModel(config, embeddings=embeddings)
        self.discriminator_head = LVBertDiscriminatorHead(config)
        self.post_init()

    def discriminator_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Replaced-token logit per position [B, T]."""
        return self.discriminator_head(hidden)

    def make_generator(self, seed: int) -> LVBertForMaskedLM:
        """The ELECTRA generator of this discriminator: the same layer sequence at the
        generator width (``config.generator_config()``), sharing this model's token embeddings,
        initialised from ``seed`` (the global RNG is left as it was)."""
        with torch.random.fork_rng(devices=[]):  # HF initialises from the global RNG: fence it off
            torch.manual_seed(seed)
            generator = LVBertForMaskedLM(self.config.generator_config(), embeddings=self.lvbert.embeddings)
        ref = self.lvbert.embeddings.word_embeddings.weight
        return generator.to(device=ref.device, dtype=ref.dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> LVBertForPreTrainingOutput | tuple[torch.Tensor, ...]:
        """``labels`` [B, T]: 1 where the token was replaced; loss = mean BCE over real tokens."""
        base = self.lvbert(input_ids, attention_mask, token_type_ids, output_hidden_states, return_dict=True)
        logits = self.discriminator_head(base.last_hidden_state)
        loss = None if labels is None else discriminator_loss(logits, labels, attention_mask)
        out = LVBertForPreTrainingOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)
        return out if _return_dict(self.config, return_dict) else out.to_tuple()


class LVBertForSequenceClassification(LVBertPreTrainedModel):
    """LV-BERT with the ELECTRA classification head; regression when ``num_labels == 1``."""

    def __init__(self, config: LVBertConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.lvbert = LVBertModel(config)
        self.classifier = LVBertClassificationHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        """``logits`` [B, num_labels]; ``loss``: MSE (num_labels 1), BCE (multi-label), else CE."""
        base = self.lvbert(input_ids, attention_mask, token_type_ids, output_hidden_states, return_dict=True)
        logits = self.classifier(base.last_hidden_state)
        loss = None
        if labels is not None:
            if self.config.problem_type == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
            else:
                loss = sequence_loss(logits, labels, self.num_labels)
        out = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)
        return out if _return_dict(self.config, return_dict) else out.to_tuple()


def _return_dict(config: LVBertConfig, return_dict: bool | None) -> bool:
    return config.return_dict if return_dict is None else return_dict


HEAD_MODELS: dict[str | None, type[LVBertPreTrainedModel]] = {
    None: LVBertModel,
    "mlm": LVBertForMaskedLM,
    "discriminator": LVBertForPreTraining,
    "classification": LVBertForSequenceClassification,
}
