"""The evaluate stage for generation tasks: decode the test split with the decoding params
(``evaluate.decoding``: beam size, max length, length penalty, no-repeat n-gram, sampling with
top-k/top-p), score the outputs against the split's own (untokenized) references with sacreBLEU
(BLEU and chrF, their signatures recorded), and write ``metrics/<task>.json`` (flat),
``reports/<task>/samples.md`` (source, reference, prediction for ``n_samples`` test items, to judge
by eye) and ``reports/<task>/eval/`` (every prediction, per-length scores, the signatures)."""

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


def parse_evaluate_config(params: dict, task: str) -> Seq2SeqEvaluateConfig:
    cfg = from_dict(Seq2SeqEvaluateConfig, params, f"{task}.evaluate")
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


def scores(hyps: list[str], refs: list[str]) -> tuple[dict, dict]:
    """sacreBLEU corpus BLEU and chrF (0-100, detokenized text) and their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
    return ({"bleu": round(b.score, 4), "chrf": round(c.score, 4), "bleu_brevity_penalty": round(b.bp, 4),
             "length_ratio": round(b.sys_len / max(b.ref_len, 1), 4)},
            {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())})


def samples_markdown(task: str, rows: list[dict], metrics: dict, decoding: dict) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# {task}: test samples", "", "Decoding: " + ", ".join(f"{k}={v}" for k, v in decoding.items()),
             "", "Test scores: " + ", ".join(f"{k} {v}" for k, v in metrics.items() if isinstance(v, float)), "",
             "| # | source | reference | prediction |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['index']} | {cell(r['source'])} | {cell(r['reference'])} | {cell(r['prediction'])} |"
              for r in rows]
    return "\n".join(lines) + "\n"


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
    test = datasets.load_from_disk(str(layout.split / "test")).to_dict()
    n = len(test["source"]) if cfg.limit is None else min(cfg.limit, len(test["source"]))
    torch.manual_seed(cfg.decoding.seed)
    tokenizer = load_tokenizer(layout.model / "tokenizer.json")
    hyps, _ = generate_split(net, datamodule, "test", tokenizer, list(range(n)), cfg.decoding.generate_kwargs(),
                             progress=cfg.progress_bar)
    refs = test["target"][:n]
    metrics, signatures = scores(hyps, refs)
    metrics.update(n_test=n, mean_output_words=round(sum(len(h.split()) for h in hyps) / max(n, 1), 3))
    rows = [{"index": i, "source": test["source"][i], "reference": refs[i], "prediction": hyps[i]} for i in range(n)]
    by_length: dict[str, tuple[list, list]] = {}
    for r in rows:  # sacreBLEU per source-length bucket: where the model breaks down
        words = len(r["source"].split())
        bucket = f"{2 ** int(math.log2(max(words, 1)))}-{2 ** (int(math.log2(max(words, 1))) + 1) - 1} words"
        by_length.setdefault(bucket, ([], []))[0].append(r["prediction"])
        by_length[bucket][1].append(r["reference"])
    per_length = {b: {"n": len(h), "bleu": scores(h, r)[0]["bleu"]} for b, (h, r) in sorted(
        by_length.items(), key=lambda kv: int(kv[0].split("-")[0]))}
    decoding = asdict(cfg.decoding)
    with atomic_dir(layout.eval_reports) as tmp:
        (tmp / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                                       for r in rows), encoding="utf-8")
        (tmp / "scores.json").write_text(dumps_json({"metrics": metrics, "signatures": signatures,
                                                     "decoding": decoding, "per_source_length": per_length}),
                                         encoding="utf-8")
    atomic_write_text(layout.eval_reports.parent / "samples.md",
                      samples_markdown(task, rows[:cfg.n_samples], metrics, decoding))
    atomic_write_text(layout.metrics, dumps_json(metrics))
    return metrics
