"""Throughput of the tokenize stage's encoding against a bare HF ``tokenizers`` batch encode of the
same texts, in one run (the goal: ratio >= 0.8).

The stage's side (``s2sflow.kinds.text.prepare.encode_split``) does everything the tokenize stage does per
split: batch encoding, word alignment / casing ids for tagging, label ids, and the ``datasets.Dataset``
it saves. The bare side is ``tokenizer.encode_batch`` alone (the ratio the goal is about); for
transparency the ratio against ``tokenizer.encode_batch_fast`` (no character offsets) is printed too,
since the stage itself uses that call where it needs no offsets. All use the same tokenizer object.

    python benchmarks/tokenize_throughput.py            # NER and topic train splits (after `make run`
                                                        # or `dvc repro split@ner split@topic`)
    python benchmarks/tokenize_throughput.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _time(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench(task: str, repeats: int) -> dict:
    from s2sflow.core.batching import load_split
    from s2sflow.core.fsutil import read_json
    from s2sflow.core.params import stage_params
    from s2sflow.core.stages import Layout
    from s2sflow.kinds.text.prepare import (
        build_tokenizer,
        encode_split,
        parse_tokenize_config,
        tag_vocabularies,
        task_shape,
    )

    layout = Layout(task, ROOT)
    if not (layout.split / "train").is_dir():
        raise SystemExit(f"{layout.split}/train not found; run `dvc repro split@{task}` first")
    shape = task_shape(task, layout.params)
    cfg = parse_tokenize_config(stage_params(task, "tokenize", layout.params), task)
    train = load_split(layout.split / "train").to_dict()
    tokenizer = build_tokenizer(cfg, train, shape)
    encoder = cfg.encoder(tokenizer)
    vocab = None
    if shape == "tagging":
        meta = read_json(layout.split / "split.json")
        vocab = tag_vocabularies(train, meta["layers"], cfg.min_label_count,
                                 stage_params(task, "split", layout.params).get("labels"), cfg)
        inputs = train["tokens"]

        def bare():
            tokenizer.encode_batch(inputs, is_pretokenized=True)

        def fast():
            tokenizer.encode_batch_fast(inputs, is_pretokenized=True)
        n_words = sum(len(s) for s in inputs)
    else:
        pairs = any(train["text_b"])
        inputs = list(zip(train["text_a"], train["text_b"])) if pairs else train["text_a"]

        def bare():
            tokenizer.encode_batch(inputs)

        def fast():
            tokenizer.encode_batch_fast(inputs)
        n_words = sum(len(t.split()) for t in train["text_a"] + train["text_b"])

    def stage():
        encode_split(encoder, train, shape, vocab, meta["layers"] if shape == "tagging" else None, cfg)

    meta = read_json(layout.split / "split.json")
    bare(), fast(), stage()  # warm-up (thread pool, caches)
    bare_t, fast_t, stage_t = [], [], []
    for _ in range(repeats):  # alternate, so drift on a shared machine hits all sides alike
        bare_t += _time(bare, 1)
        fast_t += _time(fast, 1)
        stage_t += _time(stage, 1)
    n = len(train["tokens"] if shape == "tagging" else train["text_a"])
    b, f, s = statistics.median(bare_t), statistics.median(fast_t), statistics.median(stage_t)
    return {"task": task, "examples": n, "words": n_words, "bare_s": b, "fast_s": f, "stage_s": s,
            "bare_examples_per_s": n / b, "stage_examples_per_s": n / s, "ratio": b / s, "ratio_fast": f / s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="ner,topic", help="comma-separated text tasks (default: ner,topic)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per side (median reported)")
    args = parser.parse_args()
    print(f"{'task':8} {'examples':>8} {'bare ex/s':>10} {'stage ex/s':>11} {'ratio':>6} {'vs fast':>8}")
    for task in args.tasks.split(","):
        r = bench(task.strip(), args.repeats)
        print(f"{r['task']:8} {r['examples']:8d} {r['bare_examples_per_s']:10.0f} {r['stage_examples_per_s']:11.0f} "
              f"{r['ratio']:6.2f} {r['ratio_fast']:8.2f}")
    print("ratio = stage throughput / bare tokenizers.encode_batch throughput (goal >= 0.8); "
          "vs fast = the same against encode_batch_fast")


if __name__ == "__main__":
    main()
