"""Typed, range-checked params: every schema field's annotation and allowed range (core.params.param)
are checked when params are read, before any stage writes or deletes anything."""

import pytest

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.generation.config import parse_evaluate_config
from s2sflow.core.params import from_dict
from s2sflow.kinds.mnist.config import TrainConfig
from s2sflow.kinds.text.data import parse_split_config


@pytest.mark.parametrize("data, expected", [
    ({"epochs": "5"}, "mnist.train.epochs: '5' is not a whole number"),
    ({"epochs": 2.5}, "mnist.train.epochs: 2.5 is not a whole number"),
    ({"epochs": True}, "mnist.train.epochs: True is not a whole number"),
    ({"optimizer": {"lr": float("nan")}}, "mnist.train.optimizer.lr: nan is not a number"),
    ({"optimizer": {"lr": 0}}, "mnist.train.optimizer.lr: 0 is out of range; allowed: > 0"),
    ({"model": {"dropout1": 1.0}}, "mnist.train.model.dropout1: 1.0 is out of range; allowed: >= 0 and < 1"),
    ({"scheduler": {"name": "exp"}},
     "mnist.train.scheduler.name: 'exp' is unknown; allowed: one of none, steplr, cosine, onecycle, plateau, linear"),
    ({"trainer": {"limit_train_batches": 0}}, "mnist.train.trainer.limit_train_batches: 0 is out of range; "
                                              "allowed: >= 1"),
    ({"trainer": {"progress_bar": "yes"}}, "mnist.train.trainer.progress_bar: 'yes' is not true or false"),
    ({"engine": "keras"}, "mnist.train.engine: 'keras' is unknown; allowed: one of lightning, pytorch"),
    ({"model": 5}, "mnist.train.model: expected a mapping of keys, got 5"),
])
def test_train_params_are_typed_and_range_checked(data, expected):
    with pytest.raises(S2SFlowError) as err:
        from_dict(TrainConfig, data, "mnist.train")
    assert str(err.value) == f"params.yaml: {expected}"


def test_other_stages_and_kinds_check_too():
    assert from_dict(TrainConfig, {"epochs": 1, "trainer": {"limit_train_batches": None}}, "t").epochs == 1
    with pytest.raises(S2SFlowError, match=r"topic\.split\.test_fraction: 1\.5 is out of range; allowed: > 0 and < 1"):
        parse_split_config({"test_fraction": 1.5}, "topic")
    with pytest.raises(S2SFlowError, match=r"mt\.evaluate\.decoding\.num_beams: 0 is out of range; allowed: >= 1"):
        parse_evaluate_config({"decoding": {"num_beams": 0}}, "mt")
    with pytest.raises(S2SFlowError, match=r"mt\.evaluate\.decoding\.top_p: 0 is out of range; allowed: > 0 and <= 1"):
        parse_evaluate_config({"decoding": {"top_p": 0}}, "mt")
