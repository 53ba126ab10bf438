"""Does a stage beside a training slow the training down? Steps per second of a training, alone and
beside a stand-in for the pipeline's other stages at three CPU priorities.

    python benchmarks/yielding_stages.py               # 15 s per measurement
    python benchmarks/yielding_stages.py --seconds 30

`make run` runs chains side by side (flows/pipeline.py): one training at a time on 2 cores, and the
other chains' downloads, splits, tokenizing, evaluation and export beside it at `nice -n 19`. This
measures what that costs the training, with the real MNIST network (float32, batch 64) and a bf16
Transformer-sized block (the generation kinds' precision), each on two threads as in params
(`trainer.num_threads: 2`). The neighbour imports what a stage imports (torch, datasets, Great
Expectations) in a fresh interpreter, then runs two-thread torch inference for two seconds, in a
loop: once at normal priority, once at nice 19, once under SCHED_IDLE (`chrt --idle`, where the
system has it). Prints steps/s per case and its ratio to alone, measured in one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NEIGHBOUR = """
import subprocess, sys, time
import torch
torch.set_num_threads(2)
x = torch.randn(256, 784)
w = torch.randn(784, 784)
while True:
    subprocess.run([sys.executable, "-c", "import torch, datasets, great_expectations"], check=False)
    t = time.time()
    while time.time() - t < 2:
        (x @ w).relu_().sum()
"""


def trainee(kind: str):
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    if kind == "mnist-cnn":
        from s2sflow.kinds.mnist.model import CNNConfig, MnistCNN

        model, x = MnistCNN(CNNConfig()), torch.randn(64, 1, 28, 28)
        y = torch.randint(0, 10, (64,))
        loss_of = lambda: torch.nn.functional.nll_loss(model(x), y)  # noqa: E731
    else:
        layer = torch.nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, batch_first=True)
        model, x = layer, torch.randn(32, 128, 256)

        def loss_of():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(x)
            return out.float().pow(2).mean()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss_of().backward()
        opt.step()
        opt.zero_grad()
    return step


def rate(step, seconds: float) -> float:
    for _ in range(3):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per measurement (default 15)")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 600:
        parser.error(f"--seconds {args.seconds}: must be between 1 and 600")
    prefixes = {"alone": None, "beside, normal priority": [], "beside, nice 19": ["nice", "-n", "19"]}
    if shutil.which("chrt"):
        prefixes["beside, SCHED_IDLE"] = ["chrt", "--idle", "0"]
    print(f"{os.cpu_count()} CPU cores; {args.seconds:.0f} s per measurement; training on 2 threads", flush=True)
    for kind in ("mnist-cnn", "bf16-transformer-layer"):
        step = trainee(kind)
        base = None
        for case, prefix in prefixes.items():
            neighbour = None
            if prefix is not None:
                neighbour = subprocess.Popen([*prefix, sys.executable, "-c", NEIGHBOUR], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, start_new_session=True)
                time.sleep(1.0)
            try:
                r = rate(step, args.seconds)
            finally:
                if neighbour is not None:
                    os.killpg(neighbour.pid, 9)
                    neighbour.wait()
            base = base or r
            print(f"{kind:24s} {case:26s} {r:7.2f} steps/s  ratio to alone {r / base:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
