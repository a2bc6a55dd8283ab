"""Train-step and forward timings of the LV-BERT supernet, its extracted model, and HF BERT.

At ELECTRA-small dimensions (hidden 256, 24 sub-layers interleaved attn/ffn, vocabulary 30522,
embedding 128 for LV-BERT), batch 32 x 128, MLM with 15% of the tokens masked, it measures in
one run, interleaved (A B C A B C ...) so machine noise hits every variant alike:

(a) supernet routed through the arch / standalone extracted model, train step
    (forward + backward + AdamW step); target <= 1.05;
(b) standalone model / ``transformers.BertForMaskedLM`` at the same dimensions (SDPA attention;
    ours computes vocabulary logits only at masked positions), train step; target <= 0.6;
(c) the same two ratios for a forward pass (with the MLM loss) in eval mode.

Usage::

    .venv/bin/python benchmarks/step.py               # full run (~4 minutes, one thread)
    .venv/bin/python benchmarks/step.py --repeats 2 --batch 8   # quick check (~20 s)
    .venv/bin/python benchmarks/step.py --threads 0   # torch's default thread count

One thread by default: the 2-core machine is shared, and with 2 OpenMP threads every op waits
at a barrier for a thread the OS has descheduled, which inflates the many small ops of the
encoder far more than the few large memory-bound ones of BERT's full-vocabulary head and made
the ratios swing by 2x between repeats. Every variant runs with the same thread count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import transformers
from transformers import BertConfig, BertForMaskedLM

from nasplug.spaces.lvbert import (
    LVBertConfig,
    LVBertSupernet,
    arch_from_string,
    interleaved,
    mlm_loss,
)

MASK_ID = 103


def make_batch(batch: int, seq_len: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ids [B, T], all-ones mask, labels [B, T] with 15% masked positions (-100 elsewhere)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab, (batch, seq_len), generator=gen)
    masked = torch.rand(batch, seq_len, generator=gen) < 0.15
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    ids = torch.where(masked, torch.full_like(ids, MASK_ID), ids)
    return ids, torch.ones_like(ids), labels


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stats(values: list[float]) -> str:
    return f"{min(values):7.3f} / {statistics.median(values):7.3f} / {max(values):7.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="measured steps per variant (default 4)")
    parser.add_argument("--batch", type=int, default=32, help="sequences per batch (default 32)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

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

    optimizers = {
        "supernet": torch.optim.AdamW(supernet.parameters(), lr=5e-4, weight_decay=0.01),
        "standalone": torch.optim.AdamW(standalone.parameters(), lr=5e-4, weight_decay=0.01),
        "bert": torch.optim.AdamW(bert.parameters(), lr=5e-4, weight_decay=0.01),
    }

    def supernet_loss() -> torch.Tensor:
        hidden = supernet(ids, mask)  # routed through the active arch
        return mlm_loss(supernet.mlm_logits(hidden, labels), labels)

    losses: dict[str, Callable[[], torch.Tensor]] = {
        "supernet": supernet_loss,
        "standalone": lambda: standalone(ids, mask, labels=labels).loss,
        "bert": lambda: bert(input_ids=ids, attention_mask=mask, labels=labels).loss,
    }
    modules = {"supernet": supernet, "standalone": standalone, "bert": bert}

    def train_step(name: str) -> None:
        loss = losses[name]()
        loss.backward()
        optimizers[name].step()
        optimizers[name].zero_grad(set_to_none=True)  # unused supernet candidates stay at None

    def eval_step(name: str) -> None:
        with torch.no_grad():
            losses[name]()

    names = list(losses)
    results: dict[str, dict[str, list[float]]] = {"train": {n: [] for n in names}, "eval": {n: [] for n in names}}
    for phase, step, train in (("train", train_step, True), ("eval", eval_step, False)):
        for module in modules.values():
            module.train(train)
        for name in names:  # warm-up: allocator, optimizer state, SDPA kernel choice
            step(name)
        for _ in range(args.repeats):
            for name in names:  # interleaved A B C A B C ...
                results[phase][name].append(timed(lambda n=name, s=step: s(n)))

    n_masked = int((labels != -100).sum())
    print(f"LV-BERT step benchmark: hidden 256, {slots} sub-layers interleaved attn/ffn, vocab {vocab}, "
          f"batch {args.batch}x{args.seq_len}, {n_masked} masked tokens (15%), AdamW")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}, "
          f"repeats {args.repeats} (interleaved), seed {args.seed}")
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in modules.items()}
    print(f"parameters: supernet {params['supernet']:,} (all candidates), standalone {params['standalone']:,}, "
          f"BertForMaskedLM {params['bert']:,}")
    labels_ = {"supernet": "supernet routed", "standalone": "standalone extracted", "bert": "BertForMaskedLM"}
    for phase, title in (("train", "train step (fwd + bwd + AdamW)"), ("eval", "forward, eval mode (with MLM loss)")):
        print(f"\n{title}, seconds  min / median / max")
        for name in names:
            print(f"  {labels_[name]:<22} {stats(results[phase][name])}")
    print("\nratios per repeat  min / median / max")
    rows = [("(a) supernet / standalone, train", "train", "supernet", "standalone", 1.05),
            ("(b) standalone / BERT, train", "train", "standalone", "bert", 0.6),
            ("(c) supernet / standalone, eval fwd", "eval", "supernet", "standalone", 1.05),
            ("(c) standalone / BERT, eval fwd", "eval", "standalone", "bert", 0.6)]
    for title, phase, num, den, target in rows:
        ratios = [a / b for a, b in zip(results[phase][num], results[phase][den], strict=True)]
        verdict = "ok" if statistics.median(ratios) <= target else "MISSED"
        print(f"  {title:<37} {stats(ratios)}   target <= {target}  [{verdict} on the median]")


if __name__ == "__main__":
    main()
