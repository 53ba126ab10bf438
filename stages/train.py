"""train stage: Train the task's model with the engine named in params (lightning | pytorch), resuming from the last
checkpoint of the same params; write models/<task>/ and the training curves.

Run by DVC as `dvc repro train@<task>`; by hand: `sh stages/py -m stages.train --task mnist`.
"""

from stages._cli import stage_main

if __name__ == "__main__":
    stage_main("train", __doc__)
