"""tokenize stage: Turn split data into model inputs (MNIST: normalised float tensors, saved once) in
data/tokenized/<task>/.

Run by DVC as `dvc repro tokenize@<task>`; by hand: `sh stages/py -m stages.tokenize --task mnist`.
"""

from stages._cli import stage_main

if __name__ == "__main__":
    stage_main("tokenize", __doc__)
