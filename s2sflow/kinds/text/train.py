"""The text tasks' train stage: ``TextModule`` (one LightningModule for every shape) over the encoder,
inside the shared resume/save skeleton; the tokenizer travels with the model."""

from __future__ import annotations

from pathlib import Path

from s2sflow.core.train import seed_all, steps_per_epoch, train_with_resume


def train(task: str, params: dict, layout) -> dict:
    from s2sflow.core.lightning import fit_lightning
    from s2sflow.kinds.text.lightning import TextDataModule, TextModule, model_spec, parse_text_train_config

    cfg = parse_text_train_config(params, task)

    def fit_task(meta: dict, ckpt_dir: Path, live_dir: Path, resume_from: Path | None):
        datamodule = TextDataModule(layout.tokenized, cfg.batch_size, cfg.eval_batch_size, cfg.seed)
        family = meta["tokenize"]["family"]
        spec = model_spec(layout.tokenized, cfg)
        seed_all(cfg.seed, cfg.trainer.num_threads)
        datamodule.prepare_data()
        datamodule.setup("fit")
        spe = steps_per_epoch(cfg, len(datamodule.datasets["train"]))
        module = TextModule(cfg.to_dict(), spec, spe, load_pretrained=family == "pretrained")
        module, summary = fit_lightning(cfg, datamodule, ckpt_dir, live_dir, resume_from, spe, model=module)
        summary["loss_history"] = module.loss_history
        return module.net, summary, {"task": task, "architecture": "TextEncoderModel", "train": cfg.to_dict(),
                                     "spec": spec}

    return train_with_resume(task, cfg, layout.tokenized, layout.model, layout.training_plots, layout.checkpoints,
                             fit_task, copy_tokenizer=True, times_file=layout.train_times)
