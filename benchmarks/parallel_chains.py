"""Task chains side by side against one after another, on four tiny tasks of the real code.

    python benchmarks/parallel_chains.py                  # 10 parallel rounds, 1 serial
    python benchmarks/parallel_chains.py --repeats 3 --parallel 2 --trainings 1

Builds a tiny project (the test suite's tiny data: MNIST's first 1,200 images, the first rows of
AG News, STS-B and the Korean Kaist treebank) with the tasks mnist, topic, sts and morph, then runs
the pipeline flow from a fresh copy of it: once serially (`--max-parallel 1`) and ``--repeats`` times
with ``--parallel`` chains. Each round must complete, print no DVC lock error ("Unable to acquire
lock", "is busy") and end with dvc.lock entries equal to the serial run's (the order of entries in a
lock built from nothing follows the order stages finished, so entries are compared by name). Prints
each round's wall time, the lock check, and the ratio parallel / serial (medians). Needs
../shared/data beside the repo.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
TASKS = ["mnist", "topic", "sts", "morph"]


def build(base: Path, task_ids: list[str] = TASKS) -> tuple[Path, dict]:
    """A tiny project of ``task_ids`` (from the tiny data) in ``base``/template, and its environment."""
    import gzip

    from conftest import NAMES, TINY_TEST, TINY_TRAIN, _real_mnist, add_tiny_text, make_project, project_env
    from s2sflow.kinds.mnist.idx import encode_idx

    mirror = base / "mirror"
    add_tiny_text(mirror)
    real = _real_mnist()
    (mirror / "mnist").mkdir()
    for part, n in (("train", TINY_TRAIN), ("test", TINY_TEST)):
        for name in NAMES[part]:
            (mirror / "mnist" / f"{name}.gz").write_bytes(gzip.compress(encode_idx(real[name][:n]), mtime=0))

    def tasks(params: dict) -> None:
        kinds = yaml.safe_load((ROOT / "params.yaml").read_text())["pipeline"]["tasks"]
        params["pipeline"]["tasks"] = {t: kinds[t] for t in task_ids}

    project = make_project(base / "template", mirror, edit=tasks)
    return project, project_env(mirror)


def one_round(template: Path, base: Path, name: str, env: dict, parallel: int, trainings: int) -> tuple[float, dict]:
    project = base / name
    shutil.copytree(template, project, symlinks=True)
    from conftest import prefect_test_env

    env = prefect_test_env(env, base / f"{name}-prefect")
    cmd = [sys.executable, "-m", "flows.pipeline", "--root", str(project), "--max-parallel", str(parallel),
           "--max-trainings", str(trainings)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"parallel_chains: round {name} exited {proc.returncode}: "
                         f"{(out.strip().splitlines() or ['?'])[-1]}")
    lock_errors = out.count("Unable to acquire lock") + out.count("is busy")
    entries = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    shutil.rmtree(project)
    return seconds, {"entries": entries, "lock_errors": lock_errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="parallel rounds (default 10)")
    parser.add_argument("--parallel", type=int, default=2, help="--max-parallel of the parallel rounds (default 2)")
    parser.add_argument("--trainings", type=int, default=1, help="--max-trainings (default 1)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.parallel < 2 or args.trainings < 1:
        parser.error("--repeats >= 1, --parallel >= 2 and --trainings >= 1")
    with tempfile.TemporaryDirectory(prefix="s2sflow-parallel-") as tmp:
        base = Path(tmp)
        template, env = build(base)
        print(f"tiny project with {', '.join(TASKS)}; {os.cpu_count()} CPU cores", flush=True)
        serial_s, serial = one_round(template, base, "serial", env, 1, 1)
        print(f"serial   : {serial_s:7.1f} s, lock errors {serial['lock_errors']}", flush=True)
        times, bad = [], 0
        for i in range(args.repeats):
            s, r = one_round(template, base, f"parallel{i}", env, args.parallel, args.trainings)
            same = r["entries"] == serial["entries"]
            bad += (not same) + r["lock_errors"]
            times.append(s)
            diff = sorted(k for k in serial["entries"] if r["entries"].get(k) != serial["entries"][k])
            print(f"parallel {i + 1:2d}: {s:7.1f} s, lock errors {r['lock_errors']}, dvc.lock entries "
                  f"{'equal to serial' if same else 'DIFFER: ' + ', '.join(diff)}", flush=True)
    median = statistics.median(times)
    print(f"\nserial {serial_s:.1f} s; parallel (--max-parallel {args.parallel} --max-trainings {args.trainings}) "
          f"median {median:.1f} s over {len(times)} rounds; ratio parallel/serial {median / serial_s:.2f}; "
          f"rounds with a lock error or a differing lock: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
