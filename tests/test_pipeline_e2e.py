"""End to end through `dvc`: the six stages on a tiny real MNIST, no-op re-runs, what a param change
re-runs, byte-identical metrics for the same seed, the export and its lineage, and `s2sflow predict`."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import (
    assert_card_matches_lock,
    assert_edits_stale_only_their_kind,
    assert_imports_are_declared,
    dvc,
    make_project,
    project_env,
    run,
)
from s2sflow.core.fsutil import read_json
from s2sflow.kinds.mnist.idx import read_idx

pytestmark = pytest.mark.e2e


def _copy(built_project, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(built_project, dest, symlinks=True)
    return dest


def test_repro_produces_metrics_plots_and_export(built_project, env):
    metrics = read_json(built_project / "metrics/mnist.json")
    assert metrics["n_test"] == 400
    assert 0.5 < metrics["accuracy"] <= 1.0  # a tiny CNN after 2 epochs on 1,000 images; chance is 0.1
    assert metrics["errors"] == round((1 - metrics["accuracy"]) * 400)
    assert sorted(metrics["per_class_accuracy"]) == [str(d) for d in range(10)]
    shown = json.loads(dvc(["metrics", "show", "--json"], built_project, env).stdout)
    assert shown[""]["data"]["metrics/mnist.json"]["data"]["accuracy"] == metrics["accuracy"]
    plots = json.loads(dvc(["plots", "show", "--json", "--split"], built_project, env).stdout)["data"]
    assert {"reports/mnist/confusion/confusion.json", "reports/mnist/training/val/acc.tsv",
            "reports/mnist/training/train/loss.tsv"} <= set(plots)
    val_acc = (built_project / "reports/mnist/training/val/acc.tsv").read_text().splitlines()
    assert val_acc[0].split("\t") == ["step", "acc"] and len(val_acc) == 1 + 2  # one row per epoch
    eval_dir = built_project / "reports/mnist/eval"
    assert (eval_dir / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    errors = read_json(eval_dir / "errors.json")
    assert len(errors) == min(32, metrics["errors"]) and all(e["actual"] != e["predicted"] for e in errors)


def test_second_repro_is_a_noop(built_project, env):
    proc = dvc(["repro"], built_project, env)
    assert "Running stage" not in proc.stdout
    assert "Data and pipelines are up to date." in proc.stdout
    assert "up to date" in dvc(["status"], built_project, env).stdout


def test_export_has_onnx_that_matches_and_a_model_card_with_lineage(built_project):
    export = built_project / "exports/mnist"
    card = read_json(export / "model_card.json")
    assert card["export"]["onnx_max_abs_diff"] <= 1e-4
    assert card["data"]["origin"]["kind"] == "mirror" and "Apache-2.0" in card["data"]["license"]
    assert card["data"]["files"]["t10k-labels-idx1-ubyte"]["sha256"] == \
        yaml.safe_load((built_project / "params.yaml").read_text())["mnist"]["download"]["files"][3]["sha256"]
    assert card["split"]["sizes"] == {"train": 1000, "validation": 200, "test": 400}
    assert card["contract"]["success"] is True
    assert card["params"] == yaml.safe_load((built_project / "params.yaml").read_text())["mnist"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=built_project, capture_output=True, text=True).stdout
    assert card["git"]["commit"] == head.strip()
    lock = yaml.safe_load((built_project / "dvc.lock").read_text())["stages"]
    assert set(card["dvc_lock"]) == {"download@mnist", "split@mnist", "tokenize@mnist", "train@mnist",
                                     "evaluate@mnist", "export@mnist"}
    train_outs = {o["path"]: o["md5"] for o in lock["train@mnist"]["outs"]}
    assert card["dvc_lock"]["train@mnist"]["outs"] == train_outs
    assert card["metrics"] == read_json(built_project / "metrics/mnist.json")
    assert card["training"]["num_threads"] == 2 and card["libraries"]["torch"].startswith("2.13.0")
    import torch

    assert card["training"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # what bytes depend on
    assert card["training"]["device"] == "cpu"
    md = (export / "model_card.md").read_text()
    assert "## Metrics" in md and card["git"]["commit"] in md and "Apache-2.0" in md
    assert {p.name for p in export.iterdir()} >= {"model.safetensors", "model.onnx", "model_card.md",
                                                  "model_card.json", "preprocessing.json", "config.json"}


def test_predict_cli_reads_pngs(built_project, env, tmp_path):
    images = read_idx(built_project / "data/raw/mnist/t10k-images-idx3-ubyte")
    paths = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(images[i]).save(path)
        paths.append(str(path))
    inverted = tmp_path / "dark-on-light.png"
    Image.fromarray(255 - images[0]).resize((56, 56)).save(inverted)
    cmd = [sys.executable, "-m", "s2sflow.cli", "predict", "--task", "mnist", "--root", str(built_project)]
    out = run(cmd + ["--json", *paths, str(inverted)], tmp_path, env).stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert [r["file"] for r in rows] == paths + [str(inverted)]
    for r in rows:
        assert r["label"] == int(np.argmax(r["probabilities"])) and abs(sum(r["probabilities"]) - 1) < 1e-4
    import torch

    from s2sflow.kinds.mnist.evaluate import load_classifier

    module, _ = load_classifier(built_project / "models/mnist", "mnist")
    x = (torch.from_numpy(images[:3].astype(np.float32) / 255) - 0.1307) / 0.3081
    expected = module.net(x.unsqueeze(1)).argmax(1).tolist()
    assert [r["label"] for r in rows[:3]] == expected
    assert rows[3]["label"] == rows[0]["label"]  # inverted + resized: auto-inverted back
    plain = run(cmd + paths[:1], tmp_path, env).stdout.strip().split("\t")
    assert plain[:2] == [paths[0], str(expected[0])]
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    proc = run(cmd + [str(bad)], tmp_path, env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"s2sflow: mnist: {bad}: not a readable image (UnidentifiedImageError); " \
                                  "give a PNG or JPEG"


def test_predict_refuses_image_bombs_and_broken_exports_in_one_line(built_project, env, tmp_path):
    """A 14000x14000 PNG (196 MP) is refused from its header; an export folder missing a file its card
    lists, or holding a truncated graph or weights file, is named in one line (exit 2, no traceback)."""
    bomb = tmp_path / "bomb.png"
    Image.new("L", (14000, 14000)).save(bomb)
    export = tmp_path / "export"
    shutil.copytree(built_project / "exports/mnist", export)
    cmd = [sys.executable, "-m", "s2sflow.cli", "predict", "--task", "mnist", "--export-dir", str(export)]

    def one_line(args, expected):
        proc = run(cmd + args, tmp_path, env, check=False)
        assert (proc.returncode, proc.stdout, proc.stderr.strip()) == (2, "", expected), proc.stderr

    one_line([str(bomb)], f"s2sflow: mnist: {bomb}: image of 14000x14000 = 196,000,000 pixels is over the limit of "
                          "89,478,485; resize it, or raise --max-pixels")
    small = tmp_path / "digit.png"
    Image.new("L", (30, 30)).save(small)
    one_line(["--max-pixels", "800", str(small)], f"s2sflow: mnist: {small}: image of 30x30 = 900 pixels is over the "
                                                   "limit of 800; resize it, or raise --max-pixels")
    assert run(cmd + [str(small)], tmp_path, env).stdout.startswith(f"{small}\t")
    redo = "re-create it with `dvc checkout exports/mnist` or `dvc repro -f export@mnist`"
    for name, damage, problem in [
        ("preprocessing.json", lambda p: p.unlink(), "is missing from the export folder"),
        ("preprocessing.json", lambda p: p.write_text('{"mean": 0.1'), "is corrupt: not valid JSON (JSONDecodeError)"),
        ("model.onnx", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
         "is corrupt: not a valid ONNX graph"),
        ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:-100]),
         "is corrupt: not a valid safetensors file"),
    ]:
        original = (export / name).read_bytes()
        damage(export / name)
        proc = run(cmd + [str(small)], tmp_path, env, check=False)
        assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"s2sflow: mnist: {export / name} {problem}"), proc.stderr
        assert proc.stderr.strip().endswith(redo) and proc.stderr.count("\n") == 1, proc.stderr
        (export / name).write_bytes(original)


def test_verify_finds_a_corrupt_cache_object_that_dvc_checkout_would_copy(built_project, env, tmp_path):
    project = _copy(built_project, tmp_path)
    cmd = [sys.executable, "-m", "s2sflow.cli", "verify", "--no-progress"]
    whole = run(cmd, project, env).stdout.strip()
    assert whole.startswith("s2sflow: verify: 6 stages, 5 outputs, ") and whole.endswith(": all whole"), whole
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    listing = json.loads(next((project / ".dvc/cache/files/md5").glob(
        "*/" + lock["train@mnist"]["outs"][0]["md5"][2:])).read_text())
    md5 = next(item["md5"] for item in listing if item["relpath"] == "model.safetensors")
    obj = project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes()[:-1] + b"\x00")  # one byte flipped: still a loadable model
    shutil.rmtree(project / "models/mnist")
    dvc(["checkout", "models/mnist"], project, env)  # DVC restores the corrupt bytes without a word
    assert (project / "models/mnist/model.safetensors").read_bytes() == obj.read_bytes()
    proc = run(cmd, project, env, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    uses = "train@mnist out models/mnist/model.safetensors; export@mnist out exports/mnist/model.safetensors"
    assert proc.stderr.strip() == (f"s2sflow: verify: {obj}: {uses}: content md5 "
                                   f"{hashlib.md5(obj.read_bytes()).hexdigest()} differs from its name; delete the "
                                   "object, then `dvc commit -f train@mnist export@mnist` if the workspace copy is "
                                   "intact, else `dvc repro -f -s train@mnist export@mnist` (or `dvc pull`)")
    assert proc.stdout.strip().endswith(": 1 corrupt")
    # the repair the line suggests: exports/mnist still holds a whole copy of the model
    obj.unlink()
    shutil.copy(project / "exports/mnist/model.safetensors", project / "models/mnist/model.safetensors")
    dvc(["commit", "-f", "train@mnist", "export@mnist"], project, env)
    assert run(cmd, project, env).stdout.strip() == whole
    assert obj.read_bytes() == (built_project / "models/mnist/model.safetensors").read_bytes()
    assert "up to date" in dvc(["status"], project, env).stdout


# stage, the outputs removed first (so the re-run must make them), what marks it mid-write. train is
# killed the same way in test_resume_e2e.py (both engines): it resumes from its checkpoint to the same
# model bytes, and its train_summary.json records the resume.
KILL_AT = [
    ("download", ["data/raw/mnist"], "data/raw/.s2sflow-tmp-*"),
    ("split", ["data/split/mnist"], "data/split/.s2sflow-tmp-*"),
    ("tokenize", ["data/tokenized/mnist"], "data/tokenized/.s2sflow-tmp-*"),
    ("evaluate", ["metrics/mnist.json", "reports/mnist/eval"], "reports/mnist/.s2sflow-tmp-*"),
    ("export", ["exports/mnist"], "exports/.s2sflow-tmp-*"),
]


@pytest.mark.parametrize("stage, outputs, mark", KILL_AT, ids=[k[0] for k in KILL_AT])
def test_sigkill_mid_stage_then_rerun_gives_the_uninterrupted_outputs(built_project, env, tmp_path, stage, outputs,
                                                                      mark):
    """SIGKILL `dvc repro -f -s <stage>@mnist` (DVC and the stage, the whole process group) while the
    stage is writing; running it again must leave outputs byte-identical to the uninterrupted build's (the
    same md5 in dvc.lock), no temporary folder behind, and the pipeline up to date."""
    project = _copy(built_project, tmp_path)
    for _attempt in range(5):  # a tiny stage can write and rename its temporary between two polls: try again
        for out in outputs:
            target = project / out
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-f", "-s", f"{stage}@mnist"], cwd=project,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while not list(project.glob(mark)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            break
    assert proc.poll() is None, f"{stage} ended 5 times before anything matched {mark}: the kill would test nothing"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not all((project / out).exists() for out in outputs) or stage == "train"
    ran = dvc(["repro", "-f", "-s", f"{stage}@mnist"], project, env).stdout  # -f: run it, not restore it
    assert f"Running stage '{stage}@mnist'" in ran
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    built = yaml.safe_load((built_project / "dvc.lock").read_text())["stages"]
    changed = {f"{name} {out['path']}": (out.get("md5"), old.get("md5"))
               for name in built for out, old in zip(lock[name].get("outs", []), built[name].get("outs", []))
               if out != old}
    assert not changed and lock == built, changed
    assert not [p for p in project.rglob(".s2sflow-tmp-*") if ".dvc" not in p.parts]
    assert "up to date" in dvc(["status"], project, env).stdout


def _set_params(project, **train):
    params = yaml.safe_load((project / "params.yaml").read_text())
    for key, value in train.items():
        node = params["mnist"]
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


BAD_PARAMS = [  # the params rows of the fault table, then two more
    ({"train.epochs": -1, "train.trainer.limit_train_batches": 2},
     "mnist.train.epochs: -1 is out of range; allowed: >= 1"),
    ({"train.optimizer.name": "adamm"},
     "mnist.train.optimizer.name: 'adamm' is unknown; allowed: one of adam, adamw, sgd, adadelta"),
    ({"train.epochs": 0}, "mnist.train.epochs: 0 is out of range; allowed: >= 1"),
    ({"train.batch_size": 0}, "mnist.train.batch_size: 0 is out of range; allowed: >= 1"),
    ({"train.optimizer.lr": -1}, "mnist.train.optimizer.lr: -1 is out of range; allowed: > 0"),
    ({"split.validation_size": 0}, "mnist.split.validation_size: 0 is out of range; allowed: >= 1"),
    ({"export.tolerance": 0}, "mnist.export.tolerance: 0 is out of range; allowed: > 0"),
]


def test_bad_params_stop_the_stage_in_one_line_and_delete_nothing(built_project, env, tmp_path):
    """One line naming key, value and range; exit 2; the model and a resumable checkpoint of an
    interrupted run left as they were. The first two cases run the stage script; the rest call the
    same run_stage in this process (what the script runs, without its start-up time)."""
    from s2sflow.core.errors import S2SFlowError
    from s2sflow.core.stages import run_stage

    project = _copy(built_project, tmp_path)
    original = (project / "params.yaml").read_text()
    checkpoint = project / "checkpoints/mnist/0123456789abcdef/last.ckpt"  # an interrupted run's
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"checkpoint")
    before = {p: p.read_bytes() for p in (project / "models/mnist").iterdir()}
    for n, (edit, expected) in enumerate(BAD_PARAMS):
        (project / "params.yaml").write_text(original)
        _set_params(project, **edit)
        stage = next(iter(edit)).split(".")[0]
        if n < 2:
            proc = run(["sh", "stages/py", "-m", f"stages.{stage}", "--task", "mnist"], project, env, check=False)
            assert (proc.returncode, proc.stderr.strip()) == (2, f"s2sflow: mnist: params.yaml: {expected}"), \
                proc.stderr
        else:
            with pytest.raises(S2SFlowError) as err:
                run_stage(stage, "mnist", project, progress=False)
            err.value.task = err.value.task or "mnist"
            assert err.value.line() == f"s2sflow: mnist: params.yaml: {expected}"
        assert checkpoint.read_bytes() == b"checkpoint"
        assert {p: p.read_bytes() for p in (project / "models/mnist").iterdir()} == before


def test_a_second_run_of_the_task_stops_and_killed_runs_temporaries_go(built_project, env, tmp_path):
    """While a stage of a task runs, a second direct run of one stops with one line (exit 75) and deletes
    nothing; once the first is killed, the next stage of any task removes what it left, and leaves a live
    run's temporaries alone."""
    project = _copy(built_project, tmp_path)
    first = subprocess.Popen(["sh", "stages/py", "-m", "stages.train", "--task", "mnist"], cwd=project, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    lock = project / ".s2sflow/locks/mnist.lock"
    deadline = time.monotonic() + 60
    while not (lock.is_file() and lock.read_text()) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        second = run(["sh", "stages/py", "-m", "stages.tokenize", "--task", "mnist"], project, env, check=False)
        assert first.poll() is None, "the first run ended before the second started"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert second.returncode == 75 and second.stderr.strip() == (
        f"s2sflow: mnist: another stage of this task is running (train@mnist, pid {lock.read_text().split()[-1]}); "
        "wait for it to end, or stop it"), second.stderr
    killed = [project / "data/split/.s2sflow-tmp-mnist-ab12cd34", project / "models/.s2sflow-tmp-mnist-old",
              project / "metrics/.s2sflow-tmp-mnist.json-zz99yy88"]
    for path in killed:
        path.mkdir(parents=True) if "json" not in path.name else path.write_text("{")
    other = project / "data/split/.s2sflow-tmp-mnist-x-ab12cd34"  # task mnist-x, whose stage is running
    other.mkdir()
    (project / ".s2sflow/locks").mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
                               str(project / ".s2sflow/locks/mnist-x.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["pipeline"]["tasks"]["mnist-x"] = "mnist"
        params["mnist-x"] = params["mnist"]
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run(["sh", "stages/py", "-m", "stages.download", "--task", "mnist"], project, env)  # any stage
    finally:
        holder.kill()
        holder.wait()
    assert not any(p.exists() for p in killed) and other.is_dir()


def test_param_change_reruns_only_that_tasks_dependent_stages(built_project, env, tmp_path):
    project = _copy(built_project, tmp_path)
    proc = dvc(["exp", "run", "-S", "mnist.train.optimizer.lr=0.5", "-S", "mnist.train.scheduler.max_lr=0.5"],
               project, env)
    ran = [line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["train@mnist", "evaluate@mnist", "export@mnist"]
    diff = json.loads(dvc(["params", "diff", "--json"], project, env).stdout)
    changed = diff["params.yaml"]["mnist.train.optimizer.lr"]
    assert (changed["old"], changed["new"]) == (0.003, 0.5)


def test_same_seed_gives_byte_identical_metrics(built_project, env, tmp_path):
    project = _copy(built_project, tmp_path)
    before = (project / "metrics/mnist.json").read_bytes()
    model_before = (project / "models/mnist/model.safetensors").read_bytes()
    dvc(["repro", "-f", "-s", "train@mnist"], project, env)
    dvc(["repro", "-f", "-s", "evaluate@mnist"], project, env)
    assert (project / "models/mnist/model.safetensors").read_bytes() == model_before
    assert (project / "metrics/mnist.json").read_bytes() == before


def test_each_stage_imports_only_its_declared_code_and_the_card_equals_the_lock(built_project):
    assert_imports_are_declared(built_project, ["mnist"])
    assert_card_matches_lock(built_project, "mnist")


def test_an_edit_stales_exactly_the_tasks_of_its_kind(built_project, env, tmp_path):
    assert_edits_stale_only_their_kind(built_project, tmp_path, env, {
        "s2sflow/kinds/mnist/plain.py": ["mnist"], "s2sflow/core/lineage.py": ["mnist"],
        "s2sflow/kinds/text/model.py": [], "s2sflow/kinds/seq2seq/speakers.py": [],
        "s2sflow/kinds/captioning/vision.py": []})


def test_two_clones_at_different_paths_get_the_same_download_and_split_hashes(tiny_mirror, tmp_path):
    locks = []
    for where in ("a", "b/deeper/still"):
        mirror = tmp_path / where / "mirror"
        shutil.copytree(tiny_mirror, mirror)
        project = make_project(tmp_path / where / "project", mirror)
        dvc(["repro", "split@mnist"], project, project_env(mirror))
        locks.append(yaml.safe_load((project / "dvc.lock").read_text())["stages"])
    for stage in ("download@mnist", "split@mnist"):
        assert locks[0][stage]["outs"] == locks[1][stage]["outs"], stage
