"""Optimizers and LR schedulers named in params, shared by the Lightning and plain-PyTorch engines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.params import param

OPTIMIZERS = ("adam", "adamw", "sgd", "adadelta")
SCHEDULERS = ("none", "steplr", "cosine", "onecycle", "plateau", "linear")


@dataclass
class OptimizerConfig:
    """``name``: adam | adamw | sgd | adadelta. ``momentum`` is used by sgd only."""

    name: str = param("adadelta", choices=OPTIMIZERS)
    lr: float = param(1.0, gt=0)
    weight_decay: float = param(0.0, ge=0)
    momentum: float = param(0.9, ge=0, lt=1)


@dataclass
class SchedulerConfig:
    """``name``: none | steplr | cosine | onecycle | plateau | linear.

    steplr: multiply the LR by ``gamma`` every ``step_size`` epochs. cosine: anneal to ``min_lr`` over
    the run. onecycle: per-step one-cycle up to ``max_lr`` (default: the optimizer's lr).
    plateau: multiply by ``factor`` after ``patience`` epochs without a better ``val_loss``.
    linear: per-step linear warm-up over ``pct_start`` of the steps, then linear decay to 0 (BERT's)."""

    name: str = param("steplr", choices=SCHEDULERS)
    step_size: int = param(1, ge=1)
    gamma: float = param(0.7, gt=0)
    min_lr: float = param(0.0, ge=0)
    max_lr: float | None = param(None, gt=0)
    pct_start: float = param(0.3, ge=0, lt=1)
    factor: float = param(0.5, gt=0, lt=1)
    patience: int = param(1, ge=0)




def build_optimizer(parameters: Iterable[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    name = cfg.name.lower()
    if name == "adam":
        return torch.optim.Adam(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if name == "adadelta":
        return torch.optim.Adadelta(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise S2SFlowError(f"params.yaml: train.optimizer.name '{cfg.name}' is unknown; use one of {', '.join(OPTIMIZERS)}")


@dataclass
class SchedulerPlan:
    """A scheduler and when to step it: 'epoch' or 'step'; ``monitor`` names the metric for plateau."""

    scheduler: object | None
    interval: str = "epoch"
    monitor: str | None = None


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, epochs: int,
                    steps_per_epoch: int) -> SchedulerPlan:
    name = cfg.name.lower()
    sched = torch.optim.lr_scheduler
    if name == "none":
        return SchedulerPlan(None)
    if name == "steplr":
        return SchedulerPlan(sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma))
    if name == "cosine":
        return SchedulerPlan(sched.CosineAnnealingLR(optimizer, T_max=max(epochs, 1), eta_min=cfg.min_lr))
    if name == "onecycle":
        max_lr = cfg.max_lr if cfg.max_lr is not None else optimizer.param_groups[0]["lr"]
        return SchedulerPlan(sched.OneCycleLR(optimizer, max_lr=max_lr, total_steps=max(epochs * steps_per_epoch, 1),
                                             pct_start=cfg.pct_start), interval="step")
    if name == "linear":
        total = max(epochs * steps_per_epoch, 1)
        warmup = int(total * cfg.pct_start)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total - step) / max(total - warmup, 1))

        return SchedulerPlan(sched.LambdaLR(optimizer, factor), interval="step")
    if name == "plateau":
        return SchedulerPlan(sched.ReduceLROnPlateau(optimizer, mode="min", factor=cfg.factor, patience=cfg.patience),
                             monitor="val_loss")
    raise S2SFlowError(f"params.yaml: train.scheduler.name '{cfg.name}' is unknown; use one of {', '.join(SCHEDULERS)}")
