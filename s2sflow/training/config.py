"""Typed training parameters (``<task>.train`` in params.yaml); each field documented once, here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from s2sflow.models.cnn import CNNConfig
from s2sflow.params import fingerprint
from s2sflow.training.optim import OptimizerConfig, SchedulerConfig

ENGINES = ("lightning", "pytorch")


@dataclass
class TrainerConfig:
    """``accelerator``: auto | cpu | gpu (auto uses a GPU where one exists; bit-exact only on CPU).
    ``num_threads``: torch intra-op threads (recorded in the model card). ``limit_train_batches`` /
    ``limit_val_batches``: cap batches per epoch (null = all; for tiny test configs).
    ``progress_bar``: show a progress bar while training. ``gradient_clip_val``: clip the gradient
    norm (null: no clipping). ``accumulate_grad_batches``: optimizer step every N batches."""

    accelerator: str = "auto"
    num_threads: int = 2
    limit_train_batches: int | None = None
    limit_val_batches: int | None = None
    log_every_n_steps: int = 50
    progress_bar: bool = True
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1


class ResumableConfig:
    """``to_dict`` (saved with the model) and ``resume_key`` for the train-config dataclasses."""

    def to_dict(self) -> dict:
        return asdict(self)

    def resume_key(self, data_fingerprint: str) -> str:
        """Checkpoints are reused only by a run with the same params (display settings aside) and data."""
        d = self.to_dict()
        d["trainer"] = {k: v for k, v in d["trainer"].items() if k not in ("progress_bar", "log_every_n_steps")}
        return fingerprint({"train": d, "data": data_fingerprint})


@dataclass
class TrainConfig(ResumableConfig):
    """``engine``: lightning (the pipeline's) or pytorch (the plain loop, for comparison).
    ``seed`` seeds init, dropout and the shuffling order."""

    engine: str = "lightning"
    seed: int = 1
    epochs: int = 4
    batch_size: int = 64
    eval_batch_size: int = 1000
    model: CNNConfig = field(default_factory=CNNConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

