"""Do two revisions of the code produce the same bytes? Builds the tests' tiny project of every kind
(mnist; text: topic, sts, ner, morph; seq2seq: mt, dialogue, summarization; captioning) with the code of
``--base`` (a git worktree) and of this checkout, running the stage scripts download..evaluate, and
compares the sha256 of every split, tokenized, model and metrics file. Needs ../shared/data.

    .venv/bin/python benchmarks/byte_identity.py --base 116174a     # about 15 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = ["mnist", "topic", "sts", "ner", "morph", "mt", "dialogue", "summarization", "captioning"]

BUILD = r'''
import gzip, hashlib, inspect, json, subprocess, sys
from pathlib import Path
repo, out, tasks = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(",")
sys.path[:0] = [str(repo / "tests"), str(repo)]
import conftest
mirror = out / "mirror"
real = conftest._real_mnist()
(mirror / "mnist").mkdir(parents=True)
for part, n in (("train", conftest.TINY_TRAIN), ("test", conftest.TINY_TEST)):
    for name in conftest.NAMES[part]:
        data = conftest.encode_idx(real[name][:n])
        (mirror / "mnist" / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
conftest.add_tiny_text(mirror)
if "generation" in inspect.signature(conftest.make_project).parameters:  # before the kinds became plugins
    p = conftest.make_project(out / "project", mirror, tasks=tasks[:5], generation=tasks[5:8],
                              captioning=tasks[8:])
else:
    p = conftest.make_project(out / "project", mirror, tasks=tasks)
env = conftest.project_env(mirror)
hashes = {}
for task in tasks:
    for stage in ("download", "split", "tokenize", "train", "evaluate"):
        proc = subprocess.run(["sh", "stages/py", "-m", f"stages.{stage}", "--task", task], cwd=p, env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{stage}@{task} failed: {proc.stderr[-1500:]}")
    for folder in (f"data/split/{task}", f"data/tokenized/{task}", f"models/{task}"):
        for f in sorted((p / folder).rglob("*")):
            if f.is_file() and (f.suffix == ".safetensors" or not folder.startswith("models")):
                hashes[str(f.relative_to(p))] = hashlib.sha256(f.read_bytes()).hexdigest()
    hashes[f"metrics/{task}.json"] = hashlib.sha256((p / f"metrics/{task}.json").read_bytes()).hexdigest()
    print(f"{repo.name}: {task} built", file=sys.stderr, flush=True)
(out / "hashes.json").write_text(json.dumps(hashes, indent=1, sort_keys=True))
'''


def build(repo: Path, out: Path) -> dict[str, str]:
    out.mkdir(parents=True)
    subprocess.run([sys.executable, "-c", BUILD, str(repo), str(out), ",".join(TASKS)], check=True, cwd=repo)
    return json.loads((out / "hashes.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the git revision to compare this checkout with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.base], cwd=ROOT, check=True)
        try:
            (tmp / "shared").symlink_to(ROOT.parent / "shared")  # the worktree's ../shared
            old, new = build(base, tmp / "old"), build(ROOT, tmp / "new")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    digest = hashlib.sha256(json.dumps(new, sort_keys=True).encode()).hexdigest()[:16]
    print(f"{len(new)} files compared over {len(TASKS)} tasks: {len(new) - len(differ)} byte-identical, "
          f"{len(differ)} differ (digest of all: {digest})")
    for k in differ:
        print(f"  differs: {k}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
