"""Pre-training objectives on a supernet or a standalone model: MLM and ELECTRA RTD.

Called by :func:`nasplug.oneshot.train.pretrain` once per micro-batch (``mlm_step`` /
``electra_step``) and at every held-out evaluation (``evaluate``).

Two kinds of model are understood, duck-typed:

* a supernet (``nasplug.supernet.Supernet`` such as ``LVBertSupernet``): ``model(ids, mask)``
  -> hidden [B, T, H] through the active arch, ``mlm_logits(hidden, labels)`` and
  ``discriminator_logits(hidden)``;
* a standalone Hugging Face model (``LVBertForMaskedLM`` / ``LVBertForPreTraining``): its
  base model (``model.<base_model_prefix>``) gives the hidden states and ``mlm_head`` /
  ``discriminator_head`` the logits.

Losses are **sums divided by a global count** (masked tokens, or real tokens for the
discriminator) passed in by the loop, so summing gradients over micro-batches and ranks gives
exactly the gradient of the mean loss over the global batch: gradient accumulation and
multi-process training are then equivalent to one big batch. Statistics come back as sums
(0-d tensors) for the loop to add up and all-reduce.

ELECTRA (Clark et al. 2020; the LV-BERT recipe in shared/LVBERT.md): the generator is an MLM
model at the reduced hidden size that shares the token embeddings (and, for a supernet, the
active layer sequence); replacements are *sampled* from its softmax (no gradient through the
sample); the discriminator labels each real token as original or replaced; loss =
``generator_weight * MLM + discriminator_weight * RTD`` (1 and 50).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasplug.errors import NasplugError
from nasplug.supernet import Supernet

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
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    original: torch.Tensor
    attention_mask: torch.Tensor
    uniforms: torch.Tensor | None = None

    @classmethod
    def of(cls, input_ids: torch.Tensor, labels: torch.Tensor, original: torch.Tensor, pad_id: int,
           uniforms: torch.Tensor | None, device: torch.device) -> MicroBatch:
        """A micro-batch on ``device`` from CPU rows; the attention mask marks non-[PAD] ids."""
        original = original.to(device)
        return cls(input_ids.to(device), labels.to(device), original, (original != pad_id).long(),
                   None if uniforms is None else uniforms.to(device))


def shard(batch_size: int, rank: int, world: int, grad_accum: int) -> list[slice]:
    """Row slices of the global batch for this rank's ``grad_accum`` micro-batches: rank r
    owns rows ``[r * B / world, (r + 1) * B / world)``, cut into equal consecutive pieces
    (the same rows ``BatchIterator(rank=r, world=world)`` would give)."""
    per_rank = batch_size // world
    size = per_rank // grad_accum
    return [slice(rank * per_rank + i * size, rank * per_rank + (i + 1) * size) for i in range(grad_accum)]


# ---------------------------------------------------------------------- model adapters
def is_supernet(model: nn.Module) -> bool:
    return isinstance(model, Supernet)


def encode(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """ids [B, T] -> last hidden state [B, T, H] (a supernet runs its active arch)."""
    if is_supernet(model):
        return model(input_ids, attention_mask)
    base = getattr(model, model.base_model_prefix)
    return base(input_ids, attention_mask, return_dict=True).last_hidden_state


def mlm_logits(model: nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the masked positions: [N_masked, V] in row-major (b, t) order."""
    if is_supernet(model):
        return model.mlm_logits(hidden, labels)
    return model.mlm_head.masked_logits(hidden, labels)


def discriminator_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Replaced-token logit per position: [B, T]."""
    if is_supernet(model):
        return model.discriminator_logits(hidden)
    return model.discriminator_head(hidden)


def check_heads(model: nn.Module, objective: str) -> None:
    """NasplugError naming the missing head when ``model`` cannot train ``objective``."""
    head = "mlm_head" if objective == "mlm" else "discriminator_head"
    if getattr(model, head, None) is None:
        need = "LVBertForMaskedLM" if objective == "mlm" else "LVBertForPreTraining"
        raise NasplugError(
            f"objective: {objective!r} needs a model with a {head} ({type(model).__name__} has none); "
            f"use a supernet with that head or a standalone {need}"
        )


def build_generator(model: nn.Module, seed: int) -> nn.Module:
    """The ELECTRA generator of ``model``, sharing its token embeddings, seeded from ``seed``.

    Called once per run by the loop. A supernet gives ``model.generator(seed)`` (same slots,
    the loop activates the same arch on both every step); a standalone discriminator gives an
    ``LVBertForMaskedLM`` with ``config.generator()`` (same layer sequence, reduced hidden).
    """
    if is_supernet(model):
        if not hasattr(model, "generator"):
            raise NasplugError(f"objective: 'electra' needs a supernet with generator(); {type(model).__name__} has none")
        device = next(model.parameters()).device
        return model.generator(seed=seed).to(device)  # built on the CPU, the shared embeddings aside
    from nasplug.spaces.lvbert import LVBertForMaskedLM

    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if base is None or not hasattr(model.config, "generator"):
        raise NasplugError(f"objective: 'electra' needs an LV-BERT discriminator, got {type(model).__name__}")
    with torch.random.fork_rng(devices=[]):  # HF initialises from the global RNG: fence it off
        torch.manual_seed(seed)
        generator = LVBertForMaskedLM(model.config.generator(), embeddings=base.embeddings)
    ref = base.embeddings.word_embeddings.weight
    return generator.to(device=ref.device, dtype=ref.dtype)


def compile_model(model: nn.Module) -> None:
    """``torch.compile`` in place, per sub-layer for a supernet (the path changes every step,
    each layer's graph does not), the base model and heads for a standalone model."""
    if is_supernet(model) and hasattr(model, "slots"):
        for slot in model.slots:
            for layer in slot.values():
                layer.compile()
        parts = [getattr(model, n, None) for n in ("embeddings", "mlm_head", "discriminator_head")]
    else:
        parts = [getattr(model, model.base_model_prefix, None), getattr(model, "mlm_head", None),
                 getattr(model, "discriminator_head", None)]
    for part in parts:
        if part is not None:
            part.compile()


# ---------------------------------------------------------------------- losses
def _masked_ce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum of CE, number correct and the targets at masked positions; logits [N, V]."""
    targets = labels[labels != IGNORE_INDEX]  # [N]
    logits = logits.float()
    loss_sum = F.cross_entropy(logits, targets, reduction="sum")
    correct = (logits.argmax(-1) == targets).sum()
    return loss_sum, correct, targets


def mlm_step(model: nn.Module, batch: MicroBatch, num_masked: int) -> tuple[torch.Tensor, Stats]:
    """MLM loss of one micro-batch, divided by the global masked count ``num_masked``.

    Returns ``(loss, stats)``; stats: ``mlm_loss_sum``, ``mlm_correct`` (sums over this
    micro-batch's masked positions).
    """
    hidden = encode(model, batch.input_ids, batch.attention_mask)  # [b, T, H]
    logits = mlm_logits(model, hidden, batch.labels)  # [N, V]
    loss_sum, correct, _ = _masked_ce(logits, batch.labels)
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
    gen_hidden = encode(generator, batch.input_ids, batch.attention_mask)  # [b, T, Hg]
    gen_logits = mlm_logits(generator, gen_hidden, batch.labels)  # [N, V]
    gen_sum, gen_correct, _ = _masked_ce(gen_logits, batch.labels)
    masked = batch.labels != IGNORE_INDEX  # [b, T]
    with torch.no_grad():  # discrete samples: no gradient flows from the discriminator
        sampled = sample_tokens(gen_logits.detach(), batch.uniforms[masked])  # [N]
    disc_input = batch.original.clone()
    disc_input[masked] = sampled
    real = batch.attention_mask.bool()
    replaced = (disc_input != batch.original) & real  # [b, T] labels of the discriminator
    disc_hidden = encode(model, disc_input, batch.attention_mask)  # [b, T, H]
    disc_logits = discriminator_logits(model, disc_hidden).float()[real]  # [R]
    disc_targets = replaced[real].float()
    disc_sum = F.binary_cross_entropy_with_logits(disc_logits, disc_targets, reduction="sum")
    disc_correct = ((disc_logits > 0) == replaced[real]).sum()
    loss = generator_weight * gen_sum / max(num_masked, 1) + discriminator_weight * disc_sum / max(num_real, 1)
    return loss, {
        "mlm_loss_sum": gen_sum.detach(), "mlm_correct": gen_correct,
        "disc_loss_sum": disc_sum.detach(), "disc_correct": disc_correct, "replaced": replaced.sum(),
    }


# ---------------------------------------------------------------------- held-out evaluation
@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    pad_id: int,
    device: torch.device,
    autocast: object,
    generator: nn.Module | None = None,
    seed: int = 0,
) -> Stats:
    """Held-out sums over pre-masked ``batches`` of (input_ids, labels) [B, T] (CPU tensors).

    Called by the loop every ``eval_every`` steps on the fixed held-out batches, with the arch
    already activated. MLM: the model's own MLM head. ELECTRA (``generator`` given): the
    generator's MLM accuracy and the discriminator's RTD accuracy on replacements sampled with
    a fixed ``seed``. Returns sums (``mlm_loss_sum``, ``mlm_correct``, ``mlm_count`` and, for
    ELECTRA, ``disc_correct``, ``disc_count``) for the caller to all-reduce.
    """
    names = ["mlm_loss_sum", "mlm_correct", "mlm_count"] + (["disc_correct", "disc_count"] if generator else [])
    out = {k: torch.zeros((), dtype=torch.float64, device=device) for k in names}
    uniform_gen = torch.Generator().manual_seed(seed)
    for input_ids, labels in batches:
        ids, labels = input_ids.to(device), labels.to(device)
        mask = (ids != pad_id).long()
        original = torch.where(labels != IGNORE_INDEX, labels, ids)
        batch = MicroBatch(ids, labels, original, mask)
        with autocast:
            if generator is None:
                _, stats = mlm_step(model, batch, 1)
            else:
                batch.uniforms = torch.rand(ids.shape, generator=uniform_gen).to(device)
                _, stats = electra_step(model, generator, batch, 1, 1)
                stats["disc_count"] = mask.sum()
        stats["mlm_count"] = (labels != IGNORE_INDEX).sum()
        for key in names:
            out[key] += stats[key]
    return out


# ---------------------------------------------------------------------- loop helpers
def heldout_figures(total: dict[str, float]) -> dict[str, float]:
    """Sums from :func:`evaluate` (added over ranks) -> ``heldout_mlm_acc``,
    ``heldout_mlm_loss`` and, for ELECTRA, ``heldout_disc_acc``."""
    count = max(total["mlm_count"], 1)
    out = {"heldout_mlm_acc": total["mlm_correct"] / count, "heldout_mlm_loss": total["mlm_loss_sum"] / count}
    if "disc_count" in total:
        out["heldout_disc_acc"] = total["disc_correct"] / max(total["disc_count"], 1)
    return out


def step_metrics(sums: dict[str, float], n_masked: int, n_real: int, cfg: Any) -> dict[str, Any]:
    """Global sums of one step (``mlm_step`` / ``electra_step`` stats added over micro-batches
    and ranks) -> the logged figures; losses are means over the global batch's tokens."""
    mlm_loss, mlm_acc = sums["mlm_loss_sum"] / max(n_masked, 1), sums["mlm_correct"] / max(n_masked, 1)
    if cfg.objective == "mlm":
        return {"loss": mlm_loss, "mlm_loss": mlm_loss, "mlm_acc": mlm_acc}
    disc_loss = sums["disc_loss_sum"] / max(n_real, 1)
    return {"loss": cfg.generator_weight * mlm_loss + cfg.discriminator_weight * disc_loss,
            "gen_mlm_loss": mlm_loss, "gen_mlm_acc": mlm_acc, "disc_loss": disc_loss,
            "disc_acc": sums["disc_correct"] / max(n_real, 1), "replaced_frac": sums["replaced"] / max(n_real, 1)}


def make_optimizer(module: nn.Module, cfg: Any) -> torch.optim.AdamW:
    """AdamW (``cfg.lr``, ``betas``, ``eps``) with ``weight_decay`` on matrices and conv
    kernels only: no decay on biases and LayerNorm weights, as in BERT / ELECTRA."""
    decay, no_decay = [], []
    for _, param in module.named_parameters():  # shared / tied parameters appear once
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def validate_inputs(model: nn.Module, data: Any, cfg: Any, space: Any, arch: Any, world: int) -> None:
    """One clear NasplugError for each way the arguments of ``pretrain`` can disagree."""
    supernet = is_supernet(model)
    if space is not None and not supernet:
        raise NasplugError(f"space: given for single-path sampling, but {type(model).__name__} is not a supernet")
    if supernet and space is None and arch is None:
        raise NasplugError("arch: a supernet needs space= (sample an arch every step) or arch= (train that arch)")
    if supernet and arch is not None:
        model.activate(arch)  # checks the arch against the supernet, with its own clear error
    check_heads(model, cfg.objective)
    if cfg.batch_size % (world * cfg.grad_accum):
        raise NasplugError(f"batch_size: {cfg.batch_size} is not a multiple of world size x grad_accum = "
                           f"{world} x {cfg.grad_accum}")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and data.tokens.vocab_size > vocab:
        raise NasplugError(f"tokenizer.vocab_size: the data uses {data.tokens.vocab_size} ids but the model's "
                           f"vocabulary has {vocab}")
