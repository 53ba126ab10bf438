"""Per-epoch wall time of the Lightning engine vs the plain PyTorch loop, measured in one run.

    python benchmarks/lightning_vs_pytorch.py                    # 1 epoch each, full MNIST train split
    python benchmarks/lightning_vs_pytorch.py --repeats 5 --limit-batches 300   # more, shorter samples

Same model, data, seed, optimizer and scheduler (params.yaml's mnist.train); the engines alternate,
and so does which goes first in each repeat, so drift on a shared machine hits both alike. Epoch time includes the
validation pass. Reads the tokenize stage's output (`dvc repro tokenize@mnist` first); the goal is a
Lightning/plain ratio <= 1.03.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from s2sflow.core.params import stage_params  # noqa: E402
from s2sflow.kinds.mnist.data import MNISTDataModule  # noqa: E402
from s2sflow.kinds.mnist.train import fit, parse_train_config  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per measurement (default 1)")
    parser.add_argument("--repeats", type=int, default=1, help="measurements per engine (default 1)")
    parser.add_argument("--limit-batches", type=int, default=None, help="train batches per epoch (default: all)")
    parser.add_argument("--progress", action="store_true", help="show progress bars (both engines)")
    parser.add_argument("--task", default="mnist")
    args = parser.parse_args()

    tokenized = ROOT / "data" / "tokenized" / args.task
    if not (tokenized / "train.safetensors").is_file():
        print(f"s2sflow: benchmark: {tokenized} is missing; run `dvc repro tokenize@{args.task}` first",
              file=sys.stderr)
        return 2
    params = stage_params(args.task, "train", ROOT / "params.yaml")
    params["epochs"] = args.epochs
    params["trainer"].update(progress_bar=args.progress, limit_train_batches=args.limit_batches)
    seconds: dict[str, list[float]] = {"pytorch": [], "lightning": []}
    for rep in range(args.repeats):
        for engine in ("pytorch", "lightning") if rep % 2 == 0 else ("lightning", "pytorch"):
            cfg = parse_train_config({**params, "engine": engine})
            dm = MNISTDataModule(tokenized, cfg.batch_size, cfg.eval_batch_size, cfg.seed)
            _, summary = fit(cfg, dm)
            seconds[engine] += summary["epoch_seconds"]
            print(f"repeat {rep + 1} {engine:9s} epochs: {', '.join(f'{s:.2f}s' for s in summary['epoch_seconds'])}  "
                  f"last val_acc {summary['final_metrics']['val_acc']:.4f}", flush=True)
    plain, lit = statistics.median(seconds["pytorch"]), statistics.median(seconds["lightning"])
    plain_min, lit_min = min(seconds["pytorch"]), min(seconds["lightning"])
    steps = args.limit_batches or "all"
    print(f"\nper-epoch wall time ({len(seconds['pytorch'])} epochs per engine; train batches per epoch: {steps}; "
          f"validation included)")
    print(f"  {'':14s} {'median':>9s} {'min':>9s}")
    print(f"  {'plain PyTorch':14s} {plain:8.2f}s {plain_min:8.2f}s")
    print(f"  {'Lightning':14s} {lit:8.2f}s {lit_min:8.2f}s")
    print(f"  ratio Lightning/plain: median {lit / plain:.3f}, min {lit_min / plain_min:.3f}  (goal <= 1.03; "
          "the min is the least disturbed by other load on a shared machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
