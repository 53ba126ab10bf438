"""What a run costs when nothing changed: a no-op `make run` against a no-op `dvc repro`, measured in
turn in one process, on a project whose pipeline is up to date.

    python benchmarks/noop_overhead.py              # 3 rounds in this checkout
    python benchmarks/noop_overhead.py --rounds 5 --root ../other-clone
    python benchmarks/noop_overhead.py --tiny       # a tiny project of all eleven tasks, built first

Both commands must find every stage up to date (the script stops with one line if `dvc repro` runs
one). `make run` includes what a user waits for: make's install check, Python start, the temporary
Prefect server, one `dvc status` and the Prefect task runs that mark each stage up to date.
Prints each round's seconds, the medians and the ratio make run / dvc repro.

``--tiny`` measures where no full build is at hand: it builds the test suite's tiny project of every
task in params.yaml (the first rows of the real files, tiny models: the same 66 stages, the same code,
small outputs) with one `dvc repro`, then measures there, with this checkout's venv. Its outputs are
small, so DVC hashes less than in a full build (where its state database keeps the hashes of
unchanged files anyway).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tiny_project(base: Path) -> tuple[Path, dict]:
    """Every task of params.yaml as the test suite's tiny project, built with `dvc repro`."""
    import yaml

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from parallel_chains import build

    tasks = list(yaml.safe_load((ROOT / "params.yaml").read_text())["pipeline"]["tasks"])
    project, env = build(base, tasks)
    (project / ".venv").symlink_to(ROOT / ".venv")  # make run finds it installed (.venv/.installed)
    from conftest import prefect_test_env

    env = {**prefect_test_env(env, base / "prefect"), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.run([str(ROOT / ".venv/bin/dvc"), "repro"], cwd=project, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"noop_overhead: building the tiny project failed: {(proc.stdout + proc.stderr)[-2000:]}")
    print(f"tiny project of {len(tasks)} tasks built in {time.perf_counter() - start:.0f} s", flush=True)
    return project, env


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
    parser.add_argument("--tiny", action="store_true", help="build and measure a tiny project of every task")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: must be 1 or more")
    if args.tiny:
        with tempfile.TemporaryDirectory(prefix="s2sflow-noop-") as tmp:
            project, env = tiny_project(Path(tmp))
            return measure(project, env, args.rounds)
    return measure(args.root.resolve(), {**os.environ, "DVC_NO_ANALYTICS": "1"}, args.rounds)


def measure(root: Path, env: dict, rounds: int) -> int:
    dvc = [str(root / ".venv" / "bin" / "dvc"), "repro"]
    make = ["make", "--no-print-directory", "run"]
    repro, run = [], []
    for i in range(rounds):
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
