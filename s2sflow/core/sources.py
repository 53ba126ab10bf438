"""The download stage: fetch a task's files from the first source that has them, check each file's
content and sha256, and write ``data/raw/<task>/`` plus ``source.json`` (origin, sha256, license).

Sources, in the order ``params.yaml`` lists them:

- ``mirror: <folder>``: a folder under ``$S2SFLOW_DATA_MIRROR`` laid out like ``../shared/data``.
  When the variable is set the mirror is the only source, and any problem with it is an error.
- ``url: https://host/path/{name}.gz``: a public URL per file (``.gz`` is decompressed).
- ``package: <pypi name>``: data shipped inside an installed Python package.
- ``folder: <path>``: your own files (absolute, or relative to the project root). A task with a
  folder source uses only it, mirror or not; ``sha256: null`` in ``files`` skips the hash check
  (the actual sha256 is still recorded in ``source.json``).

``checksums: <file>`` (relative to the project root) adds every file that a ``sha256sum``-format list
names (``<sha256>  <name>`` per line) to ``files``: thousands of images without a params entry each.
``globs: [images/*.jpg]`` adds every file of a folder or mirror source that matches, unhashed (your
own image folder).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


from s2sflow.core.errors import DataUnavailableError, S2SFlowError
from s2sflow.core.fsutil import atomic_dir, sha256_file, write_json

MIRROR_ENV = "S2SFLOW_DATA_MIRROR"
URL_TIMEOUT_S = 30


class SourceFailed(Exception):
    """This source cannot supply the data; the next one may."""


@dataclass(frozen=True)
class FileSpec:
    name: str
    sha256: str | None


def _decompress(raw: bytes, origin: str) -> bytes:
    if origin.endswith(".gz"):
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise S2SFlowError(f"{origin}: truncated or corrupt gzip file ({err})") from None
    return raw


# ---- sources ----

def _from_folder(folder: Path, files: list[FileSpec], hard: bool) -> tuple[dict[str, bytes], dict[str, str]]:
    out, origins = {}, {}
    for spec in files:
        candidates = [folder / f"{spec.name}.gz", folder / spec.name]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            msg = (f"{candidates[0]}: file not found in the data mirror; put {spec.name}(.gz) there, "
                   f"or unset {MIRROR_ENV} to use the other sources")
            if hard:  # still no fallback; exit 3 lets the pipeline report the task as skipped
                raise DataUnavailableError(msg)
            raise SourceFailed(msg)
        out[spec.name] = _decompress(found.read_bytes(), str(found))
        origins[spec.name] = str(found)
    return out, origins


def _from_url(template: str, files: list[FileSpec], progress: bool) -> tuple[dict[str, bytes], dict[str, str]]:
    out, origins = {}, {}
    for spec in files:
        url = template.format(name=spec.name)
        try:
            with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
                raw = _read_with_progress(response, spec.name, progress)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise SourceFailed(f"{url}: {reason}") from None
        out[spec.name] = _decompress(raw, url)
        origins[spec.name] = url
    return out, origins


def _read_with_progress(response, name: str, progress: bool) -> bytes:
    total = int(response.headers.get("Content-Length") or 0) or None
    from tqdm import tqdm

    buf = io.BytesIO()
    with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
        for block in iter(lambda: response.read(1 << 16), b""):
            buf.write(block)
            bar.update(len(block))
    return buf.getvalue()


def _from_package(spec: dict, files: list[FileSpec], readers: dict) -> tuple[dict[str, bytes], dict[str, str]]:
    package = spec["package"]
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise SourceFailed(f"package {package} is not installed (pip install {package}=={spec.get('version', '')})")
    if spec.get("version") and dist.version != str(spec["version"]):
        raise SourceFailed(f"package {package} is version {dist.version}, expected {spec['version']}")
    member = Path(dist.locate_file(spec["member"]))
    if not member.is_file():
        raise SourceFailed(f"package {package} {dist.version} has no {spec['member']}")
    if spec.get("sha256") and sha256_file(member) != spec["sha256"]:
        raise SourceFailed(f"{member}: sha256 differs from {spec['sha256']}")
    if spec.get("reader") not in readers:
        raise SourceFailed(f"package {package}: reader '{spec.get('reader')}' is unknown (this kind has: "
                           f"{', '.join(readers) or 'none'})")
    data = readers[spec["reader"]](member)
    missing = [f.name for f in files if f.name not in data]
    if missing:
        raise SourceFailed(f"package {package} does not provide {', '.join(missing)}")
    origin = f"pypi:{package}=={dist.version}/{spec['member']}"
    return {f.name: data[f.name] for f in files}, {f.name: origin for f in files}


def _verify(name: str, data: bytes, origin: str, spec: FileSpec, check: Callable | None) -> None:
    if check is not None:
        check(name, data, origin)
    actual = hashlib.sha256(data).hexdigest()
    if spec.sha256 is not None and actual != spec.sha256:
        raise S2SFlowError(f"{origin}: sha256 of the {'decompressed ' if origin.endswith('.gz') else ''}data is "
                           f"{actual}, expected {spec.sha256} (params.yaml); the file differs from the published one")


def read_checksums(path: Path, task: str) -> list[FileSpec]:
    """The files a ``sha256sum``-format list names, with their hashes; a bad line is one clear error."""
    if not path.is_file():
        raise S2SFlowError(f"params.yaml: {task}.download.checksums {path}: not found; give a sha256sum-format list "
                           f"(`<sha256>  <name>` per line) relative to the project root", task)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name.strip() or any(c not in "0123456789abcdef" for c in digest):
            raise S2SFlowError(f"{path} line {n}: expected `<64 hex digits>  <file name>`, got {line[:80]!r}", task)
        out.append(FileSpec(name.strip().removeprefix("*"), digest))
    return out


def _globbed(folder: Path, params: dict, task: str, files: list[FileSpec]) -> list[FileSpec]:
    """The files of ``folder`` matching ``download.globs`` that ``files`` does not name yet (sorted; a
    pattern matching nothing is an error)."""
    out, known = [], {f.name for f in files}
    for pattern in params.get("globs") or []:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if not found:
            raise S2SFlowError(f"params.yaml: {task}.download.globs '{pattern}' matches no file in {folder}", task)
        out += [FileSpec(name, None) for name in (p.relative_to(folder).as_posix() for p in found)
                if name not in known]
        known.update(f.name for f in out)
    return out


def download(task: str, params: dict, out_dir: str | Path, progress: bool = True, root: str | Path = ".",
             content_checks: dict[str, Callable[[str, bytes, str], None]] | None = None,
             package_readers: dict[str, Callable[[Path], dict[str, bytes]]] | None = None) -> dict:
    """Fetch every file of ``task`` into ``out_dir`` (atomically) and return the ``source.json`` record.
    ``content_checks`` / ``package_readers``: the task kind's, by the names params use (``check``,
    a package source's ``reader``)."""
    files = [FileSpec(f["name"], f.get("sha256")) for f in params["files"]]
    if params.get("checksums"):
        files += read_checksums(Path(root) / params["checksums"], task)
    sources = params["sources"]
    content_checks, package_readers = content_checks or {}, package_readers or {}
    if params.get("check") and params["check"] not in content_checks:
        raise S2SFlowError(f"params.yaml: {task}.download.check '{params['check']}' is unknown (this kind has: "
                           f"{', '.join(content_checks) or 'none'})", task)
    check = content_checks.get(params.get("check", ""))
    mirror_root = os.environ.get(MIRROR_ENV)
    tried: list[str] = []
    result = None

    folders = [s for s in sources if "folder" in s]
    if folders:
        folder = Path(folders[0]["folder"]).expanduser()
        folder = folder if folder.is_absolute() else Path(root) / folder
        if not folder.is_dir():
            raise S2SFlowError(f"params.yaml: {task}.download.sources folder {folder}: not a folder; point it at the "
                               f"folder holding {', '.join(f.name for f in files)}", task)
        files += _globbed(folder, params, task, files)
        data, origins = _from_folder(folder, files, hard=True)
        for spec in files:
            _verify(spec.name, data[spec.name], origins[spec.name], spec, check)
        result = ("folder", data, origins)
    elif mirror_root:
        root = Path(mirror_root)
        if not root.is_dir():
            raise S2SFlowError(f"{MIRROR_ENV}={mirror_root}: folder does not exist; point it at a folder laid out "
                               f"like shared/data, or unset it to download from the sources in params.yaml", task)
        mirrors = [s for s in sources if "mirror" in s]
        if not mirrors:
            raise S2SFlowError(f"params.yaml: {task}.download.sources has no mirror entry, but {MIRROR_ENV} is set",
                               task)
        files += _globbed(root / mirrors[0]["mirror"], params, task, files)
        data, origins = _from_folder(root / mirrors[0]["mirror"], files, hard=True)
        for spec in files:
            _verify(spec.name, data[spec.name], origins[spec.name], spec, check)
        result = ("mirror", data, origins)
    else:
        if params.get("globs"):
            raise S2SFlowError(f"params.yaml: {task}.download.globs needs a folder or mirror source (a URL or package "
                               f"cannot be listed); list the files in download.files instead", task)
        for source in sources:
            if "mirror" in source:
                continue
            try:
                if "url" in source:
                    data, origins = _from_url(source["url"], files, progress)
                    kind = "url"
                elif "package" in source:
                    data, origins = _from_package(source, files, package_readers)
                    kind = "package"
                else:
                    raise S2SFlowError(f"params.yaml: {task}.download.sources: unknown source {source}", task)
                for spec in files:
                    _verify(spec.name, data[spec.name], origins[spec.name], spec, check)
            except (SourceFailed, S2SFlowError) as err:
                if isinstance(err, S2SFlowError) and str(err).startswith("params.yaml"):
                    raise
                tried.append(str(err))
                continue
            result = (kind, data, origins)
            break
    if result is None:
        raise DataUnavailableError(
            f"no source could supply the data (tried: {'; '.join(tried) or 'nothing'}); set {MIRROR_ENV} to a folder "
            f"laid out like shared/data, connect to the internet, or install the packaged copy named in params.yaml",
            task)

    kind, data, origins = result
    record = {
        "task": task,
        "origin": {"kind": kind, "files": origins},
        "license": params.get("license", "unknown"),
        "files": {spec.name: {"sha256": hashlib.sha256(data[spec.name]).hexdigest(), "bytes": len(data[spec.name])}
                  for spec in files},
        "tried_before": tried,
    }
    with atomic_dir(out_dir) as tmp:
        for spec in files:
            (tmp / spec.name).parent.mkdir(parents=True, exist_ok=True)  # names may hold folders (train/x.txt)
            (tmp / spec.name).write_bytes(data[spec.name])
        write_json(tmp / "source.json", record)
    return record
