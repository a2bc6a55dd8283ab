"""``LVBertConfig``: the Hugging Face config of an LV-BERT model, holding its layer sequence.

The config is the only structural argument of every LV-BERT model (standalone and supernet),
as in ``transformers``. ``layers`` is the sub-layer sequence as type names
(``["conv", "conv", "attn", ...]``); the constructor also accepts the compact string
(``"CCAF..."``) or the official int list. ``model_type = "lvbert"`` is registered with
``AutoConfig`` when ``nasplug.spaces.lvbert`` is imported.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from nasplug.errors import NasplugError
from nasplug.spaces.lvbert.codec import LVBERT_SMALL_SEARCHED, interleaved, parse_layers
from nasplug.spaces.lvbert.sizes import LVBertDims


class LVBertConfig(PretrainedConfig):
    """Configuration of an LV-BERT encoder (and its heads).

    Defaults are LV-BERT-small with the searched sequence. Named constructors:
    :meth:`from_size` (``small`` / ``medium`` / ``base`` plus custom dims), :meth:`lvbert_small`,
    :meth:`electra_small_interleaved`, :meth:`from_dims`, and :meth:`generator` for the ELECTRA
    generator of a discriminator config.

    Args:
        layers: Sub-layer sequence (type names, compact letters, or official ints).
        hidden_size, num_attention_heads, intermediate_size, embedding_size: Model widths.
            Dynamic convolutions use ``num_attention_heads`` kernels (64 channels per head at
            the named sizes, as in the official code).
        conv_kernel_size: Width of the dynamic convolution (9 in LV-BERT).
        generator_hidden_size: Hidden size of the ELECTRA generator (None: ``hidden // 4``).
        conv_sees_padding: False (default): dynamic convolutions zero padded positions of their
            input, so a real token's window never sees padding and outputs do not depend on
            how much padding a batch has. True: do as the official LV-BERT code does (it
            ignores the mask inside the convolution), which reproduces the official graph's
            outputs on padded rows; set by the importer of official checkpoints on request.
    """

    model_type = "lvbert"

    vocab_size: int = 30522
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    embedding_size: int = 128
    layers: list[str] | str | None = None
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    conv_kernel_size: int = 9
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    generator_hidden_size: int | None = None
    classifier_dropout: float | None = None
    pad_token_id: int | None = 0
    tie_word_embeddings: bool = True
    conv_sees_padding: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        self.layers = parse_layers(LVBERT_SMALL_SEARCHED if self.layers is None else self.layers, field="layers")
        self.dims()  # checks the widths, one clear line per problem
        super().__post_init__(**kwargs)

    # Read-only: derived from ``layers`` so the two can never disagree.
    @property
    def num_hidden_layers(self) -> int:
        """Number of sub-layers (HF utilities read this name)."""
        return len(self.layers)

    def dims(self) -> LVBertDims:
        """The structural numbers as :class:`LVBertDims` (checked)."""
        dims = LVBertDims(
            hidden=self.hidden_size, heads=self.num_attention_heads, ffn=self.intermediate_size,
            embedding=self.embedding_size, slots=len(self.layers), vocab_size=self.vocab_size,
            max_positions=self.max_position_embeddings, type_vocab_size=self.type_vocab_size,
            kernel_size=self.conv_kernel_size, generator_hidden=self.generator_hidden_size,
        )
        dims.check()
        return dims

    def with_layers(self, layers: Any) -> LVBertConfig:
        """A copy of this config with another layer sequence (any spelling)."""
        data = self.to_dict()
        data["layers"] = parse_layers(layers, field="layers")
        for key in ("model_type", "transformers_version", "architectures"):
            data.pop(key, None)
        return type(self)(**data)

    # ------------------------------------------------------------------ named constructors
    @classmethod
    def from_dims(cls, dims: LVBertDims, layers: Any = None, **kwargs: Any) -> LVBertConfig:
        """Config from :class:`LVBertDims`; ``layers`` defaults to the interleaved sequence
        of ``dims.slots`` sub-layers."""
        return cls(
            hidden_size=dims.hidden, num_attention_heads=dims.heads, intermediate_size=dims.ffn,
            embedding_size=dims.embedding, vocab_size=dims.vocab_size,
            max_position_embeddings=dims.max_positions, type_vocab_size=dims.type_vocab_size,
            conv_kernel_size=dims.kernel_size, generator_hidden_size=dims.generator_hidden,
            layers=interleaved(dims.slots) if layers is None else layers, **kwargs,
        )

    @classmethod
    def from_size(cls, size: str | None = "small", layers: Any = None, **kwargs: Any) -> LVBertConfig:
        """Named size with custom dims (``hidden``, ``heads``, ``ffn``, ``embedding``,
        ``slots``, ``vocab_size``, ...) and other config fields passed through ``kwargs``."""
        dim_keys = set(LVBertDims.__dataclass_fields__)
        dims = LVBertDims.from_size(size, **{k: v for k, v in kwargs.items() if k in dim_keys})
        rest = {k: v for k, v in kwargs.items() if k not in dim_keys}
        if layers is not None:
            dims = dims.replace(slots=len(parse_layers(layers)))
        return cls.from_dims(dims, layers=layers, **rest)

    @classmethod
    def lvbert_small(cls, **kwargs: Any) -> LVBertConfig:
        """LV-BERT-small with the searched sequence ``CCAFFACFFACCAFCFACFCAAFA`` (12.5M params)."""
        return cls.from_size("small", layers=LVBERT_SMALL_SEARCHED, **kwargs)

    @classmethod
    def electra_small_interleaved(cls, **kwargs: Any) -> LVBertConfig:
        """ELECTRA-small shape: attention and feed-forward interleaved, 24 sub-layers (13.5M)."""
        return cls.from_size("small", layers=interleaved(24), **kwargs)

    def generator_config(self) -> LVBertConfig:
        """The ELECTRA generator's config: same layers and embeddings, hidden per the size
        table (``generator_hidden_size``), heads = hidden / 64 (at least 1), FFN 4 x hidden."""
        gen = self.dims().generator()
        data = self.to_dict()
        for key in ("model_type", "transformers_version", "architectures"):
            data.pop(key, None)
        data.update(hidden_size=gen.hidden, num_attention_heads=gen.heads, intermediate_size=gen.ffn,
                    generator_hidden_size=None)
        return type(self)(**data)


def generator_config(config: LVBertConfig) -> LVBertConfig:
    """Function form of :meth:`LVBertConfig.generator_config`."""
    if not isinstance(config, LVBertConfig):
        raise NasplugError(f"config: expected an LVBertConfig, got {type(config).__name__}")
    return config.generator_config()
