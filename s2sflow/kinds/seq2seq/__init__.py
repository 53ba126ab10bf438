"""Kind ``seq2seq``: text-to-text generation (N2M: translation, dialogue, summarization) with an
encoder-decoder Transformer built from ``transformers``' mBART classes, decoding with ``generate()``."""

from s2sflow.core.kind import Kind

KIND = Kind(name="seq2seq", section_keys=("headline",),
            headline=lambda section: (section.get("headline") or "bleu", "max"))
