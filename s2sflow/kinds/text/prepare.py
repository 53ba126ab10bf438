"""The split and tokenize stages for text tasks (``kind: text`` in params)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import chain, repeat
from pathlib import Path

from s2sflow.core.batching import load_split
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, read_json, sha256_file, write_json
from s2sflow.core.params import fingerprint, from_dict, param, stage_params, task_params
from s2sflow.kinds.text.data import SHAPES, SPLITS, parse_split_config, read_splits, save_splits

IGNORE = -100  # label id of words whose tag is not learnt (unseen in train): cross-entropy skips them


def task_shape(task: str, params_path: Path) -> str:
    shape = task_params(task, params_path).get("shape")
    if shape not in SHAPES:
        raise S2SFlowError(f"params.yaml: {task}.shape '{shape}' is unknown; use one of {', '.join(SHAPES)}", task)
    return shape


def run_text_split(task: str, layout) -> dict:
    from s2sflow.kinds.text.contract import check_text_contract

    shape = task_shape(task, layout.params)
    cfg = parse_split_config(stage_params(task, "split", layout.params), task)
    if not (layout.raw / "source.json").is_file():
        raise S2SFlowError(f"{layout.raw}: no downloaded data; run `dvc repro download@{task}` first", task)
    splits, method = read_splits(layout.raw, cfg, shape)
    from s2sflow.kinds.text.data import label_values

    report = check_text_contract(task, splits, shape, cfg, label_values(splits, cfg, shape))
    report.raise_if_failed()
    sizes = {name: len(rows) for name, rows in splits.items()}
    with atomic_dir(layout.split) as tmp:
        labels = save_splits(splits, tmp, shape, cfg)
        write_json(tmp / "contract.json", report.to_dict())
        write_json(tmp / "split.json", {"task": task, "shape": shape, "sizes": sizes, "seed": cfg.seed,
                                        "method": method, "labels": labels, "layers": cfg.layers
                                        if shape == "tagging" else None})
    return {"sizes": sizes, "contract_success": report.success, **report.summary}


@dataclass
class TokenizeConfig:
    """``<task>.tokenize`` for text tasks. ``family``: pretrained (MiniLM-L6's uncased WordPiece) |
    scratch (WordPiece trained on the train split: ``vocab_size``, ``lowercase``, ``min_frequency``,
    ``unicode_form`` NFC | NFD (NFD covers every Hangul syllable with jamo) | NFKC). ``max_length``:
    sub-tokens per example (longer ones are truncated; tagging counts truncated words as errors).
    ``case_features``: a casing id per sub-token. ``min_label_count``: tagging labels seen fewer times
    in train are not learnt. ``split_tags``: composite tag layers predicted part by part, layer ->
    separator (``{xpos: "+"}``: ``ncn+jxt`` is learnt as ncn at position 0 and jxt at position 1, so
    combinations never seen whole can still be predicted); ``tag_parts``: positions per layer."""

    family: str = param("pretrained", choices=("pretrained", "scratch"))
    max_length: int = param(128, ge=2)
    case_features: bool = False
    vocab_size: int = param(8000, ge=1)
    lowercase: bool = False
    min_frequency: int = param(2, ge=1)
    unicode_form: str = "NFC"
    min_label_count: int = param(1, ge=1)
    split_tags: dict = field(default_factory=dict)
    tag_parts: int = param(4, ge=1)
    affixes: dict = field(default_factory=dict)
    stem_lexicon: dict = field(default_factory=dict)

    def encoder(self, tokenizer, lexicon: dict | None = None):
        from s2sflow.kinds.text.encode import Encoder

        return Encoder(tokenizer, self.max_length, self.case_features, self.affixes, lexicon)


def parse_tokenize_config(params: dict, task: str) -> TokenizeConfig:
    cfg = from_dict(TokenizeConfig, params, f"{task}.tokenize")
    if cfg.affixes:
        keys = {"prefixes", "suffixes", "buckets"}
        bad = sorted(set(cfg.affixes) ^ keys)
        values = [cfg.affixes.get(k) for k in sorted(keys)]
        if bad or not all(isinstance(v, int) and v >= 0 for v in values) or cfg.affixes["buckets"] < 2:
            raise S2SFlowError(f"params.yaml: {task}.tokenize.affixes must be {{prefixes: N, suffixes: N, buckets: N}} "
                               f"with whole numbers (buckets >= 2), got {cfg.affixes}", task)
    if cfg.stem_lexicon:
        from s2sflow.kinds.text.lexicon import parse_stem_lexicon

        parse_stem_lexicon(cfg.stem_lexicon, task)
        if not cfg.affixes:
            raise S2SFlowError(f"params.yaml: {task}.tokenize.stem_lexicon needs tokenize.affixes (its id is hashed "
                               f"into the affix buckets), e.g. affixes: {{prefixes: 2, suffixes: 3, buckets: 16384}}",
                               task)
    return cfg


def _train_texts(columns: dict, shape: str) -> list[str]:
    if shape == "tagging":
        return [" ".join(words) for words in columns["tokens"]]
    return [t for t in columns["text_a"] + columns["text_b"] if t]


def build_tokenizer(cfg: TokenizeConfig, train_rows, shape: str):
    from s2sflow.kinds.text.encode import load_pretrained_tokenizer, train_scratch_tokenizer

    if cfg.family == "pretrained":
        return load_pretrained_tokenizer()
    return train_scratch_tokenizer(_train_texts(train_rows, shape), cfg.vocab_size, cfg.lowercase,
                                   cfg.min_frequency, cfg.unicode_form)


def head_layers(train, layers: list[str], cfg: TokenizeConfig) -> dict[str, list[list[str]]]:
    """The train tags per model head: one head per layer, or ``tag_parts`` heads (``xpos.0``...) for a
    layer named in ``split_tags``."""
    from s2sflow.kinds.text.encode import split_tag

    heads = {}
    for layer in layers:
        if layer in cfg.split_tags:
            parts = [[split_tag(t, cfg.split_tags[layer], cfg.tag_parts) for t in tags] for tags in train[layer]]
            for k in range(cfg.tag_parts):
                heads[f"{layer}.{k}"] = [[p[k] for p in sentence] for sentence in parts]
        else:
            heads[layer] = train[layer]
    return heads


def tag_vocabularies(train, layers: list[str], min_count: int, fixed: list[str] | None,
                     cfg: TokenizeConfig | None = None) -> dict[str, list[str]]:
    cfg = cfg or TokenizeConfig()
    unknown = sorted(set(cfg.split_tags) - set(layers))
    if unknown:
        raise S2SFlowError(f"params.yaml: tokenize.split_tags names '{unknown[0]}', not one of the layers "
                           f"{', '.join(layers)}")
    vocab = {}
    for head, sentences in head_layers(train, layers, cfg).items():
        if head == layers[0] and fixed:
            vocab[head] = [str(v) for v in fixed]
            continue
        counts = Counter(tag for tags in sentences for tag in tags)
        vocab[head] = sorted(tag for tag, n in counts.items() if n >= min_count)
    return vocab


def encode_split(encoder, ds, shape: str, vocab: dict[str, list[str]] | None, layers: list[str] | None = None,
                 cfg: TokenizeConfig | None = None, stem_keys: list | None = None):
    """One split -> a ``datasets.Dataset`` of model inputs and label ids."""
    import datasets
    import numpy as np

    from s2sflow.core.tokens import Ragged

    if shape == "tagging":
        ragged = encoder.encode_words_ragged(ds["tokens"], stem_keys)
        heads = head_layers(ds, layers or [k for k in vocab if k in ds], cfg or TokenizeConfig())
        words = ragged["word_first"].offsets
        for head, values in vocab.items():
            index = {v: i for i, v in enumerate(values)}
            tags = chain.from_iterable(heads[head])
            flat = np.fromiter(map(index.get, tags, repeat(IGNORE)), np.int64, int(words[-1]))
            ragged[f"labels_{head}"] = Ragged(flat, words)
    else:
        encoded = encoder.encode_pairs(ds["text_a"], ds["text_b"])
        ragged = {name: Ragged.from_rows(rows) for name, rows in encoded.items()}
    narrow = {"input_ids": "int32", "token_type_ids": "int8"}  # as Dataset.from_dict stores Python lists
    columns = {name: r.to_arrow(narrow.get(name, "int64")) for name, r in ragged.items()}
    if shape != "tagging":
        columns["label"] = ds["label"]
    columns["length"] = np.diff(ragged["input_ids"].offsets).tolist()
    return datasets.Dataset.from_dict(columns)


def run_text_tokenize(task: str, layout) -> dict:
    from s2sflow.kinds.text.encode import pretrained_dir

    shape = task_shape(task, layout.params)
    cfg = parse_tokenize_config(stage_params(task, "tokenize", layout.params), task)
    if not (layout.split / "split.json").is_file():
        raise S2SFlowError(f"{layout.split}/split.json not found; run `dvc repro split@{task}` first", task)
    split_meta = read_json(layout.split / "split.json")
    data = {name: load_split(layout.split / name).to_dict() for name in SPLITS}  # column -> list
    tokenizer = build_tokenizer(cfg, data["train"], shape)
    lexicon, train_keys = None, None
    if cfg.stem_lexicon and shape == "tagging":
        from s2sflow.kinds.text import lexicon as stems

        lex_cfg = stems.parse_stem_lexicon(cfg.stem_lexicon, task)
        lexicon = stems.build(data["train"], lex_cfg, task)
        train_keys = stems.out_of_fold_keys(data["train"], lex_cfg, task)
    encoder = cfg.encoder(tokenizer, lexicon)
    split_params = stage_params(task, "split", layout.params)
    labels: dict = {"shape": shape, "label_names": split_params.get("label_names"),
                    "pairs": shape != "tagging" and bool(split_params.get("text_b"))}
    vocab = None
    if shape == "tagging":
        vocab = tag_vocabularies(data["train"], split_meta["layers"], cfg.min_label_count, split_params.get("labels"),
                                 cfg)
        labels["layers"] = vocab  # one entry per model head
        labels["output_layers"] = split_meta["layers"]
        labels["composed"] = {layer: {"sep": sep, "heads": [f"{layer}.{k}" for k in range(cfg.tag_parts)]}
                              for layer, sep in cfg.split_tags.items()}
    elif shape == "classification":
        labels["labels"] = split_meta["labels"]
    else:
        labels["score_range"] = split_params.get("score_range")
    truncated = {}
    with atomic_dir(layout.tokenized) as tmp:
        tokenizer.save(str(tmp / "tokenizer.json"))
        write_json(tmp / "labels.json", labels)
        if lexicon is not None:
            write_json(tmp / "lexicon.json", lexicon)
        for name in SPLITS:
            encoded = encode_split(encoder, data[name], shape, vocab, split_meta.get("layers"), cfg,
                                   train_keys if name == "train" else None)
            truncated[name] = sum(n >= cfg.max_length for n in encoded["length"])
            encoded.save_to_disk(str(tmp / name))
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
                 and p.name != "state.json"}
        meta = {"task": task, "shape": shape, "tokenize": asdict(cfg), "vocab_size": tokenizer.get_vocab_size(),
                "tokenizer_sha256": files["tokenizer.json"], "truncated_examples": truncated,
                "pretrained": str(pretrained_dir().name) if cfg.family == "pretrained" else None,
                "files_sha256": files, "fingerprint": fingerprint(files)}
        write_json(tmp / "meta.json", meta)
    return meta
