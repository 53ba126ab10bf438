"""Atomic outputs: a stage writes into a temporary sibling and renames it into place, so a failed
run leaves the previous output (or nothing), never a half-written one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".s2sflow-tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes, read in chunks (``md5`` is what DVC records)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def sha256_file(path: str | Path) -> str:
    return file_digest(path, "sha256")


def stale_temps(target: Path) -> list[Path]:
    """The temporaries ``atomic_dir`` / ``atomic_write_bytes`` made for ``target`` (``-old`` included),
    matched exactly: those of ``mnist-x`` are not ``mnist``'s."""
    if not target.parent.is_dir():
        return []
    pattern = re.compile(re.escape(f"{TMP_MARK}{target.name}-") + r"([a-z0-9_]{8}|old)")
    return sorted(p for p in target.parent.iterdir() if pattern.fullmatch(p.name))


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _clean_stale(target: Path) -> None:
    """Remove temporaries that a killed run left beside ``target`` (the caller holds the task's lock)."""
    for stale in stale_temps(target):
        remove(stale)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_MARK}{target.name}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual permissions
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f"{TMP_MARK}{target.name}-old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_MARK}{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(target: str | Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def dumps_json(obj: object) -> str:
    """Stable JSON (sorted keys, fixed float repr) so equal results give equal bytes."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_json(target: str | Path, obj: object) -> None:
    atomic_write_text(target, dumps_json(obj))


def read_json(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def trim_live_plots(live_dir: str | Path, last_step: int) -> int:
    """Drop the rows logged after a checkpoint from DVCLive's curves (``<live_dir>/plots/metrics/**.tsv``)
    before a run resumes from it: a killed run may have logged steps past its last checkpoint, and
    the resumed run logs them again. Keeps rows whose ``step`` is at most ``last_step``; returns how
    many rows were dropped. Each file is rewritten through a temp file."""
    dropped = 0
    folder = Path(live_dir) / "plots" / "metrics"
    for tsv in sorted(folder.rglob("*.tsv")) if folder.is_dir() else []:
        lines = tsv.read_text().splitlines(keepends=True)
        if not lines:
            continue
        head, rows = lines[0], lines[1:]
        if head.split("\t")[0].strip() != "step":
            continue
        kept = [r for r in rows if not r.strip() or int(float(r.split("\t")[0])) <= last_step]
        if len(kept) != len(rows):
            dropped += len(rows) - len(kept)
            atomic_write_text(tsv, head + "".join(kept))
    return dropped
