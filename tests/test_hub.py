"""Presets found, published and downloaded (zoo.hub), against real servers on 127.0.0.1 that the tests start:
an HTTP server with Range support serving archives made by `zoo publish`, a small Hugging Face-compatible
server for hf://, and the wheel installed into a fresh virtual environment."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time

import pytest
from test_download import Server  # the Range-capable archive server of the downloader's tests

from zoo import hub
from zoo.data import download as dl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def zoo(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=env, cwd=cwd or REPO, timeout=300)


def make_preset(folder, weights=b"w" * 50_000, cer=None):
    """A preset folder as `zoo train` writes one (its files only: nothing here loads it)."""
    os.makedirs(os.path.join(folder, "saved_model", "variables"), exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"class_name": "HandwritingRecognizer" if cer is not None else "HandwritingPredictor", "config": {}}, f)
    meta = {"validation_split": "testset_v", "created": "2026-01-01", "evaluation": {"nll_nats_per_line": -500.123456, "split": "testset_v"}}
    if cer is not None:
        meta["evaluation"] = {"cer": cer, "wer": 0.5, "split": "testset_v"}
    with open(os.path.join(folder, "metadata.json"), "w") as f:
        json.dump(meta, f)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("# tiny\n\nA tiny test preset.\n\n| a | b |\n")
    with open(os.path.join(folder, "model.weights.h5"), "wb") as f:
        f.write(weights)
    with open(os.path.join(folder, "saved_model", "variables", "variables.index"), "wb") as f:
        f.write(b"index")
    return str(folder)


def published(tmp_path, name="tiny", **kwargs):
    """(archive bytes, registry entry) of a preset packed by `zoo publish` (the command line)."""
    src = make_preset(tmp_path / "src" / name, **kwargs)
    proc = zoo("publish", "--model", src, "--out", str(tmp_path / "release"))
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(proc.stdout)[name]
    return (tmp_path / "release" / f"{name}.tar.gz").read_bytes(), entry


@pytest.fixture
def server():
    s = Server({})
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private download cache and registry file for one test."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    registry = tmp_path / "registry.json"
    registry.write_text("{}")
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    return tmp_path / "cache", registry


def register(registry, name, entry):
    hub.add_to_registry(str(registry), name, entry)


# ---------------------------------------------------------------- publish and the registry


def test_publish_is_reproducible_and_its_entry_describes_the_files(tmp_path):
    data, entry = published(tmp_path)
    assert entry["archive"]["sha256"] == hashlib.sha256(data).hexdigest() and entry["archive"]["bytes"] == len(data)
    assert entry["kind"] == "prediction" and entry["description"] == "A tiny test preset."
    assert entry["metrics"] == {"nll_nats_per_line": -500.1235, "on": "testset_v"}
    assert set(entry["files"]) == {"config.json", "metadata.json", "README.md", "model.weights.h5", "saved_model/variables/variables.index"}
    assert entry["files"]["model.weights.h5"]["sha256"] == hashlib.sha256(b"w" * 50_000).hexdigest()
    assert entry["url"] is None
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert all(m.name == "tiny" or m.name.startswith("tiny/") for m in t.getmembers())
    time.sleep(1.1)  # a new second: the archive must not record times
    name, again = hub.publish(str(tmp_path / "src" / "tiny"), str(tmp_path / "again"))
    assert name == "tiny" and again["archive"]["sha256"] == entry["archive"]["sha256"]


def test_a_training_run_is_published_and_loaded_through_its_preset_folder(tmp_path):
    run = tmp_path / "myrun"
    make_preset(run / "preset", cer=0.2)
    assert hub.resolve(str(run)) == str(run / "preset")
    name, entry = hub.publish(str(run), str(tmp_path / "out"))
    assert name == "myrun" and entry["kind"] == "recognition" and entry["metrics"]["cer"] == 0.2
    (tmp_path / "notes").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no config.json, nor preset/config.json"):
        hub.resolve(str(tmp_path / "notes"))


def test_the_shipped_registry_names_every_checkout_preset_honestly():
    entries = hub.registry()
    for name in ("iam-synthesis", "iam-prediction", "ptb-char-small"):
        entry = entries[name]
        assert entry["kind"] and entry["metrics"] and entry["archive"]["sha256"] and entry["files"]["config.json"]["sha256"]
    # The default writer is the better of the two synthesis presets; both are listed.
    assert entries["iam-synthesis"]["metrics"]["nll_nats_per_line"] < entries["iam-synthesis-small"]["metrics"]["nll_nats_per_line"] < -1000
    for name, entry in entries.items():  # each entry describes the checkout's files as they are now (re-run publish after a change)
        folder = os.path.join(REPO, "saved_models", name)
        for path, f in entry["files"].items():
            assert os.path.getsize(os.path.join(folder, path)) == f["bytes"], f"{name}/{path}: run zoo publish --registry again"
    assert entries["ptb-char-small"]["metrics"]["bpc_static"] < 2.0
    for entry in entries.values():
        assert entry["url"] is None or entry["url"].startswith("https://")  # nothing hosted yet: said so, not faked


def test_an_unpublished_preset_says_so(cache, monkeypatch):
    monkeypatch.setattr(hub, "checkout_dir", lambda: "/nonexistent")
    monkeypatch.setattr(hub, "packaged_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="not published yet"):
        hub.resolve("ptb-char-small")
    with pytest.raises(FileNotFoundError, match="no preset 'no-such-thing'.*known: .*iam-synthesis"):
        hub.resolve("no-such-thing")


def test_resolution_order_checkout_packaged_cache(cache, monkeypatch, tmp_path):
    cache_root, _ = cache
    checkout, packaged = tmp_path / "checkout", tmp_path / "packaged"
    for root in (checkout, packaged, cache_root / "presets"):
        make_preset(root / "p")
    monkeypatch.setattr(hub, "checkout_dir", lambda: str(checkout))
    monkeypatch.setattr(hub, "packaged_dir", lambda: str(packaged))
    assert hub.resolve("p") == str(checkout / "p")
    shutil.rmtree(checkout / "p")
    assert hub.resolve("p") == str(packaged / "p")
    shutil.rmtree(packaged / "p")
    assert hub.resolve("p") == str(cache_root / "presets" / "p")
    assert [r["local"] for r in hub.listing() if r["name"] == "p"] == [["cache"]]
    monkeypatch.setattr(hub, "checkout_dir", lambda: os.path.join(REPO, "saved_models"))
    assert hub.resolve("iam-synthesis") == os.path.join(REPO, "saved_models", "iam-synthesis")


# ---------------------------------------------------------------- downloads over HTTP


def test_registry_download_verifies_and_is_reused_offline(server, cache, tmp_path):
    cache_root, registry = cache
    data, entry = published(tmp_path)
    server.files["/r/tiny.tar.gz"] = data
    register(registry, "tiny", {**entry, "url": server.url + "/r/tiny.tar.gz"})
    folder = hub.resolve("tiny", progress=False)
    assert folder == str(cache_root / "presets" / "tiny")
    assert (tmp_path / "cache" / "presets" / "tiny" / "model.weights.h5").read_bytes() == b"w" * 50_000
    assert os.path.isfile(os.path.join(folder, "saved_model", "variables", "variables.index"))
    assert os.listdir(cache_root / "presets" / "archives") == []  # unpacked and checked: no second copy
    row = next(r for r in hub.listing() if r["name"] == "tiny")
    assert row["local"] == ["cache"] and row["metrics"]["nll_nats_per_line"] == -500.1235
    n = len(server.requests)
    server.close()  # offline from here on
    assert hub.resolve("tiny") == folder
    assert len(server.requests) == n


def test_a_bad_checksum_deletes_the_download_and_says_so(server, cache, tmp_path):
    cache_root, registry = cache
    data, entry = published(tmp_path)
    server.files["/tiny.tar.gz"] = data
    register(registry, "tiny", {**entry, "url": server.url + "/tiny.tar.gz", "archive": {**entry["archive"], "sha256": "0" * 64}})
    with pytest.raises(ValueError, match="does not match the expected 0000.*deleted"):
        hub.resolve("tiny", progress=False)
    assert os.listdir(cache_root / "presets" / "archives") == []  # no half file, no final file
    assert not (cache_root / "presets" / "tiny").exists()


def test_an_interrupted_download_resumes_with_a_range_request(server, cache, tmp_path, monkeypatch):
    cache_root, registry = cache
    data, entry = published(tmp_path, weights=os.urandom(300_000))
    server.files["/tiny.tar.gz"] = data
    register(registry, "tiny", {**entry, "url": server.url + "/tiny.tar.gz"})
    real_download = dl.download
    monkeypatch.setattr(dl, "download", lambda *a, **k: real_download(*a, **{**k, "retries": 0}))
    server.cut_first_after = 100_000
    with pytest.raises(ValueError, match="next call resumes"):
        hub.resolve("tiny", progress=False)
    archives = cache_root / "presets" / "archives"
    assert os.listdir(archives) == ["tiny.tar.gz.part"] and (archives / "tiny.tar.gz.part").stat().st_size == 100_000
    assert not (cache_root / "presets" / "tiny").exists()  # never looks finished
    folder = hub.resolve("tiny", progress=True)  # with the progress bar
    assert server.requests[-1] == ("/tiny.tar.gz", "bytes=100000-")
    assert open(os.path.join(folder, "model.weights.h5"), "rb").read() == open(tmp_path / "src" / "tiny" / "model.weights.h5", "rb").read()


def test_a_missing_archive_is_a_clear_404(server, cache, tmp_path):
    cache_root, registry = cache
    _, entry = published(tmp_path)
    register(registry, "tiny", {**entry, "url": server.url + "/gone.tar.gz"})
    with pytest.raises(ValueError, match="HTTP 404"):
        hub.resolve("tiny", progress=False)
    proc = zoo("write", "hi", "--model", server.url + "/gone.tar.gz", "--out", str(tmp_path / "x.svg"), env={**os.environ, "ZOO_QUIET": "1"})
    assert proc.returncode == 2 and "HTTP 404" in proc.stderr and "Traceback" not in proc.stderr
    assert not (cache_root / "presets" / "tiny").exists()


def test_a_damaged_archive_with_the_right_checksum_is_refused(server, cache, tmp_path):
    cache_root, registry = cache
    junk = b"not a tar" * 100
    server.files["/tiny.tar.gz"] = junk
    _, entry = published(tmp_path)
    register(registry, "tiny", {**entry, "url": server.url + "/tiny.tar.gz", "archive": {"file": "tiny.tar.gz", "sha256": hashlib.sha256(junk).hexdigest()}})
    with pytest.raises(ValueError, match="not a readable preset archive.*deleted"):
        hub.resolve("tiny", progress=False)
    assert os.listdir(cache_root / "presets" / "archives") == [] and not (cache_root / "presets" / "tiny").exists()


def test_an_archive_escaping_its_folder_is_refused(server, cache, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name in ("evil/config.json", "evil/../../outside.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            t.addfile(info, io.BytesIO(b"{}"))
    server.files["/evil.tar.gz"] = buf.getvalue()
    with pytest.raises(ValueError, match="refusing archive member"):
        hub.resolve(server.url + "/evil.tar.gz", progress=False)
    assert not (tmp_path / "outside.txt").exists()


def test_url_and_file_handles(server, cache, tmp_path):
    data, entry = published(tmp_path)
    sha = entry["archive"]["sha256"]
    server.files["/dl/tiny.tar.gz"] = data
    url = f"{server.url}/dl/tiny.tar.gz#sha256={sha}"
    folder = hub.resolve(url, progress=False)
    assert hub.is_preset(folder)
    with pytest.raises(ValueError, match="does not match"):
        hub.resolve(f"{server.url}/dl/tiny.tar.gz#sha256={'1' * 64}", progress=False)
    server.close()
    assert hub.resolve(url) == folder  # offline: from the cache
    archive = tmp_path / "release" / "tiny.tar.gz"
    unpacked = hub.resolve(f"file://{archive}#sha256={sha}")
    assert open(os.path.join(unpacked, "model.weights.h5"), "rb").read() == b"w" * 50_000
    assert hub.resolve(str(archive)) == unpacked  # a plain path to the archive too
    assert hub.resolve(f"file://{tmp_path / 'src' / 'tiny'}") == str(tmp_path / "src" / "tiny")
    with pytest.raises(FileNotFoundError):
        hub.resolve(f"file://{tmp_path / 'nothing'}")


# ---------------------------------------------------------------- hf://


class HubServer:
    """Enough of the Hugging Face Hub for hf_hub_download: HEAD/GET /<repo>/resolve/<revision>/<file>
    with ETag, X-Repo-Commit and Content-Length (and Range); X-Error-Code on a 404 as the Hub sends it."""

    def __init__(self):
        self.repos = {}  # repo -> {"refs": {name: commit}, "commits": {commit: {file: bytes}}}
        self.requests = []
        hub_server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, body: bool):
                hub_server.requests.append((self.command, self.path))
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
                repo = hub_server.repos.get(m.group(1)) if m else None
                if repo is None:
                    return self.fail("RepoNotFound", 401)  # as the Hub answers for a missing (or private) repository
                revision = m.group(2)
                commit = repo["refs"].get(revision, revision)
                if commit not in repo["commits"]:
                    return self.fail("RevisionNotFound")
                data = repo["commits"][commit].get(m.group(3))
                if data is None:
                    return self.fail("EntryNotFound")
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and body:
                    start = int(rng[6:].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data[start:])

            def fail(self, code, status=404):
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self):
                self.answer(body=False)

            def do_GET(self):
                self.answer(body=True)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, repo, folder, refs, commit=None):
        files = {rel: open(path, "rb").read() for path, rel in hub._preset_files(folder) if "/" not in rel}
        commit = commit or hashlib.sha1(json.dumps(sorted(files)).encode() + b"".join(files.values())).hexdigest()
        entry = self.repos.setdefault(repo, {"refs": {}, "commits": {}})
        entry["commits"][commit] = files
        entry["refs"].update({r: commit for r in refs})
        return commit

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hf_server():
    s = HubServer()
    yield s
    s.close()


def test_hf_preset_writes_through_a_fresh_process_and_pins_revisions(hf_server, tmp_path):
    """`zoo write --model hf://...` in a new process with HF_ENDPOINT set before huggingface_hub is imported:
    the real synthesis preset's files from the local hub, sampled by onnxruntime."""
    pytest.importorskip("huggingface_hub")
    commit = hf_server.add("zoo-team/iam-synthesis-small", os.path.join(REPO, "saved_models", "iam-synthesis-small"), refs=["main", "v1"])
    env = {**os.environ, "HF_ENDPOINT": hf_server.url, "ZOO_CACHE_DIR": str(tmp_path / "cache"), "ZOO_QUIET": "1", "PYTHONPATH": REPO}
    proc = zoo("write", "Hello hub", "--model", "hf://zoo-team/iam-synthesis-small@v1", "--out", str(tmp_path / "h.svg"), env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["lines"] == 1 and os.path.getsize(tmp_path / "h.svg") > 1000
    heads = [p for c, p in hf_server.requests if c == "HEAD"]
    assert "/zoo-team/iam-synthesis-small/resolve/v1/config.json" in heads
    snapshot = tmp_path / "cache" / "hf" / "models--zoo-team--iam-synthesis-small" / "snapshots" / commit
    assert (snapshot / "loop.onnx").is_file() and not (snapshot / "saved_model").exists()


def test_hf_revisions_missing_files_and_offline_reuse(hf_server, cache, tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    cache_root, registry = cache
    monkeypatch.setenv("HF_ENDPOINT", hf_server.url)
    old = make_preset(tmp_path / "v1", weights=b"old" * 1000)
    new = make_preset(tmp_path / "v2", weights=b"new" * 1000)
    c1 = hf_server.add("me/tiny", old, refs=["v1"])
    hf_server.add("me/tiny", new, refs=["main"])
    latest = hub.resolve("hf://me/tiny", progress=False)
    pinned = hub.resolve(f"hf://me/tiny@{c1}", progress=False)
    tagged = hub.resolve("hf://me/tiny@v1", progress=False)
    assert open(os.path.join(latest, "model.weights.h5"), "rb").read() == b"new" * 1000
    assert open(os.path.join(pinned, "model.weights.h5"), "rb").read() == b"old" * 1000 and tagged == pinned
    assert not os.path.exists(os.path.join(latest, "styles.npz"))  # optional files the repository lacks are skipped
    with pytest.raises(FileNotFoundError, match="no revision 'nope'"):
        hub.resolve("hf://me/tiny@nope", progress=False)
    with pytest.raises(FileNotFoundError, match="no repository 'me/other'"):
        hub.resolve("hf://me/other", progress=False)
    # A registry entry that points at the repository, checked file by file.
    _, entry = published(tmp_path, name="tiny")
    files = {k: v for k, v in entry["files"].items() if "/" not in k}
    register(registry, "tiny-hf", {**entry, "url": None, "hf": "hf://me/tiny@main", "files": {**files, "model.weights.h5": {"sha256": hashlib.sha256(b"new" * 1000).hexdigest()}}})
    assert hub.resolve("tiny-hf", progress=False) == latest
    register(registry, "tiny-bad", {**entry, "url": None, "hf": "hf://me/tiny@main", "files": {**files, "model.weights.h5": {"sha256": "0" * 64}}})
    with pytest.raises(ValueError, match="does not match"):
        hub.resolve("tiny-bad", progress=False)
    hf_server.close()  # offline: the cached snapshots still resolve
    assert hub.resolve(f"hf://me/tiny@{c1}", progress=False) == pinned
    assert hub.resolve("hf://me/tiny", progress=False) == latest
    with pytest.raises(ValueError, match="neither reachable nor in the cache"):
        hub.resolve("hf://me/never-fetched", progress=False)


# ---------------------------------------------------------------- the wheel in a fresh virtual environment


def _pins(*names):
    with open(os.path.join(REPO, "requirements.txt")) as f:
        pins = dict(ln.strip().split("==") for ln in f if "==" in ln and not ln.startswith("#"))
    return [f"{n}=={pins[n]}" for n in names]


def test_the_wheel_installs_and_writes_without_tensorflow(tmp_path):
    """Build the wheel from a copy of the sources, install it with numpy and onnxruntime alone into a
    fresh venv, and run `zoo write` / `zoo presets` from a folder outside the checkout."""
    t0 = time.time()
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "saved_model", "build", "*.egg-info")
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(os.path.join(REPO, name), src / name)
    for name in ("zoo", "export"):
        shutil.copytree(os.path.join(REPO, name), src / name, ignore=ignore)
    for name in ("iam-synthesis", "iam-prediction", "iam-recognizer"):
        if os.path.isdir(os.path.join(REPO, "saved_models", name)):
            shutil.copytree(os.path.join(REPO, "saved_models", name), src / "saved_models" / name, ignore=ignore)
    run = lambda *cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # noqa: E731
    proc = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("graves_zoo-*.whl")
    size = wheel.stat().st_size
    # The 3x400 iam-synthesis carries 15 MB of weights and 52 MB with its graphs; PyPI takes 100 MB.
    assert size < 75e6, f"the wheel is {size / 1e6:.1f} MB"
    venv = tmp_path / "venv"
    proc = run(sys.executable, "-m", "venv", str(venv))
    assert proc.returncode == 0, proc.stderr
    py, script = str(venv / "bin" / "python"), str(venv / "bin" / "zoo")
    proc = run(py, "-m", "pip", "install", "-q", "--no-deps", str(wheel), *_pins("numpy", "onnxruntime"))
    if proc.returncode != 0 and re.search(r"(?i)connection|resolve|network|No matching distribution", proc.stderr):
        pytest.skip(f"pip could not reach a package index for numpy/onnxruntime: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZOO_REGISTRY")}
    env["ZOO_CACHE_DIR"] = str(tmp_path / "venv-cache")
    assert run(py, "-c", "import tensorflow", cwd=away, env=env).returncode != 0  # the ORT path is the only one there
    proc = run(script, "write", "Hello world", "--out", "hello.svg", cwd=away, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["lines"] == 1 and (away / "hello.svg").stat().st_size > 1000
    proc = run(py, "-m", "zoo", "presets", "--json", cwd=away, env=env)
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["iam-synthesis"]["local"] == ["packaged"] and rows["iam-prediction"]["local"] == ["packaged"]
    assert rows["ptb-char-small"]["local"] == [] and rows["ptb-char-small"]["download"] is None
    proc = run(script, "write", "hi", "--model", "ptb-char-small", "--out", "t.svg", cwd=away, env=env)
    assert proc.returncode == 2 and "not published yet" in proc.stderr, proc.stderr
    print(f"wheel {size / 1e6:.1f} MB; built, installed and run in {time.time() - t0:.0f} s")
