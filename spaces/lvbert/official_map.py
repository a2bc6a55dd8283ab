"""How the variables of an official LV-BERT (or ELECTRA) TF1 checkpoint map onto nasplug names.

Used by :mod:`nasplug.spaces.lvbert.official`; pure Python on ``{name: shape}``, no tensors.

Official scopes (yuweihao/LV-BERT ``model/modeling.py``, ``run_pretraining.py``):

* ``electra/embeddings/{word,position,token_type}_embeddings``, ``electra/embeddings/LayerNorm``
  -- shared by discriminator and generator; ``{electra,generator}/embeddings_project`` (E -> H,
  only when E != H).
* ``{scope}/encoder/layer_{b}/{first,second}_submodule/`` for sub-layer ``2b`` / ``2b + 1``,
  holding ``attention/{self/{query,key,value},output/{dense,LayerNorm}}``,
  ``intermediate/dense`` + ``output/{dense,LayerNorm}``, or
  ``dynamic_convolution_layer/{convolution/{glu_l,glu_g,conv_attn_key,conv_attn_kernel},
  output/{dense,LayerNorm}}``. Google's ELECTRA checkpoints have no ``*_submodule`` level:
  ``layer_{b}/attention/...`` then ``layer_{b}/{intermediate,output}/...`` (attention, FFN).
* heads: ``discriminator_predictions/{dense,dense_1}``,
  ``generator_predictions/{dense,LayerNorm,output_bias}`` (decoder tied to word embeddings).

Tensor layouts: TF dense ``kernel`` is [in, out] (torch weight [out, in]: transpose);
``conv_attn_key`` is ``separable_conv1d``: ``depthwise_kernel`` [K, H, 1] (torch
[H, 1, K]), ``pointwise_kernel`` [1, H, H] (torch weight = ``[0].T``), ``bias`` [H] (the
pointwise bias); ``conv_attn_kernel/kernel`` [H, N*K] reshaped N-major to [N, K] per position,
as nasplug does. LayerNorm ``gamma``/``beta`` -> ``weight``/``bias``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nasplug.errors import NasplugError

Shapes = dict[str, tuple[int, ...]]
#: (nasplug parameter name, TF variable name, transform name); transforms live in official.py.
Mapping = list[tuple[str, str, str]]

DEFAULT_KERNEL = 9
_CONV = "dynamic_convolution_layer/"
# Sub-layer type -> (nasplug module, TF scope relative to the sub-layer, kind of variables).
_SUBLAYER: dict[str, list[tuple[str, str, str]]] = {
    "attn": [("query", "attention/self/query", "dense"), ("key", "attention/self/key", "dense"),
             ("value", "attention/self/value", "dense"), ("output", "attention/output/dense", "dense"),
             ("layer_norm", "attention/output/LayerNorm", "norm")],
    "ffn": [("intermediate", "intermediate/dense", "dense"), ("output", "output/dense", "dense"),
            ("layer_norm", "output/LayerNorm", "norm")],
    "conv": [("glu_linear", _CONV + "convolution/glu_l", "dense"), ("glu_gate", _CONV + "convolution/glu_g", "dense"),
             ("pointwise", _CONV + "convolution/conv_attn_key", "separable"),
             ("kernel", _CONV + "convolution/conv_attn_kernel", "dense"),
             ("output", _CONV + "output/dense", "dense"), ("layer_norm", _CONV + "output/LayerNorm", "norm")],
}
_LAYER = re.compile(
    r"^layer_(\d+)/(?:(first|second)_submodule/)?(dynamic_convolution_layer|attention|intermediate|output)/"
)
_KIND = {"dynamic_convolution_layer": "conv", "attention": "attn", "intermediate": "ffn", "output": "ffn"}


@dataclass
class EncoderPlan:
    """What one encoder (discriminator or generator) of the checkpoint looks like."""

    scope: str  # "electra" or "generator"
    embeddings: str  # scope of the embedding tables ("electra/embeddings" unless untied)
    layers: list[str]
    prefixes: list[str]  # per sub-layer, the TF scope ending in "/"
    layout: str  # "lvbert" (first/second_submodule) or "electra" (attention + FFN per block)
    hidden: int
    heads: int
    ffn: int
    kernel_size: int
    project: bool  # has {scope}/embeddings_project


def ignore_reason(name: str) -> str | None:
    """Why a checkpoint variable is deliberately left out of the models (None: it must be used)."""
    if name.rsplit("/", 1)[-1] in ("adam_m", "adam_v"):
        return "optimizer slot (adam_m / adam_v)"
    if name == "global_step":
        return "training step counter (kept as nasplug_source.step)"
    return None


def plan_encoder(shapes: Shapes, scope: str, embeddings: str, where: str, num_heads: int | None) -> EncoderPlan:
    """Infer the layer list and widths of ``{scope}/encoder`` from variable names and shapes.

    Called once for the discriminator (``electra``) and once for the generator. Heads come from
    the dynamic convolution's kernel generator (N*K outputs) when the model has one, else from
    ``num_heads``, else the official rule hidden / 64 (at least 1).
    """
    blocks: dict[int, dict[str | None, set[str]]] = {}
    head = f"{scope}/encoder/"
    for name in shapes:
        match = _LAYER.match(name[len(head):]) if name.startswith(head) else None
        if match and ignore_reason(name) is None:
            subs = blocks.setdefault(int(match.group(1)), {})
            subs.setdefault(match.group(2), set()).add(_KIND[match.group(3)])
    if not blocks:
        raise NasplugError(f"{where}: no encoder layers under {head}")
    if sorted(blocks) != list(range(len(blocks))):
        raise NasplugError(f"{where}: {head} has layer blocks {sorted(blocks)}, expected 0..{len(blocks) - 1}")
    layers, prefixes = [], []
    layout = "electra" if None in blocks[0] else "lvbert"
    for b in range(len(blocks)):
        subs = blocks[b]
        if layout == "electra":
            if set(subs) != {None} or subs[None] != {"attn", "ffn"}:
                raise NasplugError(f"{where}: {head}layer_{b} is neither an ELECTRA block nor two LV-BERT sub-layers")
            layers += ["attn", "ffn"]
            prefixes += [f"{head}layer_{b}/"] * 2
            continue
        for sub in ("first", "second"):
            kinds = subs.get(sub, set())
            if len(kinds) != 1:
                found = ", ".join(sorted(kinds)) or "nothing"
                raise NasplugError(f"{where}: {head}layer_{b}/{sub}_submodule holds {found}; expected one layer type")
            layers.append(kinds.pop())
            prefixes.append(f"{head}layer_{b}/{sub}_submodule/")
    project = f"{scope}/embeddings_project/kernel" in shapes
    word = shapes[f"{embeddings}/word_embeddings"]
    hidden = shapes[f"{scope}/embeddings_project/kernel"][1] if project else word[1]
    kernel_size, heads = DEFAULT_KERNEL, num_heads or max(1, hidden // 64)
    if "conv" in layers:
        conv = prefixes[layers.index("conv")] + _CONV + "convolution/conv_attn_"
        kernel_size = _shape(shapes, conv + "key/depthwise_kernel", where)[0]
        outputs = _shape(shapes, conv + "kernel/kernel", where)[1]
        if outputs % kernel_size or (num_heads and num_heads != outputs // kernel_size):
            raise NasplugError(
                f"{where}: {conv}kernel/kernel has {outputs} outputs for kernel width {kernel_size}; "
                f"heads = {outputs / kernel_size:g}" + (f", not num_heads={num_heads}" if num_heads else "")
            )
        heads = outputs // kernel_size
    ffn = 4 * hidden
    if "ffn" in layers:
        ffn = _shape(shapes, prefixes[layers.index("ffn")] + "intermediate/dense/kernel", where)[1]
    if hidden % heads:
        raise NasplugError(f"{where}: {heads} heads do not divide hidden size {hidden} of {scope}")
    return EncoderPlan(scope, embeddings, layers, prefixes, layout, hidden, heads, ffn, kernel_size, project)


def encoder_mapping(plan: EncoderPlan) -> Mapping:
    """(nasplug name, TF name, transform) for the embeddings, projection and every sub-layer."""
    emb = plan.embeddings
    out: Mapping = [
        ("lvbert.embeddings.word_embeddings.weight", f"{emb}/word_embeddings", "copy"),
        ("lvbert.embeddings.position_embeddings.weight", f"{emb}/position_embeddings", "copy"),
        ("lvbert.embeddings.token_type_embeddings.weight", f"{emb}/token_type_embeddings", "copy"),
        *_expand("lvbert.embeddings.layer_norm", f"{emb}/LayerNorm", "norm"),
    ]
    if plan.project:
        out += _expand("lvbert.embeddings_project", f"{plan.scope}/embeddings_project", "dense")
    for i, (kind, prefix) in enumerate(zip(plan.layers, plan.prefixes)):
        for module, tf_scope, variables in _SUBLAYER[kind]:
            target = f"lvbert.layers.{i}" if variables == "separable" else f"lvbert.layers.{i}.{module}"
            out += _expand(target, prefix + tf_scope, variables)
    return out


def discriminator_head_mapping() -> Mapping:
    """ELECTRA replaced-token-detection head: dense H -> H (GELU), ``dense_1`` H -> 1."""
    return [*_expand("discriminator_head.dense", "discriminator_predictions/dense", "dense"),
            *_expand("discriminator_head.dense_prediction", "discriminator_predictions/dense_1", "dense")]


def generator_head_mapping() -> Mapping:
    """Generator MLM head: dense H -> E (GELU), LayerNorm, output bias; the decoder weight is
    the (tied) word embedding table, set through the embeddings."""
    return [*_expand("mlm_head.dense", "generator_predictions/dense", "dense"),
            *_expand("mlm_head.layer_norm", "generator_predictions/LayerNorm", "norm"),
            ("mlm_head.decoder.bias", "generator_predictions/output_bias", "copy")]


def _expand(target: str, tf_scope: str, variables: str) -> Mapping:
    if variables == "dense":
        return [(f"{target}.weight", f"{tf_scope}/kernel", "transpose"), (f"{target}.bias", f"{tf_scope}/bias", "copy")]
    if variables == "norm":
        return [(f"{target}.weight", f"{tf_scope}/gamma", "copy"), (f"{target}.bias", f"{tf_scope}/beta", "copy")]
    # separable_conv1d: one scope, three variables, two nasplug modules.
    return [(f"{target}.depthwise", f"{tf_scope}/depthwise_kernel", "depthwise"),
            (f"{target}.pointwise.weight", f"{tf_scope}/pointwise_kernel", "pointwise"),
            (f"{target}.pointwise.bias", f"{tf_scope}/bias", "copy")]


def _shape(shapes: Shapes, name: str, where: str) -> tuple[int, ...]:
    if name not in shapes:
        raise NasplugError(f"{where}: variable {name} is missing")
    return shapes[name]
