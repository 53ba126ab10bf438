"""The captioning evaluate stage: caption every test image with the decoding params and score it with
pycocoevalcap (BLEU-1..4, CIDEr) against all its captions; samples.md links each image."""

from __future__ import annotations

import json
from dataclasses import asdict

import torch

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, atomic_write_text, dumps_json, read_json
from s2sflow.core.generation.config import parse_evaluate_config
from s2sflow.core.generation.decoding import samples_markdown, scores, test_perplexity
from s2sflow.kinds.captioning.lightning import (
    CaptionDataModule,
    caption_images,
    caption_losses,
    coco_scores,
    load_caption_model,
)


def _image_link(layout, image: str, folder: str) -> str:
    return f"[{image}](../../../data/raw/{layout.task}/{folder}/{image})"


def evaluate(task: str, params: dict, layout) -> dict:
    """Caption every test image with the decoding params; score against all of its captions."""
    import datasets

    from s2sflow.core.tokens import load_tokenizer

    cfg = parse_evaluate_config(params, task)
    unsupported = [k for k in ("also_decode", "validation_items", "extra", "extractive") if getattr(cfg, k)]
    if unsupported:
        raise S2SFlowError(f"params.yaml: {task}.evaluate.{unsupported[0]}: not supported by the captioning kind "
                           f"(text-to-text tasks only); remove it", task)
    net, config = load_caption_model(layout.model, task)
    torch.set_num_threads(int(config["train"]["trainer"]["num_threads"]))
    datamodule = CaptionDataModule(layout.tokenized, 1, cfg.batch_size, 0)
    datamodule.prepare_data()
    datamodule.setup()
    datasets.disable_progress_bars()
    rows = datasets.load_from_disk(str(layout.split / "test")).to_dict()
    n = len(rows["image"]) if cfg.limit is None else min(cfg.limit, len(rows["image"]))
    tokenizer = load_tokenizer(layout.model / "tokenizer.json")
    torch.manual_seed(cfg.decoding.seed)
    hyps = caption_images(net, datamodule.features["test"][:n], tokenizer, cfg.decoding.generate_kwargs(),
                          cfg.batch_size, progress=cfg.progress_bar, desc="caption test")
    refs = rows["captions"][:n]
    metrics = coco_scores(hyps, refs)
    if "distinct" in cfg.metrics:
        metrics.update(scores(hyps, refs, ["distinct"])[0])
    metrics.update(n_test=n, mean_output_words=round(sum(len(h.split()) for h in hyps) / max(n, 1), 3),
                   distinct_captions=len(set(hyps)))
    if "perplexity" in cfg.metrics:
        metrics["perplexity"] = test_perplexity(net, datamodule, "test", caption_losses)
    folder = read_json(layout.split / "split.json")["images"]
    out = [{"index": i, "image": rows["image"][i], "source": _image_link(layout, rows["image"][i], folder),
            "reference": refs[i], "prediction": hyps[i]} for i in range(n)]
    decoding = asdict(cfg.decoding)
    signature = ("pycocoevalcap 1.2 Bleu(4) (closest reference length) and Cider (n=4, sigma=6, IDF from the test "
                 "references), Python tokenization: lower case, punctuation dropped")
    with atomic_dir(layout.eval_reports) as tmp:
        (tmp / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                                       for r in out), encoding="utf-8")
        (tmp / "scores.json").write_text(dumps_json({"metrics": metrics, "signatures": {"coco": signature},
                                                     "decoding": decoding}), encoding="utf-8")
        (tmp / "samples.md").write_text(samples_markdown(task, out[:cfg.n_samples], metrics, decoding),
                                        encoding="utf-8")
    atomic_write_text(layout.metrics, dumps_json(metrics))
    return metrics


