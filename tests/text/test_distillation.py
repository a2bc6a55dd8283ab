"""In-place distillation of the mlm task: the student learns the teacher's softmax at the
masked positions; toward itself the loss is the teacher's entropy, and its gradient differs
from the hard-label loss's."""

from __future__ import annotations

import torch
from train_helpers import one_thread, tiny_space, tiny_supernet, tiny_task  # noqa: F401 (one_thread: autouse)

ARCH = {"L00": "attn", "L01": "ffn", "L02": "conv"}


def _micro(task):
    batch = next(task.training_batches(8, 0))
    micro, counts = task.micro_batches(batch, 1, 0, [slice(None)], torch.device("cpu"))
    return micro[0], counts


def test_distilling_toward_itself_costs_the_teachers_entropy() -> None:
    space, task = tiny_space(), tiny_task()
    supernet = tiny_supernet(space, dropout=0.0).eval()
    batch, counts = _micro(task)
    with supernet.using(ARCH):
        loss, stats, target = task.teacher_loss(supernet, batch, counts, {})
        soft, soft_stats = task.distill_loss(supernet, batch, counts, {}, target)
        hard, _ = task.loss(supernet, batch, counts, {})
    assert torch.equal(loss, hard) and target.shape == ((batch.labels != -100).sum(), 120)
    entropy = -(target.softmax(-1) * target.log_softmax(-1)).sum() / counts["masked"]
    assert torch.allclose(soft, entropy, rtol=1e-5)
    assert soft_stats["mlm_loss_sum"] == stats["mlm_loss_sum"]  # logged against the labels either way
    (g_soft,) = torch.autograd.grad(soft, [supernet.embeddings.word_embeddings.weight])
    (g_hard,) = torch.autograd.grad(hard, [supernet.embeddings.word_embeddings.weight])
    assert not torch.allclose(g_soft, g_hard)
