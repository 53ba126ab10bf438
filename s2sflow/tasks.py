"""What each stage does for a task, as plain functions of (task, project root): the stage scripts,
the flows and the tests all call these. Paths follow DESIGN.md's layout."""

from __future__ import annotations

from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, sha256_file, write_json
from s2sflow.core.params import fingerprint, stage_params, task_params

# Each task kind's headline test metric and whether higher is better (reports sort by it).
HEADLINE_METRICS = {"mnist": ("accuracy", "max")}
# text tasks: by shape (tagging by its metric set: seqeval F1 for entities, else the first layer's accuracy)
TEXT_HEADLINES = {"classification": ("accuracy", "max"), "regression": ("pearson", "max")}
KINDS = ("mnist", "text", "seq2seq", "captioning")


class Layout:
    """Where a task's stage outputs live under the project root."""

    def __init__(self, task: str, root: str | Path = "."):
        root = Path(root)
        self.task, self.root = task, root
        self.raw = root / "data" / "raw" / task
        self.split = root / "data" / "split" / task
        self.tokenized = root / "data" / "tokenized" / task
        self.model = root / "models" / task
        self.training_plots = root / "reports" / task / "training"
        self.checkpoints = root / "checkpoints"
        self.metrics = root / "metrics" / f"{task}.json"
        self.eval_reports = root / "reports" / task / "eval"
        self.export = root / "exports" / task
        self.params = root / "params.yaml"


def task_kind(task: str, root: str | Path = ".") -> str:
    return task_params(task, Path(root) / "params.yaml").get("kind", task)


def headline_metric(task: str, root: str | Path = ".") -> tuple[str, str]:
    kind = task_kind(task, root)
    if kind == "text":
        section = task_params(task, Path(root) / "params.yaml")
        shape = section.get("shape")
        if shape == "tagging":
            layers = (section.get("split") or {}).get("layers") or ["tags"]
            return ("f1", "max") if (section.get("evaluate") or {}).get("seqeval") else (f"{layers[0]}_accuracy", "max")
        return TEXT_HEADLINES.get(shape, ("accuracy", "max"))
    if kind in ("seq2seq", "captioning"):  # the task's own choice (e.g. rougeL), else BLEU / BLEU-4
        headline = task_params(task, Path(root) / "params.yaml").get("headline")
        return headline or ("bleu4" if kind == "captioning" else "bleu"), "max"
    return HEADLINE_METRICS.get(kind, ("accuracy", "max"))


def _kind(task: str, root: Path) -> str:
    kind = task_kind(task, root)
    if kind not in KINDS:
        raise S2SFlowError(f"params.yaml: {task}.kind '{kind}' is unknown (available: {', '.join(KINDS)})", task)
    return kind


def run_download(task: str, root: str | Path = ".", progress: bool = True) -> dict:
    from s2sflow.core.sources import download

    layout = Layout(task, root)
    record = download(task, stage_params(task, "download", layout.params), layout.raw, progress=progress,
                      root=layout.root)
    if len(record["files"]) > 20:  # thousands of images: the stage's summary line gives counts (source.json has all)
        record = {**record, "files": {"count": len(record["files"]),
                                      "bytes": sum(f["bytes"] for f in record["files"].values())},
                  "origin": {"kind": record["origin"]["kind"]}}
    return record


def run_split(task: str, root: str | Path = ".") -> dict:
    from s2sflow.kinds.mnist.contract import check_mnist_contract
    from s2sflow.kinds.mnist.data import make_splits, save_split

    layout = Layout(task, root)
    if _kind(task, layout.root) == "captioning":
        from s2sflow.kinds.captioning.data import run_caption_split

        return run_caption_split(task, layout)
    if _kind(task, layout.root) == "seq2seq":
        from s2sflow.kinds.seq2seq.prepare import run_seq2seq_split

        return run_seq2seq_split(task, layout)
    if _kind(task, layout.root) == "text":
        from s2sflow.kinds.text.prepare import run_text_split

        return run_text_split(task, layout)
    params = stage_params(task, "split", layout.params)
    splits = make_splits(layout.raw, int(params["validation_size"]), int(params["seed"]))
    expected = {name: int(n) for name, n in params["expected_counts"].items()}
    report = check_mnist_contract(splits, expected, int(params.get("max_train_test_overlap", 0)))
    report.raise_if_failed()
    sizes = {name: len(split) for name, split in splits.items()}
    with atomic_dir(layout.split) as tmp:
        for name, split in splits.items():
            save_split(split, tmp / name)
        write_json(tmp / "contract.json", report.to_dict())
        write_json(tmp / "split.json", {"task": task, "sizes": sizes, "seed": params["seed"],
                                        "method": "torch.utils.data.random_split + official test"})
    return {"sizes": sizes, "contract_success": report.success, **report.summary}


def run_tokenize(task: str, root: str | Path = ".") -> dict:
    from s2sflow.kinds.mnist.data import SPLITS, load_split, save_tensors

    layout = Layout(task, root)
    if _kind(task, layout.root) == "captioning":
        from s2sflow.kinds.captioning.data import run_caption_tokenize

        return run_caption_tokenize(task, layout)
    if _kind(task, layout.root) == "seq2seq":
        from s2sflow.kinds.seq2seq.prepare import run_seq2seq_tokenize

        return run_seq2seq_tokenize(task, layout)
    if _kind(task, layout.root) == "text":
        from s2sflow.kinds.text.prepare import run_text_tokenize

        return run_text_tokenize(task, layout)
    params = stage_params(task, "tokenize", layout.params)
    mean, std = float(params["mean"]), float(params["std"])
    with atomic_dir(layout.tokenized) as tmp:
        files = {}
        for name in SPLITS:
            save_tensors(load_split(layout.split / name), tmp / f"{name}.safetensors", mean, std)
            files[name] = sha256_file(tmp / f"{name}.safetensors")
        meta = {"task": task, "mean": mean, "std": std, "files_sha256": files, "fingerprint": fingerprint(files)}
        write_json(tmp / "meta.json", meta)
    return meta


def run_train(task: str, root: str | Path = ".") -> dict:
    from s2sflow.core.resume import train_task

    layout = Layout(task, root)
    if _kind(task, layout.root) in ("seq2seq", "captioning"):
        from s2sflow.kinds.seq2seq.train import train_seq2seq

        return train_seq2seq(task, stage_params(task, "train", layout.params), layout.tokenized, layout.model,
                             layout.training_plots, layout.checkpoints)
    return train_task(task, stage_params(task, "train", layout.params), layout.tokenized, layout.model,
                      layout.training_plots, layout.checkpoints, kind=_kind(task, layout.root))


def run_evaluate(task: str, root: str | Path = ".") -> dict:
    from s2sflow.kinds.mnist.evaluate import evaluate_mnist

    layout = Layout(task, root)
    if _kind(task, layout.root) == "captioning":
        from s2sflow.kinds.captioning.stages import evaluate_captioning

        return evaluate_captioning(task, stage_params(task, "evaluate", layout.params), layout)
    if _kind(task, layout.root) == "seq2seq":
        from s2sflow.kinds.seq2seq.evaluate import evaluate_seq2seq

        return evaluate_seq2seq(task, stage_params(task, "evaluate", layout.params), layout)
    if _kind(task, layout.root) == "text":
        from s2sflow.kinds.text.evaluate import evaluate_text

        return evaluate_text(task, stage_params(task, "evaluate", layout.params), layout)
    return evaluate_mnist(task, stage_params(task, "evaluate", layout.params), layout)


def run_export(task: str, root: str | Path = ".") -> dict:
    from s2sflow.kinds.mnist.export import export_mnist

    layout = Layout(task, root)
    if _kind(task, layout.root) == "captioning":
        from s2sflow.kinds.captioning.stages import export_captioning

        return export_captioning(task, stage_params(task, "export", layout.params), layout)
    if _kind(task, layout.root) == "seq2seq":
        from s2sflow.kinds.seq2seq.export import export_seq2seq

        return export_seq2seq(task, stage_params(task, "export", layout.params), layout)
    if _kind(task, layout.root) == "text":
        from s2sflow.kinds.text.export import export_text

        return export_text(task, stage_params(task, "export", layout.params), layout)
    return export_mnist(task, stage_params(task, "export", layout.params), layout)
