"""What each stage does for a task, as plain functions of (task, project root): the stage scripts,
the flows and the tests all call these. Paths follow DESIGN.md's layout."""

from __future__ import annotations

from pathlib import Path

from s2sflow.errors import S2SFlowError
from s2sflow.fsutil import atomic_dir, sha256_file, write_json
from s2sflow.params import fingerprint, stage_params, task_params

# Each task kind's headline test metric and whether higher is better (reports sort by it).
HEADLINE_METRICS = {"mnist": ("accuracy", "max")}


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
    return HEADLINE_METRICS.get(task_kind(task, root), ("accuracy", "max"))


def _kind(task: str, root: Path) -> str:
    kind = task_kind(task, root)
    if kind != "mnist":
        raise S2SFlowError(f"params.yaml: {task}.kind '{kind}' is not implemented yet (available: mnist)", task)
    return kind


def run_download(task: str, root: str | Path = ".", progress: bool = True) -> dict:
    from s2sflow.data.sources import download

    layout = Layout(task, root)
    return download(task, stage_params(task, "download", layout.params), layout.raw, progress=progress)


def run_split(task: str, root: str | Path = ".") -> dict:
    from s2sflow.contracts.mnist import check_mnist_contract
    from s2sflow.data.mnist import make_splits, save_split

    layout = Layout(task, root)
    _kind(task, layout.root)
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
    from s2sflow.data.mnist import SPLITS, load_split, save_tensors

    layout = Layout(task, root)
    _kind(task, layout.root)
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
    from s2sflow.training.run import train_task

    layout = Layout(task, root)
    _kind(task, layout.root)
    return train_task(task, stage_params(task, "train", layout.params), layout.tokenized, layout.model,
                      layout.training_plots, layout.checkpoints)


def run_evaluate(task: str, root: str | Path = ".") -> dict:
    from s2sflow.evaluate import evaluate_mnist

    layout = Layout(task, root)
    _kind(task, layout.root)
    return evaluate_mnist(task, stage_params(task, "evaluate", layout.params), layout)


def run_export(task: str, root: str | Path = ".") -> dict:
    from s2sflow.export import export_mnist

    layout = Layout(task, root)
    _kind(task, layout.root)
    return export_mnist(task, stage_params(task, "export", layout.params), layout)
