"""evaluate stage: Score the trained model on the test split: metrics/<task>.json, confusion matrix, sample errors.

Run by DVC as `dvc repro evaluate@<task>`; by hand: `sh stages/py -m stages.evaluate --task mnist`.
"""

from stages._cli import stage_main

if __name__ == "__main__":
    stage_main("evaluate", __doc__)
