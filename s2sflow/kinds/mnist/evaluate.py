"""The evaluate stage: test-set metrics (torchmetrics through Lightning's ``test_step``), a confusion
matrix (a DVC plot and a PNG) and the misclassified samples."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Subset

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_dir, atomic_write_text, dumps_json, read_json
from s2sflow.core.params import from_dict, param
from s2sflow.kinds.mnist.data import load_tensors

warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def load_classifier(model_dir: Path, task: str):
    from s2sflow.kinds.mnist.lightning import MNISTClassifier

    if not (model_dir / "model.safetensors").is_file():
        raise S2SFlowError(f"{model_dir}/model.safetensors not found; run `dvc repro train@{task}` first", task)
    config = read_json(model_dir / "config.json")
    module = MNISTClassifier(config["train"], steps_per_epoch=1)
    module.net.load_state_dict(load_file(str(model_dir / "model.safetensors")))
    return module.eval(), config


def _plot_confusion(matrix: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5.4))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > matrix.max() / 3 else "black")
    ax.set(xlabel="predicted", ylabel="actual", xticks=range(len(matrix)), yticks=range(len(matrix)),
           title="MNIST test confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_errors(images: torch.Tensor, actual: list[int], predicted: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(actual)
    cols = min(n, 8) or 1
    rows = max((n + cols - 1) // cols, 1)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, ax in enumerate(axes.flat[:n]):
        ax.imshow(images[k, 0].numpy(), cmap="gray")
        ax.set_title(f"{actual[k]}→{predicted[k]}", fontsize=8, color="crimson")
    fig.suptitle("misclassified test images (actual→predicted)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class EvaluateConfig:
    """``batch_size`` of the test pass; ``limit``: only the first N test images (null: all);
    ``n_error_samples``: misclassified images drawn in errors.png; ``n_samples``: first predictions
    in samples.json; ``progress_bar`` while testing."""

    batch_size: int = param(1000, ge=1)
    limit: int | None = param(None, ge=1)
    n_error_samples: int = param(32, ge=0)
    n_samples: int = param(20, ge=0)
    progress_bar: bool = True


def evaluate(task: str, params: dict, layout) -> dict:
    cfg = from_dict(EvaluateConfig, params, f"{task}.evaluate")
    module, config = load_classifier(layout.model, task)
    torch.set_num_threads(int(config["train"]["trainer"]["num_threads"]))
    test = load_tensors(layout.tokenized / "test.safetensors")
    if cfg.limit:
        test = Subset(test, range(min(int(cfg.limit), len(test))))
    loader = DataLoader(test, batch_size=int(cfg.batch_size), shuffle=False)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=bool(cfg.progress_bar),
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.test(module, dataloaders=loader, verbose=False)
    logp = torch.cat([o[0] for o in module.test_outputs])
    actual = torch.cat([o[1] for o in module.test_outputs])
    predicted = logp.argmax(1)
    n_classes = module.cfg.model.num_classes
    matrix = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    matrix.index_put_((actual, predicted), torch.ones_like(actual), accumulate=True)
    class_acc = module.test_class_acc.compute()
    metrics = {
        "accuracy": round(float(module.test_acc.compute()), 6),
        "loss": round(float(module.test_loss.compute()), 6),
        "per_class_accuracy": {str(c): round(float(class_acc[c]), 6) for c in range(n_classes)},
        "n_test": len(actual),
        "errors": int((predicted != actual).sum()),
    }
    wrong = torch.nonzero(predicted != actual).flatten()[: int(cfg.n_error_samples)]
    images = torch.stack([test[int(i)][0] for i in wrong]) if len(wrong) else torch.zeros(0, 1, 28, 28)
    samples = [{"test_index": int(i), "actual": int(actual[i]), "predicted": int(predicted[i]),
                "confidence": round(float(logp[i].exp().max()), 6)} for i in wrong]
    with atomic_dir(layout.confusion) as tmp:  # the DVC plot (template confusion)
        rows = [{"actual": int(a), "predicted": int(p)} for a, p in zip(actual.tolist(), predicted.tolist())]
        (tmp / "confusion.json").write_text(dumps_json(rows))
    with atomic_dir(layout.eval_reports) as tmp:
        (tmp / "errors.json").write_text(dumps_json(samples))
        (tmp / "per_class.json").write_text(dumps_json({str(c): {"accuracy": metrics["per_class_accuracy"][str(c)],
                                                                 "support": int((actual == c).sum())}
                                                        for c in range(n_classes)}))
        first = range(min(int(cfg.n_samples), len(actual)))
        (tmp / "samples.json").write_text(dumps_json([
            {"test_index": i, "actual": int(actual[i]), "predicted": int(predicted[i]),
             "confidence": round(float(logp[i].exp().max()), 6)} for i in first]))
        _plot_confusion(matrix.numpy(), tmp / "confusion_matrix.png")
        _plot_errors(images, [s["actual"] for s in samples], [s["predicted"] for s in samples], tmp / "errors.png")
    atomic_write_text(layout.metrics, dumps_json(metrics))
    return metrics
