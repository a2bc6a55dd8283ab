"""The bf16 vocabulary product of held-out MLM scoring: fp32's argmax exactly, fp32's loss
within rounding, and the fallbacks."""

from __future__ import annotations

import pytest
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
        apart = 1e-4 * (1 + torch.rand(vocab // 2, 1, generator=gen)) * torch.randn(vocab // 2, 1, generator=gen).sign()
        decoder.weight.copy_(torch.cat([base, base * (1 + apart)]))  # at least 1e-4 apart: fp32 tells them apart
        decoder.bias.zero_()
    return decoder


@pytest.mark.parametrize("dense_row", [64, 0])
def test_accuracy_is_fp32s_argmax_exactly_where_bf16_cannot_tell_the_pairs_apart(dense_row, monkeypatch):
    """Pair by pair, and with every row recomputed whole (``DENSE_ROW`` 0)."""
    monkeypatch.setattr(bf16_vocab, "DENSE_ROW", dense_row)
    decoder = near_tied_decoder()
    gen = torch.Generator().manual_seed(1)
    inputs = 3 * torch.randn(400, 16, generator=gen)
    exact = (inputs.double() @ decoder.weight.double().T + decoder.bias.double()).detach()  # [n, V]
    best, runner_up = exact.topk(2, dim=-1).indices.unbind(-1)
    goal = torch.where(torch.arange(400) % 2 == 0, best, runner_up)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        naive = decoder(inputs).argmax(-1)  # bf16 logits: the pairs tie or flip
        correct, loss_sum = bf16_vocab.score_block(inputs, decoder, goal, bf16_vocab.largest_row_norm(decoder))
    want = int((exact.argmax(-1) == goal).sum())
    assert int((naive == goal).sum()) != want, "the case must defeat a plain bf16 argmax"
    assert correct == want
    # each position's log-sum-exp is off by at most its logits' rounding bound (the target's logit is fp32)
    bound = bf16_vocab.rounding_bound(inputs, decoder, bf16_vocab.largest_row_norm(decoder))
    allowed = float(bound.sum()) / bf16_vocab.SAFETY
    assert abs(loss_sum - float(F.cross_entropy(exact, goal, reduction="sum"))) <= allowed


@pytest.mark.parametrize("case", ["random", "aligned"])
def test_the_rounding_bound_holds_for_every_logit(case):
    """Without its safety factor, for random operands and for inputs parallel to weight rows
    (the products all of one sign, no cancellation of rounding errors)."""
    gen = torch.Generator().manual_seed(2)
    decoder = nn.Linear(64, 500)
    with torch.no_grad():
        decoder.weight.copy_(torch.randn(500, 64, generator=gen) * 0.5)
        decoder.bias.copy_(torch.randn(500, generator=gen) * 3)
    inputs = 4 * torch.randn(300, 64, generator=gen)
    if case == "aligned":
        inputs = 7 * decoder.weight.detach()[:300].abs() * (1 + 2**-9)  # values half-way between bf16 steps
        with torch.no_grad():
            decoder.weight.abs_()
    exact = (inputs.double() @ decoder.weight.double().T + decoder.bias.double()).detach()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = decoder(inputs).double()
    bound = bf16_vocab.rounding_bound(inputs, decoder, bf16_vocab.largest_row_norm(decoder)).double()
    error = (rounded - exact).abs()
    assert bool((error <= bound[:, None] / bf16_vocab.SAFETY).all())
    assert float(error.max()) > 0  # the products really were rounded


def test_a_head_the_decoder_is_not_last_or_plain_in_is_left_to_fp32():
    decoder = nn.Linear(8, 20)
    hidden = torch.randn(5, 8)
    assert bf16_vocab.decoder_input(lambda h: decoder(h), decoder, hidden) is not None
    assert bf16_vocab.decoder_input(lambda h: decoder(h) * 2, decoder, hidden) is None  # something after it
    assert bf16_vocab.decoder_input(lambda h: decoder(decoder(h)[:, :8]), decoder, hidden) is None  # called twice
    assert bf16_vocab.decoder_input(lambda h: decoder(h[0]), decoder, hidden) is None  # a 1-D input
    assert bf16_vocab.decoder_input(lambda h: F.linear(h, decoder.weight), decoder, hidden) is None  # never called


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


def test_a_hugging_face_masked_lm_takes_the_bf16_product_and_scores_like_its_fp32_head(monkeypatch):
    from transformers import BertConfig, BertForMaskedLM

    from nasplug.text import objectives

    monkeypatch.setattr(bf16_vocab, "MIN_DECODER_WEIGHTS", 0)  # this tiny decoder would stay in fp32
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64)).eval()
    assert bf16_vocab.decoder_of(model) is model.cls.predictions.decoder
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 300, (4, 16), generator=gen)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = objectives.encode(model, ids, torch.ones_like(ids))
        best = model.cls(hidden.float()).argmax(-1)  # half the targets are the head's own argmax
        labels = torch.where(torch.rand(4, 16, generator=gen) < 0.5, best, ids)
        labels = torch.where(torch.rand(4, 16, generator=gen) < 0.4, labels, torch.full_like(ids, -100))
        used: list[int] = []
        real = bf16_vocab.score_block
        monkeypatch.setattr(bf16_vocab, "score_block", lambda *a: used.append(1) or real(*a))
        got: dict = {}
        objectives.score_mlm(model, labels)(got, hidden)
        assert used, "the bf16 vocabulary product ran"
        monkeypatch.setattr(bf16_vocab, "decoder_of", lambda net: None)
        want: dict = {}
        objectives.score_mlm(model, labels)(want, hidden)
    assert got["mlm_correct"] == want["mlm_correct"] > 0
    assert got["mlm_loss_sum"] == pytest.approx(want["mlm_loss_sum"], rel=1e-3)



@pytest.mark.parametrize("minimum", [32 * 300 + 1, 32 * 300])
def test_a_decoder_below_the_size_keeps_the_whole_head_in_fp32(minimum, monkeypatch):
    """Below ``MIN_DECODER_WEIGHTS`` (E x V) the decoder runs in fp32 on every masked row and
    score_block never runs; from that size on the bf16 product takes over."""
    from transformers import BertConfig, BertForMaskedLM

    from nasplug.text import objectives

    monkeypatch.setattr(bf16_vocab, "MIN_DECODER_WEIGHTS", minimum)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64)).eval()
    used: list[int] = []
    real = bf16_vocab.score_block
    monkeypatch.setattr(bf16_vocab, "score_block", lambda *a: used.append(1) or real(*a))
    rows: list[tuple[int, torch.dtype]] = []
    model.cls.predictions.decoder.register_forward_hook(lambda m, args, out: rows.append((len(args[0]), out.dtype)))
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 300, (2, 8), generator=gen)
    labels = torch.where(torch.rand(2, 8, generator=gen) < 0.5, ids, torch.full_like(ids, -100))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = objectives.encode(model, ids, torch.ones_like(ids))
        got: dict = {}
        objectives.score_mlm(model, labels)(got, hidden)
    assert got["mlm_count"] == int((labels != -100).sum()) > 0
    if minimum > 32 * 300:
        assert not used and rows == [(got["mlm_count"], torch.float32)]
    else:
        assert used and rows == [(0, torch.float32)]  # read off on no rows; the product ran in bf16 outside it
