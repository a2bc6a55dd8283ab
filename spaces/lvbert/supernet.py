"""``LVBertSupernet``: every slot holds the three candidate sub-layers; one path is active.

Single-path one-shot (SPOS): the trainer activates one sampled arch per step, the evaluator
one candidate at a time; ``extract(arch)`` returns a standalone Hugging Face model holding
copies of the inherited weights. Contract: in eval mode ``extract(arch)(x).last_hidden_state``
equals ``supernet.using(arch)(x)`` bit for bit (same modules, same op order).

Pieces for prefix sharing (an evaluator can cache the hidden state after slot i and reuse it
for every candidate with the same first i+1 layers):

* ``embed(input_ids, token_type_ids) -> [B, T, H]``
* ``run_layer(i, kind, hidden, attention_mask) -> [B, T, H]`` (or ``slots[i][kind](hidden, mask)``
  with ``mask = padding_mask(attention_mask)``)
* heads: ``mlm_logits(hidden, labels)`` -> [N_masked, V], ``discriminator_logits(hidden)``
  -> [B, T], ``classify(hidden)`` -> [B, num_labels].

Parameter names match the standalone models: ``embeddings.*``, ``embeddings_project.*``,
``slots.{i}.{kind}.*`` (-> ``layers.{i}.*``), ``mlm_head.*``, ``discriminator_head.*``,
``classifier.*``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import initialization as hf_init

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.spaces.lvbert.codec import LAYER_TYPES, slot_key
from nasplug.spaces.lvbert.config import LVBertConfig
from nasplug.spaces.lvbert.embeddings import LVBertEmbeddings
from nasplug.spaces.lvbert.heads import (
    LVBertClassificationHead,
    LVBertDiscriminatorHead,
    LVBertMLMHead,
)
from nasplug.spaces.lvbert.layers import glorot, init_module, make_layer, padding_mask
from nasplug.spaces.lvbert.model import HEAD_MODELS, LVBertPreTrainedModel
from nasplug.supernet import Supernet

HEAD_ATTRS = {"mlm": "mlm_head", "discriminator": "discriminator_head", "classification": "classifier"}


class LVBertSupernet(Supernet):
    """Weight-sharing LV-BERT: ``slots[i][kind]`` for every slot ``i`` and allowed ``kind``.

    Args:
        config: Widths, vocabulary, dropout (its ``layers`` field is ignored).
        num_slots: Number of sub-layer slots (default: ``len(config.layers)``).
        kinds: Layer types held in every slot (a sub-space with fewer types needs fewer weights).
        embeddings: An :class:`LVBertEmbeddings` to share instead of creating one (the ELECTRA
            generator shares the discriminator's token embeddings); it is not re-initialised.
        mlm_head, discriminator_head: Whether to hold these heads.
        num_labels: Adds a sequence classification head with this many outputs (0: none).
        seed: Initialise from ``torch.Generator().manual_seed(seed)`` instead of the global RNG.
    """

    def __init__(
        self,
        config: LVBertConfig,
        *,
        num_slots: int | None = None,
        kinds: Sequence[str] = LAYER_TYPES,
        embeddings: LVBertEmbeddings | None = None,
        mlm_head: bool = True,
        discriminator_head: bool = True,
        num_labels: int = 0,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        unknown = [k for k in kinds if k not in LAYER_TYPES]
        if unknown or not kinds:
            raise NasplugError(
                f"kinds: {unknown[0] if unknown else 'empty'!r} is not a layer type; allowed: {', '.join(LAYER_TYPES)}"
            )
        self.config = config
        self.num_slots = num_slots or len(config.layers)
        self.kinds = tuple(k for k in LAYER_TYPES if k in kinds)
        self.num_labels = num_labels
        shared = embeddings is not None
        self.embeddings = embeddings if shared else LVBertEmbeddings(config)
        self.embeddings_project = (  # official: tf.layers.dense without initializer, so Glorot
            glorot(nn.Linear(config.embedding_size, config.hidden_size))
            if config.embedding_size != config.hidden_size else None
        )
        self.slots = nn.ModuleList(
            nn.ModuleDict({kind: make_layer(kind, config) for kind in self.kinds}) for _ in range(self.num_slots)
        )
        self.mlm_head = LVBertMLMHead(config) if mlm_head else None
        self.discriminator_head = LVBertDiscriminatorHead(config) if discriminator_head else None
        self.classifier = LVBertClassificationHead(config, num_labels) if num_labels else None

        generator = None if seed is None else torch.Generator().manual_seed(seed)
        keep = {id(m) for m in self.embeddings.modules()} if shared else set()
        for module in _children_first(self):
            if id(module) not in keep:
                init_module(module, config.initializer_range, generator)
        if self.mlm_head is not None:  # tied like the standalone model (one Parameter)
            self.mlm_head.decoder.weight = self.embeddings.word_embeddings.weight

    # ------------------------------------------------------------------ routing
    def route(self, arch: Arch) -> list[str]:
        """The layer types of ``arch`` in slot order; NasplugError if this supernet can't run it."""
        if not isinstance(arch, dict):
            raise NasplugError(f"arch: expected a dict of choices, got {type(arch).__name__}")
        if len(arch) != self.num_slots:
            raise NasplugError(f"arch: {len(arch)} choices, this supernet has {self.num_slots} slots")
        layers = []
        for i in range(self.num_slots):
            key = slot_key(i, self.num_slots)
            kind = arch.get(key)
            if kind not in self.kinds:
                what = f"missing key {key!r}" if key not in arch else f"{key}: {kind!r} is not held"
                raise NasplugError(f"arch: {what}; allowed layer types: {', '.join(self.kinds)}")
            layers.append(kind)
        return layers

    def activate(self, arch: Arch) -> None:
        """Route the following forward passes through ``arch`` (checked here, once)."""
        self.route(arch)
        super().activate(arch)

    # ------------------------------------------------------------------ pieces
    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, T] -> first hidden state [B, T, H] (embeddings, then the projection)."""
        x = self.embeddings(input_ids, token_type_ids)
        return x if self.embeddings_project is None else self.embeddings_project(x)

    def run_layer(
        self, index: int, kind: str, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Slot ``index``'s ``kind`` layer on ``hidden`` [B, T, H]; ``attention_mask`` 0/1 [B, T]."""
        return self.slots[index][kind](hidden, padding_mask(attention_mask))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ids [B, T] -> last hidden state [B, T, H] through the active arch."""
        layers = self.route(self.require_active())
        mask = padding_mask(attention_mask)
        hidden = self.embed(input_ids, token_type_ids)
        for slot, kind in zip(self.slots, layers, strict=True):
            hidden = slot[kind](hidden, mask)
        return hidden

    def example_input(self, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """``(input_ids, attention_mask, token_type_ids)`` of random tokens for contract tests:
        [B, T] with T = min(16, positions), the last row padded after T // 2, two segments."""
        gen = torch.Generator().manual_seed(seed)
        t = min(16, self.config.max_position_embeddings)
        ids = torch.randint(1, self.config.vocab_size, (batch, t), generator=gen)
        mask = torch.ones(batch, t, dtype=torch.long)
        mask[-1, max(1, t // 2):] = 0
        types = (torch.arange(t) >= t // 2).long().expand(batch, t) % self.config.type_vocab_size
        device = self.embeddings.word_embeddings.weight.device
        return (ids * mask).to(device), mask.to(device), types.contiguous().to(device)

    # ------------------------------------------------------------------ the text-model interface
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, T] -> last hidden state [B, T, H] (``nasplug.text.interface``)."""
        return self(input_ids, attention_mask, token_type_ids)

    def masked_logits(self, hidden: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`mlm_logits` (``nasplug.text.interface``)."""
        return self.mlm_logits(hidden, labels)

    def make_generator(self, seed: int) -> LVBertSupernet:
        """:meth:`generator` on this supernet's device (``nasplug.text.interface``)."""
        return self.generator(seed=seed).to(self.embeddings.word_embeddings.weight.device)

    # ------------------------------------------------------------------ heads
    def get_output_embeddings(self) -> nn.Linear | None:
        """The MLM head's decoder (tied to the word embeddings), as transformers models name
        it; None without an MLM head."""
        return None if self.mlm_head is None else self.mlm_head.decoder

    def mlm_logits(self, hidden: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Vocabulary logits at the masked positions (``labels != -100``): [N_masked, V];
        every position ([B, T, V]) when ``labels`` is None."""
        return self._head("mlm").masked_logits(hidden, labels)

    def discriminator_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """ELECTRA replaced-token logit per position: [B, T]."""
        return self._head("discriminator")(hidden)

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """Sequence logits from the [CLS] position: [B, num_labels]."""
        return self._head("classification")(hidden)

    def _head(self, head: str) -> nn.Module:
        module = getattr(self, HEAD_ATTRS[head])
        if module is None:
            raise NasplugError(f"head: this supernet has no {head!r} head (see LVBertSupernet arguments)")
        return module

    def compile_parts(self) -> None:
        """``torch.compile`` each candidate layer, the embeddings and the heads in place: the
        path changes every step, each layer's graph does not."""
        for slot in self.slots:
            for layer in slot.values():
                layer.compile()
        for name in ("embeddings", "mlm_head", "discriminator_head"):
            part = getattr(self, name, None)
            if part is not None:
                part.compile()

    # ------------------------------------------------------------------ standalone models
    def standalone_config(self, arch: Arch) -> LVBertConfig:
        """The Hugging Face config of ``arch`` (same widths, ``layers`` = its sequence)."""
        config = self.config.with_layers(self.route(arch))
        if self.num_labels:
            config.num_labels = self.num_labels
        return config

    def extract(self, arch: Arch, head: str | None = None) -> LVBertPreTrainedModel:
        """A standalone model of ``arch`` holding copies of the inherited weights.

        Args:
            arch: The architecture.
            head: None -> ``LVBertModel``; ``"mlm"`` -> ``LVBertForMaskedLM``;
                ``"discriminator"`` -> ``LVBertForPreTraining``; ``"classification"`` ->
                ``LVBertForSequenceClassification``.

        The model is on the supernet's device and dtype, in the supernet's train/eval mode.
        """
        if head not in HEAD_MODELS:
            raise NasplugError(f"head: {head!r} is not a head; allowed: None, {', '.join(h for h in HEAD_MODELS if h)}")
        layers = self.route(arch)
        if head is not None:
            self._head(head)
        config = self.standalone_config(arch)
        with hf_init.no_init_weights():  # every weight is overwritten below
            model = HEAD_MODELS[head](config)
        model.tie_weights()
        reference = self.embeddings.word_embeddings.weight
        model.to(device=reference.device, dtype=reference.dtype)
        model.load_state_dict(self._standalone_state(layers, head), strict=True)
        return model.train(self.training)

    def _standalone_state(self, layers: list[str], head: str | None) -> dict[str, torch.Tensor]:
        """Supernet state dict renamed to the standalone model's keys (a plain mapping)."""
        prefix = "" if head is None else "lvbert."
        head_attr = HEAD_ATTRS.get(head or "")
        state = {}
        for key, value in self.state_dict().items():
            first, _, rest = key.partition(".")
            if first == "slots":
                index, kind, tail = rest.split(".", 2)
                if layers[int(index)] == kind:
                    state[f"{prefix}layers.{index}.{tail}"] = value
            elif first in ("embeddings", "embeddings_project"):
                state[prefix + key] = value
            elif first == head_attr:
                state[key] = value
        return state

    def generator(self, seed: int | None = None) -> LVBertSupernet:
        """The ELECTRA generator supernet: same slots and kinds at the generator width
        (:meth:`LVBertConfig.generator`), MLM head only, sharing this supernet's embeddings."""
        return LVBertSupernet(
            self.config.generator_config(), num_slots=self.num_slots, kinds=self.kinds, embeddings=self.embeddings,
            discriminator_head=False, seed=seed,
        )


def _children_first(module: nn.Module) -> list[nn.Module]:
    """Modules in ``nn.Module.apply`` order (children before parents), so a parent's init
    (the dynamic conv's special cases) wins over its children's generic one."""
    order: list[nn.Module] = []
    module.apply(order.append)
    return order
