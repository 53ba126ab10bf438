"""export stage: Export safetensors + ONNX (checked with onnxruntime) + model card with lineage to exports/<task>/.

Run by DVC as `dvc repro export@<task>`; by hand: `sh stages/py -m stages.export --task mnist`.
"""

from stages._cli import stage_main

if __name__ == "__main__":
    stage_main("export", __doc__)
