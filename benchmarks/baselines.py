"""No-training baselines for the text tasks (s2sflow.baselines), on the same test splits the pipeline
evaluates on (run after the split stage: `make run`, or `dvc repro split@<task>`):

- topic, nli: the majority class of the train split;
- sts: word overlap (Jaccard of lower-cased word sets) scaled to 0-5;
- ner, pos, morph: a word-lookup tagger (each word's most frequent train tag, per layer; unseen words
  get the layer's most frequent tag).

    python benchmarks/baselines.py [--tasks topic,sts,nli,ner,pos,morph] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2sflow.baselines import baseline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="topic,sts,nli,ner,pos,morph")
    parser.add_argument("--json", action="store_true", help="one JSON object per task")
    args = parser.parse_args()
    for task in args.tasks.split(","):
        result = {"task": task, **baseline(task.strip(), ROOT)}
        if args.json:
            print(json.dumps(result))
        else:
            scores = ", ".join(f"{k} {v}" for k, v in result.items() if k not in ("task", "baseline"))
            print(f"{task:6} {result['baseline']}: {scores}")


if __name__ == "__main__":
    main()
