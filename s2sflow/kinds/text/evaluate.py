"""The evaluate stage for text tasks: test-set metrics with torchmetrics (seqeval for entity F1) into
``metrics/<task>.json`` (flat, scores in 0-1), and under ``reports/<task>/eval/``: a per-class report,
a confusion matrix (DVC plot + PNG), an error chart, the misclassified examples and sample
predictions, so a person can judge the model by eye.

Tagging is scored on words: a word's prediction is its first sub-token's; words cut off by
``max_length`` and gold tags never seen in training count as errors."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from s2sflow.core.batching import load_split
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, atomic_write_text, dumps_json, read_json
from s2sflow.core.params import from_dict, param


@dataclass
class EvaluateConfig:
    """``seqeval``: entity precision/recall/F1 (IOB2) on the first tag layer. ``n_samples``: test
    examples written to samples.json. ``n_errors``: misclassified examples in errors.json.
    ``confusion_labels``: the most frequent gold labels kept in the confusion matrix (others: "other").
    ``confusion_sentences``: tagging only, test sentences whose words enter confusion.json."""

    seqeval: bool = False
    n_samples: int = param(20, ge=0)
    n_errors: int = param(50, ge=0)
    confusion_labels: int = param(20, ge=1)
    confusion_sentences: int = param(500, ge=1)
    batch_size: int | None = param(None, ge=1)
    limit: int | None = param(None, ge=1)
    progress_bar: bool = False


def load_text_model(model_dir: Path, task: str):
    from s2sflow.kinds.text.lightning import build_network

    if not (model_dir / "model.safetensors").is_file():
        raise S2SFlowError(f"{model_dir}/model.safetensors not found; run `dvc repro train@{task}` first", task)
    config = read_json(model_dir / "config.json")
    net = build_network(config["spec"])
    net.load_state_dict(load_file(str(model_dir / "model.safetensors")))
    return net.eval(), config


def _plot_confusion(rows: list[dict], labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = {name: i for i, name in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for r in rows:
        matrix[index[r["actual"]], index[r["predicted"]]] += 1
    size = max(4.5, 0.42 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6 if len(labels) > 10 else 8,
                    color="white" if v > matrix.max() / 3 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="actual", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_bars(values: dict[str, float], path: Path, title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(values)
    fig, ax = plt.subplots(figsize=(6.5, max(2.5, 0.28 * len(names) + 1)))
    ax.barh(range(len(names)), [values[n] for n in names], color="steelblue")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel=xlabel, title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_scatter(gold: list[float], pred: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(gold, pred, s=4, alpha=0.4)
    lo, hi = min(gold + pred), max(gold + pred)
    ax.plot([lo, hi], [lo, hi], color="crimson", linewidth=1)
    ax.set(xlabel="gold score", ylabel="predicted score", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _top_labels(gold: list[str], k: int) -> list[str]:
    return [name for name, _ in Counter(gold).most_common(k)]


def _capped(rows: list[dict], keep: list[str]) -> tuple[list[dict], list[str]]:
    keep_set = set(keep)
    capped = [{k: (v if v in keep_set else "other") for k, v in r.items()} for r in rows]
    labels = keep + (["other"] if any("other" in r.values() for r in capped) else [])
    return capped, labels


def _per_class(gold: list[str], pred: list[str], labels: list[str]) -> dict:
    report = {}
    for name in labels:
        tp = sum(g == name and p == name for g, p in zip(gold, pred))
        n_gold, n_pred = gold.count(name), pred.count(name)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[name] = {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
                        "support": n_gold}
    return report


def _sequence_results(task: str, cfg: EvaluateConfig, spec: dict, outputs, test, out_dir: Path) -> dict:
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score
    from torchmetrics.functional.regression import pearson_corrcoef, spearman_corrcoef

    labels = spec["labels"]
    texts = [{"text_a": a, **({"text_b": b} if b else {})} for a, b in zip(test["text_a"], test["text_b"])]
    if spec["shape"] == "regression":
        lo, hi = labels["score_range"]
        raw = torch.stack([o[0] for o in outputs]).squeeze(-1)
        pred = (lo + raw * (hi - lo)).clamp(lo, hi)
        gold = torch.tensor(test["label"], dtype=torch.float32)
        constant = bool(pred.max() - pred.min() < 1e-6)  # correlation is undefined: report 0, and say why
        metrics = {"pearson": 0.0 if constant else float(pearson_corrcoef(pred, gold)),
                   "spearman": 0.0 if constant else float(spearman_corrcoef(pred, gold)),
                   "mse": float(torch.mean((pred - gold) ** 2)), "n_test": len(gold),
                   "constant_predictions": constant}
        bins = [str(v) for v in range(int(lo), int(math.ceil(hi)) + 1)]
        rows = [{"actual": str(int(round(g))), "predicted": str(int(round(p)))} for g, p in zip(gold.tolist(),
                                                                                          pred.tolist())]
        _plot_scatter(gold.tolist(), pred.tolist(), out_dir / "errors.png", f"{task}: test predictions vs gold")
        _plot_confusion(rows, bins, out_dir / "confusion_matrix.png", f"{task}: rounded scores")
        order = sorted(range(len(gold)), key=lambda i: -abs(float(pred[i] - gold[i])))
        errors = [{**texts[i], "gold": round(float(gold[i]), 3), "predicted": round(float(pred[i]), 3)}
                  for i in order[:cfg.n_errors]]
        samples = [{**texts[i], "gold": round(float(gold[i]), 3), "predicted": round(float(pred[i]), 3)}
                   for i in range(min(cfg.n_samples, len(gold)))]
        per_class = {}
    else:
        values = labels["labels"]
        names = [str((labels.get("label_names") or {}).get(v, v)) for v in values]
        logits = torch.stack([o[0] for o in outputs])
        pred_ids = logits.argmax(-1)
        gold_ids = torch.tensor(test["label"], dtype=torch.long)
        n = len(values)
        metrics = {"accuracy": float(multiclass_accuracy(pred_ids, gold_ids, n, average="micro")),
                   "macro_f1": float(multiclass_f1_score(pred_ids, gold_ids, n, average="macro")),
                   "n_test": len(gold_ids)}
        gold = [names[i] for i in gold_ids.tolist()]
        pred = [names[i] for i in pred_ids.tolist()]
        rows = [{"actual": g, "predicted": p} for g, p in zip(gold, pred)]
        per_class = _per_class(gold, pred, names)
        for name in names:
            metrics[f"f1_{name.lower().replace('/', '_')}"] = per_class[name]["f1"]
        _plot_confusion(rows, names, out_dir / "confusion_matrix.png", f"{task}: test confusion matrix")
        _plot_bars({k: v["f1"] for k, v in per_class.items()}, out_dir / "errors.png", f"{task}: F1 per class", "F1")
        probs = logits.softmax(-1)
        wrong = [i for i in range(len(gold)) if gold[i] != pred[i]]
        errors = [{**texts[i], "gold": gold[i], "predicted": pred[i], "confidence": round(float(probs[i].max()), 4)}
                  for i in wrong[:cfg.n_errors]]
        samples = [{**texts[i], "gold": gold[i], "predicted": pred[i], "confidence": round(float(probs[i].max()), 4)}
                   for i in range(min(cfg.n_samples, len(gold)))]
    return {"metrics": metrics, "rows": rows, "per_class": per_class, "errors": errors, "samples": samples}


def _tagging_results(task: str, cfg: EvaluateConfig, spec: dict, outputs, test, out_dir: Path) -> dict:
    from torchmetrics.functional.classification import multiclass_accuracy

    from s2sflow.kinds.text.encode import compose_layers

    labels = spec["labels"]
    heads = labels["layers"]  # head -> label values
    names = labels.get("output_layers") or list(heads)
    predicted: dict[str, list[list[str]]] = {name: [] for name in names}
    for out, words in zip(outputs, test["tokens"]):
        head_tags = {head: [values[j] for j in out[h].argmax(-1).tolist()[:len(words)]]
                     for h, (head, values) in enumerate(heads.items())}
        for name, tags in compose_layers(head_tags, labels).items():
            predicted[name].append(tags)
    metrics: dict = {}
    for layer in names:
        gold_flat = [t for tags in test[layer] for t in tags]
        pred_flat = [t for tags in predicted[layer] for t in tags]
        index = {v: i for i, v in enumerate(sorted(set(gold_flat) | set(pred_flat)))}
        acc = multiclass_accuracy(torch.tensor([index[t] for t in pred_flat]),
                                  torch.tensor([index[t] for t in gold_flat]), len(index), average="micro")
        metrics[f"{layer}_accuracy"] = float(acc)
        if layer in heads:  # gold tags the model never saw in training (they count as errors)
            metrics[f"{layer}_unseen_gold_words"] = sum(t not in set(heads[layer]) for t in gold_flat)
    first = names[0]
    metrics["n_test_sentences"] = len(test["tokens"])
    metrics["n_test_words"] = sum(len(w) for w in test["tokens"])
    per_class: dict = {}
    if cfg.seqeval:
        from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

        gold, pred = test[first], predicted[first]
        metrics.update({"f1": float(f1_score(gold, pred)), "precision": float(precision_score(gold, pred)),
                        "recall": float(recall_score(gold, pred))})
        report = classification_report(gold, pred, output_dict=True, zero_division=0)
        per_class = {k: {m: (round(float(v), 6) if m != "support" else int(v)) for m, v in r.items()}
                     for k, r in report.items()}
        for entity in sorted(k for k in report if "avg" not in k):
            metrics[f"f1_{entity.lower()}"] = float(report[entity]["f1-score"])
        bars = {k: v["f1-score"] for k, v in per_class.items() if "avg" not in k}
        _plot_bars(bars, out_dir / "errors.png", f"{task}: entity F1 per type (seqeval)", "F1")
    flat_gold = [t for s in test[first] for t in s]
    flat_pred = [t for s in predicted[first] for t in s]
    top = _top_labels(flat_gold, cfg.confusion_labels)
    if not cfg.seqeval:
        per_class = _per_class(flat_gold, flat_pred, top)
        _plot_bars({k: v["f1"] for k, v in per_class.items()}, out_dir / "errors.png",
                   f"{task}: {first} F1 per tag ({len(top)} most frequent)", "F1")
    rows = [{"actual": g, "predicted": p}
            for gs, ps in zip(test[first][:cfg.confusion_sentences], predicted[first][:cfg.confusion_sentences])
            for g, p in zip(gs, ps)]
    rows, conf_labels = _capped(rows, top)
    _plot_confusion(rows, conf_labels, out_dir / "confusion_matrix.png",
                    f"{task}: {first} confusion (first {cfg.confusion_sentences} test sentences)")

    def tagged(i: int, only_wrong: bool) -> dict:
        words = []
        for j, w in enumerate(test["tokens"][i]):
            gold = {layer: test[layer][i][j] for layer in names}
            pred = {layer: predicted[layer][i][j] for layer in names}
            if not only_wrong or gold != pred:
                words.append({"word": w, "gold": gold, "predicted": pred})
        return {"sentence": " ".join(test["tokens"][i]), "words": words}

    wrong = [i for i in range(len(test["tokens"])) if any(test[layer][i] != predicted[layer][i] for layer in names)]
    errors = [tagged(i, True) for i in wrong[:cfg.n_errors]]
    samples = [tagged(i, False) for i in range(min(cfg.n_samples, len(test["tokens"])))]
    return {"metrics": metrics, "rows": rows, "per_class": per_class, "errors": errors, "samples": samples}


def evaluate(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.text.lightning import TextDataModule, predict_split

    cfg = from_dict(EvaluateConfig, params, f"{task}.evaluate")
    net, config = load_text_model(layout.model, task)
    torch.set_num_threads(int(config["train"]["trainer"]["num_threads"]))
    spec = config["spec"]
    dm = TextDataModule(layout.tokenized, 1, cfg.batch_size or config["train"]["eval_batch_size"], 0)
    dm.prepare_data()
    dm.setup()
    test = load_split(layout.split / "test").to_dict()
    if cfg.limit:
        dm.datasets["test"] = dm.datasets["test"][:cfg.limit]
        test = {k: v[:cfg.limit] for k, v in test.items()}
    outputs = predict_split(net, dm, "test")
    with atomic_dir(layout.eval_reports) as tmp:
        if spec["shape"] == "tagging":
            result = _tagging_results(task, cfg, spec, outputs, test, tmp)
        else:
            result = _sequence_results(task, cfg, spec, outputs, test, tmp)
        (tmp / "per_class.json").write_text(dumps_json(result["per_class"]))
        (tmp / "errors.json").write_text(dumps_json(result["errors"]))
        (tmp / "samples.json").write_text(dumps_json(result["samples"]))
    with atomic_dir(layout.confusion) as tmp:  # the DVC plot (template confusion)
        (tmp / "confusion.json").write_text(dumps_json(result["rows"]))
    metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in result["metrics"].items()}
    atomic_write_text(layout.metrics, dumps_json(metrics))
    return metrics
