"""What a run costs when nothing changed: a no-op `make run` against a no-op `dvc repro`, measured in
turn in one process, on a project whose pipeline is up to date.

    python benchmarks/noop_overhead.py              # 3 rounds in this checkout
    python benchmarks/noop_overhead.py --rounds 5 --root ../other-clone

Both commands must find every stage up to date (the script stops with one line if `dvc repro` runs
one). `make run` includes what a user waits for: make's install check, Python start, the temporary
Prefect server, one `dvc status` and the Prefect task runs that mark each stage up to date.
Prints each round's seconds, the medians and the ratio make run / dvc repro.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], root: Path, env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"noop_overhead: `{' '.join(cmd)}` exited {proc.returncode}: {out.strip().splitlines()[-1:]}")
    if "Running stage" in out:
        raise SystemExit(f"noop_overhead: `{' '.join(cmd)}` ran a stage: the pipeline is not up to date; "
                         "run `make run` first")
    return seconds, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="an up-to-date project (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both commands (default 3)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: must be 1 or more")
    root = args.root.resolve()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    dvc = [str(root / ".venv" / "bin" / "dvc"), "repro"]
    make = ["make", "--no-print-directory", "run"]
    repro, run = [], []
    for i in range(args.rounds):
        r, out = timed(dvc, root, env)
        if "Data and pipelines are up to date" not in out:
            raise SystemExit("noop_overhead: `dvc repro` did not report an up-to-date pipeline")
        m, out = timed(make, root, env)
        stages = out.count("up to date (dvc status)")
        repro.append(r)
        run.append(m)
        print(f"round {i + 1}: dvc repro {r:.2f} s, make run {m:.2f} s ({stages} stages marked up to date)",
              flush=True)
    r, m = statistics.median(repro), statistics.median(run)
    print(f"median: dvc repro {r:.2f} s, make run {m:.2f} s, ratio {m / r:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
