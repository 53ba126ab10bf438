"""tokenize stage: Turn split data into model inputs (MNIST: normalised float tensors, saved once) in data/tokenized/<task>/.

Run by DVC as `dvc repro tokenize@<task>`; by hand: `sh stages/py -m stages.tokenize --task mnist`.
"""

from stages._cli import stage_main
from s2sflow.tasks import run_tokenize

if __name__ == "__main__":
    stage_main(run_tokenize, __doc__)
