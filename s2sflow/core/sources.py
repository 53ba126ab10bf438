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

Every file name stays inside its source folder and inside ``data/raw/<task>/`` (no absolute name, no
``..``, no symlink out of the folder): params must not be able to read or write anywhere else.
``source.json`` records where each file came from relative to its source (``mirror:mnist/x.gz``,
``folder:x.txt``, a URL without credentials or query), so clones at different paths hash the same.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.metadata
import io
import os
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from s2sflow.core.errors import DataUnavailableError, S2SFlowError
from s2sflow.core.fsutil import atomic_dir, sha256_file, write_json

MIRROR_ENV = "S2SFLOW_DATA_MIRROR"
URL_SCHEMES = ("https", "http")  # what ``download.url_schemes`` may allow: never file:, ftp: or data:


@dataclass(frozen=True)
class Limits:
    """``download.url_schemes``, ``url_timeout_s`` and ``max_file_bytes`` (a file's bytes as fetched and
    decompressed: a gzip bomb stops there too)."""

    url_schemes: tuple[str, ...] = URL_SCHEMES
    url_timeout_s: float = 30.0
    max_file_bytes: int = 4 * 1024**3


class SourceFailed(Exception):
    """This source cannot supply the data; the next one may."""


@dataclass(frozen=True)
class FileSpec:
    name: str
    sha256: str | None
    entry: str = "files"  # where params named it, for errors: files, checksums <list> line <n>, globs '<pattern>'


CONFINED = "(no absolute path, no '..', no symlink out of it)"


def _outside(name: str) -> bool:
    """True for a name that could point outside the folder it is joined to (absolute, ``..``, empty)."""
    path = PurePosixPath(name)
    return path.is_absolute() or ".." in path.parts or not path.parts


def _check_names(files: list[FileSpec], task: str) -> None:
    """Refuse, before anything is read or written, a name that would leave its source folder or
    ``data/raw/<task>/``: a name is both where the file is read and where it is written."""
    for spec in files:
        if not isinstance(spec.name, str) or _outside(spec.name):
            raise S2SFlowError(f"params.yaml: {task}.download.{spec.entry} '{spec.name}': a file name must stay "
                               f"inside its source folder {CONFINED}", task)


def public_url(url: str) -> str:
    """``url`` without user:password@, query and fragment: what may be recorded in ``source.json`` or
    shown in a message (a query often holds a token too)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _scrub(text: str, url: str) -> str:
    """``text`` (an error's reason, which may quote the URL) with ``url``'s credentials removed."""
    userinfo = urllib.parse.urlsplit(url).netloc.rpartition("@")[0]
    text = text.replace(url, public_url(url))
    if not userinfo:
        return text
    password = userinfo.partition(":")[2]  # http.client quotes it alone: "nonnumeric port: 'pw@host'"
    text = text.replace(userinfo + "@", "")
    return text.replace(password, "***") if password else text


def _too_big(origin: str, size: str, limits: Limits) -> S2SFlowError:
    return S2SFlowError(f"{origin}: {size} over download.max_file_bytes ({limits.max_file_bytes:,}); raise it in "
                        f"params.yaml if the file is right")


def _decompress(raw: bytes, origin: str, limits: Limits = Limits()) -> bytes:
    if origin.endswith(".gz"):
        out, rest = io.BytesIO(), raw
        try:
            while rest:  # gzip members, one after another (as gzip.decompress reads them)
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out.write(inflater.decompress(rest, limits.max_file_bytes + 1 - out.tell()))
                if out.tell() > limits.max_file_bytes:
                    raise _too_big(origin, "decompressed, more than", limits)
                if not inflater.eof:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                rest = inflater.unused_data.lstrip(b"\x00")  # (padding after a member, as gzip allows)
            return out.getvalue()
        except (EOFError, OSError, zlib.error) as err:
            raise S2SFlowError(f"{origin}: truncated or corrupt gzip file ({err})") from None
    return raw


# ---- sources ----

def _locate(folder: Path, spec: FileSpec, task: str, hard: bool) -> Path:
    """The file of ``folder`` that holds ``spec`` (``<name>.gz`` first); one that resolves outside the
    folder (a symlink out of it) is refused: params choose the name, not what it may reach."""
    candidates = [folder / f"{spec.name}.gz", folder / spec.name]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        msg = (f"{candidates[0]}: file not found in the data mirror; put {spec.name}(.gz) there, "
               f"or unset {MIRROR_ENV} to use the other sources")
        if hard:  # still no fallback; exit 3 lets the pipeline report the task as skipped
            raise DataUnavailableError(msg)
        raise SourceFailed(msg)
    if not found.resolve().is_relative_to(folder.resolve()):
        raise S2SFlowError(f"params.yaml: {task}.download.{spec.entry} '{spec.name}': {found} leads to "
                           f"{found.resolve()}; a file name must stay inside its source folder {CONFINED}", task)
    return found


def _from_folder(folder: Path, files: list[FileSpec], hard: bool, label: str, task: str,
                 limits: Limits = Limits()) -> tuple[dict[str, bytes], dict[str, str], dict[str, str]]:
    """Data, local paths (for messages) and origins (``<label><path as found>``, for ``source.json``).
    Every file is located and checked (inside the folder, within ``max_file_bytes``) before the first
    one is read."""
    found = {spec.name: _locate(folder, spec, task, hard) for spec in files}
    for path in found.values():
        if path.stat().st_size > limits.max_file_bytes:
            raise _too_big(str(path), f"{path.stat().st_size:,} bytes,", limits)
    out = {name: _decompress(path.read_bytes(), str(path), limits) for name, path in found.items()}
    origins = {name: label + path.relative_to(folder).as_posix() for name, path in found.items()}
    return out, {name: str(path) for name, path in found.items()}, origins


def _from_url(template: str, files: list[FileSpec], progress: bool,
              limits: Limits = Limits()) -> tuple[dict[str, bytes], dict[str, str], dict[str, str]]:
    """Data and the URLs without credentials (for messages and ``source.json`` alike)."""
    out, origins = {}, {}
    for spec in files:
        url = template.format(name=spec.name)
        shown = public_url(url)
        try:
            with urllib.request.urlopen(url, timeout=limits.url_timeout_s) as response:
                raw = _read_with_progress(response, spec.name, shown, progress, limits)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:  # InvalidURL too
            reason = getattr(err, "reason", err)
            raise SourceFailed(f"{shown}: {_scrub(str(reason), url)}") from None
        out[spec.name] = _decompress(raw, shown, limits)
        origins[spec.name] = shown
    return out, origins, origins


def _read_with_progress(response, name: str, shown: str, progress: bool, limits: Limits = Limits()) -> bytes:
    """The response body, read in blocks with a progress bar, stopped at ``max_file_bytes``."""
    total = int(response.headers.get("Content-Length") or 0) or None
    if total is not None and total > limits.max_file_bytes:
        raise _too_big(shown, f"{total:,} bytes (Content-Length),", limits)
    from tqdm import tqdm

    buf = io.BytesIO()
    with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
        for block in iter(lambda: response.read(1 << 16), b""):
            buf.write(block)
            bar.update(len(block))
            if buf.tell() > limits.max_file_bytes:
                raise _too_big(shown, "more than", limits)
    return buf.getvalue()


def _from_package(spec: dict, files: list[FileSpec],
                  readers: dict) -> tuple[dict[str, bytes], dict[str, str], dict[str, str]]:
    package = spec["package"]
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise SourceFailed(f"package {package} is not installed (pip install {package}=={spec.get('version', '')})"
                           ) from None
    if spec.get("version") and dist.version != str(spec["version"]):
        raise SourceFailed(f"package {package} is version {dist.version}, expected {spec['version']}")
    member = Path(dist.locate_file(spec["member"]))
    if not member.is_file():
        raise SourceFailed(f"package {package} {dist.version} has no {spec['member']}")
    if spec.get("sha256") and sha256_file(member) != spec["sha256"]:
        raise SourceFailed(f"package {package} {dist.version}: {spec['member']}: sha256 differs from {spec['sha256']}")
    if spec.get("reader") not in readers:
        raise SourceFailed(f"package {package}: reader '{spec.get('reader')}' is unknown (this kind has: "
                           f"{', '.join(readers) or 'none'})")
    data = readers[spec["reader"]](member)
    missing = [f.name for f in files if f.name not in data]
    if missing:
        raise SourceFailed(f"package {package} does not provide {', '.join(missing)}")
    origins = {f.name: f"pypi:{package}=={dist.version}/{spec['member']}" for f in files}
    return {f.name: data[f.name] for f in files}, origins, origins


def _verify(name: str, data: bytes, origin: str, spec: FileSpec, check: Callable | None) -> None:
    if check is not None:
        check(name, data, origin)
    actual = hashlib.sha256(data).hexdigest()
    if spec.sha256 is not None and actual != spec.sha256:
        raise S2SFlowError(f"{origin}: sha256 of the {'decompressed ' if origin.endswith('.gz') else ''}data is "
                           f"{actual}, expected {spec.sha256} (params.yaml); the file differs from the published one")


def read_checksums(path: Path, task: str, root: Path | None = None) -> list[FileSpec]:
    """The files a ``sha256sum``-format list names, with their hashes; a bad line is one clear error that
    never quotes the file's content. With ``root``: the list must lie inside it (``path`` relative)."""
    if root is not None:
        name = str(path)
        path = Path(root) / path
        if _outside(name) or not path.resolve().is_relative_to(Path(root).resolve()):
            raise S2SFlowError(f"params.yaml: {task}.download.checksums '{name}': the list must be a file inside the "
                               f"project {CONFINED}", task)
    if not path.is_file():
        raise S2SFlowError(f"params.yaml: {task}.download.checksums {path}: not found; give a sha256sum-format list "
                           f"(`<sha256>  <name>` per line) relative to the project root", task)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name.strip() or any(c not in "0123456789abcdef" for c in digest):
            raise S2SFlowError(f"{path} line {n}: expected `<64 hex digits>  <file name>` (two spaces between)", task)
        out.append(FileSpec(name.strip().removeprefix("*"), digest, f"checksums {path} line {n}"))
    return out


def _globbed(folder: Path, params: dict, task: str, files: list[FileSpec]) -> list[FileSpec]:
    """The files of ``folder`` matching ``download.globs`` that ``files`` does not name yet (sorted; a
    pattern matching nothing is an error)."""
    out, known = [], {f.name for f in files}
    for pattern in params.get("globs") or []:
        if not isinstance(pattern, str) or _outside(pattern):
            raise S2SFlowError(f"params.yaml: {task}.download.globs '{pattern}': a pattern must stay inside its "
                               f"source folder (no absolute path, no '..')", task)
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if not found:
            raise S2SFlowError(f"params.yaml: {task}.download.globs '{pattern}' matches no file in {folder}", task)
        out += [FileSpec(name, None, f"globs '{pattern}' match") for name in
                (p.relative_to(folder).as_posix() for p in found) if name not in known]
        known.update(f.name for f in out)
    return out


def _mirror_folder(mirror_root: str, sources: list[dict], task: str) -> tuple[Path, str]:
    """The task's folder under ``$S2SFLOW_DATA_MIRROR`` and its ``source.json`` label (``mirror:<sub>/``)."""
    root = Path(mirror_root)
    if not root.is_dir():
        raise S2SFlowError(f"{MIRROR_ENV}={mirror_root}: folder does not exist; point it at a folder laid out "
                           f"like shared/data, or unset it to download from the sources in params.yaml", task)
    mirrors = [s for s in sources if "mirror" in s]
    if not mirrors:
        raise S2SFlowError(f"params.yaml: {task}.download.sources has no mirror entry, but {MIRROR_ENV} is set",
                           task)
    sub = str(mirrors[0]["mirror"])
    if _outside(sub):
        raise S2SFlowError(f"params.yaml: {task}.download.sources mirror '{sub}': a mirror folder must stay inside "
                           f"{MIRROR_ENV} (no absolute path, no '..')", task)
    return root / sub, f"mirror:{PurePosixPath(sub).as_posix()}/"


def _write_inside(tmp: Path, name: str, data: bytes, task: str) -> None:
    """Write one file under ``tmp``; a target outside it is refused whatever the checks before missed
    (defence in depth: a name is never allowed to become a write anywhere else)."""
    target = tmp / name
    inside = tmp.resolve()
    if target.resolve() == inside or not target.resolve().is_relative_to(inside):
        raise S2SFlowError(f"params.yaml: {task}.download '{name}': would be written outside data/raw/{task}; "
                           f"a file name must stay inside its source folder {CONFINED}", task)
    target.parent.mkdir(parents=True, exist_ok=True)  # names may hold folders (train/x.txt)
    target.write_bytes(data)


def download(task: str, params: dict, out_dir: str | Path, progress: bool = True, root: str | Path = ".",
             content_checks: dict[str, Callable[[str, bytes, str], None]] | None = None,
             package_readers: dict[str, Callable[[Path], dict[str, bytes]]] | None = None,
             limits: Limits = Limits()) -> dict:
    """Fetch every file of ``task`` into ``out_dir`` (atomically) and return the ``source.json`` record.
    ``content_checks`` / ``package_readers``: the task kind's, by the names params use (``check``,
    a package source's ``reader``)."""
    files = [FileSpec(f["name"], f.get("sha256")) for f in params["files"]]
    if params.get("checksums"):
        files += read_checksums(Path(params["checksums"]), task, root=Path(root))
    _check_names(files, task)
    sources = params["sources"]
    for source in sources:  # before anything is contacted
        scheme = urllib.parse.urlsplit(str(source.get("url", "https:"))).scheme.lower()
        if scheme not in limits.url_schemes:
            raise S2SFlowError(f"params.yaml: {task}.download.sources url {public_url(str(source['url']))}: scheme "
                               f"'{scheme}' is not allowed (download.url_schemes: {', '.join(limits.url_schemes)})",
                               task)
    content_checks, package_readers = content_checks or {}, package_readers or {}
    if params.get("check") and params["check"] not in content_checks:
        raise S2SFlowError(f"params.yaml: {task}.download.check '{params['check']}' is unknown (this kind has: "
                           f"{', '.join(content_checks) or 'none'})", task)
    check = content_checks.get(params.get("check", ""))
    mirror_root = os.environ.get(MIRROR_ENV)
    tried: list[str] = []
    result = None

    folders = [s for s in sources if "folder" in s]
    if folders or mirror_root:
        if folders:
            folder = Path(folders[0]["folder"]).expanduser()
            folder = folder if folder.is_absolute() else Path(root) / folder
            if not folder.is_dir():
                raise S2SFlowError(f"params.yaml: {task}.download.sources folder {folder}: not a folder; point it at "
                                   f"the folder holding {', '.join(f.name for f in files)}", task)
            kind, label = "folder", "folder:"
        else:
            folder, label = _mirror_folder(mirror_root, sources, task)
            kind = "mirror"
        files += _globbed(folder, params, task, files)
        data, where, origins = _from_folder(folder, files, True, label, task, limits)
        for spec in files:
            _verify(spec.name, data[spec.name], where[spec.name], spec, check)
        result = (kind, data, origins)
    else:
        if params.get("globs"):
            raise S2SFlowError(f"params.yaml: {task}.download.globs needs a folder or mirror source (a URL or package "
                               f"cannot be listed); list the files in download.files instead", task)
        for source in sources:
            if "mirror" in source:
                continue
            try:
                if "url" in source:
                    data, where, origins = _from_url(source["url"], files, progress, limits)
                    kind = "url"
                elif "package" in source:
                    data, where, origins = _from_package(source, files, package_readers)
                    kind = "package"
                else:
                    raise S2SFlowError(f"params.yaml: {task}.download.sources: unknown source {source}", task)
                for spec in files:
                    _verify(spec.name, data[spec.name], where[spec.name], spec, check)
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
            _write_inside(tmp, spec.name, data[spec.name], task)
        write_json(tmp / "source.json", record)
    return record
