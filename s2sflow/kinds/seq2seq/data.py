"""Source -> target pairs for the generation tasks: readers, the split stage and its data contract.

``split.format``:

- ``parallel``: two aligned plain-text files per split, one example per line
  (``files: {train: {source: train.en, target: train.de}, ...}``), any language pair, either direction;
- ``tsv``: one tab-separated file per split with named columns (``source`` / ``target`` name them;
  ``header``: the column names when the file has none);
- ``jsonl``: JSON lines with named string fields (``source`` / ``target``); a file named ``*.json``
  is one JSON array of such objects; ``python_literals: true`` also reads lines written as Python
  dict literals (DialogSum's train file); ``speaker_tags: names`` turns ``#Person1#``-style tags in
  both fields into names, one per speaker and record (see ``speakers.py``);
- ``turns``: one dialogue per line, its turns ended by ``turn_marker`` (DailyDialog's ``__eou__``):
  every turn after the first is a target, its source the ``context_turns`` turns before it joined
  with ``turn_separator``.

Splits not named in ``files`` are held out of train with ``seed`` (``validation_fraction``,
``test_fraction``). ``extra``: more evaluation-only sets in the same format (``{samsum: FILE}``),
kept as ``extra_<name>`` splits. ``drop_shared``: drop from train and validation every dialogue or
document that a later split (validation, test) also has, so none is shared (the counts are recorded).
Every problem is one line naming the file and line: an empty source or target, a text over
``max_source_chars`` / ``max_target_chars``, a malformed JSON record, files of unequal length."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.params import from_dict, param
from s2sflow.core.readers import csv_rows
from s2sflow.core.readers import fail as _fail
from s2sflow.core.readers import open_text as _open_text

SPLITS = ("train", "validation", "test")
FORMATS = ("parallel", "tsv", "jsonl", "turns")
SPEAKER_TAGS = ("keep", "names")


@dataclass
class Seq2SeqSplitConfig:
    format: str = "parallel"
    files: dict = field(default_factory=dict)
    source: str = "source"
    target: str = "target"
    header: list | None = None
    seed: int = param(42, ge=0)
    validation_fraction: float = param(0.1, gt=0, lt=1)
    test_fraction: float = param(0.2, gt=0, lt=1)
    max_source_chars: int = param(2000, ge=1)
    max_target_chars: int = param(1000, ge=1)
    min_counts: dict = field(default_factory=dict)
    max_train_test_overlap: int = param(0, ge=0)
    python_literals: bool = False
    speaker_tags: str = "keep"
    turn_marker: str = "__eou__"
    context_turns: int = param(3, ge=1)
    turn_separator: str = " | "
    extra: dict = field(default_factory=dict)
    drop_shared: bool = False
    max_shared_groups: int | None = param(None, ge=0)


def parse_split_config(params: dict, task: str) -> Seq2SeqSplitConfig:
    cfg = from_dict(Seq2SeqSplitConfig, params, f"{task}.split")
    if cfg.format not in FORMATS:
        raise S2SFlowError(f"params.yaml: {task}.split.format '{cfg.format}' is unknown; use one of "
                           f"{', '.join(FORMATS)}", task)
    if cfg.speaker_tags not in SPEAKER_TAGS:
        raise S2SFlowError(f"params.yaml: {task}.split.speaker_tags '{cfg.speaker_tags}' is unknown; use keep or "
                           f"names", task)
    if "train" not in cfg.files:
        raise S2SFlowError(f"params.yaml: {task}.split.files has no 'train' entry", task)
    unknown = sorted(set(cfg.files) - set(SPLITS))
    if unknown:
        raise S2SFlowError(f"params.yaml: {task}.split.files.{unknown[0]}: unknown split; use train, validation, "
                           f"test", task)
    if cfg.format == "parallel":
        bad = [name for name, entry in {**cfg.files, **cfg.extra}.items() if not (isinstance(entry, dict)
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
    rows = list(csv_rows(path, text, "\t", quoting=False))
    header = list(cfg.header) if cfg.header else (rows[0][1] if rows else [])
    body = rows if cfg.header else rows[1:]
    missing = [c for c in (cfg.source, cfg.target) if c not in header]
    if missing:
        raise S2SFlowError(f"{path}: no column '{missing[0]}' (columns: {', '.join(header) or 'none'}); set "
                           f"split.source / split.target, or split.header for a file without one")
    i, j = header.index(cfg.source), header.index(cfg.target)
    out = []
    for n, row in body:
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise _fail(path, n, f"expected {len(header)} tab-separated columns, got {len(row)}")
        out.append({"source": _checked(path, n, "source", row[i], cfg.max_source_chars),
                    "target": _checked(path, n, "target", row[j], cfg.max_target_chars)})
    return out


def _records(path: Path, text: str, python_literals: bool):
    """(line number, record) for JSON lines, a JSON array (``*.json``) or Python dict literals."""
    if path.suffix == ".json":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise _fail(path, err.lineno, f"not a JSON array of records ({err.msg} at column {err.colno})") from None
        if not isinstance(records, list):
            raise S2SFlowError(f"{path}: a .json file must hold one array of records; use .jsonl for JSON lines")
        yield from ((f"record {n}", r) for n, r in enumerate(records, start=1))
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            record = None
            if python_literals:
                try:
                    record = ast.literal_eval(line)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    pass
            if record is None:
                raise _fail(path, n, f"not a JSON record ({err.msg} at column {err.colno})"
                                     + ("" if python_literals else "; Python dict literals need "
                                                                    "split.python_literals: true")) from None
        yield f"line {n}", record


def read_jsonl(path: Path, cfg: Seq2SeqSplitConfig) -> list[dict]:
    path, text = _open_text(path)
    out = []
    for where, record in _records(path, text, cfg.python_literals):
        if not isinstance(record, dict):
            raise S2SFlowError(f"{path} {where}: a record must be an object with the source and target fields")
        values = []
        for side, name in (("source", cfg.source), ("target", cfg.target)):
            value = record.get(name)
            if not isinstance(value, str):
                raise S2SFlowError(f"{path} {where}: field '{name}' ({side}) is missing or not a string")
            values.append(value)
        out.append((path, where, values[0], values[1]))
    if cfg.speaker_tags == "names":
        from s2sflow.kinds.seq2seq.speakers import lowercase_words, replace_speaker_tags

        common = lowercase_words(text for _, _, source, target in out for text in (source, target))
        out = [(p, w, *replace_speaker_tags(source, target, common)) for p, w, source, target in out]

    def checked(where: str, side: str, text: str, limit: int) -> str:
        try:
            return _checked(path, 0, side, text, limit)
        except S2SFlowError as err:
            raise S2SFlowError(str(err).replace(f"{path} line 0", f"{path} {where}")) from None

    return [{"source": checked(w, "source", source, cfg.max_source_chars),
             "target": checked(w, "target", target, cfg.max_target_chars)} for _, w, source, target in out]


def read_turns(path: Path, cfg: Seq2SeqSplitConfig) -> list[dict]:
    """(context -> reply) pairs from one dialogue per line, turns ended by ``turn_marker``; ``group``
    names the dialogue (its hash) so no dialogue is shared across splits."""
    path, text = _open_text(path)
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        turns = [" ".join(t.split()) for t in line.split(cfg.turn_marker)]
        if turns and not turns[-1]:
            turns.pop()
        if len(turns) < 2:
            raise _fail(path, n, f"a dialogue needs at least two turns ended by '{cfg.turn_marker}' "
                                 f"(split.turn_marker)")
        empty = [k for k, t in enumerate(turns, start=1) if not t]
        if empty:
            raise _fail(path, n, f"turn {empty[0]} is empty; remove the doubled '{cfg.turn_marker}'")
        group = hashlib.sha1(" ".join(turns).encode("utf-8")).hexdigest()
        for k in range(1, len(turns)):
            source = cfg.turn_separator.join(turns[max(0, k - cfg.context_turns):k])
            out.append({"source": _checked(path, n, "source", source, cfg.max_source_chars),
                        "target": _checked(path, n, "target", turns[k], cfg.max_target_chars), "group": group})
    return out


def read_split_files(raw_dir: Path, entry, cfg: Seq2SeqSplitConfig) -> list[dict]:
    def path(name: str) -> Path:
        p = raw_dir / name
        if not p.is_file():
            raise S2SFlowError(f"{p}: not found; list it under download.files in params.yaml, or fix split.files")
        return p

    if cfg.format == "parallel":
        return read_parallel(path(entry["source"]), path(entry["target"]), cfg)
    reader = {"tsv": read_tsv, "jsonl": read_jsonl, "turns": read_turns}[cfg.format]
    rows = []
    for name in entry if isinstance(entry, list) else [entry]:
        rows += reader(path(name), cfg)
    return rows


def group_key(row: dict) -> str:
    """What must not be shared across splits: the row's dialogue (``turns``) or its whitespace-normalized
    source text (a document or dialogue to summarize, a sentence to translate)."""
    return row.get("group") or hashlib.sha1(" ".join(row["source"].split()).encode("utf-8")).hexdigest()


def drop_shared_groups(splits: dict[str, list[dict]]) -> dict[str, int]:
    """Remove from train and validation the dialogues / documents a later split has; the counts removed."""
    dropped = {}
    for name, later in (("train", ("validation", "test")), ("validation", ("test",))):
        seen = {group_key(r) for other in later for r in splits[other]}
        kept = [r for r in splits[name] if group_key(r) not in seen]
        dropped[name] = len(splits[name]) - len(kept)
        splits[name] = kept
    return dropped


def read_splits(raw_dir: Path, cfg: Seq2SeqSplitConfig) -> tuple[dict[str, list[dict]], str]:
    """The train/validation/test rows (plus ``extra_<name>`` evaluation sets) and how they were made."""
    splits, method = _read_main_splits(raw_dir, cfg)
    if cfg.drop_shared:
        dropped = drop_shared_groups(splits)
        method += (f"; examples whose dialogue/document is also in a later split dropped (train {dropped['train']}, "
                   f"validation {dropped['validation']})")
    for name, entry in cfg.extra.items():
        splits[f"extra_{name}"] = read_split_files(raw_dir, entry, cfg)
    return splits, method


def _read_main_splits(raw_dir: Path, cfg: Seq2SeqSplitConfig) -> tuple[dict[str, list[dict]], str]:
    splits = {name: read_split_files(raw_dir, cfg.files[name], cfg) for name in SPLITS if name in cfg.files}
    missing = [name for name in SPLITS if name not in splits]
    if not missing:
        return splits, "official splits as published"
    rows = splits.pop("train")
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):  # hold out whole dialogues / documents, never part of one
        groups.setdefault(group_key(row), []).append(i)
    order = list(groups.values())
    random.Random(cfg.seed).shuffle(order)
    sizes = {"test": round(len(rows) * cfg.test_fraction), "validation": round(len(rows) * cfg.validation_fraction)}
    for name in ("test", "validation"):
        if name in missing:
            taken: list[int] = []
            while order and len(taken) < sizes[name]:
                taken += order.pop(0)
            splits[name] = [rows[i] for i in sorted(taken)]
    splits["train"] = [rows[i] for i in sorted(i for group in order for i in group)]
    return splits, (f"{', '.join(missing)} held out of train with seed {cfg.seed} (validation "
                    f"{cfg.validation_fraction:g}, test {cfg.test_fraction:g}, whole dialogues/documents); others "
                    f"as published")


def check_contract(task: str, splits: dict[str, list[dict]], cfg: Seq2SeqSplitConfig):
    """Great Expectations per split: counts, non-empty source and target within their length limits,
    whole (source, target) pairs shared with test, and dialogues / documents (``group_key``) shared
    with a later split, as counts (failing above ``max_train_test_overlap`` / ``max_shared_groups``)."""
    import great_expectations as gx
    import pandas as pd

    from s2sflow.core.contracts import validate_frame

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    e = gx.expectations

    def key(row: dict) -> str:
        return hashlib.sha1(f"{row['source']}\t{row['target']}".encode()).hexdigest()

    frames = {name: pd.DataFrame({"source_chars": [len(r["source"]) for r in rows],
                                  "target_chars": [len(r["target"]) for r in rows],
                                  "key": [key(r) for r in rows], "group": [group_key(r) for r in rows]})
              for name, rows in splits.items()}
    test_keys = set(frames["test"]["key"])
    overlap = {name: int(frames[name]["key"].isin(test_keys).sum()) for name in ("train", "validation")}
    later = {"train": set(frames["validation"]["group"]) | set(frames["test"]["group"]),
             "validation": set(frames["test"]["group"])}
    shared = {name: int(frames[name].loc[frames[name]["group"].isin(later[name]), "group"].nunique())
              for name in later}

    def expectations(name: str) -> list:
        n = len(frames[name])
        out = [e.ExpectTableRowCountToBeBetween(min_value=int(cfg.min_counts.get(name, 1)), max_value=None),
               e.ExpectColumnValuesToBeBetween(column="source_chars", min_value=1, max_value=cfg.max_source_chars),
               e.ExpectColumnValuesToBeBetween(column="target_chars", min_value=1, max_value=cfg.max_target_chars)]
        if name in ("train", "validation"):
            frames[name]["in_test"] = frames[name]["key"].isin(test_keys)
            out.append(e.ExpectColumnValuesToBeInSet(column="in_test", value_set=[False],
                                                     mostly=max(0.0, 1.0 - cfg.max_train_test_overlap / max(n, 1))))
            if cfg.max_shared_groups is not None:
                frames[name]["group_shared"] = frames[name]["group"].isin(later[name])
                out.append(e.ExpectColumnValuesToBeInSet(column="group_shared", value_set=[False],
                                                         mostly=max(0.0, 1.0 - cfg.max_shared_groups / max(n, 1))))
        return out

    report = validate_frame(task, {name: (frame, expectations(name)) for name, frame in frames.items()})
    report.summary.update(train_test_overlap=overlap, max_train_test_overlap=cfg.max_train_test_overlap,
                          compared="whole (source, target) pairs", shared_dialogues_or_documents=shared,
                          max_shared_groups=cfg.max_shared_groups)
    return report


def save_splits(splits: dict[str, list[dict]], out_dir: Path) -> None:
    import datasets

    features = datasets.Features({"source": datasets.Value("string"), "target": datasets.Value("string")})
    for name, rows in splits.items():
        datasets.Dataset.from_dict({"source": [r["source"] for r in rows], "target": [r["target"] for r in rows]},
                                   features=features).save_to_disk(str(out_dir / name))
