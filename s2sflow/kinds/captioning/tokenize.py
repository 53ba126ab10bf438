"""The captioning tokenize stage: the caption vocabulary learnt on the train captions, and the frozen
EfficientNet-Lite0 run once over every image into feature tokens."""

from __future__ import annotations


def tokenize(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.captioning.data import run_caption_tokenize

    return run_caption_tokenize(task, layout)
