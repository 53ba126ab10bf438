"""The text pieces in-process: word alignment and casing ids, held-out splits, length-bucketed batches,
the linear warm-up schedule, IOB2 entity decoding, and the contract's overlap threshold."""

import unicodedata

import pytest
import torch

from s2sflow.core.batching import BucketBatchSampler
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.optim import SchedulerConfig, build_scheduler
from s2sflow.kinds.text.data import SplitConfig, hold_out
from s2sflow.kinds.text.encode import CASES, Encoder, affix_ids, word_case
from s2sflow.kinds.text.lightning import collate, hide_words
from s2sflow.kinds.text.predict import entities
from s2sflow.kinds.text.wordpiece import train_wordpiece

TEXTS = ["Paris is lovely in spring", "Angela Merkel visited Paris", "The EU and NATO met in Brussels",
         "unbelievably long words get split", "3 plus 4 is 7"] * 20


def test_first_subtoken_carries_the_word_and_casing_is_kept():
    tok = train_wordpiece(TEXTS, vocab_size=120, lowercase=True, min_frequency=1)
    enc = Encoder(tok, max_length=32, case_features=True)
    words = ["Parisian", "EU", "Paris", "7"]
    out = enc.encode_words([words])
    ids, first, last, cases = out["input_ids"][0], out["word_first"][0], out["word_last"][0], out["case_ids"][0]
    encoding = tok.encode(words, is_pretokenized=True)
    assert first == [encoding.word_ids.index(w) for w in range(4)]
    assert last[0] > first[0]  # "parisian" is unseen: more than one sub-token
    assert [cases[i] for i in first] == [CASES.index(c) for c in ("title", "upper", "title", "digit")]
    assert cases[0] == 0 and cases[-1] == 0  # [CLS] and [SEP]
    assert len(ids) == len(cases)


def test_truncated_words_point_at_cls():
    tok = train_wordpiece(TEXTS, vocab_size=120, min_frequency=1)
    out = Encoder(tok, max_length=4, case_features=False).encode_words([["Paris", "is", "lovely", "in", "spring"]])
    assert len(out["input_ids"][0]) == 4 and out["word_first"][0][-1] == 0


@pytest.mark.parametrize("max_length", [5, 9, 64])
def test_words_encoded_once_match_the_tokenizers_own_sentence_encoding(max_length):
    """The encoder assembles sentences from each distinct word's pieces: ids, first/last sub-token
    and truncation must equal what ``Tokenizer.encode_batch`` gives for the whole sentences."""
    tok = train_wordpiece(TEXTS + ["고향은 서울의 모습이", "café déjà vu"], vocab_size=150, lowercase=False,
                          min_frequency=1, unicode_form="NFD")
    sentences = [["Paris", "is", "lovely", "in", "spring", "Paris"], ["고향은", "Brussels", " ", "7"],
                 ["café", "déjà", "vu", "unbelievably", "long", "words", "get", "split"], ["EU"]]
    out = Encoder(tok, max_length=max_length, case_features=True).encode_words(sentences)
    tok.enable_truncation(max_length)
    for i, (words, reference) in enumerate(zip(sentences, tok.encode_batch(sentences, is_pretokenized=True))):
        assert out["input_ids"][i] == reference.ids
        positions = {w: [p for p, x in enumerate(reference.word_ids) if x == w] for w in range(len(words))}
        assert out["word_first"][i] == [ps[0] if ps else 0 for ps in positions.values()]
        assert out["word_last"][i] == [ps[-1] if ps else 0 for ps in positions.values()]
        assert len(out["case_ids"][i]) == len(reference.ids)
    assert out["word_first"][1][2] == 0  # a blank word yields no sub-token


def test_affix_ids_share_endings_and_follow_the_word_onto_its_sub_tokens():
    # NFD and NFC spellings of one eojeol hash alike; words with one ending share its suffix ids
    nfd = unicodedata.normalize("NFD", "고향은")
    assert affix_ids(nfd, 1, 2, 1000) == affix_ids("고향은", 1, 2, 1000)
    a, b = affix_ids("고향은", 1, 2, 1000), affix_ids("서울은", 1, 2, 1000)
    assert a[0] != b[0] and a[1] != b[1] and a[2] == b[2]  # word and first syllable differ, "은" is shared
    assert affix_ids("a", 1, 3, 1000)[3:] == [0, 0]  # too short for 2- and 3-character suffixes
    assert all(1 <= i < 1000 for i in a)
    tok = train_wordpiece(TEXTS, vocab_size=120, min_frequency=1)
    words = ["unbelievably", "Paris", "spring"]
    out = Encoder(tok, max_length=10, case_features=False,
                  affixes={"prefixes": 1, "suffixes": 3, "buckets": 1000}).encode_words([words])
    ids, first, last, rows = out["input_ids"][0], out["word_first"][0], out["word_last"][0], out["affix_ids"][0]
    assert len(rows) == len(ids) and all(len(r) == 5 for r in rows) and first[1] > 0
    assert rows[0] == rows[-1] == [0] * 5  # [CLS], [SEP]
    assert last[0] > first[0]
    assert all(rows[p] == affix_ids("unbelievably", 1, 3, 1000) for p in range(first[0], last[0] + 1))
    assert rows[first[1]] == affix_ids("Paris", 1, 3, 1000)
    batch = collate([{"input_ids": ids, "token_type_ids": [0] * len(ids), "affix_ids": rows},
                     {"input_ids": ids[:2], "token_type_ids": [0] * 2, "affix_ids": rows[:2]}])
    assert batch["affix_ids"].shape == (2, len(ids), 5) and batch["affix_ids"][1, 2:].sum() == 0


def test_word_case_classes():
    assert [word_case(w) for w in ("paris", "Paris", "NATO", "McDonald", "1996", "--", "A")] == \
        [CASES.index(c) for c in ("lower", "title", "upper", "mixed", "digit", "other", "title")]


def test_hold_out_is_seeded_and_sized():
    rows = [{"i": i} for i in range(1000)]
    cfg = SplitConfig(files={"train": "x"}, seed=7, validation_fraction=0.1, test_fraction=0.2)
    a = hold_out(rows, cfg, ["validation", "test"])
    b = hold_out(rows, cfg, ["validation", "test"])
    assert {k: len(v) for k, v in a.items()} == {"test": 200, "validation": 100, "train": 700}
    assert a == b
    seen = [r["i"] for part in a.values() for r in part]
    assert sorted(seen) == list(range(1000))
    other = hold_out(rows, SplitConfig(files={"train": "x"}, seed=8), ["validation", "test"])
    assert other["test"] != a["test"]


def test_bucket_batches_cover_everything_once_and_repeat_with_the_seed():
    lengths = [(i * 37) % 50 + 1 for i in range(203)]

    def batches(seed):
        return list(BucketBatchSampler(lengths, 8, torch.Generator().manual_seed(seed), bucket=5))

    first = batches(3)
    assert len(first) == len(BucketBatchSampler(lengths, 8, torch.Generator())) == 26
    assert sorted(i for b in first for i in b) == list(range(203))
    assert first == batches(3) and first != batches(4)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first) / len(first)
    assert spread < 20  # similar lengths per batch (random batches would spread over ~45)


def test_collate_pads_and_masks():
    batch = collate([{"input_ids": [2, 5, 3], "token_type_ids": [0, 0, 0], "label": 1},
                     {"input_ids": [2, 3], "token_type_ids": [0, 0], "label": 0}])
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["label"].dtype == torch.long


def test_linear_schedule_warms_up_then_decays_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    plan = build_scheduler(opt, SchedulerConfig(name="linear", pct_start=0.1), epochs=2, steps_per_epoch=50)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        plan.scheduler.step()
    assert plan.interval == "step"
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 9
    assert lrs[-1] == pytest.approx(1 / 90) and opt.param_groups[0]["lr"] == 0.0


def test_iob2_entities():
    words = ["Angela", "Merkel", "visited", "New", "York", "and", "EU"]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "I-ORG"]
    assert entities(words, tags) == [
        {"type": "PER", "text": "Angela Merkel", "start": 0, "end": 2},
        {"type": "LOC", "text": "New York", "start": 3, "end": 5},
        {"type": "ORG", "text": "EU", "start": 6, "end": 7}]


def test_contract_reports_overlap_and_fails_only_above_the_threshold():
    from s2sflow.kinds.text.contract import check_text_contract

    def rows(texts, labels):
        return [{"text_a": t, "text_b": "", "label": lab} for t, lab in zip(texts, labels)]

    splits = {"train": rows(["a b", "c d", "e f", "g h"], ["x", "y", "x", "y"]),
              "validation": rows(["i j", "k l"], ["x", "y"]),
              "test": rows(["a b", "m n"], ["x", "y"])}
    cfg = SplitConfig(files={"train": "f"}, text_a=["t"], labels=["x", "y"], max_train_test_overlap=1)
    report = check_text_contract("t", splits, "classification", cfg, ["x", "y"])
    assert report.success and report.summary["train_test_overlap"] == {"train": 1, "validation": 0}
    cfg.max_train_test_overlap = 0
    report = check_text_contract("t", splits, "classification", cfg, ["x", "y"])
    assert not report.success
    with pytest.raises(S2SFlowError, match="in_test"):
        report.raise_if_failed()


def test_word_dropout_hides_whole_words_and_keeps_special_tokens():
    torch.manual_seed(0)
    tok = train_wordpiece(TEXTS, vocab_size=120, min_frequency=1)
    sentences = [["unbelievably", "long", "words", "Paris"] * 8, ["spring", "Paris"]]
    out = Encoder(tok, max_length=64, case_features=False,
                  affixes={"prefixes": 0, "suffixes": 2, "buckets": 500}).encode_words(sentences)
    batch = collate([{k: v[i] for k, v in out.items()} for i in range(2)])
    hidden = hide_words(batch, 0.5, unk_id=1)
    n_words = 0
    for b, words in enumerate(sentences):
        for w in range(len(words)):
            span = slice(int(batch["word_first"][b, w]), int(batch["word_last"][b, w]) + 1)
            ids = hidden["input_ids"][b, span]
            assert bool((ids == 1).all()) or bool((ids == batch["input_ids"][b, span]).all())  # all or nothing
            if bool((ids == 1).all()):
                n_words += 1
                assert bool((hidden["affix_ids"][b, span, 0] == 0).all())
                assert torch.equal(hidden["affix_ids"][b, span, 1:], batch["affix_ids"][b, span, 1:])
    assert 4 <= n_words <= 30  # about half of the 34 words
    assert torch.equal(hidden["input_ids"][:, 0], batch["input_ids"][:, 0])  # [CLS]
    padding = batch["attention_mask"] == 0
    assert torch.equal(hidden["input_ids"][padding], batch["input_ids"][padding])
    assert torch.equal(hide_words(batch, 0.0, 1)["input_ids"], batch["input_ids"])


def test_stem_lexicon_reads_the_longest_known_stem_and_hides_each_fold_from_itself():
    from s2sflow.kinds.text.encode import bucket
    from s2sflow.kinds.text.lexicon import StemLexiconConfig, build, out_of_fold_keys, stem_key

    train = {"tokens": [["공부를", "했다"], ["공부가", "학교에"], ["학교는"], ["서울의"]],
             "lemma": [["공부+를", "하+었+다"], ["공부+가", "학교+에"], ["학교+는"], ["서울+의"]],
             "xpos": [["ncpa+jco", "pvg+ep+ef"], ["ncpa+jcs", "ncn+jca"], ["ncn+jxt"], ["nq+jcm"]]}
    cfg = StemLexiconConfig(folds=2)
    lexicon = build(train, cfg, "morph")
    assert lexicon == {"공부": "ncpa", "하": "pvg", "학교": "ncn", "서울": "nq"}
    assert stem_key("공부하였다", lexicon) == "L:ncpa:p"  # unseen word, known stem
    assert stem_key(unicodedata.normalize("NFD", "서울"), lexicon) == "L:nq:w"  # NFC lookup, whole word
    assert stem_key("부산", lexicon) is None
    keys = out_of_fold_keys(train, cfg, "morph")  # folds: sentences 0, 2 | 1, 3
    assert keys[0] == ["L:ncpa:p", None]  # 공부 is known from fold 1; 하 only from its own fold
    assert keys[2] == ["L:ncn:p"] and keys[3] == [None]  # 학교 from sentence 1; 서울 only in its own fold
    with pytest.raises(S2SFlowError, match="split.keep"):
        build({"tokens": train["tokens"], "xpos": train["xpos"]}, cfg, "morph")
    tok = train_wordpiece(TEXTS + ["공부를 했다 학교에"], vocab_size=150, min_frequency=1)
    affixes = {"prefixes": 1, "suffixes": 1, "buckets": 1000}
    enc = Encoder(tok, max_length=32, case_features=False, affixes=affixes, lexicon=lexicon)
    looked_up = enc.encode_words([["공부하였다", "부산"]])
    first = looked_up["word_first"][0]
    rows = looked_up["affix_ids"][0]
    assert rows[first[0]] == affix_ids("공부하였다", 1, 1, 1000) + [bucket("L:ncpa:p", 1000)]
    assert rows[first[1]][-1] == 0 and rows[0] == [0] * 4
    given = enc.encode_words([["공부하였다", "부산"]], stem_keys=[[None, "L:nq:w"]])
    assert given["affix_ids"][0][first[0]][-1] == 0 and given["affix_ids"][0][first[1]][-1] == bucket("L:nq:w", 1000)
