"""The bf16 vocabulary product of held-out MLM scoring: fp32's argmax exactly, fp32's loss
within rounding, and the fallbacks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasplug.text import bf16_vocab


def near_tied_decoder(vocab: int = 60, width: int = 16, seed: int = 0) -> nn.Linear:
    """Columns in pairs whose logits differ by ~1e-4 of their size: below bf16's resolution
    (~4e-3), far above fp32's (~1e-7)."""
    gen = torch.Generator().manual_seed(seed)
    decoder = nn.Linear(width, vocab)
    base = torch.randn(vocab // 2, width, generator=gen)
    with torch.no_grad():
        decoder.weight.copy_(torch.cat([base, base * (1 + 1e-4 * torch.randn(vocab // 2, 1, generator=gen))]))
        decoder.bias.copy_(torch.cat([torch.zeros(vocab // 2), 1e-4 * torch.randn(vocab // 2, generator=gen)]))
    return decoder


def test_accuracy_is_fp32s_argmax_exactly_where_bf16_cannot_tell_the_pairs_apart():
    decoder = near_tied_decoder()
    gen = torch.Generator().manual_seed(1)
    inputs = 3 * torch.randn(400, 16, generator=gen)
    exact = (inputs.double() @ decoder.weight.double().T + decoder.bias.double()).detach()  # [n, V]
    best, runner_up = exact.topk(2, dim=-1).indices.unbind(-1)
    goal = torch.where(torch.arange(400) % 2 == 0, best, runner_up)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        naive = decoder(inputs).argmax(-1)  # bf16 logits: the pairs tie or flip
        correct, loss_sum = bf16_vocab.score_block(inputs, decoder, goal)
    want = int((exact.argmax(-1) == goal).sum())
    assert int((naive == goal).sum()) != want, "the case must defeat a plain bf16 argmax"
    assert correct == want
    # each position's log-sum-exp is off by at most its logits' rounding bound (the target's logit is fp32)
    top = exact.amax(-1).float()
    allowed = float(bf16_vocab.rounding_bound(inputs, decoder, top).sum()) / bf16_vocab.SAFETY
    assert abs(loss_sum - float(F.cross_entropy(exact, goal, reduction="sum"))) <= allowed


def test_the_rounding_bound_holds_for_every_logit():
    gen = torch.Generator().manual_seed(2)
    decoder = nn.Linear(64, 500)
    with torch.no_grad():
        decoder.weight.copy_(torch.randn(500, 64, generator=gen) * 0.5)
        decoder.bias.copy_(torch.randn(500, generator=gen) * 3)
    inputs = 4 * torch.randn(300, 64, generator=gen)
    exact = (inputs.double() @ decoder.weight.double().T + decoder.bias.double()).detach()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = decoder(inputs).double()
    top = rounded.amax(-1).float()
    bound = bf16_vocab.rounding_bound(inputs, decoder, top).double() / bf16_vocab.SAFETY  # one-rounding bound
    near_top = rounded >= (top.double() - 2 * bound)[:, None]  # the bound speaks of logits near the maximum
    error = (rounded - exact).abs()
    assert bool((error[near_top] <= bound[:, None].expand_as(error)[near_top]).all())
    assert float(error.max()) > 0  # the products really were rounded


def test_a_head_that_changes_the_decoders_output_is_left_to_fp32():
    decoder = nn.Linear(8, 20)
    hidden = torch.randn(5, 8)
    assert bf16_vocab.decoder_input(lambda h: decoder(h), decoder, hidden) is not None
    assert bf16_vocab.decoder_input(lambda h: decoder(h) * 2, decoder, hidden) is None


def test_only_a_plain_linear_decoder_is_found():
    from nasplug.nn.elastic import ElasticLinear

    class Model(nn.Module):
        def __init__(self, decoder: nn.Module) -> None:
            super().__init__()
            self.decoder = decoder

        def encode(self, *args):  # the text-model interface, for text_model()
            raise NotImplementedError

        def get_output_embeddings(self) -> nn.Module:
            return self.decoder

    plain = nn.Linear(4, 9)
    assert bf16_vocab.decoder_of(Model(plain)) is plain
    assert bf16_vocab.decoder_of(Model(ElasticLinear(4, 9, in_key="hidden"))) is None  # slices its weight per arch
