"""Download sources are confined: a file name or glob from params.yaml can neither read outside its
source folder nor write outside data/raw/<task>/ (one line, exit 2, nothing written anywhere); and
source.json records origins relative to the source, so clones at different paths hash the same."""

import functools
import gzip
import http.server
import shutil
import threading

import pytest
import yaml

from conftest import make_project, project_env, stage
from s2sflow.core.errors import DataUnavailableError, S2SFlowError
from s2sflow.core.fsutil import read_json
from s2sflow.core.sources import _scrub, _write_inside, download, public_url


def _edit_download(project, extra_files=(), **changes):
    """params.yaml's mnist.download with ``changes`` and ``extra_files`` (names, unhashed) added."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    download_params = params["mnist"]["download"]
    download_params.update(changes)
    download_params["files"] += [{"name": name, "sha256": None} for name in extra_files]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _own_folder(project, tiny_mirror, rel="own/a"):
    """The tiny MNIST files as your own folder inside the project (a ``folder:`` source)."""
    folder = project / rel
    folder.mkdir(parents=True)
    for path in (tiny_mirror / "mnist").glob("*.gz"):
        shutil.copy(path, folder / path.name)
    return folder


def _everything(root):
    """Every file under ``root`` with its bytes (compiled Python, git's files and stage locks aside)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not {"__pycache__", ".git", ".s2sflow"} & set(p.parts)}


def _expect_refused(project, env, root, entry):
    """The download stage refuses with one line naming ``entry``, exit 2, and writes nothing under ``root``."""
    before = _everything(root)
    proc = stage("download", project, env)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("s2sflow: mnist: ") and f"'{entry}'" in lines[0], lines[0]
    assert "must stay inside its source folder" in lines[0], lines[0]
    assert _everything(root) == before
    return lines[0]


@pytest.fixture
def downloaded(project, env):
    """The tiny project with a good data/raw/mnist (a refused download must keep it as it is)."""
    assert stage("download", project, env).returncode == 0
    return project


def test_a_file_name_with_dotdot_is_refused(downloaded, env, tiny_mirror, tmp_path):
    _own_folder(downloaded, tiny_mirror)  # own/a/../../stages/train.py is the project's own code
    name = "../../stages/train.py"
    _edit_download(downloaded, [name], check=None, sources=[{"folder": "own/a"}])
    line = _expect_refused(downloaded, env, tmp_path, name)
    assert "mnist.download.files" in line


def test_a_deeper_dotdot_name_is_refused_too(downloaded, env, tiny_mirror, tmp_path):
    _own_folder(downloaded, tiny_mirror, "own/a/b")
    _edit_download(downloaded, ["../../../stages/train.py"], check=None, sources=[{"folder": "own/a/b"}])
    _expect_refused(downloaded, env, tmp_path, "../../../stages/train.py")


def test_an_absolute_file_name_is_refused(downloaded, env, tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for the dataset\n")
    _edit_download(downloaded, [str(secret)], check=None)  # the mirror source: $S2SFLOW_DATA_MIRROR/mnist
    _expect_refused(downloaded, env, tmp_path, str(secret))


def test_a_glob_with_dotdot_is_refused(downloaded, env, tiny_mirror, tmp_path):
    _own_folder(downloaded, tiny_mirror)
    (downloaded / "own/note.txt").write_text("beside the folder, not in it\n")
    _edit_download(downloaded, check=None, sources=[{"folder": "own/a"}], globs=["../*.txt"])
    line = _expect_refused(downloaded, env, tmp_path, "../*.txt")
    assert "mnist.download.globs" in line


def test_a_symlink_out_of_the_source_folder_is_refused(downloaded, env, tiny_mirror, tmp_path):
    folder = _own_folder(downloaded, tiny_mirror)
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for the dataset\n")
    (folder / "link.txt").symlink_to(secret)
    _edit_download(downloaded, ["link.txt"], check=None, sources=[{"folder": "own/a"}])
    _expect_refused(downloaded, env, tmp_path, "link.txt")
    assert not (downloaded / "data/raw/mnist/link.txt").exists()


def test_a_glob_matching_a_symlink_out_of_the_folder_is_refused(tmp_path):
    own, secret = tmp_path / "own", tmp_path / "secret.txt"
    (own / "images").mkdir(parents=True)
    (own / "images/a.txt").write_text("a\n")
    secret.write_text("not for the dataset\n")
    (own / "images/b.txt").symlink_to(secret)
    params = {"files": [], "globs": ["images/*.txt"], "sources": [{"folder": str(own)}]}
    with pytest.raises(S2SFlowError, match=r"globs 'images/\*\.txt' match 'images/b\.txt': .*must stay inside"):
        download("captioning", params, tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists()


def test_names_are_refused_for_every_source_kind_before_anything_is_read(tmp_path, monkeypatch):
    """A name is also the output path, so URL sources and checksum lists are checked too."""
    monkeypatch.delenv("S2SFLOW_DATA_MIRROR", raising=False)
    url = {"url": "http://127.0.0.1:9/{name}.gz"}  # never contacted: the name is refused first
    for name in ("../x", "/etc/passwd", "a/../../x", ""):
        with pytest.raises(S2SFlowError, match=r"mnist\.download\.files '.*': a file name must stay inside"):
            download("mnist", {"files": [{"name": name, "sha256": None}], "sources": [url]}, tmp_path / "raw")
    listed = tmp_path / "list.sha256"
    listed.write_text(f"{'a' * 64}  images/ok.jpg\n{'b' * 64}  ../escape.jpg\n")
    with pytest.raises(S2SFlowError, match=r"checksums .*list\.sha256 line 2 '\.\./escape\.jpg': a file name"):
        download("mnist", {"files": [], "checksums": "list.sha256", "sources": [url]}, tmp_path / "raw", root=tmp_path)
    assert not (tmp_path / "raw").exists()


def test_names_with_sub_folders_still_work(tmp_path):
    own = tmp_path / "own"
    (own / "train").mkdir(parents=True)
    (own / "train/x.txt").write_text("x\n")
    (own / "top.txt.gz").write_bytes(gzip.compress(b"top\n", mtime=0))
    params = {"files": [{"name": "train/x.txt", "sha256": None}, {"name": "./top.txt", "sha256": None}],
              "sources": [{"folder": str(own)}]}
    record = download("mnist", params, tmp_path / "raw", progress=False)
    assert (tmp_path / "raw/train/x.txt").read_text() == "x\n" and (tmp_path / "raw/top.txt").read_text() == "top\n"
    assert record["origin"] == {"kind": "folder", "files": {"train/x.txt": "folder:train/x.txt",
                                                           "./top.txt": "folder:top.txt.gz"}}


def test_the_write_itself_cannot_leave_the_output_folder(tmp_path):
    (tmp_path / "out").mkdir()
    for name in ("../escape.txt", "/tmp/escape.txt", "."):
        with pytest.raises(S2SFlowError, match="would be written outside data/raw/mnist"):
            _write_inside(tmp_path / "out", name, b"x", "mnist")
    assert not (tmp_path / "escape.txt").exists()
    _write_inside(tmp_path / "out", "images/a.jpg", b"x", "mnist")
    assert (tmp_path / "out/images/a.jpg").read_bytes() == b"x"


def test_source_json_is_the_same_from_two_mirror_copies_at_different_paths(tmp_path, tiny_mirror):
    records = []
    for where in ("one/mirror", "two/deeper/elsewhere"):
        mirror = tmp_path / where
        shutil.copytree(tiny_mirror, mirror)
        project = make_project(tmp_path / where.replace("/", "-") / "project", mirror)
        proc = stage("download", project, project_env(mirror))
        assert proc.returncode == 0, proc.stderr
        records.append((project / "data/raw/mnist/source.json").read_bytes())
    assert records[0] == records[1]
    text = records[0].decode()
    assert str(tmp_path) not in text and '"/' not in text  # no absolute path at all
    assert read_json(project / "data/raw/mnist/source.json")["origin"]["files"] == {
        name: f"mirror:mnist/{name}.gz" for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def test_folder_origins_are_relative_to_the_folder(tmp_path):
    records = []
    for where in ("a/own", "b/c/own"):
        own = tmp_path / where
        (own / "images").mkdir(parents=True)
        (own / "images/x.jpg").write_bytes(b"jpeg")
        params = {"files": [], "globs": ["images/*.jpg"], "sources": [{"folder": str(own)}]}
        download("captioning", params, tmp_path / where / "raw", progress=False)
        records.append((tmp_path / where / "raw/source.json").read_bytes())
    assert records[0] == records[1] and str(tmp_path) not in records[0].decode()
    assert read_json(tmp_path / "a/own/raw/source.json")["origin"]["files"] == {"images/x.jpg": "folder:images/x.jpg"}


def test_public_url_drops_credentials_query_and_fragment():
    assert public_url("https://user:s3cret@host.example:8443/mnist/x.gz?token=t0ken#top") == \
        "https://host.example:8443/mnist/x.gz"
    assert public_url("https://token@host.example/x.gz") == "https://host.example/x.gz"
    assert public_url("https://host.example/a/b.gz") == "https://host.example/a/b.gz"
    url = "http://user:s3cret@127.0.0.1/x.gz"
    assert _scrub(f"{url}: nonnumeric port: 's3cret@127.0.0.1'", url) == \
        "http://127.0.0.1/x.gz: nonnumeric port: '***@127.0.0.1'"
    assert _scrub("Connection refused", "http://127.0.0.1/x.gz") == "Connection refused"


def test_no_message_shows_a_urls_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("S2SFLOW_DATA_MIRROR", raising=False)
    params = {"files": [{"name": "x.txt", "sha256": None}],
              "sources": [{"url": "http://user:s3cret@127.0.0.1/{name}.gz?token=t0ken"},  # http.client quotes it
                          {"url": "http://user:s3cret@127.0.0.1:notaport/{name}.gz"}]}
    with pytest.raises(DataUnavailableError) as err:
        download("mnist", params, tmp_path / "raw", progress=False)
    assert "s3cret" not in str(err.value) and "t0ken" not in str(err.value) and "user" not in str(err.value)
    assert "http://127.0.0.1/x.txt.gz" in str(err.value)
    for url in ("htp://user:s3cret@127.0.0.1/{name}.gz", "file:///etc/{name}", "ftp://127.0.0.1/{name}"):
        with pytest.raises(S2SFlowError, match=r"download\.sources url .*: scheme '\w+' is not allowed "
                                               r"\(download\.url_schemes: https, http\)") as err:
            download("mnist", {**params, "sources": [{"url": url}]}, tmp_path / "raw", progress=False)
        assert "s3cret" not in str(err.value) and not (tmp_path / "raw").exists()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request lines in the test output
        pass


def test_url_origins_are_recorded_without_credentials_or_query(tmp_path, monkeypatch):
    monkeypatch.delenv("S2SFLOW_DATA_MIRROR", raising=False)
    served = tmp_path / "served"
    served.mkdir()
    (served / "x.txt.gz").write_bytes(gzip.compress(b"x\n", mtime=0))
    handler = functools.partial(_QuietHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        params = {"files": [{"name": "x.txt", "sha256": None}],
                  "sources": [{"url": f"http://127.0.0.1:{port}/{{name}}.gz?token=t0ken#top"}]}
        try:
            record = download("mnist", params, tmp_path / "raw", progress=False)
        finally:
            server.shutdown()
    assert record["origin"] == {"kind": "url", "files": {"x.txt": f"http://127.0.0.1:{port}/x.txt.gz"}}
    assert (tmp_path / "raw/x.txt").read_bytes() == b"x\n" and "t0ken" not in (tmp_path / "raw/source.json").read_text()


def test_downloads_are_capped_and_checksum_lists_confined(tmp_path, monkeypatch):
    """``max_file_bytes`` stops a file as served (Content-Length) and as decompressed (a gzip bomb), and a
    ``checksums`` list outside the project is refused without reading it; a bad line is never quoted."""
    from s2sflow.core.sources import Limits

    monkeypatch.delenv("S2SFLOW_DATA_MIRROR", raising=False)
    served = tmp_path / "served"
    served.mkdir()
    (served / "big.bin.gz").write_bytes(gzip.compress(b"\0" * 2_000_000, mtime=0))  # 2 MB from ~2 KB
    limits = Limits(max_file_bytes=1_000_000)
    handler = functools.partial(_QuietHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/{{name}}.gz"
        try:
            with pytest.raises(S2SFlowError, match=r"big\.bin\.gz: decompressed, more than over download\.max_file_by"
                                                   r"tes \(1,000,000\); raise it in params\.yaml if the file is right"):
                download("mnist", {"files": [{"name": "big.bin", "sha256": None}], "sources": [{"url": url}]},
                         tmp_path / "raw", progress=False, limits=limits)
            with pytest.raises(S2SFlowError, match=r"big\.bin\.gz: \d[\d,]* bytes \(Content-Length\), over download"):
                download("mnist", {"files": [{"name": "big.bin", "sha256": None}], "sources": [{"url": url}]},
                         tmp_path / "raw", progress=False, limits=Limits(max_file_bytes=100))
        finally:
            server.shutdown()
    with pytest.raises(S2SFlowError, match=r"big\.bin\.gz: decompressed, more than over"):
        download("mnist", {"files": [{"name": "big.bin", "sha256": None}], "sources": [{"folder": str(served)}]},
                 tmp_path / "raw", progress=False, limits=limits)
    assert not (tmp_path / "raw").exists()
    secret = tmp_path / "secret.sha256"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "list.sha256").write_text("root:x:0:0:root:/root:/bin/bash\n")
    for name in (str(secret), "../secret.sha256"):
        with pytest.raises(S2SFlowError, match=r"checksums '.*secret\.sha256': the list must be a file inside the "
                                               r"project") as err:
            download("mnist", {"files": [], "checksums": name, "sources": [{"folder": str(served)}]},
                     project / "raw", progress=False, root=project)
        assert "root:x" not in str(err.value)
    with pytest.raises(S2SFlowError, match=r"list\.sha256 line 1: expected `<64 hex digits>  <file name>`") as err:
        download("mnist", {"files": [], "checksums": "list.sha256", "sources": [{"folder": str(served)}]},
                 project / "raw", progress=False, root=project)
    assert "root:x" not in str(err.value)
