"""The train stage for generation tasks: the same resume-from-checkpoint and atomic ``models/<task>/``
contract as ``s2sflow.training.run`` (whose helpers it uses), with the seq2seq module (or, when the
tokenize stage wrote image features, the captioning module); weights are saved by ``save_weights``
(the tied embeddings stored once, the same weights always the same bytes)."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import torch

from s2sflow.errors import S2SFlowError
from s2sflow.fsutil import atomic_dir, read_json, write_json
from s2sflow.training.run import find_resume_checkpoint, seed_all, steps_per_epoch


def save_weights(net: torch.nn.Module, path: Path) -> None:
    """``safetensors.torch.save_model`` without the alias metadata it adds for tied tensors: safetensors
    writes metadata from a hash map, in an order that changes from process to process, so the same
    weights gave different bytes (and DVC hashes) on every run. ``load_model`` finds the tied names
    from the model itself."""
    from safetensors.torch import _remove_duplicate_names, save_file

    state = net.state_dict()
    for removed in _remove_duplicate_names(state).values():
        for name in removed:
            del state[name]
    save_file({k: v.contiguous() for k, v in sorted(state.items())}, str(path))


def train_seq2seq(task: str, params: dict, tokenized_dir: Path, model_dir: Path, plots_dir: Path,
                  checkpoint_root: Path) -> dict:
    from s2sflow.seq2seq.lightning import Seq2SeqDataModule, Seq2SeqModule, model_spec, parse_train_config
    from s2sflow.training.lightning import fit_lightning

    cfg = parse_train_config(params, task)
    if not (tokenized_dir / "meta.json").is_file():
        raise S2SFlowError(f"{tokenized_dir}/meta.json not found; run the tokenize stage first (`dvc repro "
                           f"gen_tokenize@{task}`, or `cap_tokenize@{task}` for captioning)", task)
    meta = read_json(tokenized_dir / "meta.json")
    architecture = "MBartForConditionalGeneration"
    if meta.get("shape") == "captioning":
        from s2sflow.seq2seq.captioning import CaptionDataModule as Seq2SeqDataModule  # noqa: F811
        from s2sflow.seq2seq.captioning import CaptionModule as Seq2SeqModule  # noqa: F811
        from s2sflow.seq2seq.captioning import caption_spec as model_spec  # noqa: F811

        architecture = "EfficientNet-Lite0 features + MBartForConditionalGeneration"
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
    datamodule = Seq2SeqDataModule(tokenized_dir, cfg.batch_size, cfg.eval_batch_size, cfg.seed)
    spec = model_spec(tokenized_dir, cfg)
    seed_all(cfg.seed, cfg.trainer.num_threads)
    datamodule.prepare_data()
    datamodule.setup("fit")
    # the scheduler counts optimizer steps: batches per epoch over the accumulation
    spe = math.ceil(steps_per_epoch(cfg, len(datamodule.datasets["train"])) / cfg.trainer.accumulate_grad_batches)
    module, fitted = fit_lightning(cfg, datamodule, ckpt_dir, live_dir, resume_from, spe,
                                   model=Seq2SeqModule(cfg.to_dict(), spec, spe))
    net = module.net
    summary = {
        "task": task, "engine": cfg.engine, "seed": cfg.seed, "epochs": cfg.epochs,
        "global_step": fitted["global_step"], "resumed_from": str(resume_from) if resume_from else None,
        "epoch_seconds": [round(s, 3) for s in fitted["epoch_seconds"]],
        "fit_seconds": round(time.perf_counter() - started, 3), "final_metrics": fitted["final_metrics"],
        "num_threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in net.parameters()),
    }
    config = {"task": task, "architecture": architecture, "train": cfg.to_dict(), "spec": spec}
    with atomic_dir(model_dir) as tmp:
        save_weights(net, tmp / "model.safetensors")
        write_json(tmp / "config.json", config)
        write_json(tmp / "train_summary.json", summary)
        shutil.copy(tokenized_dir / "tokenizer.json", tmp / "tokenizer.json")
    with atomic_dir(plots_dir) as tmp:  # the curves only: <split>/<metric>.tsv, as `dvc plots show` reads them
        if (live_dir / "plots" / "metrics").is_dir():
            shutil.copytree(live_dir / "plots" / "metrics", tmp, dirs_exist_ok=True)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return summary
