"""Lineage for the model card: where the data came from, what ran on it, with which params and code."""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import json
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from s2sflow.core.fsutil import file_digest, read_json
from s2sflow.core.params import STAGES, stage_name, task_params

LIBRARIES = ("torch", "pytorch-lightning", "torchmetrics", "dvc", "dvclive", "prefect", "great-expectations",
             "datasets", "safetensors", "onnx", "onnxruntime", "numpy")


def git_state(root: Path) -> dict:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit
            else None}


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    return any(fnmatch.fnmatch(part, p) for p in patterns for part in parts)


def dvc_md5(path: Path, ignore: list[str] = ()) -> str | None:
    """The md5 DVC records in dvc.lock for ``path``: a file's md5, or for a folder ``<md5>.dir``, the md5
    of the JSON list of its files' ``{"md5", "relpath"}`` sorted by path (``dvc_data``'s Tree), files
    matched by ``.dvcignore`` names left out. None when ``path`` does not exist."""
    if path.is_file():
        return file_digest(path, "md5")
    if not path.is_dir():
        return None
    entries = []
    for file in path.rglob("*"):
        rel = file.relative_to(path).as_posix()
        if file.is_file() and not _ignored(rel, list(ignore)):
            entries.append({"md5": file_digest(file, "md5"), "relpath": rel})
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def dvcignore_names(root: Path) -> list[str]:
    """The plain name patterns of ``.dvcignore`` (the project uses no paths or negations there)."""
    path = root / ".dvcignore"
    if not path.is_file():
        return []
    return [line.strip().rstrip("/") for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def stage_deps(root: Path, stage: str, task: str, kind: str) -> list[str]:
    """The deps ``dvc.yaml`` declares for ``<stage>@<task>`` (its ``foreach`` template with the task and
    its kind filled in)."""
    template = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]["do"].get("deps") or []
    return [d.replace("${key}", task).replace("${item}", kind) for d in template]


def dvc_lock_hashes(root: Path, task: str, kind: str) -> dict:
    """The md5 of every dep and out of this task's stages: the upstream stages' as ``dvc.lock`` records
    them (DVC writes a stage's entry as soon as it ends, so they are current when export runs), and the
    export stage's own deps computed from the files now, the same way DVC will record them right after
    this stage (its outs are what is being written, so they have no entry)."""
    lock = root / "dvc.lock"
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}) if lock.is_file() else {}
    hashes = {}
    for stage in STAGES[:-1]:
        entry = stages.get(stage_name(stage, task))
        if entry:
            hashes[stage_name(stage, task)] = {
                kind_: {item["path"]: item.get("md5") for item in entry.get(kind_, []) if "path" in item}
                for kind_ in ("deps", "outs")}
    ignore = dvcignore_names(root)
    hashes[stage_name("export", task)] = {"deps": {dep: dvc_md5(root / dep, ignore)
                                                   for dep in sorted(stage_deps(root, "export", task, kind))}}
    return hashes


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def training_summary(train: dict) -> str:
    """How the model was trained, in words (the end of each kind's model description)."""
    return (f"trained with the `{train['engine']}` engine for {train['epochs']} epochs ({train['global_step']} steps, "
            f"seed {train['seed']}, {train['num_threads']} torch threads)")


def collect_lineage(task: str, layout, kind: str, describe: Callable[[dict, dict], str]) -> dict:
    """The model card's content: ``describe(config, train_summary)`` is the kind's sentence on the model."""
    source = read_json(layout.raw / "source.json")
    split = read_json(layout.split / "split.json")
    contract = read_json(layout.split / "contract.json")
    tokenized = read_json(layout.tokenized / "meta.json")
    train = read_json(layout.model / "train_summary.json")
    config = read_json(layout.model / "config.json")
    return {
        "task": task,
        "kind": kind,
        "model": describe(config, train),
        "data": {"origin": source["origin"], "license": source["license"], "files": source["files"]},
        "split": {"sizes": split["sizes"], "seed": split["seed"], "method": split["method"]},
        "contract": {"success": contract["success"], **contract.get("summary", {})},
        "tokenized": {"fingerprint": tokenized["fingerprint"], "files_sha256": tokenized["files_sha256"],
                      **({"tokenizer_sha256": tokenized["tokenizer_sha256"]} if "tokenizer_sha256" in tokenized
                         else {})},
        "params": task_params(task, layout.params),
        "training": {k: train.get(k) for k in ("engine", "seed", "epochs", "global_step", "precision",
                                               "num_threads", "cpu_capability", "device", "parameters",
                                               "resumed_from")},
        "metrics": read_json(layout.metrics),
        "git": git_state(layout.root),
        "dvc_lock": dvc_lock_hashes(layout.root, task, kind),
        "libraries": library_versions(),
        "platform": {"machine": platform.machine(), "system": platform.system()},
    }


def write_model_card(folder: Path, card: dict, files: list[str], max_diff: float, checked: str,
                     tolerance: float) -> dict:
    """The export section of ``card`` (files, the ONNX check on ``checked``, e.g. "64 test examples"),
    then ``model_card.json`` and ``model_card.md`` into ``folder``; returns the export section."""
    from s2sflow.core.fsutil import dumps_json

    card["export"] = {"files": files,
                      "onnx_check": f"max |torch - onnxruntime| = {max_diff:.3g} on {checked} (tolerance {tolerance})",
                      "onnx_max_abs_diff": max_diff, "torch_num_threads": card["training"]["num_threads"]}
    (folder / "model_card.json").write_text(dumps_json(card))
    (folder / "model_card.md").write_text(model_card_markdown(card))
    return card["export"]


def model_card_markdown(card: dict) -> str:
    m, d = card["metrics"], card["data"]
    scalars = {k: v for k, v in m.items() if isinstance(v, (int, float))}
    lines = [
        f"# Model card: `{card['task']}`",
        "",
        card["model"],
        "",
        "## Metrics (test set)",
        "",
        "| metric | value |", "| --- | --- |",
        *[f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in scalars.items()],
        "",
        "## Data",
        "",
        f"- origin: {d['origin']['kind']} ({', '.join(sorted(set(d['origin']['files'].values())))})",
        f"- license: {d['license']}",
        *[f"- `{name}`: sha256 `{f['sha256']}` ({f['bytes']:,} bytes)" for name, f in d["files"].items()],
        f"- split sizes: {', '.join(f'{k} {v:,}' for k, v in card['split']['sizes'].items())} "
        f"(seed {card['split']['seed']}, {card['split']['method']})",
        f"- data contract: {'passed' if card['contract']['success'] else 'FAILED'}; train/test overlap "
        f"{card['contract'].get('train_test_overlap')}",
        "",
        "## Export",
        "",
        *[f"- {k}: {v}" for k, v in card.get("export", {}).items()],
        "",
        "## Reproduce",
        "",
        f"- git commit: `{card['git']['commit']}`{' (with uncommitted changes)' if card['git']['dirty'] else ''}",
        f"- `dvc repro export@{card['task']}` with these params:",
        "",
        "```yaml",
        yaml.safe_dump(card["params"], sort_keys=False).rstrip(),
        "```",
        "",
        "### dvc.lock hashes of the inputs",
        "",
        "| stage | kind | path | md5 |", "| --- | --- | --- | --- |",
        *[f"| {stage} | {kind} | `{path}` | `{md5}` |" for stage, kinds in card["dvc_lock"].items()
          for kind, paths in kinds.items() for path, md5 in paths.items()],
        "",
        "## Libraries",
        "",
        ", ".join(f"{k} {v}" for k, v in card["libraries"].items()),
        "",
    ]
    return "\n".join(lines)


def finish_export(folder: Path, task: str, layout, card: dict, files: list[str], config: dict, preprocessing: dict,
                  max_diff: float, tolerance: float, checked: str) -> dict:
    """The end every export shares, inside its temporary ``folder``: stop (nothing written) when
    onnxruntime and torch differ by more than ``tolerance`` on ``checked`` (e.g. "64 test examples");
    then the model's tokenizer (when it has one), ``config.json``, ``preprocessing.json`` and the model
    card. ``files``: what the kind wrote itself (weights, graphs). Returns the card's export section."""
    from s2sflow.core.errors import S2SFlowError
    from s2sflow.core.fsutil import write_json

    if not max_diff <= tolerance:
        raise S2SFlowError(f"{layout.export}: onnxruntime differs from torch by {max_diff:.3g} on {checked} "
                           f"(tolerance {tolerance})", task)
    files = list(files)
    if (layout.model / "tokenizer.json").is_file():
        (folder / "tokenizer.json").write_bytes((layout.model / "tokenizer.json").read_bytes())
        files.append("tokenizer.json")
    write_json(folder / "config.json", config)
    write_json(folder / "preprocessing.json", preprocessing)
    return write_model_card(folder, card, [*files, "config.json", "preprocessing.json"], max_diff, checked, tolerance)
