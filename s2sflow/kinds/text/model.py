"""One Transformer encoder (``transformers.BertModel``: the pretrained MiniLM-L6, or one built from
scratch with the sizes in params) with a head per task shape:

- sequence: mean- or [CLS]-pooled hidden state -> classes (classification) or one score (regression);
- tagging: each word's first sub-token (or first and last, concatenated) -> one linear head per tag
  layer (NER; UPOS + FEATS; XPOS + UPOS).

``forward`` takes plain tensors and returns a tuple of logits, so the same module exports to ONNX.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.params import param


@dataclass
class EncoderConfig:
    """Sizes of a scratch encoder (ignored by the pretrained family, which has MiniLM's own)."""

    hidden: int = param(256, ge=1)
    layers: int = param(4, ge=1)
    heads: int = param(4, ge=1)
    intermediate: int = param(1024, ge=1)
    dropout: float = param(0.1, ge=0, lt=1)
    max_positions: int = param(512, ge=1)


@dataclass
class HeadConfig:
    """``pooling`` (sequence shapes): mean | cls. ``word_pooling`` (tagging): first (the first sub-token
    carries the word's label) | first_last (first and last sub-token concatenated, for suffix-heavy
    words such as Korean eojeols). ``dropout`` before the linear layer(s)."""

    pooling: str = "mean"
    word_pooling: str = "first"
    dropout: float = param(0.1, ge=0, lt=1)


def bert_config(family: str, vocab_size: int, enc: EncoderConfig) -> dict:
    import json

    if family == "pretrained":
        from s2sflow.kinds.text.encode import pretrained_dir

        config = json.loads((pretrained_dir() / "config.json").read_text())
        keep = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
                "layer_norm_eps", "vocab_size", "pad_token_id", "initializer_range")
        return {k: config[k] for k in keep}
    if enc.hidden % enc.heads:
        raise S2SFlowError(f"params.yaml: train.encoder.hidden {enc.hidden} is not a multiple of heads {enc.heads}")
    return {"hidden_size": enc.hidden, "num_hidden_layers": enc.layers, "num_attention_heads": enc.heads,
            "intermediate_size": enc.intermediate, "hidden_act": "gelu", "hidden_dropout_prob": enc.dropout,
            "attention_probs_dropout_prob": enc.dropout, "max_position_embeddings": enc.max_positions,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12, "vocab_size": vocab_size, "pad_token_id": 0,
            "initializer_range": 0.02}


class TextEncoderModel(nn.Module):
    def __init__(self, encoder_config: dict, shape: str, heads: dict[str, int], head: HeadConfig,
                 case_features: bool = False, n_cases: int = 7, affixes: dict | None = None):
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(**encoder_config, attn_implementation="eager")
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.shape, self.pooling, self.word_pooling = shape, head.pooling, head.word_pooling
        if head.pooling not in ("mean", "cls"):
            raise S2SFlowError(f"params.yaml: train.head.pooling '{head.pooling}' is unknown; use mean or cls")
        if head.word_pooling not in ("first", "first_last"):
            raise S2SFlowError(f"params.yaml: train.head.word_pooling '{head.word_pooling}' is unknown; use first or "
                               f"first_last")
        hidden = config.hidden_size
        self.case_embeddings = nn.Embedding(n_cases, hidden) if case_features else None
        if self.case_embeddings is not None:
            nn.init.zeros_(self.case_embeddings.weight)  # starts as the plain encoder
        # hashed word/prefix/suffix ids (tokenize.affixes), summed onto each sub-token of the word
        self.affix_embeddings = nn.Embedding(int(affixes["buckets"]), hidden, padding_idx=0) if affixes else None
        if self.affix_embeddings is not None:
            nn.init.normal_(self.affix_embeddings.weight, std=config.initializer_range)
            with torch.no_grad():
                self.affix_embeddings.weight[0].zero_()
        width = 2 * hidden if shape == "tagging" and head.word_pooling == "first_last" else hidden
        if shape == "tagging" and self.affix_embeddings is not None:
            width += hidden  # the heads also see the word's own (context-free) affix vector
        self.dropout = nn.Dropout(head.dropout)
        self.head_names = list(heads)
        self.heads = nn.ModuleList(nn.Linear(width, n) for n in heads.values())

    def load_pretrained(self) -> None:
        from safetensors.torch import load_file

        from s2sflow.kinds.text.encode import pretrained_dir

        state = load_file(str(pretrained_dir() / "model.safetensors"))
        state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
        missing, unexpected = self.encoder.load_state_dict(state, strict=False)
        missing = [k for k in missing if "position_ids" not in k]
        if missing or unexpected:
            raise S2SFlowError(f"pretrained MiniLM weights do not fit the encoder (missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]})")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
                case_ids: torch.Tensor | None = None, word_first: torch.Tensor | None = None,
                word_last: torch.Tensor | None = None,
                affix_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        embeds = self.encoder.embeddings.word_embeddings(input_ids)
        if self.case_embeddings is not None and case_ids is not None:
            embeds = embeds + self.case_embeddings(case_ids)
        affix = None
        if self.affix_embeddings is not None and affix_ids is not None:
            affix = self.affix_embeddings(affix_ids).sum(dim=2)
            embeds = embeds + affix
        hidden = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        if self.shape == "tagging":
            index = word_first.unsqueeze(-1).expand(-1, -1, hidden.size(-1))
            words = hidden.gather(1, index)
            if self.word_pooling == "first_last":
                last = hidden.gather(1, word_last.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))
                words = torch.cat([words, last], dim=-1)
            if affix is not None:
                words = torch.cat([words, affix.gather(1, index)], dim=-1)
            words = self.dropout(words)
            return tuple(head(words) for head in self.heads)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return tuple(head(self.dropout(pooled)) for head in self.heads)
