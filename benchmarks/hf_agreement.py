"""Does the Hugging Face folder (`s2sflow hf`) generate what `s2sflow predict` prints?

    python benchmarks/hf_agreement.py                    # mt, the first 100 test sources
    python benchmarks/hf_agreement.py --task summarization --n 50 --root ../other-clone

Needs a project whose export stage ran (`make run`). Writes the task's folder into a temporary
directory with `s2sflow hf`, loads it with transformers' AutoModelForSeq2SeqLM / AutoTokenizer (as a
user would, offline) and decodes the first ``--n`` sources of the test split with its
generation_config; `s2sflow predict`'s own code path (ExportedGenerator) decodes the same sources.
Both decode the sources as one batch, as `s2sflow predict` does with its inputs. Prints the number
of identical outputs, and the first differences.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="mt", help="an exported generation task (default mt)")
    parser.add_argument("--n", type=int, default=100, help="test sources to decode (default 100)")
    parser.add_argument("--root", type=Path, default=ROOT, help="a built project (default: this checkout)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n {args.n}: must be 1 or more")
    from s2sflow import offline

    offline.apply()
    import datasets
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from s2sflow.hf import export_hf
    from s2sflow.kinds.seq2seq.predict import ExportedGenerator
    from s2sflow.kinds.seq2seq.speakers import anonymize, dialogue_speakers, restore

    root = args.root.resolve()
    test = root / "data" / "split" / args.task / "test"
    if not test.is_dir():
        raise SystemExit(f"hf_agreement: {test} not found; run `make run` (or `dvc repro export@{args.task}`) first")
    sources = list(datasets.load_from_disk(str(test))["source"][:args.n])
    start = time.perf_counter()
    ours = [p["output"] for p in ExportedGenerator(root / "exports" / args.task, args.task).predict(sources)]
    ours_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="s2sflow-hf-") as tmp:
        folder = export_hf(root, args.task, Path(tmp) / args.task)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
        speakers = "#Person1#" in (folder / "README.md").read_text(encoding="utf-8")
        casts = [dialogue_speakers(s.strip()) if speakers else [] for s in sources]
        texts = [anonymize(s.strip(), c) if c else s.strip() for s, c in zip(sources, casts)]
        start = time.perf_counter()
        batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
        torch.manual_seed(json.loads((folder / "s2sflow_hf.json").read_text())["decoding_seed"])
        with torch.no_grad():
            decoded = tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True)
        theirs = [restore(t.strip(), c) if c else t.strip() for t, c in zip(decoded, casts)]
        theirs_s = time.perf_counter() - start
    same = sum(a == b for a, b in zip(ours, theirs))
    print(f"{args.task}: {type(model).__name__} from {root.name}/exports/{args.task} via `s2sflow hf`; "
          f"decoding {dict(model.generation_config.to_diff_dict())}")
    print(f"identical outputs: {same} of {len(sources)} ({same / len(sources):.1%}); s2sflow predict {ours_s:.1f} s, "
          f"transformers generate {theirs_s:.1f} s ({model.config._attn_implementation} attention)")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            print(f"  #{i + 1}: predict: {a!r}\n       hf:      {b!r}")
            if i > 10:
                break
    return 0 if same == len(sources) else 1


if __name__ == "__main__":
    sys.exit(main())
