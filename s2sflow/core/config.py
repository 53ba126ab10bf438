"""What every kind's typed training parameters share: the Trainer settings and the resume key."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from s2sflow.core.params import fingerprint

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
