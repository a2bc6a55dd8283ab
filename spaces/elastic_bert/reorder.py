"""DynaBERT's re-ordering of a pre-trained BERT's heads and FFN neurons by importance.

An elastic width keeps the *first* k heads and neurons, so a pre-trained model loaded into
the supernet should have its most useful ones first (Hou et al. 2020, "DynaBERT", sec. 2.1).
The importance of a head or neuron is the loss change its removal would cause, to first
order: a mask ``m`` multiplies its output (1 = kept) and ``I = sum over batches |dL/dm|``
(Michel et al. 2019), measured at the largest arch on the task's training batches. Each
layer's heads (Q/K/V rows and output-projection columns, ``head_size`` at a time) and FFN
neurons (first-layer rows, second-layer columns) are then sorted by decreasing importance:
a permutation, so the largest arch computes the same function as before.
"""

from __future__ import annotations

from typing import Any

import torch

BATCHES = 8  # training batches the importance is summed over
BATCH_SIZE = 16


def reorder_by_importance(supernet: Any, task: Any, batches: int = BATCHES, batch_size: int = BATCH_SIZE,
                          seed: int = 0) -> dict[str, torch.Tensor]:
    """Sort every layer's heads and FFN neurons of ``supernet`` (in place) by importance on
    ``task``'s training data; returns the importances before sorting (``heads`` [L, A],
    ``ffn`` [L, F]). Gradients of the weights are left as they were (none)."""
    config = supernet.config
    layers, heads, ffn, d = config.num_hidden_layers, config.num_attention_heads, config.intermediate_size, \
        config.head_size
    largest = {"depth": layers, "hidden": config.hidden_size,
               **{f"heads{i}": heads for i in range(layers)}, **{f"ffn{i}": ffn for i in range(layers)}}
    device = next(supernet.parameters()).device
    head_mask = torch.ones(layers, heads, device=device, requires_grad=True)
    ffn_mask = torch.ones(layers, ffn, device=device, requires_grad=True)
    hooks = []
    for i, block in enumerate(supernet.layers.blocks):
        hooks.append(block.attention.out.register_forward_pre_hook(
            lambda _m, args, i=i: (_scale_heads(args[0], head_mask[i], d),)))
        hooks.append(block.ffn.fc2.register_forward_pre_hook(lambda _m, args, i=i: (args[0] * ffn_mask[i],)))
    importance = {"heads": torch.zeros(layers, heads, device=device), "ffn": torch.zeros(layers, ffn, device=device)}
    training, iterator = supernet.training, task.training_batches(batch_size, seed)
    try:
        supernet.eval()
        with supernet.using(largest):
            for step in range(1, batches + 1):
                micro, counts = task.micro_batches(next(iterator), step, seed, [slice(None)], device)
                loss, _ = task.loss(supernet, micro[0], counts, {})
                grads = torch.autograd.grad(loss, [head_mask, ffn_mask])
                importance["heads"] += grads[0].abs()
                importance["ffn"] += grads[1].abs()
    finally:
        for hook in hooks:
            hook.remove()
        supernet.train(training)
    with torch.no_grad():
        for i, block in enumerate(supernet.layers.blocks):
            _permute_heads(block.attention, torch.argsort(-importance["heads"][i], stable=True), d)
            _permute_neurons(block.ffn, torch.argsort(-importance["ffn"][i], stable=True))
    return importance


def _scale_heads(x: torch.Tensor, mask: torch.Tensor, d: int) -> torch.Tensor:
    """[..., k * d] times each head's mask entry (the first k of ``mask``)."""
    k = x.shape[-1] // d
    return (x.unflatten(-1, (k, d)) * mask[:k, None]).flatten(-2)


def _permute_heads(attention: Any, order: torch.Tensor, d: int) -> None:
    rows = (order[:, None] * d + torch.arange(d, device=order.device)).flatten()  # head order -> feature order
    for proj in (attention.q, attention.k, attention.v):
        proj.weight.copy_(proj.weight[rows])
        if proj.bias is not None:
            proj.bias.copy_(proj.bias[rows])
    attention.out.weight.copy_(attention.out.weight[:, rows])


def _permute_neurons(ffn: Any, order: torch.Tensor) -> None:
    ffn.fc1.weight.copy_(ffn.fc1.weight[order])
    if ffn.fc1.bias is not None:
        ffn.fc1.bias.copy_(ffn.fc1.bias[order])
    ffn.fc2.weight.copy_(ffn.fc2.weight[:, order])
