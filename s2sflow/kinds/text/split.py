"""The text tasks' split stage: read the task's files with the format in params into HF ``datasets``
(train / validation / test), check the Great Expectations contract, save them."""

from __future__ import annotations


def split(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.text.prepare import run_text_split

    return run_text_split(task, layout)
