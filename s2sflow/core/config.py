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


@dataclass
class ExportConfig:
    """``<task>.export``: ``opset`` of the ONNX graphs; ``tolerance``: the largest |torch - onnxruntime|
    difference allowed on ``check_examples`` real test inputs (else the stage fails and writes nothing)."""

    opset: int = 18
    tolerance: float = 1e-4
    check_examples: int = 64


def parse_export_config(cls: type, params: dict, task: str):
    """``cls`` (an ExportConfig dataclass) from params: unknown keys and out-of-range values are one line."""
    from s2sflow.core.errors import S2SFlowError
    from s2sflow.core.params import from_dict

    cfg = from_dict(cls, params, f"{task}.export")
    checks = getattr(cfg, "check_examples", getattr(cfg, "check_images", 1))
    if not 7 <= int(cfg.opset) <= 23 or not float(cfg.tolerance) > 0 or int(checks) < 1:
        raise S2SFlowError(f"params.yaml: {task}.export: opset must be 7-23, tolerance > 0 and at least one example "
                           f"checked (got opset {cfg.opset}, tolerance {cfg.tolerance}, {checks} examples)", task)
    return cfg
