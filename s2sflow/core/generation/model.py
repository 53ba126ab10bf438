"""The encoder-decoder network: ``transformers``' mBART classes (BART with pre-layer-norm blocks,
which train stably from scratch at a high learning rate) built from a config (no download), so
``generate()`` supplies greedy, beam and sampled decoding."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from s2sflow.core.generation.tokenizer import GENERATION_SPECIALS
from s2sflow.core.params import param

PAD, BOS, EOS = (GENERATION_SPECIALS.index(t) for t in ("<pad>", "<s>", "</s>"))


@dataclass
class Seq2SeqModelConfig:
    """Sizes of the scratch encoder-decoder: ``d_model`` (hidden size), ``encoder_layers`` /
    ``decoder_layers``, ``heads`` (attention heads), ``ffn`` (feed-forward size), ``dropout``,
    ``attention_dropout``; ``max_positions``: longest source or target it can read."""

    d_model: int = param(256, ge=1)
    encoder_layers: int = param(3, ge=1)
    decoder_layers: int = param(3, ge=1)
    heads: int = param(4, ge=1)
    ffn: int = param(1024, ge=1)
    dropout: float = param(0.1, ge=0, lt=1)
    attention_dropout: float = param(0.0, ge=0, lt=1)
    max_positions: int = param(256, ge=2)


def bart_config(cfg: Seq2SeqModelConfig | dict, vocab_size: int) -> dict:
    """The ``MBartConfig`` keyword arguments (saved in models/<task>/config.json to rebuild the net)."""
    c = asdict(cfg) if not isinstance(cfg, dict) else cfg
    return {"vocab_size": vocab_size, "d_model": c["d_model"], "encoder_layers": c["encoder_layers"],
            "decoder_layers": c["decoder_layers"], "encoder_attention_heads": c["heads"],
            "decoder_attention_heads": c["heads"], "encoder_ffn_dim": c["ffn"], "decoder_ffn_dim": c["ffn"],
            "dropout": c["dropout"], "attention_dropout": c["attention_dropout"], "activation_dropout": 0.0,
            "max_position_embeddings": c["max_positions"], "pad_token_id": PAD, "bos_token_id": BOS,
            "eos_token_id": EOS, "decoder_start_token_id": EOS, "forced_eos_token_id": EOS,
            "scale_embedding": True, "tie_word_embeddings": True, "use_cache": True}


def build_network(config_kwargs: dict):
    from transformers import MBartConfig, MBartForConditionalGeneration

    # eager attention: at these lengths (sources and targets of 32-128 sub-tokens) torch's CPU SDPA kernel
    # (flash attention) is the slowest op of a bf16 training step; eager made a dialogue step 27% faster
    # (0.72 s vs 0.99 s, bf16, batch 128) and float32 equal. Not saved in config.json: a runtime choice.
    net = MBartForConditionalGeneration(MBartConfig(**config_kwargs, attn_implementation="eager"))
    net.generation_config.forced_bos_token_id = None
    return net
