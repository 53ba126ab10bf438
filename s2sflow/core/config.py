"""What every kind's typed training parameters share: the Trainer settings and the resume key."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from s2sflow.core.params import fingerprint, param


@dataclass
class TrainerConfig:
    """``accelerator``: auto | cpu | gpu (auto uses a GPU where one exists; bit-exact only on CPU).
    ``num_threads``: torch intra-op threads (recorded in the model card). ``limit_train_batches`` /
    ``limit_val_batches``: cap batches per epoch (null = all; for tiny test configs).
    ``progress_bar``: show a progress bar while training. ``gradient_clip_val``: clip the gradient
    norm (null: no clipping). ``accumulate_grad_batches``: optimizer step every N batches."""

    accelerator: str = "auto"
    num_threads: int = param(2, ge=1)
    limit_train_batches: int | None = param(None, ge=1)
    limit_val_batches: int | None = param(None, ge=0)
    log_every_n_steps: int = param(50, ge=1)
    progress_bar: bool = True
    gradient_clip_val: float | None = param(None, gt=0)
    accumulate_grad_batches: int = param(1, ge=1)


PRECISIONS = ("32", "bf16", "auto")  # a train config's ``precision``: float32, bfloat16 autocast in training,
# or auto: bfloat16 where the device computes it natively, else float32 (s2sflow.core.train.resolved_precision)


class ResumableConfig:
    """``to_dict`` (saved with the model) and ``resume_key`` for the train-config dataclasses."""

    def to_dict(self) -> dict:
        """The config as saved with the model. ``precision`` came later: it is saved only when not
        ``32``, so float32 models (and their checkpoint keys) keep the bytes they had before."""
        out = asdict(self)
        if out.get("precision") == "32":
            del out["precision"]
        return out

    def resume_key(self, data_fingerprint: str) -> str:
        """Checkpoints are reused only by a run with the same params (display settings aside) and data."""
        d = self.to_dict()
        d["trainer"] = {k: v for k, v in d["trainer"].items() if k not in ("progress_bar", "log_every_n_steps")}
        return fingerprint({"train": d, "data": data_fingerprint})


@dataclass
class ExportConfig:
    """``<task>.export``: ``opset`` of the ONNX graphs; ``tolerance``: the largest |torch - onnxruntime|
    difference allowed on ``check_examples`` real test inputs (else the stage fails and writes nothing)."""

    opset: int = param(18, ge=7, le=23)
    tolerance: float = param(1e-4, gt=0)
    check_examples: int = param(64, ge=1)


def parse_export_config(cls: type, params: dict, task: str):
    """``cls`` (an ExportConfig dataclass) from params: unknown keys and out-of-range values are one line."""
    from s2sflow.core.params import from_dict

    return from_dict(cls, params, f"{task}.export")
