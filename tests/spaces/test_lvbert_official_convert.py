"""Official LV-BERT TF1 checkpoints -> nasplug models, checked against the official graph:
the golden checkpoint's outputs (with and without the official padding switch), the Hugging
Face folders written by import_official, synthetic LV-BERT and ELECTRA layouts, and
checkpoints the conversion refuses.

The reader itself is tested in test_lvbert_official.py; the golden fixture's folder, the
checkpoint writer and the synthetic variables are in lvbert_official_kit.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lvbert_official_kit import golden_path, one_line_error, synthetic, write_checkpoint

from nasplug.errors import NasplugError
from nasplug.spaces.lvbert import (
    LVBertForMaskedLM,
    LVBertForPreTraining,
    arch_from_ints,
    arch_to_layers,
)
from nasplug.spaces.lvbert.official import import_official, load_official
from nasplug.spaces.lvbert.tf_checkpoint import read_tf_checkpoint

TOL = 1e-5


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def golden() -> Path:
    return golden_path()


@pytest.fixture(scope="module")
def outputs(golden: Path) -> dict[str, np.ndarray]:
    with np.load(golden / "official_outputs.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def models(golden: Path):
    return load_official(golden / "checkpoint")


@pytest.fixture(scope="module")
def models_official_padding(golden: Path):
    return load_official(golden / "checkpoint", conv_sees_padding=True)


def run(disc: LVBertForPreTraining, gen: LVBertForMaskedLM, outputs: dict, rows: list[int]) -> dict[str, np.ndarray]:
    """The five outputs the fixture holds, for the given rows."""
    ids, mask, segs = (torch.from_numpy(outputs[k][rows]).long() for k in ("input_ids", "input_mask", "segment_ids"))
    with torch.no_grad():
        return {
            "disc_embedding_output": disc.lvbert.embed(ids, segs).numpy(),
            "disc_sequence_output": disc.lvbert(ids, mask, segs).last_hidden_state.numpy(),
            "disc_logits": disc(ids, mask, segs).logits.numpy(),
            "gen_sequence_output": gen.lvbert(ids, mask, segs).last_hidden_state.numpy(),
            "gen_logits": gen(ids, mask, segs).logits.numpy(),
        }


def max_diffs(got: dict, outputs: dict, rows: list[int]) -> dict[str, float]:
    return {k: float(np.abs(v - outputs[k][rows]).max()) for k, v in got.items()}


# ---------------------------------------------------------------------------- (b) the official outputs
def test_converted_models_reproduce_the_official_graph_on_the_unpadded_row(models, outputs, golden):
    config = json.loads((golden / "config.json").read_text())
    disc, gen = models.discriminator.config, models.generator.config
    assert disc.layers == arch_to_layers(arch_from_ints(config["layers"]))
    assert (disc.vocab_size, disc.hidden_size, disc.num_attention_heads, disc.intermediate_size, disc.embedding_size,
            disc.max_position_embeddings, disc.type_vocab_size) == tuple(config[k] for k in (
                "vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "embedding_size",
                "max_position_embeddings", "type_vocab_size"))
    assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size) == (
        config["generator_hidden_size"], config["generator_num_attention_heads"], config["generator_intermediate_size"])
    assert disc.generator_hidden_size == gen.hidden_size and gen.layers == disc.layers
    assert disc.nasplug_source["step"] == 3 and disc.nasplug_source["role"] == "discriminator"
    assert not models.discriminator.training and not models.generator.training
    diffs = max_diffs(run(models.discriminator, models.generator, outputs, [0]), outputs, [0])
    assert max(diffs.values()) < TOL, diffs


def test_padded_rows_match_with_the_official_padding_switch(models, models_official_padding, outputs):
    rows = [1, 2]
    padded = models_official_padding
    assert padded.discriminator.config.conv_sees_padding and not models.discriminator.config.conv_sees_padding
    diffs = max_diffs(run(padded.discriminator, padded.generator, outputs, rows), outputs, rows)
    assert max(diffs.values()) < TOL, diffs
    # nasplug's default masks padding out of the convolution window: real tokens then differ.
    masked = run(models.discriminator, models.generator, outputs, rows)["disc_sequence_output"]
    real = outputs["input_mask"][rows].astype(bool)
    assert np.abs(masked - outputs["disc_sequence_output"][rows])[real].max() > 1e-2


# ---------------------------------------------------------------------------- (c) Hugging Face folders
def test_written_folders_load_back_and_give_the_same_outputs(golden, outputs, tmp_path):
    report = import_official(golden / "checkpoint", tmp_path / "out", layers=[0, 1, 2, 0, 2, 1, 1, 0])
    disc = LVBertForPreTraining.from_pretrained(report["discriminator"]).eval()
    gen = LVBertForMaskedLM.from_pretrained(report["generator"]).eval()
    assert (tmp_path / "out" / "discriminator" / "model.safetensors").is_file()
    assert gen.mlm_head.decoder.weight is gen.lvbert.embeddings.word_embeddings.weight
    assert gen.config.nasplug_source["role"] == "generator" and gen.config.nasplug_source["step"] == 3
    assert json.loads((tmp_path / "out" / "conversion.json").read_text())["layers"] == "CAFCFAAC"
    diffs = max_diffs(run(disc, gen, outputs, [0]), outputs, [0])
    assert max(diffs.values()) < TOL, diffs
    with pytest.raises(NasplugError) as excinfo:
        import_official(golden / "checkpoint", tmp_path / "out")
    one_line_error(excinfo, "discriminator: already exists and is not empty")


# ---------------------------------------------------------------------------- synthetic layouts
def test_multi_head_convolution_follows_the_official_op_order(tmp_path):
    t = synthetic("CA", hidden=32, heads=2)  # 2 heads of 16 channels; hidden/64 would say 1
    models = load_official(write_checkpoint(tmp_path / "model.ckpt-7", t))
    assert models.discriminator.config.num_attention_heads == 2 and models.generator is None
    x = np.random.default_rng(2).standard_normal((2, 12, 32)).astype(np.float32)
    with torch.no_grad():
        got = models.discriminator.lvbert.layers[0](torch.from_numpy(x), None).numpy()
    # The official dynamic_convolution_layer, op for op, in numpy on the TF-layout tensors.
    p = "electra/encoder/layer_0/first_submodule/dynamic_convolution_layer/"
    c, (b, n, k, h) = p + "convolution/", (2, 2, 9, 32)
    gate = x @ t[c + "glu_g/kernel"] + t[c + "glu_g/bias"]
    value = (x @ t[c + "glu_l/kernel"] + t[c + "glu_l/bias"]) / (1 + np.exp(-gate))  # [B, T, H]
    padded = np.pad(value, ((0, 0), (4, 4), (0, 0)))
    depthwise = sum(padded[:, j:j + 12] * t[c + "conv_attn_key/depthwise_kernel"][j, :, 0] for j in range(k))
    span = depthwise @ t[c + "conv_attn_key/pointwise_kernel"][0] + t[c + "conv_attn_key/bias"]
    logits = (span @ t[c + "conv_attn_kernel/kernel"] + t[c + "conv_attn_kernel/bias"]).reshape(b * 12 * n, k, 1)
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    unfold = np.stack([padded[:, i:i + 12] for i in range(k)], -1).reshape(b * 12 * n, h // n, k)
    mixed = (unfold @ weights).reshape(b, 12, h) @ t[p + "output/dense/kernel"] + t[p + "output/dense/bias"] + x
    mean, var = mixed.mean(-1, keepdims=True), mixed.var(-1, keepdims=True)
    expected = (mixed - mean) / np.sqrt(var + 1e-12) * t[p + "output/LayerNorm/gamma"] + t[p + "output/LayerNorm/beta"]
    assert np.abs(got - expected).max() < TOL


def test_electra_checkpoints_convert_as_attention_feed_forward_pairs(tmp_path):
    t = synthetic("AFAF", hidden=64, heads=1, layout="electra")
    models = load_official(write_checkpoint(tmp_path / "model.ckpt-7", t), num_heads=4)
    disc = models.discriminator
    assert disc.config.layers == ["attn", "ffn", "attn", "ffn"] and disc.config.num_attention_heads == 4
    assert models.report["layout"] == "electra" and models.report["step"] == 7
    query = t["electra/encoder/layer_1/attention/self/query/kernel"]
    assert torch.equal(disc.lvbert.layers[2].query.weight, torch.from_numpy(query.T.copy()))
    intermediate = t["electra/encoder/layer_1/intermediate/dense/kernel"]
    assert torch.equal(disc.lvbert.layers[3].intermediate.weight, torch.from_numpy(intermediate.T.copy()))


# ---------------------------------------------------------------------------- (d) bad input the conversion refuses
def test_a_checkpoint_that_is_not_lvbert_is_refused(tmp_path):
    prefix = write_checkpoint(tmp_path / "model.ckpt-1", {"dense/kernel": np.ones((3, 2), np.float32)})
    assert set(read_tf_checkpoint(prefix)) == {"dense/kernel"}  # a valid checkpoint ...
    with pytest.raises(NasplugError) as excinfo:
        load_official(prefix)  # ... but not LV-BERT
    one_line_error(excinfo, "model.ckpt-1.index: not an LV-BERT", "no electra/embeddings/word_embeddings")


def test_unused_variables_layer_and_head_mismatches_are_errors(tmp_path):
    t = synthetic("CA", hidden=32, heads=2)
    t["electra/encoder/extra_scale"] = np.ones(3, np.float32)
    prefix = write_checkpoint(tmp_path / "model.ckpt-7", t)
    with pytest.raises(NasplugError) as excinfo:
        load_official(prefix)
    one_line_error(excinfo, "1 checkpoint variable(s) not used by the conversion", "electra/encoder/extra_scale")
    report = load_official(prefix, ignore=["electra/encoder/extra_*"]).report
    assert report["ignored"]["ignore='electra/encoder/extra_*'"] == 1
    with pytest.raises(NasplugError) as excinfo:
        load_official(prefix, layers="AC", ignore=["electra/encoder/extra_*"])
    one_line_error(excinfo, "layers: AC given", "holds CA")
    with pytest.raises(NasplugError) as excinfo:
        load_official(prefix, num_heads=3, ignore=["electra/encoder/extra_*"])
    one_line_error(excinfo, "conv_attn_kernel/kernel has 18 outputs", "num_heads=3")
    del t["electra/encoder/extra_scale"], t["discriminator_predictions/dense_1/bias"]
    with pytest.raises(NasplugError) as excinfo:
        load_official(write_checkpoint(tmp_path / "model.ckpt-8", t))
    one_line_error(excinfo, "discriminator_predictions/dense_1/bias is missing")
