"""Kind ``mnist``: image classification of 28x28 digits with the pytorch/examples CNN, trained with
Lightning or, for comparison, the same model in a plain PyTorch loop."""

from s2sflow.core.kind import Kind

KIND = Kind(name="mnist", headline=lambda section: ("accuracy", "max"), sources="sources")
