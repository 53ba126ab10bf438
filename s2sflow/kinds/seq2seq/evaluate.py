"""The evaluate stage for generation tasks: decode the test split with the decoding params
(``evaluate.decoding``: beam size, max length, length penalty, no-repeat n-gram, sampling with
top-k/top-p), score the outputs against the split's own (untokenized) references, and write
``metrics/<task>.json`` (flat), ``reports/<task>/eval/samples.md`` (source, reference, prediction for
``n_samples`` test items, to judge by eye) and ``reports/<task>/eval/`` (every prediction,
per-length scores, signatures).

``evaluate.metrics`` picks the scores: ``sacrebleu`` (BLEU and chrF, 0-100, signatures recorded),
``rouge`` (rouge1/rouge2/rougeL F-measures with stemming: the mean over an item's references, and
``rougeL_max``), ``distinct`` (distinct_1/distinct_2: distinct n-grams over all n-grams of the
outputs) and ``perplexity`` (teacher-forced on the test targets, per sub-token; ``word_perplexity``: the
same NLL per word of the targets, counting the end of each target as one: comparable across vocabulary
sizes, which per-sub-token perplexity is not). ``group_references``: test rows
with the same source are one item with several references (DialogSum: 3 per dialogue).
``also_decode``: other decoding settings scored on the test split too (``<name>_<metric>``), and with
``validation_items`` every setting on the first N validation items, side by side in
``reports/<task>/eval/decodings.md`` (choose the default there, not on test).
``extractive``: a no-training baseline scored the same way (the ``sentences`` sentences closest to
the source's TF-IDF centroid, in their order), as ``extractive_<metric>``. ``extra``: evaluation-only
splits (split.extra) decoded and scored too, as ``<name>_<metric>``. A model trained with
``tokenize.speakers: anonymize`` writes ``#PersonN#``; its outputs get the speakers' names back
before scoring."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import torch

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, atomic_write_text, dumps_json, read_json
from s2sflow.core.generation.config import parse_evaluate_config
from s2sflow.core.generation.decoding import IGNORE, decode, perplexity, samples_markdown, scores, test_nll


def load_seq2seq_model(model_dir: Path, task: str):
    from safetensors.torch import load_model

    from s2sflow.core.generation.model import build_network

    if not (model_dir / "model.safetensors").is_file():
        raise S2SFlowError(f"{model_dir}/model.safetensors not found; run `dvc repro train@{task}` first", task)
    config = read_json(model_dir / "config.json")
    net = build_network(config["spec"]["bart"])
    load_model(net, str(model_dir / "model.safetensors"))
    return net.eval(), config


def extractive_summaries(sources: list[str], corpus: list[str], sentences: int) -> list[str]:
    """A no-training baseline: each source's ``sentences`` sentences (split at line breaks and sentence
    ends) most similar to the source's own TF-IDF centroid (IDF from ``corpus``), in source order."""
    import re

    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(lowercase=True).fit(corpus)
    out = []
    for source in sources:
        parts = [p.strip() for line in source.splitlines() for p in re.split(r"(?<=[.!?])\s+", line) if p.strip()]
        if len(parts) <= sentences:
            out.append(" ".join(parts))
            continue
        vectors = vectorizer.transform(parts)
        centroid = np.asarray(vectors.mean(axis=0)).ravel()
        similarity = vectors @ centroid
        best = sorted(np.argsort(-similarity, kind="stable")[:sentences])
        out.append(" ".join(parts[i] for i in best))
    return out


def test_items(rows: dict, group: bool, limit: int | None) -> tuple[list[int], list[list[str]]]:
    """Row indices to decode and each one's references: every row with its own target, or (``group``)
    the first row of each distinct source with the targets of all its rows."""
    order: dict[str, list[int]] = {}
    for i, source in enumerate(rows["source"]):
        order.setdefault(source if group else str(i), []).append(i)
    items = list(order.values())[:limit]
    return [g[0] for g in items], [[rows["target"][i] for i in g] for g in items]


def length_buckets(rows: list[dict], kinds) -> dict:
    """The headline score per source-length bucket (in words): where the model breaks down."""
    key = "bleu" if "sacrebleu" in kinds else "rougeL" if "rouge" in kinds else None
    if key is None:
        return {}
    buckets: dict[int, list[dict]] = {}
    for r in rows:
        buckets.setdefault(int(math.log2(max(len(r["source"].split()), 1))), []).append(r)
    return {f"{2 ** b}-{2 ** (b + 1) - 1} words": {"n": len(rs), key: scores([r["prediction"] for r in rs],
                                                                         [r["reference"] for r in rs], kinds)[0][key]}
            for b, rs in sorted(buckets.items())}


def decodings_markdown(task: str, decodings: dict, compared: dict, validation_items: int) -> str:
    """One row per decoding setting: what differs from the default, then its scores on the first
    ``validation_items`` validation items (where to choose a default from) and on the test split."""
    default = asdict(decodings["default"])
    keys = sorted({k for c in compared.values() for m in c.values() for k in m})
    splits = (["validation"] if validation_items else []) + ["test"]
    head = ["decoding", "settings"] + [f"{s} {k}" for s in splits for k in keys]
    lines = [f"# {task}: decoding settings compared", "",
             f"Default: {', '.join(f'{k}={v}' for k, v in default.items())}.",
             f"Validation: the first {validation_items} items; test: the whole split." if validation_items
             else "Test: the whole split.", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, decoding in decodings.items():
        changed = {k: v for k, v in asdict(decoding).items() if v != default[k]}
        cells = [name, ", ".join(f"{k}={v}" for k, v in changed.items()) or "(default)"]
        cells += [str(compared[name].get(s, {}).get(k, "")) for s in splits for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def evaluate(task: str, params: dict, layout) -> dict:
    import datasets

    from s2sflow.core.tokens import load_tokenizer
    from s2sflow.kinds.seq2seq.lightning import Seq2SeqDataModule, generate_split, seq2seq_losses

    cfg = parse_evaluate_config(params, task)
    net, config = load_seq2seq_model(layout.model, task)
    torch.set_num_threads(int(config["train"]["trainer"]["num_threads"]))
    datamodule = Seq2SeqDataModule(layout.tokenized, 1, cfg.batch_size, 0)
    datamodule.prepare_data()
    datamodule.setup()
    datasets.disable_progress_bars()
    tokenizer = load_tokenizer(layout.model / "tokenizer.json")
    kinds = [k for k in cfg.metrics if k != "perplexity"]

    def run(split: str, limit: int | None, decoding=cfg.decoding) -> tuple[list[dict], dict, dict]:
        rows = datasets.load_from_disk(str(layout.split / split)).to_dict()
        if split not in datamodule.datasets:
            from s2sflow.core.batching import load_examples

            datamodule.datasets[split] = load_examples(layout.tokenized / split)
        indices, refs = test_items(rows, cfg.group_references, limit)
        torch.manual_seed(decoding.seed)
        hyps, _ = generate_split(net, datamodule, split, tokenizer, indices, decoding.generate_kwargs(),
                                 progress=cfg.progress_bar)
        if config["spec"].get("speakers") == "anonymize":  # the model wrote #PersonN#: the speakers' names back
            from s2sflow.kinds.seq2seq.speakers import dialogue_speakers, restore

            hyps = [restore(h, dialogue_speakers(rows["source"][i])) for i, h in zip(indices, hyps)]
        metrics, signatures = scores(hyps, refs, kinds)
        out = [{"index": i, "source": rows["source"][i], "reference": r if cfg.group_references else r[0],
                "prediction": h} for i, r, h in zip(indices, refs, hyps)]
        return out, metrics, signatures

    decodings = cfg.decodings(task)
    rows, metrics, signatures = run("test", cfg.limit)
    compared = {"default": {"test": dict(metrics)}}
    for name, decoding in list(decodings.items())[1:]:
        compared[name] = {"test": run("test", cfg.limit, decoding)[1]}
        metrics.update({f"{name}_{k}": v for k, v in compared[name]["test"].items()})
    if cfg.validation_items:
        for name, decoding in decodings.items():
            compared[name]["validation"] = run("validation", cfg.validation_items, decoding)[1]
    metrics.update(n_test=len(rows), mean_output_words=round(sum(len(r["prediction"].split()) for r in rows)
                                                             / max(len(rows), 1), 3))
    if "perplexity" in cfg.metrics:
        nll, tokens = test_nll(net, datamodule, "test", seq2seq_losses)
        targets = decode(tokenizer, [[t for t in e["labels"] if t != IGNORE] for e in datamodule.datasets["test"]])
        metrics.update(perplexity=perplexity(nll, tokens),
                       word_perplexity=perplexity(nll, sum(len(t.split()) + 1 for t in targets)))
    if cfg.extractive is not None:
        train_sources = datasets.load_from_disk(str(layout.split / "train"))["source"]
        extracted = extractive_summaries([r["source"] for r in rows], train_sources, int(cfg.extractive["sentences"]))
        baseline = scores(extracted, [r["reference"] if cfg.group_references else [r["reference"]] for r in rows],
                          kinds)[0]
        metrics.update({f"extractive_{k}": v for k, v in baseline.items()})
    for name in cfg.extra:
        if not (layout.split / f"extra_{name}").is_dir():
            raise S2SFlowError(f"params.yaml: {task}.evaluate.extra names '{name}', but split.extra has no such set",
                               task)
        _, extra_metrics, _ = run(f"extra_{name}", cfg.limit)
        metrics.update({f"{name}_{k}": v for k, v in extra_metrics.items()})
    decoding = asdict(cfg.decoding)
    with atomic_dir(layout.eval_reports) as tmp:
        (tmp / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                                       for r in rows), encoding="utf-8")
        (tmp / "scores.json").write_text(dumps_json({"metrics": metrics, "signatures": signatures,
                                                     "decoding": decoding,
                                                     "per_source_length": length_buckets(rows, kinds)}),
                                         encoding="utf-8")
        (tmp / "samples.md").write_text(samples_markdown(task, rows[:cfg.n_samples], metrics, decoding),
                                        encoding="utf-8")
        if len(decodings) > 1 or cfg.validation_items:
            (tmp / "decodings.md").write_text(decodings_markdown(task, decodings, compared, cfg.validation_items),
                                              encoding="utf-8")
    atomic_write_text(layout.metrics, dumps_json(metrics))
    return metrics
