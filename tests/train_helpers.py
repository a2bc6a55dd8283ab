"""Tiny models and data shared by the training tests (no tests here).

Imported by tests/test_train*.py, test_checkpoint*.py, test_objectives*.py, test_ddp*.py and
by the scripts those tests run in subprocesses (they put tests/ on ``sys.path``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from nasplug.oneshot.config import TrainConfig
from nasplug.text.packing import PackedData
from nasplug.text.tokenizer import TokenInfo

VOCAB = 120
SEQ = 16
TOKENS = TokenInfo(vocab_size=VOCAB, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4, special_ids=(0, 1, 2, 3, 4))


def tiny_data(rows: int = 256, heldout: int = 64, seq: int = SEQ, seed: int = 0, pad_last: bool = True) -> PackedData:
    """Repetitive rows: each row repeats one token ``a`` (80% of its positions; the rest are
    random), so a masked token is the row's majority token, easy to learn from the context."""
    gen = torch.Generator().manual_seed(seed)
    n = rows + heldout
    main = 5 + torch.randint(0, VOCAB - 5, (n, 1), generator=gen)
    noise = 5 + torch.randint(0, VOCAB - 5, (n, seq - 2), generator=gen)
    body = torch.where(torch.rand(n, seq - 2, generator=gen) < 0.8, main, noise)  # [n, seq-2]
    ids = torch.cat([torch.full((n, 1), 2), body, torch.full((n, 1), 3)], dim=1).to(torch.int32)
    if pad_last:  # one short row with padding, like the packer's last row
        ids[rows - 1, seq // 2 :] = 0
        ids[rows - 1, seq // 2 - 1] = 3
    return PackedData(train=ids[:rows], heldout=ids[rows:], tokens=TOKENS)


def tiny_space(slots: int = 3, hidden: int = 32, **kw: Any) -> Any:
    from nasplug.spaces.lvbert import LVBertSpace

    return LVBertSpace(size=None, slots=slots, hidden=hidden, vocab_size=VOCAB, max_positions=32, seq_len=SEQ, **kw)


def tiny_supernet(space: Any, dropout: float = 0.1, seed: int = 0) -> Any:
    from nasplug.spaces.lvbert import LVBertSupernet

    config = space.config(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return LVBertSupernet(config, num_slots=space.slots, kinds=space.allowed, seed=seed)


def tiny_task(objective: str = "mlm", data: PackedData | None = None, **settings: Any) -> Any:
    """The ``mlm`` (or ``electra``) task over :func:`tiny_data` (no corpus, no tokenizer)."""
    from nasplug.text.tasks import ElectraTask, MLMTask

    cls = ElectraTask if objective == "electra" else MLMTask
    return cls.from_data(data if data is not None else tiny_data(), **settings)


def tiny_cfg(**kw: Any) -> TrainConfig:
    # fp32 pinned: the tests compare exact figures, on any machine (precision auto is bf16 on AMX CPUs)
    base: dict[str, Any] = dict(steps=6, batch_size=8, lr=2e-3, warmup_steps=1, eval_batches=2, eval_archs=2,
                                log_every=1, device="cpu", seed=0, precision="fp32")
    return TrainConfig(**{**base, **kw})


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def step_records(run_dir: Path) -> dict[int, dict[str, Any]]:
    """The last training record of every step (a resumed run repeats some steps)."""
    return {r["step"]: r for r in read_metrics(run_dir) if "event" not in r}


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


RUNNER = '''
import json, sys, time
sys.path.insert(0, {tests!r})
spec = json.loads(sys.argv[1])
import torch
torch.set_num_threads(spec.get("threads", 1))
import nasplug.oneshot.train as train
from train_helpers import tiny_cfg, tiny_space, tiny_supernet, tiny_task

if spec.get("slow"):  # pause after each step record so a watcher can kill mid-run
    _append = train.append_jsonl
    def append_jsonl(path, record):
        _append(path, record)
        if "event" not in record:
            time.sleep(spec["slow"])
    train.append_jsonl = append_jsonl
space = tiny_space(slots=spec.get("slots", 3))
model = tiny_supernet(space, dropout=spec.get("dropout", 0.1))
import os
try:
    train.train(model, tiny_task(), tiny_cfg(**spec["cfg"]), spec["run_dir"], space=space,
                resume=spec.get("resume", False), progress=False)
except Exception as exc:  # each rank says how it stopped; rank 0 waits so torchrun lets rank 1 say it too
    rank = os.environ.get("RANK", "0")
    open(os.path.join(spec["run_dir"], "error-rank" + rank + ".txt"), "w").write(str(exc))
    if rank == "0":
        time.sleep(2)
    raise
from nasplug import distributed
distributed.destroy(wait_for_all=True)
'''


def write_runner(folder: Path) -> Path:
    """A script that runs :func:`nasplug.oneshot.train.train` on the tiny supernet from a JSON spec (argv[1])."""
    path = Path(folder) / "run_pretrain.py"
    path.write_text(RUNNER.format(tests=str(Path(__file__).resolve().parent)))
    return path


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest, and deterministically, on one thread (the CPU is shared);
    modules activate this by importing it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
