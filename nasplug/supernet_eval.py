"""SupernetEvaluator: score an arch with weights inherited from a trained supernet.

Candidates are compared on identical inputs: the held-out set is masked once (same
positions, same replacements) and every arch sees the same batches. Metrics are held-out
MLM accuracy and loss (plus ELECTRA generator/discriminator accuracy when a generator is
given) and the space's analytic ``params`` / ``flops``.

Shared-prefix evaluation: archs in a batch that agree on their first k layers also agree on
the hidden states after layer k. ``evaluate_batch`` sorts the routes, walks them like a
prefix tree (a stack of hidden states, one per depth) and runs only the layers past the
common prefix with the previous route. The arithmetic is the same, call for call, as
running each arch alone, so the metrics are bit-identical to one-by-one evaluation.

The supernet must offer ``route(arch) -> list[kind]``, ``embed(ids, token_type_ids)``,
``run_layer(i, kind, hidden, attention_mask)`` and ``mlm_logits(hidden, labels)`` (the
LV-BERT supernet does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from nasplug.arch import Arch
from nasplug.masking import IGNORE_INDEX, MaskedBatch
from nasplug.space import SearchSpace

PRECISIONS = ("fp32", "bf16")


@dataclass
class _Sums:
    """Running totals for one arch over the held-out batches."""

    correct: int = 0
    total: int = 0
    loss: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.extra[key] = self.extra.get(key, 0.0) + value


class SupernetEvaluator:
    """``arch -> metrics`` on fixed, pre-masked held-out batches.

    Args:
        supernet: the trained supernet (put in eval mode here).
        batches: pre-masked held-out batches (``nasplug.masking.fixed_heldout_batches``).
        space: adds its analytic metrics (``params``, ``flops``) to every result.
        pad_id: padding id, to build attention masks (None: no padding in the rows).
        precision: "fp32", or "bf16" autocast (faster on hardware with bf16 units; check
            with ``nasplug rank-corr`` that it leaves rankings unchanged).
        prefix_sharing: share hidden states of common prefixes within ``evaluate_batch``.
        generator: the ELECTRA generator supernet; adds ``gen_mlm_acc`` and ``disc_acc``.
        replacements: for ELECTRA, a fixed id per masked position of every batch (same
            shapes as the batches' labels); the discriminator must spot them.
    """

    def __init__(self, supernet: Any, batches: Sequence[MaskedBatch], space: SearchSpace | None = None,
                 pad_id: int | None = None, precision: str = "fp32", prefix_sharing: bool = True,
                 generator: Any = None, replacements: Sequence[torch.Tensor] | None = None) -> None:
        if precision not in PRECISIONS:
            from nasplug.errors import NasplugError

            raise NasplugError(f"evaluator.precision: {precision!r} is not allowed; allowed: {', '.join(PRECISIONS)}")
        self.supernet = supernet.eval()
        self.generator = generator.eval() if generator is not None else None
        self.batches = list(batches)
        self.replacements = list(replacements) if replacements is not None else None
        self.space, self.pad_id = space, pad_id
        self.precision, self.prefix_sharing = precision, prefix_sharing
        self.device = next(supernet.parameters()).device

    def __call__(self, arch: Arch) -> dict[str, float]:
        return self.evaluate_batch([arch])[0]

    def evaluate_batch(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        """Metrics for each arch, in order (shared prefixes computed once)."""
        routes = [self.supernet.route(a) for a in archs]
        sums = [_Sums() for _ in archs]
        with torch.inference_mode(), self._autocast():
            for b, batch in enumerate(self.batches):
                ids = batch.input_ids.to(self.device)
                labels = batch.labels.to(self.device)
                mask = None if self.pad_id is None else (ids != self.pad_id).long()
                if self.generator is None:
                    self._walk(self.supernet, archs, routes, ids, mask,
                               lambda i, h, labels=labels: self._score_mlm(self.supernet, sums[i], h, labels))
                else:  # ELECTRA: the discriminator's MLM head is untrained; score generator + discriminator
                    self._electra(archs, routes, sums, b, ids, labels, mask)
        return [self._metrics(arch, s) for arch, s in zip(archs, sums)]

    # ------------------------------------------------------------------ the prefix walk
    def _walk(self, net: Any, archs: Sequence[Arch], routes: list[list[str]], ids: torch.Tensor,
              mask: torch.Tensor | None, visit: Any) -> None:
        """Run every arch through ``net``; call ``visit(i, last_hidden)`` for arch i.

        Without prefix sharing this is the plain routed forward, one arch at a time. With it,
        sorted order puts routes with long common prefixes next to each other, and
        ``stack[k]`` holds the hidden state [B, T, H] after k layers of the current route.
        """
        if not self.prefix_sharing:
            for i, arch in enumerate(archs):
                with net.using(arch):
                    visit(i, net(ids, mask))
            return
        order = sorted(range(len(routes)), key=lambda i: routes[i])
        stack = [net.embed(ids)]
        previous: list[str] = []
        for i in order:
            route = routes[i]
            keep = 0
            while keep < len(previous) and previous[keep] == route[keep]:
                keep += 1
            del stack[keep + 1:]
            for depth in range(keep, len(route)):
                stack.append(net.run_layer(depth, route[depth], stack[-1], mask))
            visit(i, stack[-1])
            previous = route

    # ------------------------------------------------------------------ scoring
    def _score_mlm(self, net: Any, sums: _Sums, hidden: torch.Tensor, labels: torch.Tensor) -> None:
        logits = net.mlm_logits(hidden, labels).float()  # [N_masked, V]
        target = labels[labels != IGNORE_INDEX]
        sums.correct += int((logits.argmax(-1) == target).sum())
        sums.total += int(target.numel())
        sums.loss += float(F.cross_entropy(logits, target, reduction="sum"))

    def _electra(self, archs: Sequence[Arch], routes: list[list[str]], sums: list[_Sums], b: int, ids: torch.Tensor,
                 labels: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Generator MLM accuracy on the masked batch; discriminator accuracy on fixed replacements."""
        masked = labels != IGNORE_INDEX
        self._walk(self.generator, archs, routes, ids, mask,
                   lambda i, h: self._score_mlm(self.generator, sums[i], h, labels))
        if self.replacements is None:
            return
        original = torch.where(masked, labels, ids)
        corrupted = torch.where(masked, self.replacements[b].to(self.device), original)
        is_replaced = (corrupted != original).float()
        valid = torch.ones_like(is_replaced, dtype=torch.bool) if mask is None else mask.bool()

        def score_disc(i: int, hidden: torch.Tensor) -> None:
            pred = (self.supernet.discriminator_logits(hidden).float() > 0).float()
            sums[i].add("disc_correct", float(((pred == is_replaced) & valid).sum()))
            sums[i].add("disc_total", float(valid.sum()))

        self._walk(self.supernet, archs, routes, corrupted, mask, score_disc)

    def _metrics(self, arch: Arch, s: _Sums) -> dict[str, float]:
        prefix = "gen_" if self.generator is not None else ""  # ELECTRA: the MLM figures are the generator's
        out = {f"{prefix}mlm_acc": s.correct / max(s.total, 1), f"{prefix}mlm_loss": s.loss / max(s.total, 1)}
        if "disc_total" in s.extra:
            out["disc_acc"] = s.extra["disc_correct"] / max(s.extra["disc_total"], 1.0)
        if self.space is not None:
            out.update(self.space.metrics(arch))
        return out

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def supernet_evaluator(space: SearchSpace, context: Any, batches: int = 8, batch_size: int = 64,
                       precision: str = "fp32", prefix_sharing: bool = True, seed: int = 0) -> SupernetEvaluator:
    """The ``supernet`` evaluator of a recipe: the trained supernet of this run, scored on
    ``batches`` held-out batches of ``batch_size`` rows, masked once with ``seed``.

    Called by the pipeline's search stage (and ``nasplug compare`` / ``rank-corr``) after the
    supernet stage has written ``supernet/model.safetensors``.
    """
    from nasplug.checkpoint import load_weights
    from nasplug.errors import NasplugError
    from nasplug.masking import fixed_heldout_batches
    from nasplug.stages.data import prepare_data

    folder = context.run_dir / "supernet"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise NasplugError(f"evaluator 'supernet': no trained supernet at {weights}; run the supernet stage first")
    data = prepare_data(context)
    supernet = context.extras.get("supernet")
    if supernet is None:
        from nasplug.distributed import device_for

        supernet = space.build_supernet(seed=context.recipe.seed)  # type: ignore[call-arg]
        load_weights(supernet, weights)
        train_device = context.recipe.supernet.device if context.recipe.supernet is not None else "auto"
        supernet = supernet.to(device_for(train_device))
    held = fixed_heldout_batches(data.heldout, data.tokens, batch_size, seed=seed, num_batches=batches)
    generator = replacements = None
    train_cfg = context.recipe.supernet
    if train_cfg is not None and train_cfg.objective == "electra":
        from nasplug.objectives import build_generator
        from nasplug.train import derive_seed

        generator = build_generator(supernet, derive_seed(train_cfg.seed, "generator"))
        load_weights(generator, folder / "generator.safetensors")
        gen = torch.Generator().manual_seed(seed + 1)
        maskable = [i for i in range(data.tokens.vocab_size) if i not in set(data.tokens.special_ids)]
        table = torch.tensor(maskable)
        replacements = [table[torch.randint(len(maskable), b.labels.shape, generator=gen)] for b in held]
    return SupernetEvaluator(supernet, held, space=space, pad_id=data.tokens.pad_id, precision=precision,
                             prefix_sharing=prefix_sharing, generator=generator, replacements=replacements)


supernet_evaluator.needs_run_context = True  # type: ignore[attr-defined]
