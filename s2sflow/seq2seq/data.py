"""Source -> target pairs for the generation tasks: readers, the split stage and its data contract.

``split.format``:

- ``parallel``: two aligned plain-text files per split, one example per line
  (``files: {train: {source: train.en, target: train.de}, ...}``), any language pair, either direction;
- ``tsv``: one tab-separated file per split with named columns (``source`` / ``target`` name them;
  ``header``: the column names when the file has none);
- ``jsonl``: JSON lines with named string fields (``source`` / ``target``).

Splits not named in ``files`` are held out of train with ``seed`` (``validation_fraction``,
``test_fraction``). Every problem is one line naming the file and line: an empty source or target,
a text over ``max_source_chars`` / ``max_target_chars``, a malformed JSON record, files of unequal
length."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from s2sflow.data.readers import _fail, _open_text
from s2sflow.errors import S2SFlowError
from s2sflow.params import from_dict

SPLITS = ("train", "validation", "test")
FORMATS = ("parallel", "tsv", "jsonl")


@dataclass
class Seq2SeqSplitConfig:
    format: str = "parallel"
    files: dict = field(default_factory=dict)
    source: str = "source"
    target: str = "target"
    header: list | None = None
    seed: int = 42
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    max_source_chars: int = 2000
    max_target_chars: int = 1000
    min_counts: dict = field(default_factory=dict)
    max_train_test_overlap: int = 0


def parse_split_config(params: dict, task: str) -> Seq2SeqSplitConfig:
    cfg = from_dict(Seq2SeqSplitConfig, params, f"{task}.split")
    if cfg.format not in FORMATS:
        raise S2SFlowError(f"params.yaml: {task}.split.format '{cfg.format}' is unknown; use one of "
                           f"{', '.join(FORMATS)}", task)
    if "train" not in cfg.files:
        raise S2SFlowError(f"params.yaml: {task}.split.files has no 'train' entry", task)
    unknown = sorted(set(cfg.files) - set(SPLITS))
    if unknown:
        raise S2SFlowError(f"params.yaml: {task}.split.files.{unknown[0]}: unknown split; use train, validation, "
                           f"test", task)
    if cfg.format == "parallel":
        bad = [name for name, entry in cfg.files.items() if not (isinstance(entry, dict)
                                                                 and {"source", "target"} <= set(entry))]
        if bad:
            raise S2SFlowError(f"params.yaml: {task}.split.files.{bad[0]} must be {{source: FILE, target: FILE}} "
                               f"for format parallel", task)
    return cfg


def _checked(path: Path, line: int, side: str, text: str, limit: int) -> str:
    text = text.strip()
    if not text:
        raise _fail(path, line, f"empty {side} text; remove the example or fill it in")
    if limit and len(text) > limit:
        raise _fail(path, line, f"{side} text has {len(text)} characters, over the limit of {limit} "
                                f"(split.max_{side}_chars)")
    return text


def read_parallel(source: Path, target: Path, cfg: Seq2SeqSplitConfig) -> list[dict]:
    source, src_text = _open_text(source)
    target, tgt_text = _open_text(target)
    src_lines, tgt_lines = src_text.splitlines(), tgt_text.splitlines()
    if len(src_lines) != len(tgt_lines):
        raise S2SFlowError(f"{source} has {len(src_lines)} lines but {target} has {len(tgt_lines)}; parallel files "
                           f"need one line per example on each side")
    return [{"source": _checked(source, n, "source", s, cfg.max_source_chars),
             "target": _checked(target, n, "target", t, cfg.max_target_chars)}
            for n, (s, t) in enumerate(zip(src_lines, tgt_lines), start=1)]


def read_tsv(path: Path, cfg: Seq2SeqSplitConfig) -> list[dict]:
    path, text = _open_text(path)
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    header, start = (list(cfg.header), 1) if cfg.header else (rows[0] if rows else [], 2)
    body = rows if cfg.header else rows[1:]
    missing = [c for c in (cfg.source, cfg.target) if c not in header]
    if missing:
        raise S2SFlowError(f"{path}: no column '{missing[0]}' (columns: {', '.join(header) or 'none'}); set "
                           f"split.source / split.target, or split.header for a file without one")
    i, j = header.index(cfg.source), header.index(cfg.target)
    out = []
    for n, row in enumerate(body, start=start):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise _fail(path, n, f"expected {len(header)} tab-separated columns, got {len(row)}")
        out.append({"source": _checked(path, n, "source", row[i], cfg.max_source_chars),
                    "target": _checked(path, n, "target", row[j], cfg.max_target_chars)})
    return out


def read_jsonl(path: Path, cfg: Seq2SeqSplitConfig) -> list[dict]:
    path, text = _open_text(path)
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise _fail(path, n, f"not a JSON record ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise _fail(path, n, "a JSON line must be an object with the source and target fields")
        values = []
        for side, name, limit in (("source", cfg.source, cfg.max_source_chars),
                                  ("target", cfg.target, cfg.max_target_chars)):
            value = record.get(name)
            if not isinstance(value, str):
                raise _fail(path, n, f"field '{name}' ({side}) is missing or not a string")
            values.append(_checked(path, n, side, value, limit))
        out.append({"source": values[0], "target": values[1]})
    return out


def read_split_files(raw_dir: Path, entry, cfg: Seq2SeqSplitConfig) -> list[dict]:
    def path(name: str) -> Path:
        p = raw_dir / name
        if not p.is_file():
            raise S2SFlowError(f"{p}: not found; list it under download.files in params.yaml, or fix split.files")
        return p

    if cfg.format == "parallel":
        return read_parallel(path(entry["source"]), path(entry["target"]), cfg)
    rows = []
    for name in entry if isinstance(entry, list) else [entry]:
        rows += read_tsv(path(name), cfg) if cfg.format == "tsv" else read_jsonl(path(name), cfg)
    return rows


def read_splits(raw_dir: Path, cfg: Seq2SeqSplitConfig) -> tuple[dict[str, list[dict]], str]:
    splits = {name: read_split_files(raw_dir, cfg.files[name], cfg) for name in SPLITS if name in cfg.files}
    missing = [name for name in SPLITS if name not in splits]
    if not missing:
        return splits, "official splits as published"
    rows = splits.pop("train")
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    sizes = {"test": round(len(rows) * cfg.test_fraction), "validation": round(len(rows) * cfg.validation_fraction)}
    start = 0
    for name in ("test", "validation"):
        if name in missing:
            splits[name] = [rows[i] for i in order[start:start + sizes[name]]]
            start += sizes[name]
    splits["train"] = [rows[i] for i in sorted(order[start:])]
    return splits, (f"{', '.join(missing)} held out of train with seed {cfg.seed} (validation "
                    f"{cfg.validation_fraction:g}, test {cfg.test_fraction:g}); others as published")


def check_contract(task: str, splits: dict[str, list[dict]], cfg: Seq2SeqSplitConfig):
    """Great Expectations per split: counts, non-empty source and target within their length limits,
    and whole (source, target) pairs shared with test, as counts (failing above the params threshold)."""
    import great_expectations as gx
    import pandas as pd

    from s2sflow.contracts.runner import validate_frame

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    e = gx.expectations

    def key(row: dict) -> str:
        return hashlib.sha1(f"{row['source']}\t{row['target']}".encode("utf-8")).hexdigest()

    frames = {name: pd.DataFrame({"source_chars": [len(r["source"]) for r in rows],
                                  "target_chars": [len(r["target"]) for r in rows],
                                  "key": [key(r) for r in rows]}) for name, rows in splits.items()}
    test_keys = set(frames["test"]["key"])
    overlap = {name: int(frames[name]["key"].isin(test_keys).sum()) for name in ("train", "validation")}

    def expectations(name: str) -> list:
        n = len(frames[name])
        out = [e.ExpectTableRowCountToBeBetween(min_value=int(cfg.min_counts.get(name, 1)), max_value=None),
               e.ExpectColumnValuesToBeBetween(column="source_chars", min_value=1, max_value=cfg.max_source_chars),
               e.ExpectColumnValuesToBeBetween(column="target_chars", min_value=1, max_value=cfg.max_target_chars)]
        if name != "test":
            frames[name]["in_test"] = frames[name]["key"].isin(test_keys)
            out.append(e.ExpectColumnValuesToBeInSet(column="in_test", value_set=[False],
                                                     mostly=max(0.0, 1.0 - cfg.max_train_test_overlap / max(n, 1))))
        return out

    report = validate_frame(task, {name: (frame, expectations(name)) for name, frame in frames.items()})
    report.summary.update(train_test_overlap=overlap, max_train_test_overlap=cfg.max_train_test_overlap,
                          compared="whole (source, target) pairs")
    return report


def save_splits(splits: dict[str, list[dict]], out_dir: Path) -> None:
    import datasets

    features = datasets.Features({"source": datasets.Value("string"), "target": datasets.Value("string")})
    for name in SPLITS:
        rows = splits[name]
        datasets.Dataset.from_dict({"source": [r["source"] for r in rows], "target": [r["target"] for r in rows]},
                                   features=features).save_to_disk(str(out_dir / name))
