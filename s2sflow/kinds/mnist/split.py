"""MNIST's split stage: 55,000/5,000 train/validation by ``random_split`` with a seeded generator, the
official 10,000 test images, and the Great Expectations contract (counts, labels, overlap)."""

from __future__ import annotations

from dataclasses import dataclass, field

from s2sflow.core.fsutil import atomic_dir, write_json
from s2sflow.core.params import from_dict, param


@dataclass
class SplitConfig:
    """``seed`` of the train/validation draw; ``validation_size`` images held out of train;
    ``expected_counts``: the contract's exact row counts per split; ``max_train_test_overlap``:
    identical images allowed between train/validation and test."""

    seed: int = param(42, ge=0)
    validation_size: int = param(5000, ge=1)
    expected_counts: dict = field(default_factory=dict)
    max_train_test_overlap: int = param(0, ge=0)


def split(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.mnist.contract import check_mnist_contract
    from s2sflow.kinds.mnist.data import make_splits, save_split

    cfg = from_dict(SplitConfig, params, f"{task}.split")
    splits = make_splits(layout.raw, int(cfg.validation_size), int(cfg.seed))
    expected = {name: int(n) for name, n in cfg.expected_counts.items()}
    report = check_mnist_contract(splits, expected, int(cfg.max_train_test_overlap))
    report.raise_if_failed()
    sizes = {name: len(part) for name, part in splits.items()}
    with atomic_dir(layout.split) as tmp:
        for name, part in splits.items():
            save_split(part, tmp / name)
        write_json(tmp / "contract.json", report.to_dict())
        write_json(tmp / "split.json", {"task": task, "sizes": sizes, "seed": cfg.seed,
                                        "method": "torch.utils.data.random_split + official test"})
    return {"sizes": sizes, "contract_success": report.success, **report.summary}
