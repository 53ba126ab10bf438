"""The ``s2sflow`` command: predictions from exported models.

    s2sflow predict --task mnist digit.png [more.png ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2sflow.errors import S2SFlowError, run_main


def _predict(args: argparse.Namespace) -> None:
    from s2sflow.params import task_params
    from s2sflow.predict import ExportedImageClassifier

    export_dir = Path(args.export_dir or Path(args.root) / "exports" / args.task)
    kind = task_params(args.task, Path(args.root) / "params.yaml").get("kind", args.task) \
        if (Path(args.root) / "params.yaml").is_file() else args.task
    if kind != "mnist":
        raise S2SFlowError(f"predict is not available for task kind '{kind}' yet (available: mnist)", args.task)
    if not args.inputs:
        raise S2SFlowError("give one or more image files, e.g. `s2sflow predict --task mnist digit.png`", args.task)
    model = ExportedImageClassifier(export_dir, args.task)
    for pred in model.predict([Path(p) for p in args.inputs], args.invert):
        if args.json:
            print(json.dumps({"file": pred.file, "label": pred.label, "probabilities": pred.probabilities}))
        else:
            print(f"{pred.file}\t{pred.label}\t(p={max(pred.probabilities):.3f})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2sflow", description="s2sflow: reproducible seq2seq pipelines. "
                                     "Stages run through `dvc repro`; this command serves exported models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict with an exported model (exports/<task>/)",
                       description="Print one prediction per input: the digit for each MNIST image "
                                   "(tab-separated: file, label, probability), or JSON lines with --json.")
    p.add_argument("--task", required=True, help="task id, e.g. mnist")
    p.add_argument("inputs", nargs="*", help="input files (images for mnist)")
    p.add_argument("--json", action="store_true", help="one JSON object per line: file, label, probabilities")
    p.add_argument("--export-dir", help="exported model folder (default: <root>/exports/<task>)")
    p.add_argument("--root", default=".", help="project root (default: .)")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="invert dark-on-light images to MNIST's white-on-black (auto: when the mean is light)")
    p.set_defaults(func=_predict)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run_main(lambda: args.func(args), getattr(args, "task", None))


if __name__ == "__main__":
    main(sys.argv[1:])
