"""A comparison grid queued in DVC and run two at a time, against the same queue run one at a time.

    python benchmarks/queued_grid.py            # a 4-point MNIST grid (1 epoch each), --jobs 2 vs --jobs 1

Builds the test suite's tiny MNIST project (the first 1,200 training and 400 test images of the real
files, a small CNN), runs `dvc repro` once and commits it as the baseline, then runs the comparison
flow (flows/compare.py: `dvc exp run --queue` per grid point, then `dvc exp run --run-all --jobs N`)
on two fresh copies of it: ``--jobs 1`` (sequential) and ``--jobs 2``. Prints each run's wall time,
whether the two reports have the same rows (same points, same metrics, same order), and the ratio
queued-parallel / sequential. Needs ../shared/data beside the repo (the real MNIST files).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from parallel_chains import build

GRID = ["--grid", "mnist.train.optimizer.name=sgd,adamw", "--grid", "mnist.train.batch_size=32,64",
        "--set", "mnist.train.epochs=1"]


def grid_run(template: Path, base: Path, jobs: int, env: dict) -> tuple[float, list[str]]:
    project = base / f"jobs{jobs}"
    shutil.copytree(template, project, symlinks=True)
    from conftest import prefect_test_env

    env = prefect_test_env(env, base / f"jobs{jobs}-prefect")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "flows.compare", "--task", "mnist", "--name", "grid", *GRID,
                           "--jobs", str(jobs)], cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines() or ["?"]
        raise SystemExit(f"queued_grid: --jobs {jobs} exited {proc.returncode}: {out[-1]}")
    report = (project / "reports/compare/grid.md").read_text()
    return seconds, [line for line in report.splitlines() if line.startswith("| grid-")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="queue workers of the parallel run (default 2)")
    args = parser.parse_args(argv)
    if not 2 <= args.jobs <= (os.cpu_count() or 1):
        parser.error(f"--jobs {args.jobs}: must be between 2 and the CPU cores ({os.cpu_count() or 1})")
    with tempfile.TemporaryDirectory(prefix="s2sflow-grid-") as tmp:
        base = Path(tmp)
        template, env = build(base, ["mnist"])
        subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=template, env=env, check=True,
                       capture_output=True)
        subprocess.run(["git", "add", "-A"], cwd=template, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", "baseline"], cwd=template, env=env, check=True)
        print(f"tiny MNIST project, 4-point grid (optimizer x batch size, 1 epoch); {os.cpu_count()} CPU cores",
              flush=True)
        sequential_s, sequential = grid_run(template, base, 1, env)
        print(f"--jobs 1      : {sequential_s:6.1f} s", flush=True)
        queued_s, queued = grid_run(template, base, args.jobs, env)
        print(f"--jobs {args.jobs}      : {queued_s:6.1f} s", flush=True)
    same = queued == sequential and len(queued) == 4
    print("\nreport rows (--jobs 1):\n" + "\n".join(sequential))
    print(f"\nrows of --jobs {args.jobs} {'equal to' if same else 'DIFFER from'} --jobs 1's; "
          f"ratio queued/sequential {queued_s / sequential_s:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
