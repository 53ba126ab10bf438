"""The text-to-text tokenize stage: one byte-pair vocabulary learnt on both sides of the train split,
every split encoded (with speaker anonymization where params ask for it)."""

from __future__ import annotations


def tokenize(task: str, params: dict, layout) -> dict:
    from s2sflow.kinds.seq2seq.prepare import run_seq2seq_tokenize

    return run_seq2seq_tokenize(task, layout)
