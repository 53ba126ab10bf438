"""The text-to-text split stage: source/target pairs read from parallel files, TSV, JSON lines or
dialogue turns, held out by whole dialogue or document, checked by the Great Expectations contract."""

from __future__ import annotations


def split(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.seq2seq.prepare import run_seq2seq_split

    return run_seq2seq_split(task, layout)
