"""s2sflow: reproducible sequence-to-sequence pipelines (download, split, tokenize, train, evaluate, export)."""

__version__ = "0.1.0"
