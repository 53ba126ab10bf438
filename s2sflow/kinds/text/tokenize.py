"""The text tasks' tokenize stage: the pretrained WordPiece or one trained on the train split, label
sets from train, and every split encoded into Arrow columns."""

from __future__ import annotations


def tokenize(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.text.prepare import run_text_tokenize

    return run_text_tokenize(task, layout)
