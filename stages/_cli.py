"""Shared command line of the stage scripts: ``--task``, one summary line, errors as one line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from s2sflow.core.errors import run_main

RECORD_IMPORTS = "S2SFLOW_RECORD_IMPORTS"  # a file: each stage run appends the project modules it imported


def record_imports(path: str, stage: str, task: str) -> None:
    """Append ``{"stage", "task", "files"}`` (the project's Python files this process imported) to
    ``path``: tests compare them with the stage's declared deps in dvc.yaml."""
    root = Path(__file__).resolve().parent.parent
    files = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.isabs(file):  # (torch._ops and torch._classes carry a bare file name)
            path_ = Path(file).resolve()
            if path_.is_relative_to(root) and ".venv" not in path_.relative_to(root).parts:
                files.add(path_.relative_to(root).as_posix())
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"stage": stage, "task": task, "files": sorted(files)}) + "\n")


def stage_main(stage: str, doc: str | None) -> None:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="task id: a key of params.yaml's pipeline.tasks, e.g. mnist")
    parser.add_argument("--root", default=".", help="project root holding params.yaml (default: .)")
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module="pytorch_lightning")

    def main() -> None:
        from s2sflow.core.stages import run_stage

        summary = run_stage(stage, args.task, args.root)
        print(f"s2sflow: {args.task}: {stage} done: {json.dumps(summary, sort_keys=True, default=str)[:400]}",
              file=sys.stderr)
        if os.environ.get(RECORD_IMPORTS):
            record_imports(os.environ[RECORD_IMPORTS], stage, args.task)

    run_main(main, args.task)
