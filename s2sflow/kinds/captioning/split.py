"""The captioning split stage: the captions CSV read with one-line errors, images drawn into test /
validation / train with the seed, and the contract (every image decodes, is RGB, has its captions)."""

from __future__ import annotations


def split(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.captioning.data import run_caption_split

    return run_caption_split(task, layout)
