"""The text-to-text train stage: ``Seq2SeqModule`` over the mBART network, in the encoder-decoder
kinds' shared train skeleton."""

from __future__ import annotations


def train(task: str, params: dict, layout) -> dict:
    from s2sflow.core.generation.train import train_encoder_decoder
    from s2sflow.kinds.seq2seq.lightning import Seq2SeqDataModule, Seq2SeqModule, model_spec

    return train_encoder_decoder(task, params, layout, Seq2SeqDataModule, Seq2SeqModule, model_spec,
                                 "MBartForConditionalGeneration")
