"""The evaluate stage for generation tasks: decode the test split with the decoding params
(``evaluate.decoding``: beam size, max length, length penalty, no-repeat n-gram, sampling with
top-k/top-p), score the outputs against the split's own (untokenized) references, and write
``metrics/<task>.json`` (flat), ``reports/<task>/samples.md`` (source, reference, prediction for
``n_samples`` test items, to judge by eye) and ``reports/<task>/eval/`` (every prediction,
per-length scores, signatures).

``evaluate.metrics`` picks the scores: ``sacrebleu`` (BLEU and chrF, 0-100, signatures recorded),
``rouge`` (rouge1/rouge2/rougeL F-measures with stemming: the mean over an item's references, and
``rougeL_max``), ``distinct`` (distinct_1/distinct_2: distinct n-grams over all n-grams of the
outputs) and ``perplexity`` (teacher-forced on the test targets). ``group_references``: test rows
with the same source are one item with several references (DialogSum: 3 per dialogue).
``extractive``: a no-training baseline scored the same way (the ``sentences`` sentences closest to
the source's TF-IDF centroid, in their order), as ``extractive_<metric>``. ``extra``: evaluation-only
splits (split.extra) decoded and scored too, as ``<name>_<metric>``. A model trained with
``tokenize.speakers: anonymize`` writes ``#PersonN#``; its outputs get the speakers' names back
before scoring."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from s2sflow.errors import S2SFlowError
from s2sflow.fsutil import atomic_dir, atomic_write_text, dumps_json, read_json
from s2sflow.params import from_dict


@dataclass
class DecodingConfig:
    """``generate()`` settings: ``num_beams`` (1 = greedy), ``max_length`` (sub-tokens),
    ``length_penalty`` (beam scores divided by length ** penalty), ``no_repeat_ngram_size`` (0 = off),
    ``do_sample`` with ``top_k`` / ``top_p`` / ``temperature`` (``seed`` fixes the draw)."""

    num_beams: int = 4
    max_length: int = 64
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    do_sample: bool = False
    top_k: int = 50
    top_p: float = 1.0
    temperature: float = 1.0
    seed: int = 1

    def generate_kwargs(self) -> dict:
        out = {"num_beams": self.num_beams, "max_length": self.max_length, "length_penalty": self.length_penalty,
               "no_repeat_ngram_size": self.no_repeat_ngram_size, "do_sample": self.do_sample,
               "early_stopping": self.num_beams > 1}
        if self.do_sample:
            out.update(top_k=self.top_k, top_p=self.top_p, temperature=self.temperature)
        return out


@dataclass
class Seq2SeqEvaluateConfig:
    """``decoding``: see DecodingConfig. ``n_samples``: test items in samples.md. ``batch_size``:
    examples decoded at once. ``limit``: decode only the first N test items (null: all)."""

    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    n_samples: int = 20
    batch_size: int = 64
    limit: int | None = None
    progress_bar: bool = True
    metrics: list = field(default_factory=lambda: ["sacrebleu"])
    group_references: bool = False
    extractive: dict | None = None
    extra: list = field(default_factory=list)


METRIC_KINDS = ("sacrebleu", "rouge", "distinct", "perplexity")


def parse_evaluate_config(params: dict, task: str) -> Seq2SeqEvaluateConfig:
    cfg = from_dict(Seq2SeqEvaluateConfig, params, f"{task}.evaluate")
    unknown = [m for m in cfg.metrics if m not in METRIC_KINDS]
    if unknown or not cfg.metrics:
        raise S2SFlowError(f"params.yaml: {task}.evaluate.metrics {cfg.metrics}: use some of {', '.join(METRIC_KINDS)}",
                           task)
    if cfg.extractive is not None and int(cfg.extractive.get("sentences", 0)) < 1:
        raise S2SFlowError(f"params.yaml: {task}.evaluate.extractive.sentences must be >= 1", task)
    d = cfg.decoding
    if d.num_beams < 1 or d.max_length < 2 or not 0.0 < d.top_p <= 1.0 or d.top_k < 0 or d.temperature <= 0:
        raise S2SFlowError(f"params.yaml: {task}.evaluate.decoding {asdict(d)}: num_beams >= 1, max_length >= 2, "
                           f"0 < top_p <= 1, top_k >= 0 and temperature > 0", task)
    return cfg


def load_seq2seq_model(model_dir: Path, task: str):
    from safetensors.torch import load_model

    from s2sflow.seq2seq.model import build_network

    if not (model_dir / "model.safetensors").is_file():
        raise S2SFlowError(f"{model_dir}/model.safetensors not found; run `dvc repro gen_train@{task}` first", task)
    config = read_json(model_dir / "config.json")
    net = build_network(config["spec"]["bart"])
    load_model(net, str(model_dir / "model.safetensors"))
    return net.eval(), config


def scores(hyps: list[str], refs: list[str] | list[list[str]], kinds=("sacrebleu",)) -> tuple[dict, dict]:
    """The ``kinds`` of score of outputs against one reference each (``refs``: strings) or several
    (lists); returns (metrics, signatures)."""
    many = [r if isinstance(r, list) else [r] for r in refs]
    metrics, signatures = {}, {}
    if "sacrebleu" in kinds:
        from sacrebleu.metrics import BLEU, CHRF

        width = max((len(r) for r in many), default=1)  # pad with the first reference: BLEU/chrF are unchanged
        streams = [[r[k] if k < len(r) else r[0] for r in many] for k in range(width)]
        bleu, chrf = BLEU(), CHRF()
        b, c = bleu.corpus_score(hyps, streams), chrf.corpus_score(hyps, streams)
        metrics.update(bleu=round(b.score, 4), chrf=round(c.score, 4), bleu_brevity_penalty=round(b.bp, 4),
                       length_ratio=round(b.sys_len / max(b.ref_len, 1), 4))
        signatures.update(bleu=str(bleu.get_signature()), chrf=str(chrf.get_signature()))
    if "rouge" in kinds:
        metrics.update(rouge_scores(hyps, many))
        signatures["rouge"] = "rouge-score 0.1.2, use_stemmer=True, F-measure, mean over references"
    if "distinct" in kinds:
        for n in (1, 2):
            grams = [tuple(w[i:i + n]) for w in (h.lower().split() for h in hyps) for i in range(len(w) - n + 1)]
            metrics[f"distinct_{n}"] = round(len(set(grams)) / max(len(grams), 1), 4)
    return metrics, signatures


def rouge_scores(hyps: list[str], refs: list[list[str]]) -> dict:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    sums = dict.fromkeys(("rouge1", "rouge2", "rougeL", "rougeL_max"), 0.0)
    for hyp, item_refs in zip(hyps, refs):
        each = [scorer.score(ref, hyp) for ref in item_refs]
        for key in ("rouge1", "rouge2", "rougeL"):
            sums[key] += sum(s[key].fmeasure for s in each) / len(each)
        sums["rougeL_max"] += max(s["rougeL"].fmeasure for s in each)
    return {k: round(v / max(len(hyps), 1), 4) for k, v in sums.items()}


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


def samples_markdown(task: str, rows: list[dict], metrics: dict, decoding: dict) -> str:
    def cell(text) -> str:
        text = " ‖ ".join(text) if isinstance(text, list) else text
        return text.replace("|", "\\|").replace("\n", " / ")

    lines = [f"# {task}: test samples", "", "Decoding: " + ", ".join(f"{k}={v}" for k, v in decoding.items()),
             "", "Test scores: " + ", ".join(f"{k} {v}" for k, v in metrics.items() if isinstance(v, float)), "",
             "| # | source | reference | prediction |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['index']} | {cell(r['source'])} | {cell(r['reference'])} | {cell(r['prediction'])} |"
              for r in rows]
    return "\n".join(lines) + "\n"


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


def test_perplexity(net, datamodule, split: str) -> float:
    from s2sflow.seq2seq.lightning import token_losses

    nll, tokens = 0.0, 0
    with torch.no_grad():
        for batch in datamodule.eval_loader(split):
            _, batch_nll, n = token_losses(net, batch, 0.0)
            nll, tokens = nll + float(batch_nll), tokens + int(n)
    return round(math.exp(min(nll / max(tokens, 1), 50.0)), 4)


def evaluate_seq2seq(task: str, params: dict, layout) -> dict:
    import datasets

    from s2sflow.seq2seq.lightning import Seq2SeqDataModule, generate_split
    from s2sflow.text.encode import load_tokenizer

    cfg = parse_evaluate_config(params, task)
    net, config = load_seq2seq_model(layout.model, task)
    torch.set_num_threads(int(config["train"]["trainer"]["num_threads"]))
    datamodule = Seq2SeqDataModule(layout.tokenized, 1, cfg.batch_size, 0)
    datamodule.prepare_data()
    datamodule.setup()
    datasets.disable_progress_bars()
    tokenizer = load_tokenizer(layout.model / "tokenizer.json")
    kinds = [k for k in cfg.metrics if k != "perplexity"]

    def run(split: str, limit: int | None) -> tuple[list[dict], dict, dict]:
        rows = datasets.load_from_disk(str(layout.split / split)).to_dict()
        if split not in datamodule.datasets:
            from s2sflow.text.lightning import load_examples

            datamodule.datasets[split] = load_examples(layout.tokenized / split)
        indices, refs = test_items(rows, cfg.group_references, limit)
        torch.manual_seed(cfg.decoding.seed)
        hyps, _ = generate_split(net, datamodule, split, tokenizer, indices, cfg.decoding.generate_kwargs(),
                                 progress=cfg.progress_bar)
        if config["spec"].get("speakers") == "anonymize":  # the model wrote #PersonN#: the speakers' names back
            from s2sflow.seq2seq.speakers import dialogue_speakers, restore

            hyps = [restore(h, dialogue_speakers(rows["source"][i])) for i, h in zip(indices, hyps)]
        metrics, signatures = scores(hyps, refs, kinds)
        out = [{"index": i, "source": rows["source"][i], "reference": r if cfg.group_references else r[0],
                "prediction": h} for i, r, h in zip(indices, refs, hyps)]
        return out, metrics, signatures

    rows, metrics, signatures = run("test", cfg.limit)
    metrics.update(n_test=len(rows), mean_output_words=round(sum(len(r["prediction"].split()) for r in rows)
                                                             / max(len(rows), 1), 3))
    if "perplexity" in cfg.metrics:
        metrics["perplexity"] = test_perplexity(net, datamodule, "test")
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
    atomic_write_text(layout.eval_reports.parent / "samples.md",
                      samples_markdown(task, rows[:cfg.n_samples], metrics, decoding))
    atomic_write_text(layout.metrics, dumps_json(metrics))
    return metrics
