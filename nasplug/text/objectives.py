"""Losses and held-out scoring of the text tasks: masked-LM (BERT) and ELECTRA.

MLM: cross-entropy at the masked positions, divided by the global number of masked tokens.
ELECTRA (Clark et al. 2020): the generator (MLM) fills the masked positions by sampling from
its softmax (inverse CDF at fixed uniforms, so the sample does not depend on sharding; no
gradient through the sample); the discriminator labels each real token as original or
replaced; loss = ``generator_weight * MLM + discriminator_weight * RTD`` (1 and 50).

A model here is anything with the text-model interface (:mod:`nasplug.text.interface`): a
supernet routed through an arch and a standalone model are called the same way.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from nasplug.errors import NasplugError
from nasplug.nn.fastexp import exp_
from nasplug.nn.loss import cross_entropy
from nasplug.text import bf16_vocab
from nasplug.text.interface import missing_methods, text_model

IGNORE_INDEX = -100

Stats = dict[str, torch.Tensor]


@dataclass
class MicroBatch:
    """One micro-batch on the training device.

    Attributes:
        input_ids: int64 [b, T] after masking (what the MLM model / generator reads).
        labels: int64 [b, T]: original id at masked positions, -100 elsewhere.
        original: int64 [b, T] the unmasked ids (ELECTRA builds the discriminator input).
        attention_mask: int64 [b, T], 1 at real tokens, 0 at [PAD].
        uniforms: float [b, T] in [0, 1) for sampling the generator's replacements (ELECTRA),
            drawn for the global batch so the samples do not depend on sharding.
        token_type_ids: int64 [b, T] segment ids (0 / 1), or None: one segment everywhere.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    original: torch.Tensor
    attention_mask: torch.Tensor
    uniforms: torch.Tensor | None = None
    token_type_ids: torch.Tensor | None = None

    @classmethod
    def of(cls, input_ids: torch.Tensor, labels: torch.Tensor, original: torch.Tensor, pad_id: int,
           uniforms: torch.Tensor | None, device: torch.device,
           token_type_ids: torch.Tensor | None = None) -> MicroBatch:
        """A micro-batch on ``device`` from CPU rows; the attention mask marks non-[PAD] ids."""
        original = original.to(device)
        return cls(input_ids.to(device), labels.to(device), original, (original != pad_id).long(),
                   None if uniforms is None else uniforms.to(device),
                   None if token_type_ids is None else token_type_ids.long().to(device))


# ---------------------------------------------------------------------- the interface's calls
def encode(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
           token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
    """ids [B, T] (+ segment ids [B, T]) -> last hidden state [B, T, H] (a supernet runs its
    active arch)."""
    return text_model(model).encode(input_ids, attention_mask, token_type_ids)


def mlm_logits(model: nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the masked positions: [N_masked, V] in row-major (b, t) order."""
    return text_model(model).masked_logits(hidden, labels)


def discriminator_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Replaced-token logit per position: [B, T]."""
    return text_model(model).discriminator_logits(hidden)


@runtime_checkable
class ConfiguredModel(Protocol):
    """A model described by a Hugging Face config (LV-BERT's and elastic BERT's models and
    supernets): the task checks its ``vocab_size`` against the tokenizer's."""

    config: Any


def check_interface(model: nn.Module, names: tuple[str, ...], task: str) -> None:
    """NasplugError naming every method of the interface ``model`` lacks for ``task``."""
    missing = missing_methods(model, names)
    if missing:
        raise NasplugError(f"task {task!r}: {type(model).__name__} lacks {', '.join(missing)} of the text-model "
                           "interface (nasplug.text.interface)")


@runtime_checkable
class InputEmbeddings(Protocol):
    """A model whose input embedding is reachable (Hugging Face models): the zero-cost proxies
    feed the encoder through it (:func:`embedding_input`)."""

    def get_input_embeddings(self) -> nn.Module: ...


def build_generator(model: nn.Module, seed: int) -> nn.Module:
    """The ELECTRA generator of ``model`` (``make_generator``), sharing its token embeddings,
    seeded from ``seed``; a supernet's is a supernet the loop routes through the same archs."""
    check_interface(model, ("make_generator",), "electra")
    return text_model(model).make_generator(seed)


# ---------------------------------------------------------------------- training losses
def _masked_ce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum of CE, number correct and the targets at masked positions; logits [N, V]."""
    targets = labels[labels != IGNORE_INDEX]  # [N]
    loss_sum = cross_entropy(logits, targets, reduction="sum")  # in fp32 (nasplug.nn.loss)
    with torch.no_grad():
        if logits.device.type == "cpu":  # no argmax of every row (see argmax_hits); a host sync costs nothing here
            picked = logits.gather(1, targets[:, None]).squeeze(1)
            correct = torch.tensor(argmax_hits(logits, targets, picked, logits.amax(-1)))
        else:
            correct = (logits.argmax(-1) == targets).sum()
    return loss_sum, correct, targets


def mlm_step(model: nn.Module, batch: MicroBatch, num_masked: int, teacher: torch.Tensor | None = None,
             keep: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, Stats]:
    """MLM loss of one micro-batch, divided by the global masked count ``num_masked``.

    With ``teacher`` (logits [N, V] of the sandwich's largest arch at the same positions) the
    loss is in-place distillation instead: the cross-entropy toward the teacher's softmax
    (BigNAS, Once-for-all). ``keep``: the logits are appended to it, detached (the teacher's).

    Returns ``(loss, stats)``; stats: ``mlm_loss_sum``, ``mlm_correct`` (sums over this
    micro-batch's masked positions, against the labels either way).
    """
    hidden = encode(model, batch.input_ids, batch.attention_mask, batch.token_type_ids)  # [b, T, H]
    logits = mlm_logits(model, hidden, batch.labels)  # [N, V]
    loss_sum, correct, _ = _masked_ce(logits, batch.labels)
    if keep is not None:
        keep.append(logits.detach())
    if teacher is not None:
        soft = torch.softmax(teacher.float(), dim=-1)  # [N, V]
        loss = -(soft * torch.log_softmax(logits.float(), dim=-1)).sum() / max(num_masked, 1)
    else:
        loss = loss_sum / max(num_masked, 1)
    return loss, {"mlm_loss_sum": loss_sum.detach(), "mlm_correct": correct}


def sample_tokens(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """One token per row of ``logits`` [N, V] from its softmax, by inverse CDF at ``uniforms`` [N].

    Inverse-CDF sampling uses one given uniform per position, so the sample is a function of
    the position's uniform alone: the same whatever the micro-batch or rank split.
    """
    cdf = torch.softmax(logits.float(), dim=-1).cumsum(dim=-1)  # [N, V]
    target = (uniforms.float() * cdf[:, -1]).unsqueeze(1)  # [N, 1]
    return torch.searchsorted(cdf, target).squeeze(1).clamp_(max=logits.shape[-1] - 1)


def electra_step(
    model: nn.Module,
    generator: nn.Module,
    batch: MicroBatch,
    num_masked: int,
    num_real: int,
    generator_weight: float = 1.0,
    discriminator_weight: float = 50.0,
) -> tuple[torch.Tensor, Stats]:
    """ELECTRA loss of one micro-batch: ``gw * MLM / num_masked + dw * RTD / num_real``.

    Returns ``(loss, stats)``; stats: ``mlm_loss_sum``, ``mlm_correct`` (the generator's),
    ``disc_loss_sum``, ``disc_correct``, ``replaced`` (sums over this micro-batch).
    """
    if batch.uniforms is None:
        raise ValueError("electra_step needs batch.uniforms")
    gen_hidden = encode(generator, batch.input_ids, batch.attention_mask, batch.token_type_ids)  # [b, T, Hg]
    gen_logits = mlm_logits(generator, gen_hidden, batch.labels)  # [N, V]
    gen_sum, gen_correct, _ = _masked_ce(gen_logits, batch.labels)
    masked = batch.labels != IGNORE_INDEX  # [b, T]
    with torch.no_grad():  # discrete samples: no gradient flows from the discriminator
        sampled = sample_tokens(gen_logits.detach(), batch.uniforms[masked])  # [N]
    disc_input = batch.original.clone()
    disc_input[masked] = sampled
    real = batch.attention_mask.bool()
    replaced = (disc_input != batch.original) & real  # [b, T] labels of the discriminator
    disc_hidden = encode(model, disc_input, batch.attention_mask, batch.token_type_ids)  # [b, T, H]
    disc_logits = discriminator_logits(model, disc_hidden).float()[real]  # [R]
    disc_targets = replaced[real].float()
    disc_sum = F.binary_cross_entropy_with_logits(disc_logits, disc_targets, reduction="sum")
    disc_correct = ((disc_logits > 0) == replaced[real]).sum()
    loss = generator_weight * gen_sum / max(num_masked, 1) + discriminator_weight * disc_sum / max(num_real, 1)
    return loss, {
        "mlm_loss_sum": gen_sum.detach(), "mlm_correct": gen_correct,
        "disc_loss_sum": disc_sum.detach(), "disc_correct": disc_correct, "replaced": replaced.sum(),
    }


# ---------------------------------------------------------------------- held-out scoring
@dataclass
class Lane:
    """One network run over one held-out input, and how to score its last hidden state.

    The prefix-sharing evaluator advances the lanes of a batch together layer by layer
    (``net.embed(*embed_args)``, ``net.run_layer(i, kind, hidden, *layer_args)``); plain
    evaluation runs ``encode(net, ids, mask, types)``. ``score(sums, hidden)`` adds the lane's
    figures to ``sums``. ``types``: segment ids [B, T] (None: one segment).
    """

    net: Any
    ids: torch.Tensor
    mask: torch.Tensor | None
    score: Callable[[MutableMapping[str, float], torch.Tensor], None]
    types: torch.Tensor | None = None

    @property
    def embed_args(self) -> tuple[Any, ...]:
        return (self.ids, self.types)

    @property
    def layer_args(self) -> tuple[Any, ...]:
        return (self.mask,)


def head_in_fp32(head: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor) -> torch.Tensor:
    """``head(hidden)`` as fp32 logits; under autocast (a bf16 evaluation of fp32 weights) with
    autocast off and ``hidden`` widened, so the head's products run in fp32 too. Its output
    decides the metrics: vocabulary logits rounded to bf16's 8 bits (0.03 apart at a logit of
    8) tie and flip argmaxes, which reorders archs whose held-out accuracies differ by a few
    tokens (``benchmarks/eval_throughput.py``: Kendall tau between bf16 and fp32 rankings by
    MLM accuracy 0.909 with a bf16 head, 0.982 with this). The discriminator's head, and MLM
    heads that :mod:`nasplug.text.bf16_vocab` cannot split, run here; outside autocast the head
    runs as it is (a model kept in bf16 throughout stays so)."""
    device = hidden.device.type
    if not torch.is_autocast_enabled(device):
        return head(hidden).float()
    with torch.autocast(device, enabled=False):
        return head(hidden.float()).float()


#: Masked positions whose logits are scored at once: (1 << 22) / V of them, about 16 MB of fp32
#: logits, under glibc's 32 MiB mmap ceiling, so each block reuses heap memory instead of
#: page-faulting a fresh mapping in (the whole [N, V] matrix was 37 MB at ELECTRA-small sizes).
SCORE_CHUNK_ELEMENTS = 1 << 22
FIRST_CHUNK_ROWS = 128  # before the vocabulary size is known (a head without a plain decoder)


def score_mlm(net: Any, labels: torch.Tensor) -> Callable[[MutableMapping[str, float], torch.Tensor], None]:
    """Adds ``mlm_correct``, ``mlm_count``, ``mlm_loss_sum`` of the masked positions.

    The head runs in fp32 (:func:`head_in_fp32`) on blocks of masked positions
    (:data:`SCORE_CHUNK_ELEMENTS`); a block's cross-entropies are its log-sum-exps less the
    targets' logits, both taken from the row maxima; a position is correct where its target is
    the argmax (:func:`argmax_hits`). In a bf16 evaluation of a head ending in a plain decoder
    big enough to gain from it (:func:`nasplug.text.bf16_vocab.pays_off`), the decoder's product
    runs in bf16 and the argmax is still decided in fp32
    (:mod:`nasplug.text.bf16_vocab`)."""
    masked = labels != IGNORE_INDEX
    target = labels[masked]  # [N], row-major (b, t) order
    where = masked.flatten().nonzero().squeeze(1)  # their flat positions, found once

    def score(sums: MutableMapping[str, float], hidden: torch.Tensor) -> None:
        rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, where)  # [N, H], the same order
        plain = bf16_vocab.decoder_of(net)
        correct, loss_sum, start = 0, 0.0, 0
        step = FIRST_CHUNK_ROWS if plain is None else max(1, SCORE_CHUNK_ELEMENTS // max(plain.out_features, 1))
        autocast = torch.is_autocast_enabled(hidden.device.type)
        decoder = plain if autocast and plain is not None and bf16_vocab.pays_off(plain) else None
        row_norm = 0.0 if decoder is None else bf16_vocab.largest_row_norm(decoder)
        while start < len(rows):
            block, goal = rows[start:start + step], target[start:start + step]
            every = torch.zeros(1, len(block), dtype=torch.long, device=labels.device)  # no -100: all scored
            head = partial(mlm_logits, net, labels=every)
            inputs = None if decoder is None else bf16_vocab.decoder_input(head, decoder, block[None])
            if decoder is not None and inputs is not None:  # a bf16 evaluation: bf16 vocabulary product
                hits, losses = bf16_vocab.score_block(inputs, decoder, goal, row_norm)
                vocab = decoder.out_features
            else:
                decoder = None  # a head bf16_vocab cannot split: the rest of the batch in fp32 too
                hits, losses, vocab = _score_fp32_head(head, block, goal)
            correct, loss_sum, start = correct + hits, loss_sum + losses, start + len(block)
            step = max(1, SCORE_CHUNK_ELEMENTS // max(vocab, 1))
        sums["mlm_correct"] = sums.get("mlm_correct", 0) + correct
        sums["mlm_count"] = sums.get("mlm_count", 0) + int(target.numel())
        sums["mlm_loss_sum"] = sums.get("mlm_loss_sum", 0.0) + loss_sum

    return score


def _score_fp32_head(head: Callable[[torch.Tensor], torch.Tensor], block: torch.Tensor,
                     goal: torch.Tensor) -> tuple[int, float, int]:
    """``(correct, summed cross-entropy, V)`` of one block of masked positions [n, H] through
    the head in fp32 (:func:`head_in_fp32`)."""
    logits = head_in_fp32(head, block[None])  # [n, V]
    top = logits.amax(-1)
    picked = logits.gather(1, goal[:, None]).squeeze(1)
    correct = argmax_hits(logits, goal, picked, top)
    log_sum = exp_(logits.sub_(top[:, None])).sum(-1).log_()
    return correct, float((log_sum - (picked - top)).sum()), logits.shape[-1]


def argmax_hits(logits: torch.Tensor, goal: torch.Tensor, picked: torch.Tensor, top: torch.Tensor) -> int:
    """How many rows of ``logits`` [n, V] have ``goal`` [n] as their argmax (the first maximal
    index), given the goals' logits ``picked`` and the row maxima ``top``, without an argmax of
    every row (``max(-1)`` with indices costs 18x a bare ``amax`` on CPU): a row can only hit
    where its goal's logit is the maximum; of those, rows where another logit ties with it
    ask argmax."""
    rows = (picked == top).nonzero().squeeze(1)
    if rows.numel() == 0:
        return 0
    others = logits[rows].scatter_(1, goal[rows, None], float("-inf"))  # a copy: logits untouched
    tied = rows[others.amax(-1) == top[rows]]
    if tied.numel() == 0:
        return int(rows.numel())
    return int(rows.numel() - tied.numel()) + int((logits[tied].argmax(-1) == goal[tied]).sum())


def score_disc(
    net: Any, is_replaced: torch.Tensor, valid: torch.Tensor
) -> Callable[[MutableMapping[str, float], torch.Tensor], None]:
    """Adds ``disc_correct``, ``disc_count`` over the real tokens (the head in fp32)."""
    def score(sums: MutableMapping[str, float], hidden: torch.Tensor) -> None:
        pred = (head_in_fp32(lambda h: discriminator_logits(net, h), hidden) > 0).float()
        sums["disc_correct"] = sums.get("disc_correct", 0.0) + float(((pred == is_replaced) & valid).sum())
        sums["disc_count"] = sums.get("disc_count", 0.0) + float(valid.sum())

    return score


def embedding_input(model: nn.Module, batch: MicroBatch,
                    task: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """A text micro-batch's continuous input for the zero-cost proxies: ``x`` the word
    embeddings of its ids [N, T, E]; ``f`` runs the encoder with the output of the model's
    input embedding (``get_input_embeddings()``) replaced by its argument's n rows and
    returns the last hidden states [n, T, H]."""
    if not isinstance(model, InputEmbeddings):
        raise NasplugError(f"task {task!r}: {type(model).__name__} has no get_input_embeddings(); SynFlow and "
                           "Jacobian covariance need it to feed the encoder a continuous input")
    embedding = model.get_input_embeddings()
    with torch.no_grad():
        x = embedding(batch.input_ids)

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        n = len(inputs)
        handle = embedding.register_forward_hook(lambda module, args, output: inputs)
        try:
            types = None if batch.token_type_ids is None else batch.token_type_ids[:n]
            return encode(model, batch.input_ids[:n], batch.attention_mask[:n], types)
        finally:
            handle.remove()

    return x, forward


def run_lanes(lanes: list[Lane], sums: MutableMapping[str, float]) -> None:
    """Plain evaluation of one batch's lanes: each net end to end, then its score."""
    for lane in lanes:
        lane.score(sums, encode(lane.net, lane.ids, lane.mask, lane.types))
