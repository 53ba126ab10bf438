"""The split stage for text tasks: read the task's files with the reader its params name, hold out
validation/test parts with a seed where the source has none, check the data contract and save each
split as an HF ``datasets`` folder with declared features.

Two row shapes, one per task shape:

- sequence (classification, regression): ``text_a``, ``text_b`` ("" for single texts), ``label``
  (the label string, or the score for regression);
- tagging: ``tokens`` plus one list of tags per layer (``ner``; ``upos`` and ``feats``; ``xpos``...).

Everything dataset-specific is in params (file names, columns, delimiter, label set), so a user's own
files in one of the supported formats need no code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.params import from_dict, param
from s2sflow.kinds.text import readers

SPLITS = ("train", "validation", "test")
SHAPES = ("classification", "regression", "tagging")
FORMATS = ("delimited", "conll", "conllu", "jsonl")


@dataclass
class SplitConfig:
    """``<task>.split`` for text tasks.

    ``format``: delimited (CSV/TSV) | conll | conllu | jsonl. ``files``: split -> file name, a list of
    names (concatenated), or ``{file: ..., where: [column, value]}`` (delimited only). Splits not
    named in ``files`` are held out of train with ``seed``: ``validation_fraction`` and
    ``test_fraction`` of its rows (whole sentences for tagging). ``text_a`` / ``text_b``: the
    columns (fields) joined with a space into the first / second segment (``text_b`` empty: single
    text). ``label``: the label column; ``labels``: the allowed values (null: any); ``label_names``:
    display names per value. ``layers``: tagging layers; conll has one (its last column), conllu
    names CoNLL-U fields (upos, xpos, feats). ``keep``: more CoNLL-U fields carried into the split
    but not predicted (``lemma`` for ``tokenize.stem_lexicon``). ``score_range``: regression scores must lie in it.
    ``delimiter``/``quoting``/``header``/``min_columns``: as in ``s2sflow.kinds.text.readers.read_delimited``.
    Contract: ``max_chars`` per text, ``max_words`` per sentence, ``min_counts`` per split,
    ``max_train_test_overlap``: whole examples shared by train and test allowed (reported always)."""

    format: str = param("delimited", choices=FORMATS)
    files: dict = field(default_factory=dict)
    seed: int = param(42, ge=0)
    validation_fraction: float = param(0.1, gt=0, lt=1)
    test_fraction: float = param(0.2, gt=0, lt=1)
    text_a: list = field(default_factory=list)
    text_b: list = field(default_factory=list)
    label: str | None = "label"
    labels: list | None = None
    label_names: dict | None = None
    layers: list = field(default_factory=lambda: ["tags"])
    keep: list = field(default_factory=list)
    score_range: list | None = None
    delimiter: str = ","
    quoting: bool = True
    header: list | None = None
    min_columns: int | None = param(None, ge=1)
    conll_columns: int = param(2, ge=2)
    max_chars: int = param(5000, ge=1)
    max_words: int = param(300, ge=1)
    min_counts: dict = field(default_factory=dict)
    max_train_test_overlap: int = param(0, ge=0)


def parse_split_config(params: dict, task: str) -> SplitConfig:
    cfg = from_dict(SplitConfig, params, f"{task}.split")
    if "train" not in cfg.files:
        raise S2SFlowError(f"params.yaml: {task}.split.files has no 'train' entry (split -> file name)", task)
    unknown = sorted(set(cfg.files) - set(SPLITS))
    if unknown:
        raise S2SFlowError(f"params.yaml: {task}.split.files.{unknown[0]}: unknown split; use train, validation, test",
                           task)
    return cfg


def _entries(value) -> list[tuple[str, tuple[str, str] | None]]:
    """A files entry -> [(file name, where filter)]."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            where = item.get("where")
            out.append((item["file"], tuple(where) if where else None))
        else:
            out.append((str(item), None))
    return out


def read_rows(path: Path, cfg: SplitConfig, shape: str, where: tuple[str, str] | None) -> list[dict]:
    """One file -> rows of the task's shape (see the module docstring)."""
    if cfg.keep and (cfg.format != "conllu" or shape != "tagging"):
        raise S2SFlowError(f"params.yaml: split.keep works with CoNLL-U tagging only (format is '{cfg.format}')")
    if shape == "tagging":
        if cfg.format == "conll":
            layer = cfg.layers[0]
            return [{"tokens": s["tokens"], layer: s["tags"]}
                    for s in readers.read_conll(path, cfg.labels, columns=cfg.conll_columns)]
        if cfg.format == "conllu":
            fields = ("upos", "xpos", "feats", "lemma")
            bad = [(key, name) for key in ("layers", "keep") for name in getattr(cfg, key) if name not in fields]
            if bad:
                raise S2SFlowError(f"params.yaml: split.{bad[0][0]} '{bad[0][1]}' is not a CoNLL-U field "
                                   f"({', '.join(fields)})")
            return [{"tokens": s["form"], **{name: s[name] for name in [*cfg.layers, *cfg.keep]}}
                    for s in readers.read_conllu(path, cfg.labels if "upos" in cfg.layers[:1] else None)]
        raise S2SFlowError(f"params.yaml: split.format '{cfg.format}' cannot hold tags; use conll or conllu")
    columns = list(cfg.text_a) + list(cfg.text_b)
    if not cfg.text_a:
        raise S2SFlowError("params.yaml: split.text_a names no column; list the text column(s)")
    score_range = tuple(cfg.score_range) if shape == "regression" else None
    if cfg.format == "delimited":
        delimiter = "\t" if cfg.delimiter in ("\\t", "tab") else cfg.delimiter
        raw = readers.read_delimited(path, columns, cfg.label, cfg.labels if shape == "classification" else None,
                                     delimiter=delimiter, quoting=cfg.quoting, header=cfg.header,
                                     min_columns=cfg.min_columns, score_range=score_range, max_chars=cfg.max_chars,
                                     where=where)
    elif cfg.format == "jsonl":
        raw = []
        for n, record in enumerate(readers.read_jsonl(path, columns + [cfg.label], cfg.max_chars), start=1):
            value = record[cfg.label].strip()
            if shape == "regression":
                try:
                    record["label"] = float(value)
                except ValueError:
                    raise S2SFlowError(f"{path} record {n}: score '{value}' is not a number") from None
                if not score_range[0] <= record["label"] <= score_range[1]:
                    raise S2SFlowError(f"{path} record {n}: score {value} is outside "
                                       f"{score_range[0]:g}-{score_range[1]:g}")
            else:
                if cfg.labels is not None and value not in cfg.labels:
                    raise S2SFlowError(f"{path} record {n}: label '{value}' is not one of {', '.join(cfg.labels)}")
                record["label"] = value
            raw.append(record)
    else:
        raise S2SFlowError(f"params.yaml: split.format '{cfg.format}' holds tags; use delimited or jsonl for "
                           f"{shape}")
    return [{"text_a": " ".join(r[c].strip() for c in cfg.text_a),
             "text_b": " ".join(r[c].strip() for c in cfg.text_b),
             "label": r["label"]} for r in raw]


def hold_out(rows: list[dict], cfg: SplitConfig, missing: list[str]) -> dict[str, list[dict]]:
    """Seeded shuffle of ``rows``, then the missing splits cut off the front (test first)."""
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    sizes = {"test": round(len(rows) * cfg.test_fraction), "validation": round(len(rows) * cfg.validation_fraction)}
    out, start = {}, 0
    for name in ("test", "validation"):
        if name in missing:
            out[name] = [rows[i] for i in order[start:start + sizes[name]]]
            start += sizes[name]
    out["train"] = [rows[i] for i in sorted(order[start:])]
    return out


def read_splits(raw_dir: Path, cfg: SplitConfig, shape: str) -> tuple[dict[str, list[dict]], str]:
    splits: dict[str, list[dict]] = {}
    for name in SPLITS:
        if name not in cfg.files:
            continue
        rows = []
        for file_name, where in _entries(cfg.files[name]):
            path = raw_dir / file_name
            if not path.is_file():
                raise S2SFlowError(f"{path}: not found; list it under download.files in params.yaml, or fix "
                                   f"split.files.{name}")
            rows += read_rows(path, cfg, shape, where)
        splits[name] = rows
    missing = [name for name in SPLITS if name not in splits]
    if not missing:
        return splits, "official splits as published"
    held = hold_out(splits["train"], cfg, missing)
    splits.update(held)
    return {name: splits[name] for name in SPLITS}, (
        f"{', '.join(missing)} held out of {cfg.files['train']} with seed {cfg.seed} "
        f"(validation {cfg.validation_fraction:g}, test {cfg.test_fraction:g}); others as published")


def features(shape: str, cfg: SplitConfig, label_values: list[str] | None):
    import datasets

    if shape == "tagging":
        return datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  **{name: datasets.Sequence(datasets.Value("string"))
                                     for name in [*cfg.layers, *cfg.keep]}})
    label = datasets.Value("float32") if shape == "regression" else datasets.ClassLabel(names=label_values)
    return datasets.Features({"text_a": datasets.Value("string"), "text_b": datasets.Value("string"),
                              "label": label})


def label_values(splits: dict[str, list[dict]], cfg: SplitConfig, shape: str) -> list[str] | None:
    if shape != "classification":
        return None
    if cfg.labels is not None:
        return [str(v) for v in cfg.labels]
    return sorted({r["label"] for r in splits["train"]})


def save_splits(splits: dict[str, list[dict]], out_dir: Path, shape: str, cfg: SplitConfig) -> list[str] | None:
    values = label_values(splits, cfg, shape)
    if values is not None:
        unseen = sorted({r["label"] for name in SPLITS for r in splits[name]} - set(values))
        if unseen:
            raise S2SFlowError(f"label '{unseen[0]}' appears outside the train split; list every label in "
                               f"split.labels")
    feats = features(shape, cfg, values)
    for name in SPLITS:
        readers.to_dataset(splits[name], feats).save_to_disk(str(out_dir / name))
    return values
