"""Initialisation as the official TF code: truncated normal (2 std) for embeddings and dense
layers, Glorot uniform where the official code gives no initializer (embeddings_project, the
discriminator's dense_1, the conv kernel generator, the task layer), in models and supernets."""

from __future__ import annotations

import math

import pytest
import torch

from nasplug.spaces.lvbert import (
    LVBertConfig,
    LVBertForPreTraining,
    LVBertForSequenceClassification,
    LVBertSupernet,
)

H, E = 64, 32


def config(**kw):
    return LVBertConfig.from_size(None, hidden=H, heads=1, ffn=128, embedding=E, slots=4, vocab_size=300,
                                  layers="CAFC", num_labels=2, **kw)


def is_glorot(weight: torch.Tensor) -> bool:
    fan_out, fan_in = weight.shape
    bound = math.sqrt(6 / (fan_in + fan_out))
    return bool(weight.abs().max() <= bound) and float(weight.std()) == pytest.approx(
        bound / math.sqrt(3), rel=0.3
    )  # 0.02-std normal is far below


def is_truncated_normal(weight: torch.Tensor, std: float = 0.02) -> bool:
    # std of N(0, s) cut at 2 s is 0.88 s
    return bool(weight.abs().max() <= 2 * std) and float(weight.std()) == pytest.approx(0.88 * std, rel=0.1)


@torch.no_grad()
def test_standalone_models_follow_the_official_initialisers():
    torch.manual_seed(0)
    disc = LVBertForPreTraining(config())
    assert is_glorot(disc.lvbert.embeddings_project.weight)
    assert is_glorot(disc.discriminator_head.dense_prediction.weight)
    assert is_truncated_normal(disc.discriminator_head.dense.weight)
    assert is_truncated_normal(disc.lvbert.embeddings.word_embeddings.weight)
    assert is_glorot(disc.lvbert.layers[0].kernel.weight)
    assert is_truncated_normal(disc.lvbert.layers[1].query.weight)
    gen = disc.make_generator(0)
    assert is_glorot(gen.lvbert.embeddings_project.weight)
    assert is_truncated_normal(gen.mlm_head.dense.weight)
    cls = LVBertForSequenceClassification(config())
    assert is_glorot(cls.classifier.out_proj.weight) and (cls.classifier.out_proj.bias == 0).all()


@torch.no_grad()
def test_supernets_follow_the_official_initialisers():
    net = LVBertSupernet(config(), num_labels=2, seed=0)
    assert is_glorot(net.embeddings_project.weight)
    assert is_glorot(net.discriminator_head.dense_prediction.weight)
    assert is_glorot(net.classifier.out_proj.weight)
    assert is_glorot(net.slots[0]["conv"].kernel.weight)
    assert is_truncated_normal(net.slots[2]["ffn"].intermediate.weight)
