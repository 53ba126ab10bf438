"""MNIST's train stage: the CNN fitted with the engine named in params (``lightning``, or ``pytorch``:
the plain loop over the same model, data and seed), inside the shared resume/save skeleton."""

from __future__ import annotations

from pathlib import Path

from s2sflow.core.params import from_dict
from s2sflow.core.train import seed_all, steps_per_epoch, train_with_resume
from s2sflow.kinds.mnist.config import TrainConfig
from s2sflow.kinds.mnist.data import MNISTDataModule


def parse_train_config(params: dict, task: str = "mnist") -> TrainConfig:
    """``<task>.train``, typed and range-checked (the engine one of ENGINES)."""
    return from_dict(TrainConfig, params, f"{task}.train")


def fit(cfg: TrainConfig, datamodule: MNISTDataModule, ckpt_dir: Path | None = None, live_dir: Path | None = None,
        resume_from: Path | None = None):
    """Seed, then fit with ``cfg.engine``; returns (torch model, summary dict with loss history)."""
    from s2sflow.core.lightning import fit_lightning
    from s2sflow.kinds.mnist.lightning import MNISTClassifier
    from s2sflow.kinds.mnist.plain import fit_plain

    seed_all(cfg.seed, cfg.trainer.num_threads)
    datamodule.prepare_data()
    datamodule.setup("fit")
    spe = steps_per_epoch(cfg, len(datamodule.datasets["train"]))
    if cfg.engine == "lightning":
        module, summary = fit_lightning(cfg, datamodule, ckpt_dir, live_dir, resume_from, spe,
                                        model=MNISTClassifier(cfg.to_dict(), spe))
        summary["loss_history"] = module.loss_history
        return module.net, summary
    return fit_plain(cfg, datamodule, ckpt_dir, live_dir, resume_from, spe)


def train(task: str, params: dict, layout) -> dict:
    cfg = parse_train_config(params, task)

    def fit_task(meta: dict, ckpt_dir: Path, live_dir: Path, resume_from: Path | None):
        datamodule = MNISTDataModule(layout.tokenized, cfg.batch_size, cfg.eval_batch_size, cfg.seed)
        net, summary = fit(cfg, datamodule, ckpt_dir, live_dir, resume_from)
        return net, summary, {"task": task, "architecture": "MnistCNN", "train": cfg.to_dict()}

    return train_with_resume(task, cfg, layout.tokenized, layout.model, layout.training_plots, layout.checkpoints,
                             fit_task, times_file=layout.train_times)
