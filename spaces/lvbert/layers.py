"""The three LV-BERT sub-layers and their weight initialisation.

Every sub-layer is a post-LayerNorm residual block, ``LayerNorm(x + Dropout(f(x)))``, with the
uniform signature ``layer(hidden [B, T, H], mask [B, T] bool or None) -> [B, T, H]`` so a
supernet slot can hold all three and an evaluator can call any of them on a shared prefix.
``mask`` is True at real tokens; pass it through :func:`padding_mask` once per batch (it turns
an all-ones mask into None, which lets SDPA use its fastest kernel).

Module and parameter names follow the official code's variable scopes (``query``, ``glu_l``
-> ``glu_linear`` ...) and are identical in the supernet and the standalone models, so weight
inheritance is a plain state-dict key mapping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN

from nasplug.nn.dropout import Dropout, attention
from nasplug.nn.fastexp import exp_

if TYPE_CHECKING:
    from nasplug.spaces.lvbert.config import LVBertConfig


def _tracing() -> bool:
    """True while torch.export, torch.compile, TorchScript tracing or ONNX export records the
    model: the graph must then hold the mask, not a branch on its values."""
    return (torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export())


def cast_once(hidden: torch.Tensor) -> torch.Tensor:
    """``hidden`` in autocast's dtype, for a layer that feeds it to several products, when
    nothing records gradients (evaluation): autocast would cast it once per product, to the
    same values (50 us per [64, 64, 64] cast on one CPU core). With autograd on, ``hidden`` as
    it is: each product's cast then sends its gradient back in fp32, summed in fp32."""
    device = hidden.device.type
    if torch.is_grad_enabled() or not torch.is_autocast_enabled(device) or hidden.dtype != torch.float32:
        return hidden
    return hidden.to(torch.get_autocast_dtype(device))


def padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """[B, T] 0/1 mask -> bool [B, T], or None when there is no padding at all.

    Eager mode checks the mask once per batch (one host sync) and returns None for a batch
    without padding, so attention takes SDPA's fastest kernel and the convolution skips its
    masking. A traced or exported graph keeps the mask: the same graph then serves padded
    and unpadded batches (a masked-out nothing gives the same numbers).
    """
    if attention_mask is None:
        return None
    mask = attention_mask.bool()
    if _tracing():
        return mask
    return None if bool(mask.all()) else mask


class LVBertSelfAttention(nn.Module):
    """BERT multi-head self-attention with ``scaled_dot_product_attention`` and a key padding mask."""

    def __init__(self, config: LVBertConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.output = nn.Linear(h, h)
        self.layer_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.attention_dropout = config.attention_probs_dropout_prob

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, h = hidden.shape
        n = self.num_heads

        def heads(x: torch.Tensor) -> torch.Tensor:  # [B, T, H] -> [B, N, T, H/N]
            return x.view(b, t, n, h // n).transpose(1, 2)

        # Key padding mask [B, 1, 1, T]: padded keys get no weight; padded queries still
        # attend to the real tokens (never a fully masked row), and their output is ignored.
        attn_mask = None if mask is None else mask[:, None, None, :]
        x = cast_once(hidden)
        context = attention(  # SDPA's fused kernel without dropout; in bf16 under autocast with it
            heads(self.query(x)), heads(self.key(x)), heads(self.value(x)),
            attn_mask, self.attention_dropout if self.training else 0.0,
        )  # [B, N, T, H/N]
        context = context.transpose(1, 2).reshape(b, t, h)
        return self.layer_norm(hidden + self.dropout(self.output(context)))


class LVBertFeedForward(nn.Module):
    """Position-wise feed-forward H -> FFN (GELU) -> H."""

    def __init__(self, config: LVBertConfig) -> None:
        super().__init__()
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # Position-wise: the mask is not needed (padding never leaks across positions).
        return self.layer_norm(hidden + self.dropout(self.output(self.act(self.intermediate(hidden)))))


class LVBertDynamicConv(nn.Module):
    """Span-based dynamic convolution (kernel ``K``, ``N`` heads of ``H/N`` channels).

    Per position t (official ``dynamic_convolution_layer``):

    1. GLU input projection ``V = glu_linear(x) * sigmoid(glu_gate(x))``;
    2. span feature: depthwise conv (K taps, "same" zero padding, no bias) over V, then a
       pointwise H -> H linear with bias (TF ``separable_conv1d``);
    3. kernel generation: ``kernel`` linear H -> N*K on the span feature, softmax over the K taps;
    4. each head's channels of V are mixed over the window [t - K//2, t + K//2] with that kernel
       (a loop over the K taps, or one band-matrix product where that is faster);
    5. ``output`` linear H -> H, dropout, residual, LayerNorm.

    Difference from the official code: padded positions of V are zeroed before steps 2 and 4,
    so padding never leaks into a real token's window (the official code ignores the mask).
    ``config.conv_sees_padding=True`` skips that masking to reproduce the official outputs.
    Parameter shapes are identical to the official ones.
    """

    def __init__(self, config: LVBertConfig) -> None:
        super().__init__()
        h, k = config.hidden_size, config.conv_kernel_size
        self.num_heads = config.num_attention_heads
        self.kernel_size = k
        self.sees_padding = bool(config.conv_sees_padding)
        self.glu_linear = nn.Linear(h, h)
        self.glu_gate = nn.Linear(h, h)
        # Depthwise weight of the separable conv: [H, 1, K] like nn.Conv1d(groups=H), no bias.
        self.depthwise = nn.Parameter(torch.empty(h, 1, k))
        self.pointwise = nn.Linear(h, h)
        self.kernel = glorot(nn.Linear(h, self.num_heads * k))  # official conv_attn_kernel: no initializer
        self.output = nn.Linear(h, h)
        self.layer_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, h = hidden.shape
        n, k = self.num_heads, self.kernel_size
        x = cast_once(hidden)
        value = self.glu_linear(x) * torch.sigmoid(self.glu_gate(x))  # [B, T, H]
        if mask is not None and not self.sees_padding:
            # padding acts like the zero border (a product with the 0/1 mask: masked_fill with a
            # broadcast bool mask is 5-10x slower on CPU, forward and backward)
            value = value * mask[:, :, None].to(value.dtype)
        # Span feature: depthwise cross-correlation over time ("same" zero padding), [B, T, H].
        # (contiguous: a linear layer on the transposed view runs as a batched product with its
        # weight copied per sequence, 2-4x the time of the copy)
        span = F.conv1d(value.transpose(1, 2), self.depthwise, padding=k // 2, groups=h)
        span = span.transpose(1, 2).contiguous()
        logits = self.kernel(self.pointwise(span)).view(b, t, n, k)  # [B, T, N, K]
        weights = tap_softmax(logits).to(value.dtype)  # computed in fp32, mixed in the values' dtype
        mixed = (_mix_band if _mix_as_band(value, t) else _mix_taps)(value, weights, n, k)
        return self.layer_norm(hidden + self.dropout(self.output(mixed)))


#: Longest sequences whose dynamic convolution mixes as one band-matrix product
#: (:func:`_mix_band`) on a CPU, in bf16 / fp16 and in fp32: ``benchmarks/conv_mixing.py``
#: (one thread, K = 9) measured the band 1.5-3.5x faster than the tap loop in bf16 up to
#: T = 128 and slower from 256 on; in fp32 faster at T = 64 (forward + backward 2x; a forward
#: alone about even at hidden 256), slower at 128. Unmeasured on GPUs, which keep the loop.
BAND_MAX_LEN = {"reduced": 128, "fp32": 64}


def _mix_as_band(value: torch.Tensor, t: int) -> bool:
    """Whether the band product is the faster way to mix ``value``'s T = ``t`` positions: on a
    CPU in eager mode. A traced or compiled graph keeps the tap loop: a compiler fuses it into
    one kernel, and the band's reshapes of a symbolic length defeat export's shape checks."""
    if value.device.type != "cpu" or _tracing():
        return False
    return t <= BAND_MAX_LEN["fp32" if value.dtype == torch.float32 else "reduced"]


def tap_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``softmax(logits, dim=-1)`` in fp32, written out (max, exp, sum, divide): on a last
    dimension as short as the K = 9 taps torch's softmax kernel is 2.3-5x slower on CPU
    (``benchmarks/conv_mixing.py``). The maximum is a constant to autograd, as in softmax's
    own gradient."""
    x = logits.float()
    e = exp_(x - x.amax(-1, keepdim=True).detach())  # torch.exp is MKL's, slow on some CPUs (nasplug.nn.fastexp)
    return e / e.sum(-1, keepdim=True)


def _mix_taps(value: torch.Tensor, weights: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """``out[b, t] = sum_j weights[b, t, :, j] * value[b, t + j - K//2]`` head by head, as a
    loop over the K taps vectorised over all positions: [B, T, H]. It never materialises the
    [B, T, H, K] windows (~5x faster on CPU than an unfold + einsum)."""
    b, t, h = value.shape
    padded = F.pad(value, (0, 0, k // 2, k // 2)).view(b, t + k - 1, n, h // n)  # [B, T+K-1, N, D]
    mixed = padded[:, 0:t] * weights[..., 0, None]
    for j in range(1, k):
        mixed = mixed + padded[:, j:j + t] * weights[..., j, None]  # [B, T, N, D]
    return mixed.reshape(b, t, h)


def _mix_band(value: torch.Tensor, weights: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """The same mixing as :func:`_mix_taps`, as one batched product per head of the band matrix
    ``M[t, t + j] = weights[t, j]`` [T, T+K-1] with the zero-bordered values [T+K-1, D]: more
    multiply-adds (T+K-1 per output instead of K) but one product instead of 2K elementwise
    passes, and in bf16 one rounding instead of K. The band's diagonals are written through a
    strided view of a zero matrix (row stride T+K: each row starts one place further right)."""
    b, t, h = value.shape
    d, width = h // n, t + k - 1
    rows = weights.permute(0, 2, 1, 3).reshape(b * n, t, k)  # [B*N, T, K]
    band = value.new_zeros(b * n, t, width)
    band.as_strided((b * n, t, k), (t * width, width + 1, 1)).copy_(rows)
    padded = F.pad(value, (0, 0, k // 2, k // 2)).view(b, width, n, d).transpose(1, 2).reshape(b * n, width, d)
    return torch.bmm(band, padded).view(b, n, t, d).transpose(1, 2).reshape(b, t, h)


LAYER_CLASSES: dict[str, type[nn.Module]] = {
    "conv": LVBertDynamicConv,
    "attn": LVBertSelfAttention,
    "ffn": LVBertFeedForward,
}


def make_layer(kind: str, config: LVBertConfig) -> nn.Module:
    """A fresh (uninitialised) sub-layer of type ``kind``."""
    return LAYER_CLASSES[kind](config)


@torch.no_grad()
def init_module(module: nn.Module, std: float = 0.02, generator: torch.Generator | None = None) -> None:
    """Initialise one module's own parameters, as the official TF code does.

    Called for every module when a model or supernet is built, children before parents
    (``model.apply`` order) so a parent's special cases win. Linear and embedding weights:
    truncated normal (``std``, cut at 2 std: TF's ``truncated_normal_initializer``); biases
    zero; LayerNorm ones / zeros; depthwise conv: normal with std 1/K (official scale). Glorot
    uniform (TF's default, where the official code gives no initializer) for the Linear layers
    marked by :func:`glorot`: ``embeddings_project`` of the models and supernets, the conv
    kernel generator ``conv_attn_kernel``, the discriminator's last dense layer (``dense_1``)
    and the fine-tuning task layer. Uses ``transformers.initialization``,
    which never overwrites weights loaded by ``from_pretrained``.
    """
    if isinstance(module, nn.Linear) and getattr(module, GLOROT, False):
        init.xavier_uniform_(module.weight, generator=generator)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, (nn.Linear, nn.Embedding)):
        init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std, generator=generator)
        if getattr(module, "bias", None) is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)
    elif isinstance(module, LVBertDynamicConv):
        init.normal_(module.depthwise, std=1.0 / module.kernel_size, generator=generator)


#: Attribute marking a Linear layer that :func:`init_module` initialises Glorot uniform.
GLOROT = "nasplug_glorot"


def glorot(layer: nn.Linear) -> nn.Linear:
    """Mark ``layer`` for Glorot-uniform initialisation (TF's default, used where the official
    code gives a ``tf.layers.dense`` no initializer); returns it."""
    setattr(layer, GLOROT, True)
    return layer
