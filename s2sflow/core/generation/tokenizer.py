"""The generation tasks' tokenizer: one byte-pair vocabulary for source and target, trained with HF
``tokenizers`` on the train split only, saved as ``tokenizer.json`` and hashed into the lineage."""

from __future__ import annotations

from collections.abc import Iterable

GENERATION_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]  # ids 0-3: padding, start, end, unknown


def train_bpe(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2, unicode_form: str = "NFC",
              lowercase: bool = False):
    """A byte-pair tokenizer for generation (one vocabulary for both sides of a pair): SentencePiece-style
    ``▁`` word boundaries, so decoding gives back the text's own spacing and punctuation (what
    sacreBLEU scores). With no continuation prefix the trainer's ids are all assigned in sorted order:
    the same texts give the same vocabulary on every run."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    forms = {"NFC": normalizers.NFC, "NFD": normalizers.NFD, "NFKC": normalizers.NFKC}
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([forms[unicode_form]()] + ([normalizers.Lowercase()] if lowercase
                                                                          else []))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=GENERATION_SPECIALS, show_progress=False)
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer
