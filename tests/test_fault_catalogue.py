"""The bad-input catalogue, reader by reader: each case writes one bad file, calls the reader the
split stage uses, and expects one line that names the file (and the line, where there is one) and
the problem: an S2SFlowError, never another exception. `pytest tests/test_fault_catalogue.py -v`
lists the cases; the README's "Bad input and faults" section counts them by reader."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from s2sflow.core.errors import S2SFlowError
from s2sflow.kinds.captioning.data import CaptionSplitConfig, read_captions
from s2sflow.kinds.mnist.idx import check_mnist_array, encode_idx, read_idx
from s2sflow.kinds.seq2seq.data import Seq2SeqSplitConfig, read_parallel, read_tsv, read_turns
from s2sflow.kinds.seq2seq.data import read_jsonl as read_records
from s2sflow.kinds.text.readers import read_conll, read_conllu, read_delimited, read_jsonl

NEWS = dict(text_columns=["title"], label_column="label", labels=["1", "2", "3", "4"])
STS = dict(text_columns=["s1", "s2"], label_column="score", delimiter="\t", quoting=False,
           header=["id", "score", "s1", "s2"], min_columns=4, score_range=(0, 5))
TAGS = ["O", "B-PER", "I-PER"]
UPOS = ["NOUN", "VERB", "PUNCT"]
GOOD_U = "1\tdogs\tdog\tNOUN\tNNS\t_\t0\troot\t_\t_\n"
DIALOGSUM = Seq2SeqSplitConfig(source="dialogue", target="summary")
PAIR = Seq2SeqSplitConfig(max_source_chars=30, max_target_chars=30)
TURNS = Seq2SeqSplitConfig(format="turns", max_source_chars=60, max_target_chars=30)
IMAGES = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))


@dataclass
class Case:
    reader: str
    name: str
    file: str
    content: str | bytes | None  # None: the file does not exist
    call: Callable[[Path], object]
    expected: str  # what follows "<file>" in the message ("" when the file is named elsewhere)


def _parallel(path: Path):
    return read_parallel(path, path.with_suffix(".de"), PAIR)


def _captions(path: Path):
    (path.parent / "images").mkdir(exist_ok=True)
    Image.new("RGB", (8, 8)).save(path.parent / "images" / "a.jpg")
    return read_captions(path.parent, CaptionSplitConfig(captions=path.name, max_caption_chars=40))


def _mnist_images(path: Path):
    array = read_idx(path, expect_ndim=3)
    check_mnist_array(array, False, str(path))


def _mnist_labels(path: Path):
    array = read_idx(path, expect_ndim=1)
    check_mnist_array(array, True, str(path))


CASES = [
    # CSV/TSV (topic, sts, nli)
    Case("csv", "row with a missing column", "news.csv", 'label,title,x\n1,ok,fine\n2,"two"\n',
         lambda p: read_delimited(p, **NEWS), " line 3: expected 3 columns, got 2"),
    Case("csv", "label outside the label set", "news.csv", "label,title\n1,ok\n7,bad\n",
         lambda p: read_delimited(p, **NEWS), " line 3: label '7' is not one of 1, 2, 3, 4"),
    Case("csv", "blank text", "news.csv", "label,title\n1,   \n", lambda p: read_delimited(p, **NEWS),
         " line 2: empty text in column 'title'"),
    Case("csv", "header without the text column", "news.csv", "label,headline\n1,x\n",
         lambda p: read_delimited(p, **NEWS), " line 1: no column 'title' in the header (label, headline)"),
    Case("csv", "Latin-1 bytes", "news.csv", "label,title\n1,caf\xe9\n".encode("latin-1"),
         lambda p: read_delimited(p, **NEWS), ": not UTF-8 text (byte 17); re-save the file as UTF-8"),
    Case("csv", "missing file", "news.csv", None, lambda p: read_delimited(p, **NEWS), ": file not found"),
    Case("csv", "TSV score not a number", "sts.tsv", "1\tfive\ta b\tc d\n", lambda p: read_delimited(p, **STS),
         " line 1: score 'five' is not a number"),
    Case("csv", "TSV score outside 0-5", "sts.tsv", "1\t5.5\ta b\tc d\n", lambda p: read_delimited(p, **STS),
         " line 1: score 5.5 is outside 0-5"),
    Case("csv", "TSV row with too few columns", "sts.tsv", "1\t4\ta b\n", lambda p: read_delimited(p, **STS),
         " line 1: expected 4 tab-separated columns, got 3"),
    Case("csv", "quote left open", "news.csv", 'label,title\n1,"open\n2,b\n', lambda p: read_delimited(p, **NEWS),
         " line 3: malformed CSV (unexpected end of data); check the quotes near here"),
    Case("csv", "text after a closing quote", "news.csv", 'label,title\n1,"a"b\n', lambda p: read_delimited(p, **NEWS),
         " line 2: malformed CSV (',' expected after '\"')"),
    Case("csv", "a 200,000-character field", "news.csv", 'label,title\n1,"' + "a" * 200_000 + '"\n',
         lambda p: read_delimited(p, **NEWS, max_chars=5000),
         " line 2: text in column 'title' has 200000 characters, the limit is 5000"),
    # CoNLL (ner)
    Case("conll", "token without a tag", "train.txt", "Angela B-PER\nMerkel\n", lambda p: read_conll(p, TAGS),
         " line 2: expected 2 columns, got 1"),
    Case("conll", "three columns", "train.txt", "Angela NNP B-PER\n", lambda p: read_conll(p, TAGS),
         " line 1: expected 2 columns, got 3"),
    Case("conll", "tag outside the tag set", "train.txt", "Paris B-LOC\n", lambda p: read_conll(p, TAGS),
         " line 1: label 'B-LOC' is not one of O, B-PER, I-PER"),
    Case("conll", "not UTF-8", "train.txt", b"Angela B-PER\n\xff\xfe O\n", lambda p: read_conll(p, TAGS),
         ": not UTF-8 text (byte 13); re-save the file as UTF-8"),
    Case("conll", "missing file", "train.txt", None, lambda p: read_conll(p, TAGS), ": file not found"),
    # CoNLL-U (pos, morph)
    Case("conllu", "nine columns", "x.conllu", "1\tdogs\tdog\tNOUN\tNNS\t_\t0\troot\t_\n",
         lambda p: read_conllu(p, UPOS), " line 1: expected 10 tab-separated CoNLL-U columns, got 9"),
    Case("conllu", "spaces instead of tabs", "x.conllu", GOOD_U.replace("\t", "  "), lambda p: read_conllu(p, UPOS),
         " line 1: expected 10 tab-separated CoNLL-U columns, got 1"),
    Case("conllu", "word id not a number", "x.conllu", GOOD_U + "x\tbark\tbark\tVERB\tVBP\t_\t1\tdep\t_\t_\n",
         lambda p: read_conllu(p, UPOS), " line 2: word id 'x' is not a number"),
    Case("conllu", "UPOS outside the tag set", "x.conllu", GOOD_U.replace("NOUN", "NOUNS"),
         lambda p: read_conllu(p, UPOS), " line 1: label 'NOUNS' is not one of NOUN, VERB, PUNCT"),
    Case("conllu", "not UTF-8", "x.conllu", b"# text = \x80\n", lambda p: read_conllu(p, UPOS),
         ": not UTF-8 text (byte 9); re-save the file as UTF-8"),
    Case("conllu", "missing file", "x.conllu", None, lambda p: read_conllu(p, UPOS), ": file not found"),
    # JSON lines: text tasks' reader and the generation tasks' records reader (dialogue, summarization)
    Case("jsonl", "truncated record", "d.jsonl", '{"text": "hi"}\n{"text": "x"\n',
         lambda p: list(read_jsonl(p, ["text"])), " line 2: malformed JSON (Expecting ',' delimiter at column 13)"),
    Case("jsonl", "an array, not an object", "d.jsonl", '[1, 2]\n', lambda p: list(read_jsonl(p, ["text"])),
         " line 1: expected a JSON object"),
    Case("jsonl", "missing field", "d.jsonl", '{"txt": "hi"}\n', lambda p: list(read_jsonl(p, ["text"])),
         " line 1: no field 'text'"),
    Case("jsonl", "empty text", "d.jsonl", '{"text": " "}\n', lambda p: list(read_jsonl(p, ["text"])),
         " line 1: empty text in column 'text'"),
    Case("jsonl", "an object where text belongs", "d.jsonl", '{"text": {"b": 1}}\n',
         lambda p: list(read_jsonl(p, ["text"])), " line 1: field 'text' is {\"b\": 1}, not text or a number"),
    Case("jsonl", "NaN where text belongs", "d.jsonl", '{"text": NaN}\n', lambda p: list(read_jsonl(p, ["text"])),
         " line 1: field 'text' is NaN, not text or a number"),
    Case("jsonl", "records: field not a string", "d.jsonl", '{"dialogue": 1, "summary": "x"}\n',
         lambda p: read_records(p, DIALOGSUM), " line 1: field 'dialogue' (source) is missing or not a string"),
    Case("jsonl", "records: not an object", "d.jsonl", '"just a string"\n', lambda p: read_records(p, DIALOGSUM),
         " line 1: a record must be an object with the source and target fields"),
    Case("jsonl", "records: .json not an array", "d.json", '{"dialogue": "a", "summary": "b"}',
         lambda p: read_records(p, DIALOGSUM), ": a .json file must hold one array of records; use .jsonl for "
                                               "JSON lines"),
    Case("jsonl", "records: truncated .json array", "d.json", '[{"dialogue": "a", "summary": "b"},',
         lambda p: read_records(p, DIALOGSUM), " line 1: not a JSON array of records (Expecting value at column 36)"),
    # parallel text (mt): <file>.en beside <file>.de; the .de side is written by the case's content too
    Case("parallel", "fewer source lines", "a.en", "one\n", _parallel, " has 1 lines but "),
    Case("parallel", "blank source line", "a.en", "one\n \n", _parallel,
         " line 2: empty source text; remove the example or fill it in"),
    Case("parallel", "source over max_source_chars", "a.en", "one\n" + "long " * 8 + "\n", _parallel,
         " line 2: source text has 39 characters, over the limit of 30"),
    Case("parallel", "not UTF-8", "a.en", b"one\n\xc3\x28\n", _parallel,
         ": not UTF-8 text (byte 4); re-save the file as UTF-8"),
    Case("parallel", "TSV row with one column", "p.tsv", "source\ttarget\nHello\tHallo\nBye\n",
         lambda p: read_tsv(p, PAIR), " line 3: expected 2 tab-separated columns, got 1"),
    Case("parallel", "TSV without the named column", "p.tsv", "en\tde\nHello\tHallo\n",
         lambda p: read_tsv(p, PAIR), ": no column 'source' (columns: en, de)"),
    # dialogue turns (dialogue: one dialogue per line, turns ended by __eou__)
    Case("turns", "one turn only", "t.txt", "Hello there __eou__\n", lambda p: read_turns(p, TURNS),
         " line 1: a dialogue needs at least two turns ended by '__eou__' (split.turn_marker)"),
    Case("turns", "no marker at all", "t.txt", "Hi __eou__ Hey __eou__\nno markers here\n",
         lambda p: read_turns(p, TURNS), " line 2: a dialogue needs at least two turns"),
    Case("turns", "doubled marker", "t.txt", "Hi __eou__ __eou__ Hey __eou__\n", lambda p: read_turns(p, TURNS),
         " line 1: turn 2 is empty; remove the doubled '__eou__'"),
    Case("turns", "reply over max_target_chars", "t.txt", "Hi __eou__ " + "so long " * 5 + "__eou__\n",
         lambda p: read_turns(p, TURNS), " line 1: target text has 39 characters, over the limit of 30"),
    Case("turns", "not UTF-8", "t.txt", b"Hi __eou__ \xff __eou__\n", lambda p: read_turns(p, TURNS),
         ": not UTF-8 text (byte 11); re-save the file as UTF-8"),
    Case("turns", "missing file", "t.txt", None, lambda p: read_turns(p, TURNS), ": file not found"),
    # captions (captioning): captions.txt beside images/a.jpg
    Case("captions", "image file missing", "captions.txt", "image,caption\na.jpg,A dog .\nb.jpg,A cat .\n",
         _captions, " line 3: image "),
    Case("captions", "empty caption", "captions.txt", "image,caption\na.jpg,  \n", _captions,
         " line 2: empty caption for a.jpg"),
    Case("captions", "unquoted comma", "captions.txt", "image,caption\na.jpg,A dog, running .\n", _captions,
         " line 2: expected 2 comma-separated columns, got 3 (quote captions that contain commas)"),
    Case("captions", "caption over max_caption_chars", "captions.txt", "image,caption\na.jpg," + "dog " * 12 + "\n",
         _captions, " line 2: caption has 47 characters, over split.max_caption_chars=40"),
    Case("captions", "no caption column", "captions.txt", "image,text\na.jpg,A dog .\n", _captions,
         ": no column 'caption' (columns: image, text); set split.image_column / split.caption_column"),
    Case("captions", "quote left open", "captions.txt", 'image,caption\na.jpg,"A dog\na.jpg,A cat .\n', _captions,
         " line 3: malformed CSV (unexpected end of data)"),
    Case("captions", "empty file", "captions.txt", "", _captions, ": empty captions file"),
    # IDX (mnist)
    Case("idx", "truncated images", "x-idx3-ubyte", IMAGES[:-5], _mnist_images,
         ": truncated IDX file: header promises shape (2, 28, 28) (1584 bytes), file has 1579"),
    Case("idx", "wrong magic number", "x-idx3-ubyte", b"\x12\x34" + IMAGES[2:], _mnist_images,
         ": wrong magic number 305399811"),
    Case("idx", "labels file where images belong", "x-idx3-ubyte", encode_idx(np.zeros(3, dtype=np.uint8)),
         _mnist_images, ": wrong magic number 2049; expected 2051"),
    Case("idx", "trailing bytes", "x-idx3-ubyte", IMAGES + b"\x00", _mnist_images, ": 1 unexpected trailing bytes"),
    Case("idx", "images not 28x28", "x-idx3-ubyte", encode_idx(np.zeros((2, 32, 32), dtype=np.uint8)),
         _mnist_images, ": images are 32x32, expected 28x28"),
    Case("idx", "label 11", "y-idx1-ubyte", encode_idx(np.array([1, 11, 3], dtype=np.uint8)), _mnist_labels,
         ": label 11 at index 1 is outside 0-9 (1 bad label); fix or re-download the file"),
    Case("idx", "empty file", "y-idx1-ubyte", b"", _mnist_labels, ": truncated IDX file (0 bytes, no header)"),
    Case("idx", "missing file", "y-idx1-ubyte", None, _mnist_labels, ": file not found"),
]


def test_every_reader_has_at_least_five_cases():
    counts = Counter(c.reader for c in CASES)
    assert set(counts) == {"csv", "conll", "conllu", "jsonl", "parallel", "turns", "captions", "idx"}
    assert min(counts.values()) >= 5, counts


@pytest.mark.parametrize("case", CASES, ids=[f"{c.reader}: {c.name}" for c in CASES])
def test_bad_input_is_one_line_naming_file_and_problem(case, tmp_path):
    path = tmp_path / case.file
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif case.content is not None:
        path.write_text(case.content, encoding="utf-8")
    if case.reader == "parallel" and path.suffix == ".en":
        path.with_suffix(".de").write_text("eins\nzwei\n", encoding="utf-8")
    with pytest.raises(S2SFlowError) as err:
        case.call(path)
    message = str(err.value)
    assert "\n" not in message, message
    assert message.startswith(str(path) + case.expected), message


def test_a_byte_order_mark_is_dropped(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM; it must not become part of the first column's name."""
    path = tmp_path / "news.csv"
    path.write_bytes("\ufefflabel,title\n1,caf\u00e9\n".encode())
    assert read_delimited(path, **NEWS) == [{"title": "caf\u00e9", "label": "1"}]
