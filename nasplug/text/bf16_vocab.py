"""Held-out MLM scoring with the vocabulary product in bf16 and the argmax decided in fp32.

Under a bf16 evaluation of an MLM head whose last layer is a plain ``nn.Linear`` decoder (the
output embeddings, E -> V), the head's layers before the decoder run in fp32 (a small
[N, H] -> [N, E]), and the decoder's [N, E] x [E, V] product, most of the head's time at
ELECTRA-small sizes, in bf16 with fp32 accumulation, as the encoder's products are. What
each position contributes to the metrics:

* **accuracy**, as fp32 logits give it (recomputed as fp32 dot products, so logits tied to
  fp32's last bits may break differently from an fp32 matrix product): a bf16 logit is
  within ``delta`` of the fp32 one, ``delta`` bounded from the operands' sizes
  (:func:`rounding_bound`: the inputs, the weights, the bias and the output each rounded once
  to bf16, whose unit roundoff is 2**-8, the sum stretched ``SAFETY`` times). A position whose
  target's bf16 logit is more than ``2 delta`` below the row's bf16 maximum cannot be an
  argmax; for every other position the logits within ``2 delta`` of the maximum, the only ones
  that can be the fp32 argmax, are recomputed in fp32 and the first maximal index decides.
  Rounded bf16 logits alone tied and flipped argmaxes and reordered archs (Kendall tau 0.909
  against fp32 by MLM accuracy in ``benchmarks/eval_throughput.py``; see
  :func:`nasplug.text.objectives.head_in_fp32`).
* **cross-entropy**: the target's logit in fp32, less a log-sum-exp over the bf16 logits
  (its error is a weighted average of the logits' own: tau against fp32 by MLM loss 0.996
  even with every logit rounded).

Only a decoder of at least :data:`MIN_DECODER_WEIGHTS` weights is split this way; a smaller
one runs in fp32 with the rest of the head (:func:`pays_off`).
:func:`decoder_of` finds the decoder (``get_output_embeddings()``, the transformers
convention); a head without one, whose decoder is not called as ``decoder(x)`` on a 2-D
input, or whose output is not the decoder's own, is scored with
:func:`nasplug.text.objectives.head_in_fp32` instead. CUDA's reduced-precision bf16 reductions
are switched off around the product, so its sums are fp32 as the bound assumes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasplug.nn.fastexp import exp_
from nasplug.text.interface import HFMaskedLM, text_model

#: bf16's unit roundoff: 8 significant bits, so rounding to nearest moves a value by at most
#: 2**-8 of itself.
BF16_UNIT = 2.0**-8
#: How many times the first-order rounding bound is stretched (its second-order terms and the
#: fp32 accumulation's own rounding are far below one such margin).
SAFETY = 2.0
#: A row with more candidates than this is recomputed whole (one fp32 product) rather than
#: pair by pair (an [n_pairs, E] gather).
DENSE_ROW = 64
#: Smallest decoder (E x V weights) whose product runs in bf16: below, the fp32 product is short
#: enough that the bound's bookkeeping and the widened copy cost more than bf16 saves. The demo's
#: 64 x 2,048 decoder: a held-out batch (518 masked rows) scored in 2.9 ms with the whole head in
#: fp32 against 3.5 ms this way; ELECTRA-small's 128 x 30,522 one: 137 rows in 13.5 ms this way
#: against 23.7 ms in fp32 (one core; random weights for the latter).
MIN_DECODER_WEIGHTS = 1 << 20


def decoder_of(net: Any) -> nn.Linear | None:
    """The MLM head's decoder, when it is a plain ``nn.Linear`` (an elastic one slices its
    weight per arch and is left to the fp32 path), else None."""
    model = text_model(net)
    owner = model.model if isinstance(model, HFMaskedLM) else model
    get = getattr(owner, "get_output_embeddings", None)
    decoder = get() if callable(get) else None
    return decoder if type(decoder) is nn.Linear else None


def pays_off(decoder: nn.Linear) -> bool:
    """Whether ``decoder``'s product is big enough to run in bf16 (:data:`MIN_DECODER_WEIGHTS`)."""
    return decoder.in_features * decoder.out_features >= MIN_DECODER_WEIGHTS


def decoder_input(head: Callable[[torch.Tensor], torch.Tensor], decoder: nn.Linear,
                  hidden: torch.Tensor) -> torch.Tensor | None:
    """The fp32 input [n, E] the decoder gets from ``head(hidden)``, the head's other layers
    run in fp32 and the decoder on no rows at all; None when the decoder is not called as
    ``decoder(x)`` on a 2-D ``x`` once, or the head's output is not the decoder's (something
    runs after it)."""
    seen: dict[str, Any] = {"calls": 0}

    def before(module: nn.Module, args: tuple[Any, ...]) -> tuple[torch.Tensor] | None:
        seen["calls"] += 1
        if len(args) != 1 or not isinstance(args[0], torch.Tensor) or args[0].dim() != 2:
            return None  # left as it is: the caller scores this head in fp32
        seen["input"] = args[0]
        return (args[0][:0],)

    def after(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        seen["output"] = output

    handles = (decoder.register_forward_pre_hook(before), decoder.register_forward_hook(after))
    try:
        with torch.autocast(hidden.device.type, enabled=False):
            out = head(hidden.float())
    finally:
        for handle in handles:
            handle.remove()
    if seen["calls"] != 1 or "input" not in seen or out is not seen.get("output"):
        return None
    return seen["input"].float()


def largest_row_norm(decoder: nn.Linear) -> float:
    """``max_v |weight[v]|`` of the decoder (one pass over the weight: once per scored batch)."""
    return float(torch.linalg.vector_norm(decoder.weight.detach().float(), dim=-1).max())


def rounding_bound(inputs: torch.Tensor, decoder: nn.Linear, row_norm: float) -> torch.Tensor:
    """Per row, ``SAFETY`` times the most a bf16 logit can differ from the fp32 one: inputs and
    weights rounded (``sum_k |x_k w_k|``, by Cauchy-Schwarz at most ``|x| max_v |w_v|``,
    ``row_norm``), the bias rounded, the output (at most that sum plus the bias) rounded."""
    products = torch.linalg.vector_norm(inputs, dim=-1) * row_norm
    largest_bias = 0.0 if decoder.bias is None else float(decoder.bias.detach().abs().max())
    return SAFETY * BF16_UNIT * (3 * products + 2 * largest_bias)


def score_block(inputs: torch.Tensor, decoder: nn.Linear, goal: torch.Tensor,
                row_norm: float) -> tuple[int, float]:
    """``(correct, summed cross-entropy)`` of one block: decoder inputs [n, E] in fp32,
    targets [n], ``row_norm`` from :func:`largest_row_norm` (the module docstring says how)."""
    weight, bias = decoder.weight.detach(), None if decoder.bias is None else decoder.bias.detach()
    with _fp32_sums(inputs.device), torch.autocast(inputs.device.type, dtype=torch.bfloat16):
        rounded = F.linear(inputs, weight, bias)  # [n, V] bf16, fp32 accumulation
    # the same values widened (exactly): one pass, after which the maximum and the
    # log-sum-exp run on fp32 (a bf16 row maximum took 5x an fp32 one on CPU)
    logits = rounded.float()
    top = logits.amax(-1)
    threshold = top - 2 * rounding_bound(inputs, decoder, row_norm)
    near = (logits.gather(1, goal[:, None]).squeeze(1) >= threshold).nonzero().squeeze(1)
    with torch.autocast(inputs.device.type, enabled=False):  # the recomputed logits in fp32
        picked = (inputs * weight[goal]).sum(-1) + (0.0 if bias is None else bias[goal])
        correct = _fp32_argmax_hits(logits[near], threshold[near], inputs[near], weight, bias, goal[near])
    log_sum = exp_(logits.sub_(top[:, None])).sum(-1).log_()
    loss_sum = float((log_sum + top - picked).sum())
    return correct, loss_sum


def _fp32_argmax_hits(logits: torch.Tensor, threshold: torch.Tensor, inputs: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None, goal: torch.Tensor) -> int:
    """Rows whose fp32 argmax is ``goal``, from the columns whose bf16 logit (``logits``: bf16, or
    widened exactly to fp32) clears the row's ``threshold`` (the only ones that can be the fp32
    maximum), recomputed in fp32: pair by pair, or whole rows where more than
    :data:`DENSE_ROW` columns clear it."""
    if goal.numel() == 0:
        return 0
    # against the threshold rounded down to bf16 (never above it: a wider window), in the
    # logits' dtype: bf16 logits, or their exact fp32 widening (a bf16 comparison is not
    # vectorised on CPU: 4-5x the time of an fp32 one)
    lowered = (threshold - threshold.abs() * 2 * BF16_UNIT).bfloat16().to(logits.dtype)
    window = logits >= lowered[:, None]
    dense = window.sum(-1) > DENSE_ROW
    hits = 0
    if bool(dense.any()):
        whole = inputs[dense] @ weight.T + (0.0 if bias is None else bias)  # [d, V] fp32
        hits += int((whole.argmax(-1) == goal[dense]).sum())
        window[dense] = False
    rows, cols = window.nonzero(as_tuple=True)
    if rows.numel() == 0:
        return hits
    exact = (inputs[rows] * weight[cols]).sum(-1) + (0.0 if bias is None else bias[cols])
    best = torch.full_like(threshold, float("-inf")).scatter_reduce_(0, rows, exact, "amax")
    winner = exact == best[rows]
    first = torch.full_like(goal, logits.shape[-1]).scatter_reduce_(0, rows[winner], cols[winner], "amin")
    return hits + int(((first == goal) & ~dense).sum())


@contextlib.contextmanager
def _fp32_sums(device: torch.device) -> Iterator[None]:
    """On CUDA, bf16 products with fp32 sums throughout (cuBLAS may otherwise reduce split
    partial sums in bf16, which the rounding bound does not cover)."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_bf16_reduced_precision_reduction
    matmul.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        matmul.allow_bf16_reduced_precision_reduction = before


__all__ = ["MIN_DECODER_WEIGHTS", "decoder_input", "decoder_of", "largest_row_norm", "pays_off", "rounding_bound",
           "score_block"]
