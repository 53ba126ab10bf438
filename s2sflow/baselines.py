"""No-training baselines for the text tasks, on the same test splits the pipeline evaluates on
(after the split stage): topic, nli: the majority class of the train split; sts: word overlap (Jaccard
of lower-cased word sets) scaled to 0-5; ner, pos, morph: a word-lookup tagger (each word's most
frequent train tag, per layer; unseen words get the layer's most frequent tag).
``benchmarks/baselines.py`` prints them; ``s2sflow report`` sets them beside the models' scores."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from s2sflow.core.errors import S2SFlowError


def _load(task: str, root: Path):
    from s2sflow.core.batching import load_split
    from s2sflow.core.fsutil import read_json
    from s2sflow.core.stages import Layout

    layout = Layout(task, root)
    if not (layout.split / "split.json").is_file():
        raise S2SFlowError(f"{layout.split}: not found; run `dvc repro split@{task}` first", task)
    meta = read_json(layout.split / "split.json")
    return meta, load_split(layout.split / "train").to_dict(), load_split(layout.split / "test").to_dict()


def majority(train, test) -> dict:
    top, _ = Counter(train["label"]).most_common(1)[0]
    acc = sum(y == top for y in test["label"]) / len(test["label"])
    return {"baseline": "majority class", "accuracy": round(acc, 4)}


def overlap(train, test) -> dict:
    from scipy.stats import pearsonr, spearmanr

    def jaccard(a: str, b: str) -> float:
        x, y = set(a.lower().split()), set(b.lower().split())
        return len(x & y) / max(len(x | y), 1)

    pred = [5 * jaccard(a, b) for a, b in zip(test["text_a"], test["text_b"])]
    return {"baseline": "word overlap (Jaccard x 5)", "pearson": round(float(pearsonr(pred, test["label"])[0]), 4),
            "spearman": round(float(spearmanr(pred, test["label"])[0]), 4)}


def lookup(train, test, layers: list[str], seqeval: bool) -> dict:
    out = {"baseline": "word lookup (most frequent train tag; else the most frequent tag)"}
    for layer in layers:
        per_word = defaultdict(Counter)
        for words, tags in zip(train["tokens"], train[layer]):
            for w, t in zip(words, tags):
                per_word[w][t] += 1
        default = Counter(t for tags in train[layer] for t in tags).most_common(1)[0][0]
        best = {w: c.most_common(1)[0][0] for w, c in per_word.items()}
        pred = [[best.get(w, default) for w in words] for words in test["tokens"]]
        gold = test[layer]
        n = sum(len(g) for g in gold)
        out[f"{layer}_accuracy"] = round(sum(p == g for ps, gs in zip(pred, gold) for p, g in zip(ps, gs)) / n, 4)
        if seqeval and layer == layers[0]:
            from seqeval.metrics import f1_score

            out["f1"] = round(float(f1_score(gold, pred)), 4)
    return out


def baseline(task: str, root: Path) -> dict:
    """The no-training baseline of text task ``task`` (its kind ``text``) on the project's test split."""
    from s2sflow.core.params import task_params

    section = task_params(task, root / "params.yaml")
    meta, train, test = _load(task, root)
    shape = section["shape"]
    if shape == "classification":
        return majority(train, test)
    if shape == "regression":
        return overlap(train, test)
    return lookup(train, test, meta["layers"], bool((section.get("evaluate") or {}).get("seqeval")))
