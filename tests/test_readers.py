"""Text readers on the real files (counts from shared/data/MANIFEST.md) and on bad input: each
problem is one line with the file and line number."""

import pytest

from conftest import REPO
from s2sflow.core.errors import S2SFlowError
from s2sflow.kinds.text.readers import read_conll, read_conllu, read_delimited, read_jsonl, to_dataset

DATA = REPO.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not beside the repo")
STS_COLUMNS = ["genre", "file", "year", "id", "score", "sentence1", "sentence2"]
SICK_LABELS = ["ENTAILMENT", "NEUTRAL", "CONTRADICTION"]
NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]


@needs_data
def test_real_files_give_the_manifest_counts():
    news = read_delimited(DATA / "topic/ag_news/test.csv", ["title", "description"], "label", ["1", "2", "3", "4"])
    assert len(news) == 7600 and sum(r["label"] == "2" for r in news) == 1900
    sts = read_delimited(DATA / "sts/stsb/sts-train.csv", ["sentence1", "sentence2"], "score", delimiter="\t",
                         quoting=False, header=STS_COLUMNS, min_columns=7, score_range=(0, 5))
    assert len(sts) == 5749 and sts[0] == {"sentence1": "A plane is taking off.",
                                           "sentence2": "An air plane is taking off.", "label": 5.0}
    sick = read_delimited(DATA / "nli/sick/SICK.txt", ["sentence_A", "sentence_B"], "entailment_label",
                          SICK_LABELS, delimiter="\t", quoting=False, where=("SemEval_set", "TRAIN"))
    assert len(sick) == 4439 and sum(r["label"] == "CONTRADICTION" for r in sick) == 641
    ner = read_conll(DATA / "ner/conll2003/train.txt", NER_TAGS)
    assert len(ner) == 14041 and sum(len(s["tokens"]) for s in ner) == 203621
    assert len(read_conll(DATA / "ner/conll2003/test.txt", NER_TAGS)) == 3453  # -DOCSTART- lines dropped
    ewt = read_conllu(DATA / "pos/ud_english_ewt/en_ewt-ud-dev.conllu")
    assert len(ewt) == 2001 and sum(len(s["form"]) for s in ewt) == 25147
    kaist = read_conllu(DATA / "pos/ud_korean_kaist/ko_kaist-ud-dev.conllu")
    assert len(kaist) == 2066 and sum(len(s["form"]) for s in kaist) == 25278
    assert "ncn+jxt" in {x for s in kaist for x in s["xpos"]}


def test_to_dataset_declares_features():
    import datasets

    features = datasets.Features({"sentence_A": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=SICK_LABELS)})
    ds = to_dataset([{"sentence_A": "a dog runs", "label": "NEUTRAL"}], features)
    assert ds.features["label"].names == SICK_LABELS and ds[0]["label"] == 1


def _one_line(call, expected):
    with pytest.raises(S2SFlowError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message and message == expected, message


def test_bad_input_names_file_and_line(tmp_path):
    csv_file = tmp_path / "news.csv"
    csv_file.write_text('label,title,description\n1,ok,fine\n2,"only two"\n')
    _one_line(lambda: read_delimited(csv_file, ["title"], "label"), f"{csv_file} line 3: expected 3 columns, got 2")

    csv_file.write_text("label,title,description\n1,ok,fine\n7,bad,label\n")
    _one_line(lambda: read_delimited(csv_file, ["title"], "label", ["1", "2", "3", "4"]),
              f"{csv_file} line 3: label '7' is not one of 1, 2, 3, 4")

    csv_file.write_text("label,title,description\n1,  ,fine\n")
    _one_line(lambda: read_delimited(csv_file, ["title"], "label"), f"{csv_file} line 2: empty text in column 'title'")

    sts = tmp_path / "sts.csv"
    sts.write_text("g\tf\ty\t1\t4.2\ta b\tc d\ng\tf\ty\t2\t7\ta b\tc d\n")
    _one_line(lambda: read_delimited(sts, ["sentence1", "sentence2"], "score", delimiter="\t", quoting=False,
                                     header=STS_COLUMNS, min_columns=7, score_range=(0, 5)),
              f"{sts} line 2: score 7 is outside 0-5")

    conll = tmp_path / "train.txt"
    conll.write_text("EU B-ORG\nrejects\n")
    _one_line(lambda: read_conll(conll, NER_TAGS), f"{conll} line 2: expected 2 columns, got 1")
    conll.write_text("EU B-ORGANISATION\n")
    _one_line(lambda: read_conll(conll, NER_TAGS), f"{conll} line 1: label 'B-ORGANISATION' is not one of "
              + ", ".join(NER_TAGS))

    conllu = tmp_path / "x.conllu"
    conllu.write_text("# text = Hi there\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_\n"
                      "2\tthere\tthere\tADV\tRB\t_\t1\tadvmod\t1:advmod\n")
    _one_line(lambda: read_conllu(conllu), f"{conllu} line 3: expected 10 tab-separated CoNLL-U columns, got 9")

    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"dialogue": "hi", "summary": "greeting"}\n{"dialogue": "hi", "summary": \n')
    _one_line(lambda: list(read_jsonl(jsonl, ["dialogue", "summary"])),
              f"{jsonl} line 2: malformed JSON (Expecting value at column 31)")
