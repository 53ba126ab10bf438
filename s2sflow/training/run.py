"""The train stage: fit with the engine named in params, resume from a checkpoint of the same
params and data, then write ``models/<task>/`` atomically and drop the checkpoints."""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from safetensors.torch import save_file

from s2sflow.data.mnist import MNISTDataModule
from s2sflow.errors import S2SFlowError
from s2sflow.fsutil import atomic_dir, read_json, write_json
from s2sflow.params import from_dict
from s2sflow.training.config import ENGINES, TrainConfig

log = logging.getLogger("s2sflow.train")


def parse_train_config(params: dict) -> TrainConfig:
    cfg = from_dict(TrainConfig, params, "train")
    if cfg.engine not in ENGINES:
        raise S2SFlowError(f"params.yaml: train.engine '{cfg.engine}' is unknown; use one of {', '.join(ENGINES)}")
    return cfg


def steps_per_epoch(cfg: TrainConfig, n_train: int) -> int:
    steps = math.ceil(n_train / cfg.batch_size)
    return min(steps, cfg.trainer.limit_train_batches) if cfg.trainer.limit_train_batches else steps


def find_resume_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest checkpoint that loads; one cut short by a kill is removed and the next one tried."""
    if not ckpt_dir.is_dir():
        return None
    candidates = [ckpt_dir / "last.ckpt", ckpt_dir / "last.pt"]
    candidates += sorted(ckpt_dir.glob("epoch*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # a truncated file from a killed run: not resumable
            log.warning("ignoring unreadable checkpoint %s (%s)", path, err.__class__.__name__)
            path.unlink(missing_ok=True)
            continue
        return path
    return None


def seed_all(seed: int, num_threads: int) -> None:
    torch.set_num_threads(num_threads)
    pl.seed_everything(seed, workers=False, verbose=False)


def fit(cfg: TrainConfig, datamodule: MNISTDataModule, ckpt_dir: Path | None = None, live_dir: Path | None = None,
        resume_from: Path | None = None):
    """Seed, then fit with ``cfg.engine``; returns (torch model, summary dict with loss history)."""
    from s2sflow.training.lightning import fit_lightning
    from s2sflow.training.plain import fit_plain

    seed_all(cfg.seed, cfg.trainer.num_threads)
    datamodule.prepare_data()
    datamodule.setup("fit")
    spe = steps_per_epoch(cfg, len(datamodule.datasets["train"]))
    if cfg.engine == "lightning":
        module, summary = fit_lightning(cfg, datamodule, ckpt_dir, live_dir, resume_from, spe)
        summary["loss_history"] = module.loss_history
        return module.net, summary
    return fit_plain(cfg, datamodule, ckpt_dir, live_dir, resume_from, spe)


def _fit_text(task: str, params: dict, tokenized_dir: Path, meta: dict, ckpt_dir: Path, live_dir: Path,
              resume_from: Path | None):
    from s2sflow.text.lightning import TextDataModule, TextModule, model_spec, parse_text_train_config
    from s2sflow.training.lightning import fit_lightning

    cfg = parse_text_train_config(params, task)
    datamodule = TextDataModule(tokenized_dir, cfg.batch_size, cfg.eval_batch_size, cfg.seed)
    family = meta["tokenize"]["family"]
    spec = model_spec(tokenized_dir, cfg)
    seed_all(cfg.seed, cfg.trainer.num_threads)
    datamodule.prepare_data()
    datamodule.setup("fit")
    spe = steps_per_epoch(cfg, len(datamodule.datasets["train"]))
    module = TextModule(cfg.to_dict(), spec, spe, load_pretrained=family == "pretrained")
    module, summary = fit_lightning(cfg, datamodule, ckpt_dir, live_dir, resume_from, spe, model=module)
    summary["loss_history"] = module.loss_history
    config = {"task": task, "architecture": "TextEncoderModel", "train": cfg.to_dict(), "spec": spec}
    return cfg, module.net, summary, config


def train_task(task: str, params: dict, tokenized_dir: Path, model_dir: Path, plots_dir: Path,
               checkpoint_root: Path, kind: str = "mnist") -> dict:
    if kind == "text":
        from s2sflow.text.lightning import parse_text_train_config

        cfg = parse_text_train_config(params, task)
    else:
        cfg = parse_train_config(params)
    meta = read_json(tokenized_dir / "meta.json") if (tokenized_dir / "meta.json").is_file() else None
    if meta is None:
        raise S2SFlowError(f"{tokenized_dir}/meta.json not found; run `dvc repro tokenize@{task}` first", task)
    key = cfg.resume_key(meta["fingerprint"])
    ckpt_dir = checkpoint_root / task / key
    for other in (checkpoint_root / task).glob("*") if (checkpoint_root / task).is_dir() else []:
        if other.name != key:
            shutil.rmtree(other, ignore_errors=True)  # checkpoints of other params can never be resumed
    resume_from = find_resume_checkpoint(ckpt_dir)
    live_dir = ckpt_dir / "live"
    if resume_from is None:
        shutil.rmtree(live_dir, ignore_errors=True)
    else:
        print(f"s2sflow: {task}: resuming from {resume_from}", flush=True)
    started = time.perf_counter()
    if kind == "text":
        cfg, net, summary, config = _fit_text(task, params, tokenized_dir, meta, ckpt_dir, live_dir, resume_from)
    else:
        datamodule = MNISTDataModule(tokenized_dir, cfg.batch_size, cfg.eval_batch_size, cfg.seed)
        net, summary = fit(cfg, datamodule, ckpt_dir, live_dir, resume_from)
        config = {"task": task, "architecture": "MnistCNN", "train": cfg.to_dict()}
    summary = {
        "task": task, "engine": cfg.engine, "seed": cfg.seed, "epochs": cfg.epochs,
        "global_step": summary["global_step"], "resumed_from": str(resume_from) if resume_from else None,
        "epoch_seconds": [round(s, 3) for s in summary["epoch_seconds"]],
        "fit_seconds": round(time.perf_counter() - started, 3),
        "final_metrics": summary["final_metrics"], "num_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    with atomic_dir(model_dir) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp / "model.safetensors"))
        write_json(tmp / "config.json", config)
        write_json(tmp / "train_summary.json", summary)
        if kind == "text":
            shutil.copy(tokenized_dir / "tokenizer.json", tmp / "tokenizer.json")
    with atomic_dir(plots_dir) as tmp:  # the curves only: <split>/<metric>.tsv, as `dvc plots show` reads them
        if (live_dir / "plots" / "metrics").is_dir():
            shutil.copytree(live_dir / "plots" / "metrics", tmp, dirs_exist_ok=True)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return summary
