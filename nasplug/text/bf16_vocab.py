"""Held-out MLM scoring with the vocabulary product in bf16 and the argmax decided in fp32.

Under a bf16 evaluation of an MLM head whose last layer is a plain ``nn.Linear`` decoder (the
output embeddings, E -> V), the head's layers before the decoder run in fp32 (a small
[N, H] -> [N, E]), and the decoder's [N, E] x [E, V] product, most of the head's time at
ELECTRA-small sizes, in bf16 with fp32 accumulation, as the encoder's products are. What
each position contributes to the metrics:

* **accuracy**, exactly as fp32 logits would give it: a bf16 logit is within ``delta`` of the
  fp32 one, with ``delta`` bounded from the operands' sizes (:func:`rounding_bound`: inputs,
  bias and output each rounded once to bf16's 8 bits, taken twice over). A position whose
  target's bf16 logit is more than ``2 delta`` below the row's bf16 maximum cannot be an
  argmax; for every other position the logits within ``2 delta`` of the maximum, the only ones
  that can be the fp32 argmax, are recomputed in fp32 and the first maximal index decides.
  Rounded bf16 logits alone tied and flipped argmaxes and reordered archs (Kendall tau 0.909
  against fp32 by MLM accuracy in ``benchmarks/eval_throughput.py``; see
  :func:`nasplug.text.objectives.head_in_fp32`).
* **cross-entropy**: the target's logit in fp32, less a log-sum-exp over the bf16 logits
  (its error is an average of the logits' own, a few 1e-3 per position and smaller over a
  batch: tau against fp32 by MLM loss 0.996 even with every logit rounded).

:func:`decoder_of` finds the decoder (``get_output_embeddings()``, the transformers
convention); a head without one, or whose output is not the decoder's own, is scored with
:func:`nasplug.text.objectives.head_in_fp32` instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nasplug.text.interface import HFMaskedLM, text_model

#: bf16 keeps 8 significant bits: rounding moves a value by at most 2**-9 of itself.
BF16_UNIT = 2.0**-9
#: How many times the one-rounding error bound ``delta`` stretches (fp32 accumulation and
#: reduced-precision partial sums on some GPUs stay inside it).
SAFETY = 2.0

_ROW_NORMS: weakref.WeakKeyDictionary[nn.Module, tuple[int, int, float]] = weakref.WeakKeyDictionary()


def decoder_of(net: Any) -> nn.Linear | None:
    """The MLM head's decoder, when it is a plain ``nn.Linear`` (an elastic one slices its
    weight per arch and is left to the fp32 path), else None."""
    model = text_model(net)
    owner = model.model if isinstance(model, HFMaskedLM) else model
    get = getattr(owner, "get_output_embeddings", None)
    decoder = get() if callable(get) else None
    return decoder if type(decoder) is nn.Linear else None


def decoder_input(head: Callable[[torch.Tensor], torch.Tensor], decoder: nn.Linear,
                  hidden: torch.Tensor) -> torch.Tensor | None:
    """The fp32 input [n, E] the decoder gets from ``head(hidden)``, the head's other layers
    run in fp32 and the decoder on no rows at all; None when the head's output is not the
    decoder's (something runs after it)."""
    seen: dict[str, Any] = {}

    def before(module: nn.Module, args: tuple[Any, ...]) -> tuple[torch.Tensor]:
        seen["input"] = args[0]
        return (args[0][..., :0, :],)

    def after(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        seen["output"] = output

    handles = (decoder.register_forward_pre_hook(before), decoder.register_forward_hook(after))
    try:
        with torch.autocast(hidden.device.type, enabled=False):
            out = head(hidden.float())
    finally:
        for handle in handles:
            handle.remove()
    if out is not seen.get("output") or seen["input"].dim() != 2:
        return None
    return seen["input"].float()


def rounding_bound(inputs: torch.Tensor, decoder: nn.Linear, top: torch.Tensor) -> torch.Tensor:
    """Per row, ``SAFETY`` times the most a bf16 logit near the row maximum ``top`` can differ
    from the fp32 one: the inputs and weights rounded (``|x_k w_k|`` summed, by Cauchy-Schwarz
    at most ``|x| max_v |w_v|``), the bias rounded, the output rounded."""
    bias = decoder.bias
    products = torch.linalg.vector_norm(inputs, dim=-1) * _largest_row_norm(decoder)
    largest_bias = 0.0 if bias is None else float(bias.detach().abs().max())
    return SAFETY * BF16_UNIT * (2 * products + largest_bias + top.abs())


def score_block(inputs: torch.Tensor, decoder: nn.Linear, goal: torch.Tensor) -> tuple[int, float]:
    """``(correct, summed cross-entropy)`` of one block: decoder inputs [n, E] in fp32,
    targets [n] (the module docstring says how)."""
    weight, bias = decoder.weight.detach(), None if decoder.bias is None else decoder.bias.detach()
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16):
        logits = decoder(inputs)  # [n, V] bf16, fp32 accumulation
    top = logits.amax(-1).float()
    threshold = top - 2 * rounding_bound(inputs, decoder, top)
    goal_weight = weight[goal]  # [n, E]
    picked = (inputs * goal_weight).sum(-1) + (0.0 if bias is None else bias[goal])  # fp32
    near = (logits.gather(1, goal[:, None]).squeeze(1).float() >= threshold).nonzero().squeeze(1)
    correct = _fp32_argmax_hits(logits[near], threshold[near], inputs[near], weight, bias, goal[near])
    log_sum = logits.sub_(top[:, None].bfloat16()).exp_().sum(-1, dtype=torch.float32).log_()
    loss_sum = float((log_sum + top - picked).sum())
    return correct, loss_sum


def _fp32_argmax_hits(logits: torch.Tensor, threshold: torch.Tensor, inputs: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None, goal: torch.Tensor) -> int:
    """Rows whose fp32 argmax is ``goal``, from the columns whose bf16 logit clears the row's
    ``threshold`` (the only ones that can be the fp32 maximum), recomputed in fp32."""
    if goal.numel() == 0:
        return 0
    # compared in bf16 against the threshold rounded down (never above it: a wider window)
    lowered = (threshold - threshold.abs() * 2 * BF16_UNIT).bfloat16()
    rows, cols = (logits >= lowered[:, None]).nonzero(as_tuple=True)
    exact = (inputs[rows] * weight[cols]).sum(-1) + (0.0 if bias is None else bias[cols])
    best = torch.full_like(threshold, float("-inf")).scatter_reduce_(0, rows, exact, "amax")
    winner = exact == best[rows]
    first = torch.full_like(goal, logits.shape[-1]).scatter_reduce_(0, rows[winner], cols[winner], "amin")
    return int((first == goal).sum())


def _largest_row_norm(decoder: nn.Linear) -> float:
    """``max_v |weight[v]|`` of the decoder's weight, kept until the weight changes (a search
    scores thousands of blocks with one decoder)."""
    weight = decoder.weight
    cached = _ROW_NORMS.get(decoder)
    if cached is not None and cached[:2] == (id(weight), weight._version):
        return cached[2]
    value = float(torch.linalg.vector_norm(weight.detach().float(), dim=-1).max())
    _ROW_NORMS[decoder] = (id(weight), weight._version, value)
    return value


__all__ = ["decoder_input", "decoder_of", "rounding_bound", "score_block"]
