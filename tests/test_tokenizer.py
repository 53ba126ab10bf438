"""Tokenizers trained on a train split cover any script: Korean from UD Kaist, accented Latin."""

import unicodedata

import pytest

from conftest import REPO
from s2sflow.kinds.text.readers import read_conllu
from s2sflow.kinds.text.wordpiece import save_tokenizer, train_wordpiece

KAIST = REPO.parent / "shared/data/pos/ud_korean_kaist/ko_kaist-ud-dev.conllu"


@pytest.mark.skipif(not KAIST.is_file(), reason="../shared/data is not beside the repo")
def test_wordpiece_trained_on_korean_covers_hangul(tmp_path):
    sentences = [" ".join(s["form"]) for s in read_conllu(KAIST)]
    tokenizer = train_wordpiece(sentences[:1500], vocab_size=4000, unicode_form="NFD")
    held_out = sentences[1500:1600]
    encodings = tokenizer.encode_batch(held_out)
    tokens = sum(len(e.tokens) - 2 for e in encodings)
    unknown = sum(e.tokens.count("[UNK]") for e in encodings)
    assert unknown / tokens < 0.01, f"{unknown} of {tokens} held-out tokens are [UNK]"
    enc = tokenizer.encode("고향은 서울입니다")
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]" and "[UNK]" not in enc.tokens
    assert unicodedata.normalize("NFC", tokenizer.decode(enc.ids)) == "고향은 서울입니다"
    digest = save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    assert len(digest) == 64 and save_tokenizer(tokenizer, tmp_path / "again.json") == digest


def test_nfc_tokenizer_misses_unseen_hangul_syllables():
    """Why Korean uses NFD: composed syllables never seen in training become [UNK]."""
    tokenizer = train_wordpiece(["고향은 서울입니다"] * 5, vocab_size=100, min_frequency=1)
    assert "[UNK]" in tokenizer.encode("강릉").tokens
    nfd = train_wordpiece(["고향은 서울입니다 가나다라마바사아자차카타파하"] * 5, vocab_size=200, min_frequency=1,
                          unicode_form="NFD")
    assert "[UNK]" not in nfd.encode("강릉").tokens


def test_pairs_accents_and_case_are_kept():
    texts = ["Café au lait in München.", "A man is riding a bike.", "Ñandú and café."] * 20
    tokenizer = train_wordpiece(texts, vocab_size=200, min_frequency=1)
    enc = tokenizer.encode("Café München", "A bike")
    assert enc.tokens[0] == "[CLS]" and enc.tokens.count("[SEP]") == 2
    assert enc.type_ids[-1] == 1 and enc.type_ids[0] == 0
    assert "Café" in tokenizer.decode(enc.ids) and "[UNK]" not in enc.tokens


def test_training_is_deterministic_and_keeps_only_the_real_special_tokens():
    """tokenizers' trainer alone learns a different vocabulary on most runs over this text (tied merge
    counts broken by hash-map order, huggingface/tokenizers#1794); ours must learn one."""
    texts = ["the quick brown fox jumps over the lazy dog", "Wel come to the Tok en izers libr ary",
             "고향은 서울입니다 café déjà vu", "pack my box with five dozen liquor jugs"] * 3
    learnt = {train_wordpiece(texts, vocab_size=150, min_frequency=1).to_str() for _ in range(10)}
    assert len(learnt) == 1
    tokenizer = train_wordpiece(texts, vocab_size=150, min_frequency=1)
    added = [t.content for t in tokenizer.get_added_tokens_decoder().values()]
    assert added == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert tokenizer.encode("##q quick").tokens[:3] != ["[CLS]", "##q", "quick"]  # '##q' is no added token
