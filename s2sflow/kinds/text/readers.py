"""Readers for the text formats the encoder tasks use, into HF ``datasets`` with declared features.

Every problem is an S2SFlowError naming the file and line: ``<file> line 812: expected 2 columns,
got 1``. Readers take their column names and label sets as arguments, so a user's own files in
the same format need no code (only params).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from s2sflow.core.readers import csv_rows
from s2sflow.core.readers import fail as _fail
from s2sflow.core.readers import open_text as _open_text


def _check_text(path: Path, line: int, column: str, value: str, max_chars: int | None) -> str:
    if not value.strip():
        raise _fail(path, line, f"empty text in column '{column}'")
    if max_chars and len(value) > max_chars:
        raise _fail(path, line, f"text in column '{column}' has {len(value)} characters, the limit is {max_chars}")
    return value


def _check_label(path: Path, line: int, value: str, labels: list[str] | None) -> str:
    if labels is not None and value not in labels:
        raise _fail(path, line, f"label '{value}' is not one of {', '.join(labels)}")
    return value


def read_delimited(path: str | Path, text_columns: list[str], label_column: str | None = None,
                   labels: list[str] | None = None, delimiter: str = ",", quoting: bool = True,
                   header: list[str] | None = None, min_columns: int | None = None,
                   score_range: tuple[float, float] | None = None, max_chars: int | None = None,
                   where: tuple[str, str] | None = None) -> list[dict]:
    """CSV/TSV rows as dicts of the named columns.

    ``header``: column names when the file has none (else its first row). ``quoting=False`` splits on
    the delimiter only (for files whose quotes are literal, like STS-B). ``min_columns``: rows may
    carry extra trailing columns (STS-B does). ``score_range``: the label column is a number in it.
    ``where``: keep rows whose column equals a value (e.g. SICK's SemEval_set == TRAIN)."""
    path, text = _open_text(path)
    names = header
    rows = []
    for line, row in csv_rows(path, text, delimiter, quoting):
        if not row:
            continue
        if names is None:
            names = row
            missing = [c for c in [*text_columns, label_column, where and where[0]] if c and c not in names]
            if missing:
                raise _fail(path, line, f"no column '{missing[0]}' in the header ({', '.join(names)})")
            continue
        need = min_columns or len(names)
        if len(row) < need or (min_columns is None and len(row) != len(names)):
            raise _fail(path, line, f"expected {len(names)} {'tab-separated ' if delimiter == chr(9) else ''}"
                        f"columns, got {len(row)}")
        record = dict(zip(names, row))
        if where and record[where[0]] != where[1]:
            continue
        out = {c: _check_text(path, line, c, record[c], max_chars) for c in text_columns}
        if label_column:
            value = record[label_column].strip()
            if score_range:
                try:
                    score = float(value)
                except ValueError:
                    raise _fail(path, line, f"score '{value}' is not a number") from None
                if not score_range[0] <= score <= score_range[1]:
                    raise _fail(path, line, f"score {value} is outside {score_range[0]:g}-{score_range[1]:g}")
                out["label"] = score
            else:
                out["label"] = _check_label(path, line, value, labels)
        rows.append(out)
    return rows


def read_conll(path: str | Path, labels: list[str] | None = None, columns: int = 2,
               skip_docstart: bool = True) -> list[dict]:
    """CoNLL columns (token first, tag last; sentences separated by blank lines)."""
    path, text = _open_text(path)
    sentences, tokens, tags = [], [], []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
            continue
        parts = line.split()
        if skip_docstart and parts[0] == "-DOCSTART-":
            continue
        if len(parts) != columns:
            raise _fail(path, n, f"expected {columns} columns, got {len(parts)}")
        tokens.append(parts[0])
        tags.append(_check_label(path, n, parts[-1], labels))
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags})
    return sentences


CONLLU_FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")


def read_conllu(path: str | Path, upos: list[str] | None = None) -> list[dict]:
    """CoNLL-U sentences: one entry per syntactic word (multiword-token ranges like ``1-2`` and empty
    nodes like ``8.1`` are skipped, as UD's own word counts do)."""
    path, text = _open_text(path)
    sentences, words = [], []

    def flush():
        if words:
            sentences.append({key: [w[key] for w in words] for key in ("form", "lemma", "upos", "xpos", "feats")})
            words.clear()

    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\n")
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise _fail(path, n, f"expected 10 tab-separated CoNLL-U columns, got {len(cols)}")
        if "-" in cols[0] or "." in cols[0]:
            continue
        if not cols[0].isdigit():
            raise _fail(path, n, f"word id '{cols[0]}' is not a number")
        word = dict(zip(CONLLU_FIELDS, cols))
        _check_label(path, n, word["upos"], upos)
        words.append(word)
    flush()
    return sentences


def read_jsonl(path: str | Path, fields: list[str], max_chars: int | None = None) -> Iterator[dict]:
    """JSON lines with the named (non-empty string) fields."""
    path, text = _open_text(path)
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise _fail(path, n, f"malformed JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise _fail(path, n, "expected a JSON object")
        missing = [f for f in fields if f not in record]
        if missing:
            raise _fail(path, n, f"no field '{missing[0]}'")
        odd = [f for f in fields if isinstance(record[f], bool) or not isinstance(record[f], (str, int, float))
               or record[f] != record[f]]  # objects, lists, null, true/false, NaN: not text or a label
        if odd:
            raise _fail(path, n, f"field '{odd[0]}' is {json.dumps(record[odd[0]])[:20]}, not text or a number")
        yield {f: _check_text(path, n, f, str(record[f]), max_chars) for f in fields}


def to_dataset(rows: list[dict], features):
    """Rows -> ``datasets.Dataset`` with the declared features (labels become ClassLabel ids)."""
    import datasets

    columns = {name: [row[name] for row in rows] for name in features}
    return datasets.Dataset.from_dict(columns, features=features)
