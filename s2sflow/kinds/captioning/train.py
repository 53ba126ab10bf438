"""The captioning train stage: ``CaptionModule`` (image feature tokens into the mBART encoder-decoder)
in the encoder-decoder kinds' shared train skeleton."""

from __future__ import annotations


def train(task: str, params: dict, layout) -> dict:
    from s2sflow.core.generation.train import train_encoder_decoder
    from s2sflow.kinds.captioning.lightning import CaptionDataModule, CaptionModule, caption_spec

    return train_encoder_decoder(task, params, layout, CaptionDataModule, CaptionModule, caption_spec,
                                 "EfficientNet-Lite0 features + MBartForConditionalGeneration")
