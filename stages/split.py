"""split stage: Split a task's raw data (MNIST: 55,000/5,000 by random_split with a seeded generator + the official
10,000 test images), run its Great Expectations contract, write data/split/<task>/.

Run by DVC as `dvc repro split@<task>`; by hand: `sh stages/py -m stages.split --task mnist`.
"""

from stages._cli import stage_main

if __name__ == "__main__":
    stage_main("split", __doc__)
