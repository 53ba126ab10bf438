"""Training: the Lightning and plain-PyTorch engines agree step for step; every optimizer and
scheduler named in params builds and steps the same way in both."""

import numpy as np
import pytest
import torch
import yaml

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.optim import (
    OPTIMIZERS,
    SCHEDULERS,
    OptimizerConfig,
    SchedulerConfig,
    build_optimizer,
    build_scheduler,
)
from s2sflow.kinds.mnist.data import MNISTDataModule
from s2sflow.kinds.mnist.model import MnistCNN
from s2sflow.kinds.mnist.train import fit, parse_train_config


def _config(project, **overrides):
    params = yaml.safe_load((project / "params.yaml").read_text())["mnist"]["train"]
    for key, value in overrides.items():
        target = params
        *path, last = key.split(".")
        for p in path:
            target = target[p]
        target[last] = value
    return parse_train_config(params)


def _losses(project, engine, **overrides):
    cfg = _config(project, engine=engine, **overrides)
    dm = MNISTDataModule(project / "data/tokenized/mnist", cfg.batch_size, cfg.eval_batch_size, cfg.seed)
    net, summary = fit(cfg, dm)
    return net, summary


def test_first_20_losses_of_both_engines_agree(built_project):
    """The default (full-size) pytorch/examples CNN, default optimizer and scheduler, real data."""
    full_model = {"model.conv1_channels": 32, "model.conv2_channels": 64, "model.hidden": 128,
                  "batch_size": 64, "epochs": 2, "trainer.limit_val_batches": 1}
    lit_net, lit = _losses(built_project, "lightning", **full_model)
    plain_net, plain = _losses(built_project, "pytorch", **full_model)
    assert len(lit["loss_history"]) == len(plain["loss_history"]) == 32  # 1,000 images / 64, two epochs
    np.testing.assert_allclose(lit["loss_history"][:20], plain["loss_history"][:20], rtol=0, atol=1e-5)
    np.testing.assert_allclose(lit["loss_history"], plain["loss_history"], rtol=0, atol=1e-5)
    assert lit["loss_history"][0] > lit["loss_history"][-1]  # it learns
    for (name, a), b in zip(lit_net.state_dict().items(), plain_net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("optimizer, scheduler", [("adadelta", "steplr"), ("sgd", "plateau"), ("adamw", "cosine")])
def test_engines_agree_for_other_optimizers_and_schedulers(built_project, optimizer, scheduler):
    """Two epochs, so that the epoch-level schedulers act (the default OneCycle steps per batch)."""
    lr = {"adadelta": 1.0, "adamw": 1e-3, "sgd": 0.05}[optimizer]
    over = {"optimizer.name": optimizer, "optimizer.lr": lr, "scheduler.name": scheduler, "epochs": 2,
            "trainer.limit_train_batches": 6, "trainer.limit_val_batches": 2}
    _, lit = _losses(built_project, "lightning", **over)
    _, plain = _losses(built_project, "pytorch", **over)
    np.testing.assert_allclose(lit["loss_history"], plain["loss_history"], rtol=0, atol=1e-5)
    assert lit["final_metrics"]["val_loss"] == pytest.approx(plain["final_metrics"]["val_loss"], abs=1e-5)


def test_every_named_optimizer_and_scheduler_builds():
    net = MnistCNN(parse_train_config({}).model)
    for opt_name in OPTIMIZERS:
        opt = build_optimizer(net.parameters(), OptimizerConfig(name=opt_name, lr=0.1))
        assert type(opt).__name__.lower() == {"adam": "adam", "adamw": "adamw", "sgd": "sgd",
                                              "adadelta": "adadelta"}[opt_name]
    kinds = {}
    for sched_name in SCHEDULERS:
        opt = build_optimizer(net.parameters(), OptimizerConfig(name="sgd", lr=0.1))
        plan = build_scheduler(opt, SchedulerConfig(name=sched_name), epochs=3, steps_per_epoch=10)
        kinds[sched_name] = (type(plan.scheduler).__name__, plan.interval, plan.monitor)
    assert kinds == {"none": ("NoneType", "epoch", None), "steplr": ("StepLR", "epoch", None),
                     "cosine": ("CosineAnnealingLR", "epoch", None), "onecycle": ("OneCycleLR", "step", None),
                     "plateau": ("ReduceLROnPlateau", "epoch", "val_loss"), "linear": ("LambdaLR", "step", None)}


def test_unknown_names_are_clear_errors():
    with pytest.raises(S2SFlowError, match="train.optimizer.name 'rmsprop' is unknown; use one of adam, adamw"):
        build_optimizer(MnistCNN(parse_train_config({}).model).parameters(), OptimizerConfig(name="rmsprop"))
    with pytest.raises(S2SFlowError, match="unknown key mnist.train.optimizer.lrate"):
        parse_train_config({"optimizer": {"lrate": 1}})
    with pytest.raises(S2SFlowError, match="train.engine: 'jax' is unknown; allowed: one of lightning, pytorch"):
        parse_train_config({"engine": "jax"})


def test_trim_live_plots_drops_rows_logged_after_the_checkpoint(tmp_path):
    from s2sflow.core.fsutil import trim_live_plots

    curves = tmp_path / "live" / "plots" / "metrics"
    (curves / "train").mkdir(parents=True)
    (curves / "train" / "loss.tsv").write_text("step\tloss\n49\t2.5\n99\t2.0\n149\t1.5\n199\t1.2\n")
    (curves / "epoch.tsv").write_text("step\tepoch\n99\t0\n175\t0\n")
    assert trim_live_plots(tmp_path / "live", 175) == 1
    assert (curves / "train" / "loss.tsv").read_text() == "step\tloss\n49\t2.5\n99\t2.0\n149\t1.5\n"
    assert (curves / "epoch.tsv").read_text() == "step\tepoch\n99\t0\n175\t0\n"  # untouched
    assert trim_live_plots(tmp_path / "nothing-logged-yet", 10) == 0
