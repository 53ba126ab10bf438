"""The split and tokenize stages for generation tasks."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, read_json, sha256_file, write_json
from s2sflow.core.params import fingerprint, from_dict, param, stage_params
from s2sflow.kinds.seq2seq.data import SPLITS, check_contract, parse_split_config, read_splits, save_splits


def run_seq2seq_split(task: str, layout) -> dict:
    cfg = parse_split_config(stage_params(task, "split", layout.params), task)
    if not (layout.raw / "source.json").is_file():
        raise S2SFlowError(f"{layout.raw}: no downloaded data; run `dvc repro download@{task}` first", task)
    splits, method = read_splits(layout.raw, cfg)
    report = check_contract(task, splits, cfg)
    report.raise_if_failed()
    sizes = {name: len(rows) for name, rows in splits.items()}
    with atomic_dir(layout.split) as tmp:
        save_splits(splits, tmp)
        write_json(tmp / "contract.json", report.to_dict())
        write_json(tmp / "split.json", {"task": task, "shape": "generation", "sizes": sizes, "seed": cfg.seed,
                                        "method": method})
    return {"sizes": sizes, "contract_success": report.success, **report.summary}


@dataclass
class Seq2SeqTokenizeConfig:
    """``<task>.tokenize`` for generation tasks: one byte-pair vocabulary (``vocab_size``,
    ``min_frequency``, ``unicode_form``, ``lowercase``) trained on both sides of the train split only.
    ``max_source_length``: source sub-tokens kept (longer sources are truncated and counted), from
    the start (``truncation_side: right``) or, for a dialogue's context, the most recent ones (``left``);
    ``max_target_length``: the longest target allowed, end token included; ``long_targets``: what a
    longer one does: ``error`` stops the stage naming its split and example (raise the limit or drop
    the example), ``truncate`` cuts it (train and validation only; counted in meta.json; the test
    references stay whole for scoring). ``speakers``: ``keep`` the text as it is, or ``anonymize``: the
    names that open a dialogue's turns ("Ms. Dawson: ...") become ``#Person1#``, ``#Person2#``... in
    its source and target (so a name is one learnt token), and evaluate/predict put the names back
    (``speakers.py``)."""

    vocab_size: int = param(8000, ge=1)
    min_frequency: int = param(2, ge=1)
    unicode_form: str = "NFC"
    lowercase: bool = False
    max_source_length: int = param(128, ge=2)
    max_target_length: int = param(128, ge=2)
    long_targets: str = "error"
    truncation_side: str = "right"
    speakers: str = "keep"

    def record(self) -> dict:
        """The config for meta.json. ``speakers`` came later: it is written only when set, so the
        tokenized data of tasks that keep their text has the same bytes (and lineage) as before."""
        out = asdict(self)
        if out["speakers"] == "keep":
            del out["speakers"]
        return out


def parse_tokenize_config(params: dict, task: str) -> Seq2SeqTokenizeConfig:
    cfg = from_dict(Seq2SeqTokenizeConfig, params, f"{task}.tokenize")
    if cfg.unicode_form not in ("NFC", "NFD", "NFKC"):
        raise S2SFlowError(f"params.yaml: {task}.tokenize.unicode_form '{cfg.unicode_form}' is unknown; use NFC, "
                           f"NFD or NFKC", task)
    if cfg.truncation_side not in ("right", "left"):
        raise S2SFlowError(f"params.yaml: {task}.tokenize.truncation_side '{cfg.truncation_side}' is unknown; use "
                           f"right (keep the start) or left (keep the end)", task)
    if cfg.long_targets not in ("error", "truncate"):
        raise S2SFlowError(f"params.yaml: {task}.tokenize.long_targets '{cfg.long_targets}' is unknown; use error or "
                           f"truncate", task)
    if cfg.speakers not in ("keep", "anonymize"):
        raise S2SFlowError(f"params.yaml: {task}.tokenize.speakers '{cfg.speakers}' is unknown; use keep or "
                           f"anonymize (dialogue speakers' names -> #PersonN#)", task)
    return cfg


def encode_pairs(tokenizer, sources: list[str], targets: list[str] | None, cfg: Seq2SeqTokenizeConfig,
                 where: str = "") -> dict:
    """Sources -> ``input_ids`` (truncated, end token last); targets -> ``labels`` (end token last; one
    over ``max_target_length`` is an error naming ``where`` and its example number, or cut to it with
    ``long_targets: truncate``)."""
    from s2sflow.core.generation.tokenizer import GENERATION_SPECIALS

    eos = GENERATION_SPECIALS.index("</s>")
    keep = cfg.max_source_length - 1
    out = {"input_ids": [(e.ids[-keep:] if cfg.truncation_side == "left" and len(e.ids) > keep else e.ids[:keep])
                         + [eos] for e in tokenizer.encode_batch_fast(sources)]}
    out["truncated"] = sum(len(e) >= cfg.max_source_length for e in out["input_ids"])
    if targets is not None:
        labels = [e.ids + [eos] for e in tokenizer.encode_batch_fast(targets)]
        out["truncated_targets"] = sum(len(ids) > cfg.max_target_length for ids in labels)
        if cfg.long_targets == "truncate":
            labels = [ids[:cfg.max_target_length - 1] + [eos] if len(ids) > cfg.max_target_length else ids
                      for ids in labels]
        for n, ids in enumerate(labels, start=1):
            if len(ids) > cfg.max_target_length:
                raise S2SFlowError(f"{where} example {n}: the target has {len(ids)} sub-tokens, over "
                                   f"tokenize.max_target_length={cfg.max_target_length}; raise the limit or drop the "
                                   f"example ({targets[n - 1][:60]!r}...)")
        out["labels"] = labels
    return out


def run_seq2seq_tokenize(task: str, layout) -> dict:
    import datasets

    from s2sflow.core.generation.tokenizer import train_bpe
    from s2sflow.core.tokens import Ragged

    cfg = parse_tokenize_config(stage_params(task, "tokenize", layout.params), task)
    if not (layout.split / "split.json").is_file():
        raise S2SFlowError(f"{layout.split}/split.json not found; run `dvc repro split@{task}` first", task)
    datasets.disable_progress_bars()
    names = list(SPLITS) + [n for n in read_json(layout.split / "split.json")["sizes"] if n not in SPLITS]
    data = {name: datasets.load_from_disk(str(layout.split / name)).to_dict() for name in names}
    if cfg.speakers == "anonymize":
        from s2sflow.kinds.seq2seq.speakers import anonymize, dialogue_speakers

        for rows in data.values():
            cast = [dialogue_speakers(s) for s in rows["source"]]
            rows["source"] = [anonymize(s, c) for s, c in zip(rows["source"], cast)]
            rows["target"] = [anonymize(t, c) for t, c in zip(rows["target"], cast)]
    train = data["train"]
    tokenizer = train_bpe(train["source"] + train["target"], cfg.vocab_size, cfg.min_frequency, cfg.unicode_form,
                          cfg.lowercase)
    truncated, truncated_targets = {}, {}
    with atomic_dir(layout.tokenized) as tmp:
        tokenizer.save(str(tmp / "tokenizer.json"))
        for name in names:
            encoded = encode_pairs(tokenizer, data[name]["source"], data[name]["target"], cfg,
                                   where=f"{layout.split / name}")
            truncated[name] = encoded.pop("truncated")
            truncated_targets[name] = encoded.pop("truncated_targets")
            columns = {k: Ragged.from_rows(v).to_arrow() for k, v in encoded.items()}
            columns["length"] = [len(ids) for ids in encoded["input_ids"]]
            datasets.Dataset.from_dict(columns).save_to_disk(str(tmp / name))
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
                 and p.name != "state.json"}
        meta = {"task": task, "shape": "generation", "tokenize": cfg.record(), "vocab_size": tokenizer.get_vocab_size(),
                "tokenizer_sha256": files["tokenizer.json"], "truncated_sources": truncated,
                **({"truncated_targets": truncated_targets} if cfg.long_targets == "truncate" else {}),
                "split": read_json(layout.split / "split.json")["sizes"], "files_sha256": files,
                "fingerprint": fingerprint(files)}
        write_json(tmp / "meta.json", meta)
    return {k: meta[k] for k in ("vocab_size", "truncated_sources", "tokenizer_sha256")}
