"""No-training baselines for captioning, scored like the model (pycocoevalcap BLEU-1..4 and CIDEr
against all 5 references of each of the test images the pipeline evaluates on); run after the
tokenize stage (`dvc repro tokenize@captioning`):

- constant: the train split's most frequent caption (lower-cased, punctuation dropped) for every image;
- nearest neighbour: the train image whose whole-image EfficientNet-Lite0 feature (the same frozen
  features the model reads) is closest by cosine similarity; of its 5 captions, the consensus one
  (the highest mean word-overlap F1 with the other 4, after Devlin et al. 2015).

    python benchmarks/captioning_baselines.py [--task captioning] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def overlap_f1(a: str, b: str) -> float:
    wa, wb = Counter(a.split()), Counter(b.split())
    common = sum((wa & wb).values())
    return 0.0 if not common else 2 * common / (sum(wa.values()) + sum(wb.values()))


def consensus(captions: list[str]) -> str:
    from s2sflow.kinds.captioning.lightning import coco_tokens

    tokens = [coco_tokens(c) for c in captions]
    scores = [sum(overlap_f1(t, u) for j, u in enumerate(tokens) if j != i) for i, t in enumerate(tokens)]
    return captions[max(range(len(captions)), key=lambda i: (scores[i], -i))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="captioning")
    parser.add_argument("--json", action="store_true", help="one JSON object per baseline")
    args = parser.parse_args()

    import datasets
    import torch

    from s2sflow.core.fsutil import read_json
    from s2sflow.core.stages import Layout
    from s2sflow.kinds.captioning.lightning import coco_scores, coco_tokens, load_features

    layout = Layout(args.task, ROOT)
    if not (layout.tokenized / "meta.json").is_file():
        raise SystemExit(f"{layout.tokenized}: not found; run `dvc repro tokenize@{args.task}` first")
    datasets.disable_progress_bars()
    train = datasets.load_from_disk(str(layout.split / "train")).to_dict()
    test = datasets.load_from_disk(str(layout.split / "test")).to_dict()
    refs = test["captions"]
    rows = []

    started = time.perf_counter()
    top, _ = Counter(coco_tokens(c) for caps in train["captions"] for c in caps).most_common(1)[0]
    rows.append({"baseline": f"constant ({top!r})", **coco_scores([top] * len(refs), refs),
                 "seconds": round(time.perf_counter() - started, 2)})

    started = time.perf_counter()
    whole = {s: torch.nn.functional.normalize(load_features(layout.tokenized / "features" / f"{s}.safetensors")[:, 0],
                                              dim=1) for s in ("train", "test")}
    nearest = (whole["test"] @ whole["train"].T).argmax(dim=1).tolist()
    hyps = [consensus(train["captions"][j]) for j in nearest]
    rows.append({"baseline": "nearest train image (whole-image feature, cosine) + consensus caption",
                 **coco_scores(hyps, refs), "seconds": round(time.perf_counter() - started, 2)})

    model = read_json(layout.metrics) if layout.metrics.is_file() else {}
    for row in rows:
        print(json.dumps(row) if args.json else
              f"{args.task}: {row['baseline']}: BLEU-1 {row['bleu1']:.4f}, BLEU-4 {row['bleu4']:.4f}, "
              f"CIDEr {row['cider']:.4f} ({len(refs)} test images, {row['seconds']} s)")
    if model and not args.json:
        print(f"{args.task}: the trained model (metrics/{args.task}.json): BLEU-1 {model['bleu1']:.4f}, "
              f"BLEU-4 {model['bleu4']:.4f}, CIDEr {model['cider']:.4f}")


if __name__ == "__main__":
    main()
