"""Kind ``captioning``: image captioning with frozen EfficientNet-Lite0 feature tokens read by an mBART
encoder-decoder, scored with pycocoevalcap's BLEU and CIDEr."""

from s2sflow.core.kind import Kind

KIND = Kind(name="captioning", section_keys=("headline",),
            headline=lambda section: (section.get("headline") or "bleu4", "max"))
