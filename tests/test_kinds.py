"""The shape of the code: every kind is a package with the same stage modules, found through one
registry; no kind imports another; nothing outside the kinds branches on a kind's name; dvc.yaml has
one stage family; adding a kind needs no edit to dvc.yaml."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, project_files
from s2sflow.core.errors import S2SFlowError
from s2sflow.core.kind import STAGE_FUNCTIONS, available_kinds, get_kind
from s2sflow.core.params import STAGES

KINDS_DIR = REPO / "s2sflow" / "kinds"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_every_kind_is_a_package_with_the_same_stage_modules():
    kinds = available_kinds()
    assert kinds == ["captioning", "mnist", "seq2seq", "text"]
    for name in kinds:
        kind = get_kind(name)
        assert kind.name == name
        for stage in STAGE_FUNCTIONS:
            assert callable(kind.stage(stage)), f"{name}.{stage}"
        assert callable(kind.predictor())
        metric, goal = kind.headline({"shape": "classification"})
        assert isinstance(metric, str) and goal in ("max", "min")


def test_an_unknown_kind_is_one_line_and_imports_nothing():
    with pytest.raises(S2SFlowError, match=r"topic.kind 'os' is unknown \(available: captioning, mnist"):
        get_kind("os", "topic")
    with pytest.raises(S2SFlowError):
        get_kind("../core", "topic")


def test_no_kind_imports_another_kind():
    for name in available_kinds():
        for path in (KINDS_DIR / name).rglob("*.py"):
            foreign = [m for m in _imports(path) if m.startswith("s2sflow.kinds.")
                       and m.split(".")[2] not in (name,)]
            assert not foreign, f"{path.relative_to(REPO)} imports {foreign}"


def test_core_cli_flows_and_stages_never_import_or_name_a_kind():
    kinds = set(available_kinds())
    paths = [*(REPO / "s2sflow" / "core").rglob("*.py"), REPO / "s2sflow" / "cli.py",
             *(REPO / "flows").glob("*.py"), *(REPO / "stages").glob("*.py")]
    for path in paths:
        assert not [m for m in _imports(path) if m.startswith("s2sflow.kinds.")], path
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # `kind == "text"`, `kind in ("seq2seq", ...)`, {"mnist": ...} keys
            if isinstance(node, ast.Compare):
                named = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and c.value in kinds]
                assert not named, f"{path.relative_to(REPO)}:{node.lineno} compares with kind {named}"
            if isinstance(node, ast.Dict):
                named = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in kinds]
                assert not named, f"{path.relative_to(REPO)}:{node.lineno} keys by kind {named}"


def _stage_list(project: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=project,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def test_dvc_yaml_has_one_stage_family_for_every_task():
    tasks = yaml.safe_load((REPO / "params.yaml").read_text())["pipeline"]["tasks"]
    assert len(tasks) == 11 and set(tasks.values()) == set(available_kinds())
    names = _stage_list(REPO)
    assert len(names) == 66
    assert sorted(names) == sorted(f"{s}@{t}" for s in STAGES for t in tasks)


def test_adding_a_kind_is_a_package_and_a_params_section(tmp_path):
    """A copy of the mnist kind under another name, plus its task: dvc.yaml and the code are untouched."""
    project = tmp_path / "project"
    for rel in project_files():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, project / rel)
    new = project / "s2sflow/kinds/digits"
    shutil.copytree(project / "s2sflow/kinds/mnist", new)
    for path in new.rglob("*.py"):
        path.write_text(path.read_text().replace("s2sflow.kinds.mnist", "s2sflow.kinds.digits")
                        .replace('name="mnist"', 'name="digits"'))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["pipeline"]["tasks"]["digits"] = "digits"
    params["digits"] = params["mnist"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    names = _stage_list(project)
    assert {f"{s}@digits" for s in STAGES} <= set(names) and len(names) == 72
    out = subprocess.run([sys.executable, "-c", "from s2sflow.core.kind import get_kind; "
                          "print(get_kind('digits').stage('train').__module__)"], cwd=project,
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": str(project), "PATH": ""})
    assert out.stdout.strip() == "s2sflow.kinds.digits.train"


@pytest.mark.parametrize("stage,key", [("download", "glob"), ("split", "sed"), ("tokenize", "meen"),
                                       ("train", "epoch"), ("evaluate", "n_sample"), ("export", "tolerence")])
def test_a_misspelled_key_in_any_stage_is_one_line_naming_it(project, env, stage, key):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["mnist"][stage][key] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = subprocess.run(["sh", "stages/py", "-m", f"stages.{stage}", "--task", "mnist"], cwd=project, env=env,
                          capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"s2sflow: mnist: params.yaml: unknown key mnist.{stage}.{key}"), lines[0]
