"""Subword tokenizers trained with HF ``tokenizers`` on a task's train split only, for any script
(accents are never stripped), saved as ``tokenizer.json`` and hashed into the lineage.

``unicode_form``: NFC keeps composed characters (right for Latin scripts); NFD splits each Hangul
syllable into its jamo, so the ~70 jamo cover every Korean word, even syllables unseen in training."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from s2sflow.core.fsutil import atomic_write_text, sha256_file

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# the modern Hangul jamo (19 leading consonants, 21 vowels, 27 trailing consonants): with NFD every
# precomposed syllable decomposes into these, so a vocabulary holding all of them covers all Hangul
HANGUL_JAMO = ([chr(c) for c in range(0x1100, 0x1113)] + [chr(c) for c in range(0x1161, 0x1176)]
               + [chr(c) for c in range(0x11A8, 0x11C3)])


def ensure_alphabet(tokenizer, chars: list[str]):
    """Add each character, alone and as a ``##`` continuation, to a trained WordPiece vocabulary, so no
    word made of them becomes [UNK] (training data rarely holds every jamo in every position)."""
    from tokenizers import models

    vocab = tokenizer.get_vocab()
    for piece in [*chars, *(f"##{c}" for c in chars)]:
        if piece not in vocab:
            vocab[piece] = len(vocab)
    tokenizer.model = models.WordPiece(vocab, unk_token="[UNK]")
    return tokenizer


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = False,
                    min_frequency: int = 2, unicode_form: str = "NFC"):
    """A BERT-style WordPiece tokenizer (``[CLS] a [SEP] b [SEP]`` for pairs) learnt from ``texts``.

    Deterministic: ``tokenizers``' trainer creates each ``##c`` continuation token the first time it
    meets it while walking a hash map of word counts, so those ids (which break ties between equally
    frequent merges) and with them the learnt vocabulary change from run to run (huggingface/tokenizers
    #1794). Every ``##c`` of the corpus's alphabet is therefore reserved up front, in sorted order, and
    the tokenizer is rebuilt from the learnt vocabulary afterwards with only the real special tokens."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    texts = list(texts)
    forms = {"NFC": normalizers.NFC, "NFD": normalizers.NFD, "NFKC": normalizers.NFKC}
    normalizer = normalizers.Sequence([forms[unicode_form]()] + ([normalizers.Lowercase()] if lowercase else []))
    alphabet = sorted({c for text in texts for c in normalizer.normalize_str(text) if not c.isspace()})

    def fresh(model):
        tokenizer = Tokenizer(model)
        tokenizer.normalizer = normalizer
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        return tokenizer

    learner = fresh(models.WordPiece(unk_token="[UNK]"))
    reserved = SPECIAL_TOKENS + [f"##{c}" for c in alphabet]
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=reserved, show_progress=False)
    learner.train_from_iterator(texts, trainer=trainer)
    vocab = learner.get_vocab(with_added_tokens=True)
    tokenizer = fresh(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    if unicode_form == "NFD":
        ensure_alphabet(tokenizer, HANGUL_JAMO)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tokenizer


def save_tokenizer(tokenizer, path: str | Path) -> str:
    """Write ``tokenizer.json`` atomically; returns its sha256 for the lineage."""
    atomic_write_text(path, tokenizer.to_str(pretty=True))
    return sha256_file(path)
