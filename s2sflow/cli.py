"""The ``s2sflow`` command: predictions from exported models.

    s2sflow predict --task mnist digit.png [more.png ...] [--json]
    s2sflow predict --task ner "Angela Merkel visited Paris"       # tagged words and entities
    s2sflow predict --task sts "A man plays." "A man is playing."  # a pair -> a score
    cat lines.txt | s2sflow predict --task topic                   # one prediction per stdin line
    s2sflow predict --task mt "A man is riding a bike."            # a German translation
    s2sflow predict --task captioning photo.jpg                    # a caption per image
    s2sflow verify                                                 # are the DVC cache objects whole?
    s2sflow report                                                 # reports/site/index.html: every result
    s2sflow hf --task mt                                           # hf/mt/: a folder transformers loads
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2sflow import offline

offline.apply()  # before anything imports transformers or huggingface_hub

from s2sflow.core.errors import S2SFlowError, run_main  # noqa: E402
from s2sflow.core.kind import Kind, get_kind  # noqa: E402
from s2sflow.exports import DEFAULT_MAX_PIXELS, check_export, check_images  # noqa: E402


def _kind(args: argparse.Namespace, export_dir: Path) -> Kind:
    """The task's kind: ``pipeline.tasks`` of the project's params when it lists the task, else the
    kind the export's model card records (an export folder copied elsewhere still predicts)."""
    params = Path(args.root) / "params.yaml"
    if params.is_file() and args.export_dir is None:
        from s2sflow.core.stages import pipeline_tasks

        tasks = pipeline_tasks(params)
        if args.task in tasks:
            return get_kind(tasks[args.task], args.task)
    card = export_dir / "model_card.json"
    if not card.is_file():
        raise S2SFlowError(f"{card} not found; run `dvc repro export@{args.task}` (or `make run`) first, or point "
                           f"--export-dir at an exported model folder", args.task)
    return get_kind(json.loads(card.read_text(encoding="utf-8")).get("kind"), args.task)


def _predict(args: argparse.Namespace) -> None:
    if args.max_pixels < 1:
        raise S2SFlowError(f"--max-pixels {args.max_pixels}: must be at least 1", args.task)
    export_dir = Path(args.export_dir or Path(args.root) / "exports" / args.task)
    check_export(export_dir, args.task)  # every file the card lists is there and whole
    check_images(args.inputs, args.max_pixels, args.task)
    _kind(args, export_dir).predictor()(args, export_dir)


def _report(args: argparse.Namespace) -> None:
    from s2sflow.site import build_site

    path = build_site(args.root, args.out)
    print(f"s2sflow: report: {path} (open it in a browser; no server needed)")


def _verify(args: argparse.Namespace) -> None:
    from s2sflow.cachecheck import summary, verify

    report = verify(Path(args.root), args.stages or None, progress=not args.no_progress)
    for line in report.corrupt:
        print(f"s2sflow: verify: {line}", file=sys.stderr)
    print(summary(report))
    if report.corrupt:
        sys.exit(1)


def _hf(args: argparse.Namespace) -> None:
    from s2sflow.hf import export_hf

    out = export_hf(Path(args.root), args.task, Path(args.out) if args.out else None,
                    Path(args.export_dir) if args.export_dir else None)
    print(f"s2sflow: {args.task}: hf: {out} (AutoModelForSeq2SeqLM.from_pretrained / AutoTokenizer.from_pretrained)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2sflow", description="s2sflow: reproducible seq2seq pipelines. "
                                     "Stages run through `dvc repro`; this command serves exported models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict with an exported model (exports/<task>/)",
                       description="Print one prediction per input. mnist: the digit for each image (file, label, "
                                   "probability). Text tasks: the class (topic), the class or score of a pair (nli, "
                                   "sts: two texts per pair), or each word's tags and the entities (ner, pos, morph). "
                                   "Generation tasks: the generated text, decoded with the exported params: mt "
                                   "translates each text; summarization summarizes each FILE (or all of stdin); "
                                   "dialogue replies to the given turns, or with none chats on stdin (one turn per "
                                   "line, an empty line ends); captioning captions each image file. "
                                   "With no texts given, one input per stdin line (pairs tab-separated). "
                                   "--json prints one JSON object per line.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  s2sflow predict --task ner \"Angela Merkel visited Paris\"\n"
                              "  s2sflow predict --task sts \"A man plays.\" \"A man is playing.\"\n"
                              "  s2sflow predict --task nli \"A dog runs.\" \"An animal moves.\"\n"
                              "  cat headlines.txt | s2sflow predict --task topic --json\n"
                              "  s2sflow predict --task mt \"A man is riding a bike.\"\n"
                              "  s2sflow predict --task summarization dialogue.txt\n"
                              "  s2sflow predict --task captioning photo.jpg\n"
                              "  s2sflow predict --task dialogue        # an interactive reply loop")
    p.add_argument("--task", required=True, help="task id: a section of params.yaml (mnist, topic, sts, nli, ner, "
                                                 "pos, morph, ...)")
    p.add_argument("inputs", nargs="*", help="image files (mnist, captioning) or texts (text tasks; stdin lines "
                                             "when none)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--export-dir", help="exported model folder (default: <root>/exports/<task>)")
    p.add_argument("--root", default=".", help="project root (default: .)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse input images of more than N pixels, before decoding them (default: "
                        f"{DEFAULT_MAX_PIXELS:,}, Pillow's decompression-bomb threshold)")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="invert dark-on-light images to MNIST's white-on-black (auto: when the mean is light)")
    p.set_defaults(func=_predict)
    v = sub.add_parser("verify", help="re-hash the DVC cache objects that dvc.lock names (corruption check)",
                       description="Re-hash every DVC cache object of the outputs dvc.lock records (a folder's "
                                   ".dir listing and each file in it) and compare it with its name. DVC's checkout "
                                   "trusts the cache, so a corrupted object would be copied into the workspace "
                                   "silently. One line per corrupt object, with how to repair it; exit 1 when any "
                                   "is corrupt. Objects not in the cache are counted (see `dvc status`).",
                       epilog="examples:\n  s2sflow verify\n  s2sflow verify train@mnist export@mnist",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("stages", nargs="*", help="stages to check, as in dvc.lock (default: all)")
    v.add_argument("--root", default=".", help="project root (default: .)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=_verify)
    r = sub.add_parser("report", help="write one static HTML page of every result (reports/site/index.html)",
                       description="Write one static HTML page (no server, images inlined) with every task's test "
                                   "metrics beside its target (params report.targets) and no-training baseline, "
                                   "training curves, confusion matrices, error and generation samples, the "
                                   "comparison reports, each model's lineage from its card and the newest run's "
                                   "stage times. Parts not built yet are marked on the page.",
                       epilog="examples:\n  s2sflow report\n  s2sflow report --out /tmp/results.html",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--root", default=".", help="project root (default: .)")
    r.add_argument("--out", help="the page to write (default: <root>/reports/site/index.html)")
    r.set_defaults(func=_report)
    h = sub.add_parser("hf", help="write a Hugging Face folder of an exported generation model (hf/<task>/)",
                       description="Write a folder that transformers loads offline (AutoModelForSeq2SeqLM and "
                                   "AutoTokenizer .from_pretrained): config.json, model.safetensors, the tokenizer "
                                   "(end token appended, truncation at the trained source length), "
                                   "generation_config.json with the export's decoding params, a README and the "
                                   "s2sflow model card. generate() then gives the same text as `s2sflow predict`. "
                                   "Generation tasks of kind seq2seq (mt, summarization, dialogue) only for now; "
                                   "the other kinds' portable form is their ONNX export.",
                       epilog="examples:\n  s2sflow hf --task mt\n  s2sflow hf --task summarization --out /models/sum",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_argument("--task", required=True, help="task id of an exported generation model")
    h.add_argument("--out", help="the folder to write (default: <root>/hf/<task>; replaced whole)")
    h.add_argument("--export-dir", help="exported model folder (default: <root>/exports/<task>)")
    h.add_argument("--root", default=".", help="project root (default: .)")
    h.set_defaults(func=_hf)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run_main(lambda: args.func(args), getattr(args, "task", None))


if __name__ == "__main__":
    main(sys.argv[1:])
