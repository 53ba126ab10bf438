"""The train stage of the encoder-decoder kinds: their DataModule and LightningModule fitted inside the
shared resume/save skeleton; the scheduler counts optimizer steps, and the weights are saved by
``save_weights`` (the tied embeddings once, the same weights always the same bytes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from s2sflow.core.generation.config import parse_train_config
from s2sflow.core.generation.decoding import save_weights
from s2sflow.core.train import seed_all, steps_per_epoch, train_with_resume


def train_encoder_decoder(task: str, params: dict, layout, datamodule_class, module_class,
                          model_spec: Callable, architecture: str) -> dict:
    from s2sflow.core.lightning import fit_lightning

    cfg = parse_train_config(params, task)

    def fit_task(meta: dict, ckpt_dir: Path, live_dir: Path, resume_from: Path | None):
        datamodule = datamodule_class(layout.tokenized, cfg.batch_size, cfg.eval_batch_size, cfg.seed)
        spec = model_spec(layout.tokenized, cfg)
        seed_all(cfg.seed, cfg.trainer.num_threads)
        datamodule.prepare_data()
        datamodule.setup("fit")
        # the scheduler counts optimizer steps: batches per epoch over the accumulation
        spe = math.ceil(steps_per_epoch(cfg, len(datamodule.datasets["train"])) / cfg.trainer.accumulate_grad_batches)
        module, fitted = fit_lightning(cfg, datamodule, ckpt_dir, live_dir, resume_from, spe,
                                       model=module_class(cfg.to_dict(), spec, spe))
        return module.net, fitted, {"task": task, "architecture": architecture, "train": cfg.to_dict(), "spec": spec}

    return train_with_resume(task, cfg, layout.tokenized, layout.model, layout.training_plots, layout.checkpoints,
                             fit_task, save=save_weights, copy_tokenizer=True, times_file=layout.train_times)
