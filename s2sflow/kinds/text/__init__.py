"""Kind ``text``: one Transformer encoder (pretrained MiniLM or trained from scratch) with a head per
shape: classification and regression of a text or a pair (N21), and tagging per word (N2N)."""

from s2sflow.core.kind import Kind

SHAPE_HEADLINES = {"classification": ("accuracy", "max"), "regression": ("pearson", "max")}


def headline(section: dict) -> tuple[str, str]:
    """Tagging: seqeval entity F1 when evaluated so, else the first layer's accuracy."""
    shape = section.get("shape")
    if shape == "tagging":
        layers = (section.get("split") or {}).get("layers") or ["tags"]
        return ("f1", "max") if (section.get("evaluate") or {}).get("seqeval") else (f"{layers[0]}_accuracy", "max")
    return SHAPE_HEADLINES.get(shape, ("accuracy", "max"))


KIND = Kind(name="text", section_keys=("shape",), headline=headline)
