"""``s2sflow verify``: is every DVC cache object that ``dvc.lock`` names still whole?

DVC (3.x) trusts its cache: ``dvc checkout`` copies a corrupted object into the workspace without a
word (treeverse/dvc#5978; a ``dvc cache check`` is only planned, #9561). This re-hashes, for each
stage in ``dvc.lock``, every cached object of its outputs (a folder's ``.dir`` listing and each file
it lists) and compares the md5 with the object's name, the way ``git fsck`` checks a repository.
A corrupt object gets one line naming it, the stage and the file, and how to repair it; the exit
status is 1 when any object is corrupt. Objects that are absent (never committed, or dropped by
``dvc gc``) are counted, not failed: ``dvc status`` reports those."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import file_digest

MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")


@dataclass
class Report:
    stages: int = 0
    outputs: int = 0
    objects: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)


def _object(cache: Path, md5: str, where: str) -> Path:
    if not isinstance(md5, str) or not MD5.fullmatch(md5):  # dvc.lock is input: no path may leave the cache
        raise S2SFlowError(f"dvc.lock: {where}: md5 {md5!r} is not an md5 hash; restore dvc.lock from git")
    return cache / md5[:2] / md5[2:]


def _hash_ok(path: Path, md5: str, report: Report, bar) -> bool:
    """Whether the object at ``path`` hashes to ``md5`` (an absent object counts as not whole)."""
    if not path.is_file():
        return False
    size = path.stat().st_size
    report.objects += 1
    report.bytes += size
    bar.update(size)
    return file_digest(path, "md5") == md5.removesuffix(".dir")


def _lock_outputs(root: Path, stages: list[str] | None) -> tuple[Path, dict[str, list[tuple[str, str | None]]]]:
    """The md5 object folder and, per stage in dvc.lock, its cached outputs as (path, md5), read
    through DVC itself (dvc.yaml's templates, ``cache: false`` outputs left out)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    if not (root / "dvc.lock").is_file():
        raise S2SFlowError(f"{root / 'dvc.lock'} not found: nothing has run yet (`make run` or `dvc repro`)")
    try:
        with Repo(str(root)) as repo:
            cache = Path(repo.cache.local.path)
            outputs = {stage.addressing: [(str(out.def_path), out.hash_info.value) for out in stage.outs
                                          if out.use_cache]
                       for stage in repo.index.stages}
    except DvcException as err:
        raise S2SFlowError(f"{root}: DVC cannot read the project ({' '.join(str(err).split())})") from None
    unknown = [s for s in stages or [] if s not in outputs]
    if unknown:
        raise S2SFlowError(f"verify: no stage '{unknown[0]}' (stages: {', '.join(sorted(outputs)) or 'none'})")
    return cache, {name: outputs[name] for name in (stages or outputs)}  # dvc.yaml's order: upstream first


def verify(root: Path, stages: list[str] | None = None, progress: bool = True) -> Report:
    """Re-hash every cache object of the selected stages' outputs as ``dvc.lock`` records them; an
    object that several outputs share (a model file in ``models/`` and ``exports/``) is hashed once and
    reported once, naming every output that uses it."""
    from tqdm import tqdm

    cache, selected = _lock_outputs(root, stages)
    report = Report()
    refs: dict[Path, tuple[str, list[str], list[str]]] = {}  # object -> (md5, its uses, their stages)
    whole: dict[Path, bool] = {}

    def use(obj: Path, md5: str, label: str, stage: str) -> None:
        _, labels, names = refs.setdefault(obj, (md5, [], []))
        labels.append(label)
        if stage not in names:
            names.append(stage)

    with tqdm(unit="B", unit_scale=True, desc="verify", disable=not progress) as bar:
        for name, outs in selected.items():
            report.stages += 1
            for out_path, md5 in outs:
                if md5 is None:  # not run yet: nothing recorded
                    continue
                report.outputs += 1
                where = f"{name} out {out_path}"
                obj = _object(cache, md5, where)
                use(obj, md5, where, name)
                if not md5.endswith(".dir"):
                    continue
                if obj not in whole:
                    whole[obj] = _hash_ok(obj, md5, report, bar)
                if whole[obj]:  # a listing that hashes to its name: DVC wrote it
                    for item in json.loads(obj.read_text(encoding="utf-8")):
                        label = f"{where}/{item.get('relpath')}"
                        use(_object(cache, item.get("md5"), label), item["md5"], label, name)
        for obj, (md5, labels, names) in refs.items():
            if obj not in whole:
                whole[obj] = _hash_ok(obj, md5, report, bar)
            if whole[obj]:
                continue
            if not obj.is_file():
                report.missing.extend(labels)
                continue
            stages_ = " ".join(names)
            report.corrupt.append(f"{obj}: {'; '.join(labels)}: content md5 {file_digest(obj, 'md5')} differs from "
                                  f"its name; delete the object, then `dvc commit -f {stages_}` if the workspace "
                                  f"copy is intact, else `dvc repro -f -s {stages_}` (or `dvc pull`)")
    return report


def summary(report: Report) -> str:
    missing = f"; {len(report.missing)} not in the cache (see `dvc status`)" if report.missing else ""
    state = f"{len(report.corrupt)} corrupt" if report.corrupt else "all whole"
    return (f"s2sflow: verify: {report.stages} stages, {report.outputs} outputs, {report.objects:,} cache objects "
            f"({report.bytes / 1e6:,.1f} MB): {state}{missing}")
