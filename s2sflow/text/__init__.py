"""Text tasks (kind: text): readers and splits, tokenizers, the encoder model, training, evaluation, export."""
