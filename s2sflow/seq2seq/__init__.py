"""Generation tasks (N2M): an encoder-decoder Transformer (``transformers``' BART classes built from a
config) that generates with ``generate()``: machine translation first, then dialogue, summarization
and captioning on the same module."""
