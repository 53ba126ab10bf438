"""Shared command line of the stage scripts: ``--task``, one summary line, errors as one line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Callable

from s2sflow.core.errors import run_main


def stage_main(run: Callable[..., dict], doc: str | None) -> None:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="task id: a section of params.yaml, e.g. mnist")
    parser.add_argument("--root", default=".", help="project root holding params.yaml (default: .)")
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module="pytorch_lightning")

    def main() -> None:
        summary = run(args.task, args.root)
        print(f"s2sflow: {args.task}: {run.__name__.removeprefix('run_')} done: "
              f"{json.dumps(summary, sort_keys=True, default=str)[:400]}", file=sys.stderr)

    run_main(main, args.task)
