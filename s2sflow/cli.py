"""The ``s2sflow`` command: predictions from exported models.

    s2sflow predict --task mnist digit.png [more.png ...] [--json]
    s2sflow predict --task ner "Angela Merkel visited Paris"       # tagged words and entities
    s2sflow predict --task sts "A man plays." "A man is playing."  # a pair -> a score
    cat lines.txt | s2sflow predict --task topic                   # one prediction per stdin line
    s2sflow predict --task mt "A man is riding a bike."            # a German translation
    s2sflow predict --task captioning photo.jpg                    # a caption per image
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2sflow.core.errors import S2SFlowError, run_main


def _task_kind(args: argparse.Namespace, export_dir: Path) -> str:
    params = Path(args.root) / "params.yaml"
    if params.is_file():
        from s2sflow.core.params import load_params

        section = load_params(params).get(args.task)
        if isinstance(section, dict):
            return section.get("kind", args.task)
    config = export_dir / "config.json"
    if config.is_file():
        spec = json.loads(config.read_text()).get("spec")
        if spec is None:
            return "mnist"
        if spec.get("modality") == "image":
            return "captioning"
        return "seq2seq" if spec.get("shape") == "generation" else "text"
    return args.task


def _predict_images(args: argparse.Namespace, export_dir: Path) -> None:
    from s2sflow.core.predict import ExportedImageClassifier

    if not args.inputs:
        raise S2SFlowError("give one or more image files, e.g. `s2sflow predict --task mnist digit.png`", args.task)
    model = ExportedImageClassifier(export_dir, args.task)
    for pred in model.predict([Path(p) for p in args.inputs], args.invert):
        if args.json:
            print(json.dumps({"file": pred.file, "label": pred.label, "probabilities": pred.probabilities}))
        else:
            print(f"{pred.file}\t{pred.label}\t(p={max(pred.probabilities):.3f})")


def _format_text(pred: dict) -> str:
    if "score" in pred:
        return f"{pred['score']:.3f}\t{pred['text_a']}\t{pred['text_b']}"
    if "tags" in pred:
        layers = list(pred["tags"])
        words = " ".join(w + "/" + "|".join(pred["tags"][layer][i] for layer in layers)
                         for i, w in enumerate(pred["words"]))
        if "entities" in pred:
            found = "; ".join(f"{e['text']} ({e['type']})" for e in pred["entities"]) or "no entities"
            return f"{found}\t{words}"
        return words
    return f"{pred['label']}\t(p={pred['probability']:.3f})\t{pred['text']}"


def _stdin_lines(task: str) -> list[str]:
    """The non-blank lines of stdin (texts when none are given as arguments), or one clear error."""
    lines = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not lines:
        raise S2SFlowError("no input: give texts as arguments, or lines on stdin", task)
    return lines


def _predict_texts(args: argparse.Namespace, export_dir: Path) -> None:
    from s2sflow.core.predict import ExportedTextModel

    model = ExportedTextModel(export_dir, args.task)
    pairs_task = bool(model.labels.get("pairs"))
    if args.inputs:
        if pairs_task:
            if len(args.inputs) % 2:
                raise S2SFlowError(f"task {args.task} scores sentence pairs: give an even number of texts "
                                   f"(\"a\" \"b\" ...)", args.task)
            texts, pairs = args.inputs[0::2], args.inputs[1::2]
        else:
            texts, pairs = list(args.inputs), None
    else:
        lines = _stdin_lines(args.task)
        if pairs_task:
            bad = next((n for n, line in enumerate(lines, 1) if line.count("\t") != 1), None)
            if bad:
                raise S2SFlowError(f"stdin line {bad}: expected two tab-separated texts", args.task)
            texts, pairs = [line.split("\t")[0] for line in lines], [line.split("\t")[1] for line in lines]
        else:
            texts, pairs = lines, None
    for pred in model.predict(texts, pairs):
        print(json.dumps(pred, ensure_ascii=False) if args.json else _format_text(pred))


def _read_documents(args: argparse.Namespace) -> list[str]:
    """``document`` input (summarization): each argument is a file holding one text; none: all of stdin."""
    if not args.inputs:
        return [sys.stdin.read()]
    docs = []
    for name in args.inputs:
        path = Path(name)
        if not path.is_file():
            raise S2SFlowError(f"{path}: file not found; `predict --task {args.task}` takes files to summarize "
                               f"(or the text on stdin)", args.task)
        try:
            docs.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise S2SFlowError(f"{path}: not UTF-8 text (byte {err.start}); re-save it as UTF-8", args.task) from None
    return docs


def _chat(model, args: argparse.Namespace) -> None:
    """``dialogue`` input: given turns, print the next reply; none, an interactive loop on stdin
    (each line a turn; the model's replies join the context; an empty line or EOF ends it)."""
    if args.inputs:
        pred = model.predict([model.context(list(args.inputs))])[0]
        print(json.dumps(pred, ensure_ascii=False) if args.json else pred["output"])
        return
    interactive = sys.stdin.isatty()
    turns: list[str] = []
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            break
        turns.append(line.strip())
        pred = model.predict([model.context(turns)])[0]
        turns.append(pred["output"])
        print(json.dumps(pred, ensure_ascii=False) if args.json else
              (f"bot> {pred['output']}" if interactive else pred["output"]), flush=True)


def _predict_generation(args: argparse.Namespace, export_dir: Path) -> None:
    from s2sflow.core.predict import ExportedGenerator

    model = ExportedGenerator(export_dir, args.task)
    mode = model.input_mode["mode"]
    if mode == "dialogue":
        _chat(model, args)
        return
    sources = _read_documents(args) if mode == "document" else list(args.inputs) or _stdin_lines(args.task)
    for pred in model.predict(sources):
        print(json.dumps(pred, ensure_ascii=False) if args.json else pred["output"])


def _predict_captions(args: argparse.Namespace, export_dir: Path) -> None:
    from s2sflow.core.predict import ExportedCaptioner

    if not args.inputs:
        raise S2SFlowError(f"give one or more image files, e.g. `s2sflow predict --task {args.task} photo.jpg`",
                           args.task)
    for pred in ExportedCaptioner(export_dir, args.task).predict([Path(p) for p in args.inputs]):
        print(json.dumps(pred, ensure_ascii=False) if args.json else
              (f"{pred['file']}\t{pred['caption']}" if len(args.inputs) > 1 else pred["caption"]))


def _predict(args: argparse.Namespace) -> None:
    export_dir = Path(args.export_dir or Path(args.root) / "exports" / args.task)
    kind = _task_kind(args, export_dir)
    if kind == "mnist":
        _predict_images(args, export_dir)
    elif kind == "text":
        _predict_texts(args, export_dir)
    elif kind == "seq2seq":
        _predict_generation(args, export_dir)
    elif kind == "captioning":
        _predict_captions(args, export_dir)
    else:
        raise S2SFlowError(f"predict is not available for task kind '{kind}' (available: mnist, text, seq2seq, "
                           f"captioning)",
                           args.task)


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
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="invert dark-on-light images to MNIST's white-on-black (auto: when the mean is light)")
    p.set_defaults(func=_predict)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run_main(lambda: args.func(args), getattr(args, "task", None))


if __name__ == "__main__":
    main(sys.argv[1:])
