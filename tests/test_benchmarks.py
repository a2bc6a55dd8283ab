"""The benchmark scripts' own logic: gpu.sh's CPU dry run end to end, and the FLOP count that
step.py and gpu.py divide by (checked against torch's FlopCounterMode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from step import make_batch, model_flops  # noqa: E402  (benchmarks/ is not a package)


@pytest.mark.slow
def test_gpu_script_dry_run_runs_every_section() -> None:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), "--dry-run"], capture_output=True, text=True,
                          env=env, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = done.stdout
    for expected in ("environment: torch", "bf16 matrix-product peak: measured", "bf16 train steps",
                     "torch.compile (backend eager)", "evaluator, 6 candidates", "smoke test, 2 processes: ok"):
        assert expected in out, expected
    steps = [line.split()[0] for line in out.splitlines() if "ms/step" in line]
    assert steps == ["supernet", "standalone", "bert", "standalone", "bert"], out
    assert all("MFU" in line for line in out.splitlines() if "ms/step" in line)


def counted(model: torch.nn.Module, **inputs: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        model(**inputs).loss.backward()
    return counter.get_total_flops()


def test_model_flops_matches_torch_for_attention_feed_forward_and_bert() -> None:
    from transformers import BertConfig, BertForMaskedLM

    from nasplug.spaces.lvbert import LVBertConfig, LVBertSupernet, arch_from_string

    torch.manual_seed(0)
    ids, mask, labels = make_batch(4, 16, 500, 0)
    masked = int((labels != -100).sum())
    shape = dict(tokens=64, seq_len=16, masked=masked, hidden=32, ffn=64, heads=2, vocab=500)
    config = LVBertConfig(vocab_size=500, hidden_size=32, embedding_size=16, num_attention_heads=2,
                          intermediate_size=64, layers=["attn", "ffn"], max_position_embeddings=64)
    ours = LVBertSupernet(config, seed=0, discriminator_head=False).extract(arch_from_string("AF"), head="mlm")
    got = counted(ours.train(), input_ids=ids, attention_mask=mask, labels=labels)
    assert got == 3 * model_flops(["attn", "ffn"], embedding=16, **shape)
    bert = BertForMaskedLM(BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=64, attn_implementation="sdpa")).train()
    got = counted(bert, input_ids=ids, attention_mask=mask, labels=labels)
    assert got == 3 * model_flops(["attn", "ffn"] * 2, embedding=None, full_head=True, **shape)


def test_model_flops_of_the_convolution_forward(monkeypatch) -> None:
    from nasplug.spaces.lvbert import LVBertConfig, LVBertSupernet, arch_from_string, layers

    # the mixing is elementwise model work; mixed as a band product it costs T + K - 1
    # multiply-adds per output instead of K, mostly by zeros, which are not model FLOPs
    monkeypatch.setattr(layers, "BAND_MAX_LEN", {"reduced": 0, "fp32": 0})

    config = LVBertConfig(vocab_size=500, hidden_size=32, embedding_size=16, num_attention_heads=2,
                          intermediate_size=64, layers=["conv"], max_position_embeddings=64)
    model = LVBertSupernet(config, seed=0, discriminator_head=False).extract(arch_from_string("C"), head="mlm")
    ids, mask, labels = make_batch(4, 16, 500, 1)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:  # torch over-counts grouped conv backward
        model.eval()(ids, mask, labels=labels)
    masked = int((labels != -100).sum())
    assert counter.get_total_flops() == model_flops(["conv"], 64, 16, masked, hidden=32, ffn=64, heads=2,
                                                    vocab=500, embedding=16)
