"""Train-step and forward timings of the LV-BERT supernet, its extracted model, and HF BERT, in
fp32 and bf16, with achieved FLOP/s against this machine's measured matrix-product peaks.

At ELECTRA-small dimensions (hidden 256, 24 sub-layers interleaved attn/ffn, vocabulary 30522,
embedding 128 for LV-BERT), batch 32 x 128, MLM with 15% of the tokens masked, it measures in
one run, interleaved (A B C ... A B C ...) so machine noise hits every variant alike, each of
the supernet routed through the arch, the standalone extracted model and
``transformers.BertForMaskedLM`` (SDPA attention) in fp32 and in bf16 (``torch.autocast``, as
``precision: bf16`` trains):

(a) supernet / standalone, train step (forward + backward + fused AdamW), per precision; target <= 1.05;
(b) standalone / BERT, train step, like for like: bf16 / bf16 (target <= 0.25) and fp32 / fp32
    (target <= 0.6; ours computes vocabulary logits only at masked positions);
(c) the same ratios for a forward pass (with the MLM loss) in eval mode;
(e) with ``--torch-dropout``: the standalone step with the cheap dropout masks and written-out
    attention (:mod:`nasplug.nn.dropout`) / the same model with torch's dropout and SDPA;
(d) achieved matrix-product FLOP/s of every train step, as a fraction of the peak of its
    precision, the best of large matrix products measured in the same run before and after
    the steps (target: standalone bf16 >= 50% of the bf16 peak). FLOPs are counted
    analytically (2 per multiply-add of every matrix product, backward = 2 x forward;
    elementwise work, such as the dynamic convolution's mixing, not counted): ``model_flops``
    below, checked against torch's FlopCounterMode by tests/test_benchmarks.py.

Usage::

    .venv/bin/python benchmarks/step.py               # full run (~10 minutes, one thread)
    .venv/bin/python benchmarks/step.py --repeats 2 --batch 8   # quick check
    .venv/bin/python benchmarks/step.py --threads 0   # torch's default thread count

One thread by default: the 2-core machine is shared, and with 2 OpenMP threads every op waits
at a barrier for a thread the OS has descheduled (benchmarks/threads.py). Every variant runs
with the same thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from unittest import mock

import torch
import transformers
from transformers import BertConfig, BertForMaskedLM

import nasplug.nn.dropout
from nasplug.spaces.lvbert import LVBertConfig, LVBertSupernet, arch_from_string, interleaved, mlm_loss

MASK_ID = 103
PEAK_SHAPES = ((4096, 256, 1024), (4096, 1024, 256), (2048, 2048, 2048))


def make_batch(batch: int, seq_len: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ids [B, T], all-ones mask, labels [B, T] with 15% masked positions (-100 elsewhere)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(1000, vocab // 2), vocab, (batch, seq_len), generator=gen)
    masked = torch.rand(batch, seq_len, generator=gen) < 0.15
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    ids = torch.where(masked, torch.full_like(ids, MASK_ID), ids)
    return ids, torch.ones_like(ids), labels


def model_flops(kinds: list[str], tokens: int, seq_len: int, masked: int, *, hidden: int, ffn: int, heads: int,
                vocab: int, embedding: int | None, kernel: int = 9, full_head: bool = False) -> float:
    """Forward matrix-product FLOPs of an encoder with sub-layers ``kinds`` plus its MLM head.

    ``embedding`` None: no E -> H projection (BERT); ``full_head``: vocabulary logits at every
    token through BERT's H -> H transform (else at the ``masked`` tokens through H -> E -> V).
    """
    h, per_token = hidden, 0.0
    for kind in kinds:
        if kind == "attn":
            per_token += 4 * h * h + 2 * seq_len * h  # q, k, v, output; scores and weights x values
        elif kind == "ffn":
            per_token += 2 * h * ffn
        else:  # conv: GLU (2), pointwise, output; kernel generator; depthwise conv (not the elementwise mixing)
            per_token += 4 * h * h + h * heads * kernel + h * kernel
    if embedding is not None:
        per_token += embedding * h
    if full_head:
        head = tokens * (h * h + h * vocab)
    else:
        head = masked * (h * (embedding or h) + (embedding or h) * vocab)
    return 2.0 * (tokens * per_token + head)


def matmul_peak(dtype: torch.dtype, repeats: int = 3) -> float:
    """Best GFLOP/s of large matrix products in ``dtype`` (the shapes of :data:`PEAK_SHAPES`)."""
    best = 0.0
    for m, k, n in PEAK_SHAPES:
        a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        a @ b  # warm-up: kernel choice, packing buffers
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * m * k * n / (time.perf_counter() - start) / 1e9)
    return best


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stats(values: list[float]) -> str:
    return f"{min(values):7.3f} / {statistics.median(values):7.3f} / {max(values):7.3f}"


def build(args: argparse.Namespace) -> tuple[dict[str, torch.nn.Module], dict[str, Callable[[], torch.Tensor]], dict]:
    """The three models, their MLM losses on one fixed batch, and what the FLOP count needs."""
    slots, vocab = 24, 30522
    arch = arch_from_string(interleaved(slots))
    supernet = LVBertSupernet(LVBertConfig.from_size("small", slots=slots), seed=args.seed, discriminator_head=False)
    supernet.activate(arch)
    standalone = supernet.extract(arch, head="mlm")
    bert = BertForMaskedLM(BertConfig(
        vocab_size=vocab, hidden_size=256, num_hidden_layers=slots // 2, num_attention_heads=4,
        intermediate_size=1024, max_position_embeddings=512, attn_implementation="sdpa",
    ))
    ids, mask, labels = make_batch(args.batch, args.seq_len, vocab, args.seed)

    def supernet_loss() -> torch.Tensor:
        return mlm_loss(supernet.mlm_logits(supernet(ids, mask), labels), labels)  # routed through the arch

    losses = {"supernet": supernet_loss,
              "standalone": lambda: standalone(ids, mask, labels=labels).loss,
              "bert": lambda: bert(input_ids=ids, attention_mask=mask, labels=labels).loss}
    tokens, masked = ids.numel(), int((labels != -100).sum())
    shape = dict(tokens=tokens, seq_len=args.seq_len, masked=masked, hidden=256, ffn=1024, heads=4, vocab=vocab)
    kinds = supernet.route(arch)
    flops = {"supernet": model_flops(kinds, embedding=128, **shape),
             "standalone": model_flops(kinds, embedding=128, **shape),
             "bert": model_flops(["attn", "ffn"] * (slots // 2), embedding=None, full_head=True, **shape)}
    info = {"slots": slots, "vocab": vocab, "masked": masked, "flops": flops}
    return {"supernet": supernet, "standalone": standalone, "bert": bert}, losses, info


def measure(args: argparse.Namespace, modules: dict, losses: dict) -> dict[str, dict[str, list[float]]]:
    """Seconds per repeat of every (phase, model, precision), interleaved."""
    # torch's fused AdamW: what nasplug's trainer and transformers' Trainer (torch >= 2.8) both use
    optimizers = {n: torch.optim.AdamW(m.parameters(), lr=5e-4, weight_decay=0.01, fused=True)
                  for n, m in modules.items()}

    def precision(name: str) -> contextlib.AbstractContextManager[object]:
        return torch.autocast("cpu", dtype=torch.bfloat16) if name.endswith("bf16") else contextlib.nullcontext()

    def train_step(variant: str) -> None:
        model = variant.split()[0]
        torch_dropout = model == "torchdrop"  # the standalone model with torch's dropout and SDPA (the old path)
        model = "standalone" if torch_dropout else model
        with precision(variant), mock.patch.object(nasplug.nn.dropout, "_cheap", lambda x: not torch_dropout):
            loss = losses[model]()
            loss.backward()
        optimizers[model].step()
        optimizers[model].zero_grad(set_to_none=True)  # unused supernet candidates stay at None

    def eval_step(variant: str) -> None:
        with torch.no_grad(), precision(variant):
            losses[variant.split()[0]]()

    variants = [f"{m} {p}" for p in args.precisions for m in modules]
    extra = [f"torchdrop {p}" for p in args.precisions] if args.torch_dropout else []
    results: dict[str, dict[str, list[float]]] = {"train": {v: [] for v in variants + extra},
                                                  "eval": {v: [] for v in variants}}
    for phase, step, train in (("train", train_step, True), ("eval", eval_step, False)):
        for module in modules.values():
            module.train(train)
        variants = list(results[phase])
        for variant in variants:  # warm-up: allocator, optimizer state, kernel choice
            step(variant)
        for _ in range(args.repeats):
            for variant in variants:  # interleaved A B C A B C ...
                results[phase][variant].append(timed(lambda v=variant, s=step: s(v)))
    return results


def report(args: argparse.Namespace, results: dict, info: dict, peaks: dict[str, float]) -> None:
    labels = {"supernet": "supernet routed", "standalone": "standalone extracted", "bert": "BertForMaskedLM",
              "torchdrop": "standalone, torch drop"}
    for phase, title in (("train", "train step (fwd + bwd + AdamW)"), ("eval", "forward, eval mode (with MLM loss)")):
        print(f"\n{title}, seconds  min / median / max")
        for variant, values in results[phase].items():
            model, precision = variant.split()
            print(f"  {labels[model]:<22} {precision:<5} {stats(values)}")
    print("\nratios per repeat  min / median / max")
    rows = []
    for p in args.precisions:
        rows += [(f"(a) supernet / standalone, train, {p}", "train", f"supernet {p}", f"standalone {p}", 1.05),
                 (f"(b) standalone / BERT, train, {p}", "train", f"standalone {p}", f"bert {p}",
                  0.25 if p == "bf16" else 0.6),
                 (f"(c) supernet / standalone, eval fwd, {p}", "eval", f"supernet {p}", f"standalone {p}", 1.05),
                 (f"(c) standalone / BERT, eval fwd, {p}", "eval", f"standalone {p}", f"bert {p}", 0.6)]
    if args.torch_dropout:
        rows += [(f"(e) standalone / torch's dropout, train, {p}", "train", f"standalone {p}", f"torchdrop {p}", None)
                 for p in args.precisions]
    if len(args.precisions) == 2:
        rows += [(f"bf16 / fp32, train, {m}", "train", f"{m} bf16", f"{m} fp32", None) for m in ("standalone", "bert")]
    for title, phase, num, den, target in rows:
        ratios = [a / b for a, b in zip(results[phase][num], results[phase][den], strict=True)]
        verdict = ""
        if target is not None:
            verdict = f"target <= {target}  [{'ok' if statistics.median(ratios) <= target else 'MISSED'} on the median]"
        print(f"  {title:<47} {stats(ratios)}   {verdict}")
    print("\n(d) achieved matrix-product FLOP/s of the train step, fraction of the measured peak: median step "
          "(fastest step)")
    for p in args.precisions:
        print(f"  {p} matrix-product peak: {peaks[p]:.0f} GFLOP/s (best of {PEAK_SHAPES}, before and after)")
    for variant, values in results["train"].items():
        model, precision = variant.split()
        flops = 3 * info["flops"]["standalone" if model == "torchdrop" else model]
        gflops, best = flops / statistics.median(values) / 1e9, flops / min(values) / 1e9
        target = "   target >= 50%" if variant == "standalone bf16" else ""
        print(f"  {labels[model]:<22} {precision:<5} {flops / 1e9:6.1f} GFLOP/step  {gflops:6.1f} GFLOP/s "
              f"{100 * gflops / peaks[precision]:5.1f}% of peak  ({best:6.1f}, {100 * best / peaks[precision]:5.1f}%)"
              f"{target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="measured steps per variant (default 4)")
    parser.add_argument("--batch", type=int, default=32, help="sequences per batch (default 32)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch default)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16 (default both)")
    parser.add_argument("--torch-dropout", action="store_true",
                        help="also time the standalone step with torch's dropout and SDPA attention (the old path)")
    args = parser.parse_args()
    args.precisions = [p for p in ("fp32", "bf16") if p in args.precisions.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {p: matmul_peak(dtypes[p]) for p in args.precisions}
    modules, losses, info = build(args)
    results = measure(args, modules, losses)
    peaks = {p: max(peaks[p], matmul_peak(dtypes[p])) for p in args.precisions}
    print(f"LV-BERT step benchmark: hidden 256, {info['slots']} sub-layers interleaved attn/ffn, "
          f"vocab {info['vocab']}, batch {args.batch}x{args.seq_len}, {info['masked']} masked tokens (15%), AdamW")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}, "
          f"repeats {args.repeats} (interleaved), seed {args.seed}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, bf16 autocast for bf16")
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in modules.items()}
    print(f"parameters: supernet {params['supernet']:,} (all candidates), standalone {params['standalone']:,}, "
          f"BertForMaskedLM {params['bert']:,}")
    report(args, results, info, peaks)


if __name__ == "__main__":
    main()
