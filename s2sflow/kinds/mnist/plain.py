"""The plain PyTorch engine: the same model, data, seed, optimizer and scheduler as the Lightning
engine, written as the classic loop, so the two can be compared step for step and in wall time."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm import tqdm

from s2sflow.core.fsutil import TMP_MARK, trim_live_plots
from s2sflow.core.optim import build_optimizer, build_scheduler
from s2sflow.kinds.mnist.config import TrainConfig
from s2sflow.kinds.mnist.data import MNISTDataModule
from s2sflow.kinds.mnist.model import MnistCNN


def _limited(loader, limit: int | None):
    for i, batch in enumerate(loader):
        if limit is not None and i >= limit:
            break
        yield batch


@torch.no_grad()
def _validate(model: MnistCNN, loader, limit: int | None) -> tuple[float, float]:
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for x, y in _limited(loader, limit):
        logp = model(x)
        loss_sum += F.nll_loss(logp, y, reduction="sum").item()
        correct += int((logp.argmax(1) == y).sum())
        count += len(y)
    model.train()
    return loss_sum / max(count, 1), correct / max(count, 1)


def fit_plain(cfg: TrainConfig, datamodule: MNISTDataModule, ckpt_dir: Path | None, live_dir: Path | None,
              resume_from: Path | None, steps_per_epoch: int) -> tuple[MnistCNN, dict]:
    model = MnistCNN(cfg.model)  # the datamodule is prepared and set up by training.run.fit
    optimizer = build_optimizer(model.parameters(), cfg.optimizer)
    plan = build_scheduler(optimizer, cfg.scheduler, cfg.epochs, steps_per_epoch)
    loss_history: list[float] = []
    start_epoch, global_step = 0, 0
    if resume_from is not None:
        state = torch.load(resume_from, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if plan.scheduler is not None:
            plan.scheduler.load_state_dict(state["scheduler"])
        datamodule.load_state_dict(state["datamodule"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, global_step, loss_history = state["epoch"], state["global_step"], state["loss_history"]

    live = None
    if live_dir is not None:
        from dvclive import Live

        if resume_from is not None:  # rows logged after the checkpoint are logged again by this run
            trim_live_plots(live_dir, global_step)
        live = Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None, resume=resume_from is not None)
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    limit_train, limit_val = cfg.trainer.limit_train_batches, cfg.trainer.limit_val_batches
    epoch_seconds, val_loss, val_acc = [], float("nan"), float("nan")
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        start = time.perf_counter()
        bar = tqdm(_limited(train_loader, limit_train), total=steps_per_epoch, desc=f"Epoch {epoch}",
                   disable=not cfg.trainer.progress_bar, leave=False)
        for x, y in bar:
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
            if plan.interval == "step" and plan.scheduler is not None:
                plan.scheduler.step()
            loss_history.append(loss.item())
            global_step += 1
            if live is not None and global_step % cfg.trainer.log_every_n_steps == 0:
                live.step = global_step  # each row under the step it was measured at
                live.log_metric("train/loss", loss_history[-1])
            bar.set_postfix(train_loss=f"{loss_history[-1]:.3f}", refresh=False)
        val_loss, val_acc = _validate(model, val_loader, limit_val)
        if plan.scheduler is not None and plan.interval == "epoch":
            plan.scheduler.step(val_loss) if plan.monitor else plan.scheduler.step()
        epoch_seconds.append(time.perf_counter() - start)
        if live is not None:
            live.step = global_step
            live.log_metric("val/loss", val_loss)  # the names DVCLiveLogger gives Lightning's val_loss/val_acc
            live.log_metric("val/acc", val_acc)
            live.make_summary()
        if ckpt_dir is not None:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_dir / f"{TMP_MARK}last.pt"
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": plan.scheduler.state_dict() if plan.scheduler is not None else None,
                        "datamodule": datamodule.state_dict(), "torch_rng": torch.get_rng_state(),
                        "epoch": epoch + 1, "global_step": global_step, "loss_history": loss_history}, tmp)
            tmp.replace(ckpt_dir / "last.pt")
    if live is not None:
        live.end()
    return model, {"epoch_seconds": epoch_seconds, "global_step": global_step, "loss_history": loss_history,
                   "final_metrics": {"val_loss": val_loss, "val_acc": val_acc}}
