"""The Lightning scaffold every kind trains with: the shared LightningModule base (optimizer and
scheduler from params, exact-resume state in checkpoints) and the Trainer that fits it."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, TQDMProgressBar

from s2sflow.core.config import ResumableConfig
from s2sflow.core.fsutil import trim_live_plots
from s2sflow.core.optim import build_optimizer, build_scheduler

warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)


class _DropAdverts(logging.Filter):
    """Lightning prints an advert for a cloud logger on every fit; keep its real messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


for _name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(_DropAdverts())


class S2SModule(pl.LightningModule):
    """What every s2sflow LightningModule shares: optimizer and scheduler from params (``self.cfg``,
    ``self.steps_per_epoch``), and the torch RNG + loss history in checkpoints (exact resume)."""

    cfg: object
    steps_per_epoch: int
    loss_history: list[float]

    def configure_optimizers(self):
        optimizer = build_optimizer(self.parameters(), self.cfg.optimizer)
        plan = build_scheduler(optimizer, self.cfg.scheduler, self.cfg.epochs, self.steps_per_epoch)
        if plan.scheduler is None:
            return optimizer
        scheduler = {"scheduler": plan.scheduler, "interval": plan.interval}
        if plan.monitor:
            scheduler["monitor"] = plan.monitor
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["s2sflow_rng"] = {"torch": torch.get_rng_state(), "loss_history": self.loss_history}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("s2sflow_rng")
        if state:
            torch.set_rng_state(state["torch"])
            self.loss_history = list(state["loss_history"])


class ProgressBar(TQDMProgressBar):
    """tqdm (it updates live through a pipe: DVC, the Prefect flow) without the logger's version number."""

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class EpochTimer(Callback):
    """Wall time of each training epoch (validation included), for the engine comparison."""

    def __init__(self):
        self.epoch_seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.epoch_seconds.append(time.perf_counter() - self._start)


def fit_lightning(cfg: ResumableConfig, datamodule: pl.LightningDataModule, ckpt_dir: Path | None,
                  live_dir: Path | None, resume_from: Path | None, steps_per_epoch: int,
                  model: S2SModule) -> tuple[S2SModule, dict]:
    """Fit ``model`` with a Trainer built from ``cfg.trainer`` (a kind's train config)."""
    callbacks: list[Callback] = [timer := EpochTimer()]
    if cfg.trainer.progress_bar:
        callbacks.append(ProgressBar(refresh_rate=20))
    if ckpt_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch}", save_last=True, save_top_k=1,
                                         auto_insert_metric_name=False))
    loggers = []
    if live_dir is not None:
        from dvclive.lightning import DVCLiveLogger

        if resume_from is not None:  # Lightning logs step s as s - 1: keep what the checkpoint had seen
            saved = torch.load(resume_from, map_location="cpu", weights_only=True, mmap=True)["global_step"]
            trim_live_plots(live_dir, saved - 1)

        loggers.append(DVCLiveLogger(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None,
                                     resume=resume_from is not None))
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator, devices=1, max_epochs=cfg.epochs, logger=loggers or False,
        callbacks=callbacks, enable_checkpointing=ckpt_dir is not None, use_distributed_sampler=False,
        limit_train_batches=cfg.trainer.limit_train_batches, limit_val_batches=cfg.trainer.limit_val_batches,
        num_sanity_val_steps=0, log_every_n_steps=cfg.trainer.log_every_n_steps,
        gradient_clip_val=cfg.trainer.gradient_clip_val, accumulate_grad_batches=cfg.trainer.accumulate_grad_batches,
        enable_progress_bar=cfg.trainer.progress_bar, enable_model_summary=False, default_root_dir=ckpt_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None,
                weights_only=True)  # tensors and plain types only: nothing unpickled
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return model, {"epoch_seconds": timer.epoch_seconds, "global_step": trainer.global_step,
                   "final_metrics": logged}
