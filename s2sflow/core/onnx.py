"""ONNX files that do not depend on where they were made: ``torch.onnx.export`` stores each node's
Python stack trace (absolute paths of this checkout and its venv) as node metadata; exports drop it so
two clones give the same bytes."""

from __future__ import annotations

from pathlib import Path

LOCAL_METADATA = ("pkg.torch.onnx.stack_trace",)


def _graphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def drop_local_paths(path: str | Path) -> None:
    """Rewrite ``path`` without the metadata entries that record local source paths."""
    import onnx

    model = onnx.load(str(path))
    nodes = [n for g in _graphs(model.graph) for n in g.node] + [n for f in model.functions for n in f.node]
    for node in nodes:
        keep = [(p.key, p.value) for p in node.metadata_props if p.key not in LOCAL_METADATA]
        if len(keep) != len(node.metadata_props):
            del node.metadata_props[:]
            for key, value in keep:
                node.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
