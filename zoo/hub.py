"""The preset registry, and finding or fetching a preset by name, folder, URL or Hugging Face repository.

``resolve(handle)`` (which ``zoo.presets.preset_path``, ``from_preset`` and every
``--model`` use) returns a local preset folder, looking in this order:

1. a folder path: a preset folder (``config.json``), or a training run (its ``preset/``);
   a path to a release archive (``.tar.gz``) is unpacked into the cache;
2. the checkout's ``saved_models/NAME`` (when the package runs from a clone);
3. the presets packaged in the wheel (``zoo/_presets/NAME``, read with importlib.resources);
4. the download cache, ``$ZOO_CACHE_DIR/presets/NAME`` (default ``~/.cache/zoo``);
5. a download of the registry entry's archive (``url``), or of its ``hf`` repository.

Handles beside names and folders: ``https://.../NAME.tar.gz`` (or ``http://``; add
``#sha256=HEX`` to pin the archive), ``file:///path/folder-or-archive`` and
``hf://owner/repo[@revision]`` (through huggingface_hub; a revision may be a branch,
tag or commit; ``HF_ENDPOINT`` names another hub).

Downloads go through ``zoo.data.download.download``: resumed with HTTP Range after an
interruption, checked against the sha256 the registry records (a mismatch deletes the
file and says so), written under a ``.part`` name until complete, with a progress bar.
Archives are unpacked into a temporary folder that replaces the cached one whole,
each file checked against the registry's sha256. Once unpacked, a preset is used
from the cache without a network.

The registry (``zoo/registry.json``) names every published preset: description,
kind, metrics read from its metadata (NLL, CER, bpc), unpacked size, the archive
and every file with sizes and sha256, and where it is fetched from. ``zoo publish``
writes an entry (and the archive); ``$ZOO_REGISTRY`` may name a JSON file of more
entries (a mirror, your own presets), which take precedence.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request
import zlib

from zoo.data import download as dl

CONFIG, METADATA, CARD, WEIGHTS, STYLES = "config.json", "metadata.json", "README.md", "model.weights.h5", "styles.npz"
SOURCE_MARK = ".zoo-source.json"  # written into an unpacked download: where it came from, the archive's sha256
ARCHIVE_SUFFIX = ".tar.gz"
KINDS = {
    "HandwritingPredictor": "prediction",
    "HandwritingSynthesizer": "synthesis",
    "HandwritingRecognizer": "recognition",
    "LanguageModel": "text",
}
METRIC_KEYS = ("nll_nats_per_line", "nll_nats_per_point", "cer", "wer", "bpc_static", "bpc_dynamic", "bits_per_word_static", "perplexity_static")
# What a Hugging Face repository of a preset holds (the SavedModel folder stays in the release archive).
HF_REQUIRED = (CONFIG, WEIGHTS)
HF_OPTIONAL = (METADATA, CARD, STYLES, "model.onnx", "loop.onnx", "model.int8.onnx", "loop.int8.onnx")
HUGGINGFACE_HUB_PIN = "huggingface_hub==2.4.0"  # as in requirements.txt


class PresetNotFound(FileNotFoundError):
    """No preset under this name or path, and nothing to download it from."""


class PresetDownloadError(ValueError):
    """A preset download that failed, was damaged, or does not match the registry."""


# ---------------------------------------------------------------- where presets live


def checkout_dir() -> str:
    """saved_models/ of the checkout this package runs from (absent in an installed wheel)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")


def packaged_dir() -> str | None:
    """zoo/_presets/ of an installed wheel (the default presets), as a real folder; None elsewhere."""
    import importlib.resources
    import pathlib

    try:
        root = importlib.resources.files("zoo").joinpath("_presets")
    except (ModuleNotFoundError, TypeError):
        return None
    if isinstance(root, pathlib.Path) and root.is_dir():
        return str(root)
    return None  # a zipped install: its presets cannot be memory-mapped by onnxruntime; download them instead


def cache_dir() -> str:
    return os.path.join(dl.cache_dir(), "presets")


def is_preset(folder: str | None) -> bool:
    return bool(folder) and os.path.isfile(os.path.join(folder, CONFIG))


def _plain_name(handle: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", handle)) and not handle.endswith(ARCHIVE_SUFFIX)


def local_sources(name: str) -> list[tuple[str, str]]:
    """[(where, folder)] of every local copy of the preset ``name``: checkout, packaged, cache."""
    found = []
    for where, root in (("checkout", checkout_dir()), ("packaged", packaged_dir()), ("cache", cache_dir())):
        if root and is_preset(os.path.join(root, name)):
            found.append((where, os.path.join(root, name)))
    return found


# ---------------------------------------------------------------- the registry


def registry() -> dict:
    """{name: entry} of the packaged registry, updated by the entries of $ZOO_REGISTRY (a JSON file) if set."""
    import importlib.resources

    entries = json.loads(importlib.resources.files("zoo").joinpath("registry.json").read_text(encoding="utf-8"))
    extra = os.environ.get("ZOO_REGISTRY")
    if extra:
        with open(extra, encoding="utf-8") as f:
            entries.update(json.load(f))
    return {k: v for k, v in entries.items() if not k.startswith("_")}


def kind_of(config: dict) -> str:
    return KINDS.get(config.get("class_name", ""), config.get("class_name", "unknown"))


def metrics_of(meta: dict) -> dict:
    """The headline numbers of a preset's metadata: NLL (handwriting), CER/WER (recognizer), bpc (text)."""
    evaluations = meta.get("evaluations") or {}
    split = meta.get("validation_split")
    primary = evaluations.get(split) if split in evaluations else None
    if primary is None:  # a text model's recorded test file, else the training run's own evaluation
        primary = next((v for k, v in evaluations.items() if "test" in k and isinstance(v, dict)), None) or meta.get("evaluation") or {}
    out = {k: round(float(primary[k]), 4) for k in METRIC_KEYS if isinstance(primary.get(k), (int, float))}
    where = primary.get("split") or primary.get("text_file") or split
    if out and where:
        out["on"] = where
    for key, value in evaluations.items():  # legibility of a synthesis model, read back by a recognizer
        if isinstance(value, dict) and "recognizer" in value and isinstance(value.get("cer"), (int, float)):
            out.setdefault("legibility_cer", round(float(value["cer"]), 4))
    return out


def _description(folder: str) -> str:
    """The first paragraph of the preset's model card."""
    path = os.path.join(folder, CARD)
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as f:
        paragraphs = [p.strip() for p in f.read().split("\n\n")]
    return next((" ".join(p.split()) for p in paragraphs if p and not p.startswith(("#", "|", "!", "```"))), "")


# ---------------------------------------------------------------- resolution


def resolve(handle: str, download: bool = True, progress: bool | None = None) -> str:
    """The local folder of the preset ``handle`` (see the module's docstring for the order)."""
    handle = os.fspath(handle)
    if handle.startswith("hf://"):
        return _from_hf(handle, progress)
    if handle.startswith(("http://", "https://")):
        return _from_archive_url(handle, progress=progress, download=download)
    if handle.startswith("file://"):
        parsed = urllib.parse.urlparse(handle)
        path = urllib.request.url2pathname(parsed.path)
        sha = parsed.fragment[len("sha256=") :] if parsed.fragment.startswith("sha256=") else None
        return _from_path(path, sha, strict=True) or _not_found(handle, f"{path} does not exist")
    found = _from_path(handle, None, strict=not _plain_name(handle))
    if found:
        return found
    if not _plain_name(handle):
        _not_found(handle, "no such folder or archive")
    for _, folder in local_sources(handle):
        if _current_in_cache(handle, folder):
            return folder
    entry = registry().get(handle)
    if entry is None:
        known = sorted(set(registry()) | {n for n in _local_names()})
        _not_found(handle, f"it is not a folder, nor a known preset (known: {', '.join(known) or 'none'})")
    return _from_registry(handle, entry, progress=progress, download=download)


def _not_found(handle: str, why: str):
    raise PresetNotFound(f"no preset {handle!r}: {why}")


def _local_names() -> set[str]:
    names = set()
    for root in (checkout_dir(), packaged_dir(), cache_dir()):
        if root and os.path.isdir(root):
            names |= {d for d in os.listdir(root) if not d.startswith(".") and is_preset(os.path.join(root, d))}
    return names


def _from_path(path: str, sha256: str | None, strict: bool) -> str | None:
    """A preset folder, a training run's preset/, or a release archive unpacked into the cache."""
    if os.path.isdir(path):
        if is_preset(path):
            return path
        if is_preset(os.path.join(path, "preset")):
            return os.path.join(path, "preset")
        if strict:
            _not_found(path, f"the folder holds no {CONFIG}, nor preset/{CONFIG} of a training run (train one with `python -m zoo train ... --out RUN`)")
        return None
    if os.path.isfile(path) and path.endswith(ARCHIVE_SUFFIX):
        actual = dl.sha256_of(path)
        if sha256 and actual != sha256.lower():
            raise PresetDownloadError(f"{path}: sha256 {actual} does not match the expected {sha256}")
        stem = os.path.basename(path)[: -len(ARCHIVE_SUFFIX)]
        dest = os.path.join(cache_dir(), "files", f"{stem}-{actual[:12]}")
        if not _marked(dest, actual):
            _unpack(path, dest, actual, source=os.path.abspath(path))
        return dest
    return None


def _marked(folder: str, archive_sha256: str | None) -> bool:
    """Whether ``folder`` is a whole unpacked download (of the archive with this sha256, if given)."""
    path = os.path.join(folder, SOURCE_MARK)
    if not (is_preset(folder) and os.path.isfile(path)):
        return False
    if archive_sha256 is None:
        return True
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("archive_sha256") == archive_sha256.lower()


def _current_in_cache(name: str, folder: str) -> bool:
    """A checkout or packaged copy always counts; a cached download only if it is the registry's version."""
    if not folder.startswith(cache_dir() + os.sep):
        return True
    entry = registry().get(name)
    sha = (entry or {}).get("archive", {}).get("sha256")
    if entry is None or _marked(folder, sha):
        return True
    return not (entry.get("url") or entry.get("hf"))  # nothing newer to fetch: keep what is there


def _progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    if os.environ.get("ZOO_QUIET"):
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def _fetch(url: str, filename: str, sha256: str | None, progress: bool | None) -> str:
    """The archive at ``url`` in the cache's archives/ folder, through zoo.data.download (resumed, checked).

    Without a known sha256 (a bare URL) the first download's sum is recorded and later ones are checked against it."""
    try:
        folder = os.path.join(cache_dir(), "archives")
        return dl.download(url, folder, filename=filename, sha256=sha256, progress=_progress(progress), record=sha256 is None)
    except dl.DownloadError as exc:
        raise PresetDownloadError(str(exc)) from None


def _from_registry(name: str, entry: dict, progress: bool | None, download: bool) -> str:
    dest = os.path.join(cache_dir(), name)
    sha = entry.get("archive", {}).get("sha256")
    url, hf = entry.get("url"), entry.get("hf")
    if not (url or hf):
        raise PresetNotFound(
            f"preset {name!r} is in the registry but not published yet (no download address): use a checkout of the "
            f"repository (saved_models/{name}), a wheel that packages it, or pass a folder, a URL of its archive "
            "(https://.../NAME.tar.gz, file://...) or hf://owner/repo"
        )
    if not download:
        raise PresetNotFound(f"preset {name!r} is not on this machine (downloads are off)")
    stale = dest if is_preset(dest) else None
    try:
        if url:
            archive = _fetch(url, entry.get("archive", {}).get("file") or f"{name}{ARCHIVE_SUFFIX}", sha, progress)
            _unpack(archive, dest, sha, source=url, files=entry.get("files"))
            os.remove(archive)  # unpacked and checked: the folder is the cache
            return dest
        return _from_hf(hf, progress, files=entry.get("files"))
    except (PresetDownloadError, OSError) as exc:
        if stale:  # offline, or the server is down: the older download still works
            print(f"warning: {name}: could not fetch the registry's version ({exc}); using the cached copy in {stale}", file=sys.stderr)
            return stale
        raise


def _from_archive_url(url: str, progress: bool | None, download: bool = True) -> str:
    base, _, fragment = url.partition("#")
    sha = fragment[len("sha256=") :].lower() if fragment.startswith("sha256=") else None
    key = hashlib.sha256(base.encode()).hexdigest()[:12]
    filename = os.path.basename(urllib.parse.urlparse(base).path) or "preset.tar.gz"
    stem = filename[: -len(ARCHIVE_SUFFIX)] if filename.endswith(ARCHIVE_SUFFIX) else filename
    dest = os.path.join(cache_dir(), "urls", f"{stem}-{key}")
    if _marked(dest, sha):
        return dest  # offline re-use: no request at all
    if not download:
        raise PresetNotFound(f"{url} is not in the cache (downloads are off)")
    archive = _fetch(base, f"{key}-{filename}", sha, progress)
    _unpack(archive, dest, dl.sha256_of(archive), source=base)
    os.remove(archive)
    return dest


def _unpack(archive: str, dest: str, archive_sha256: str | None, source: str, files: dict | None = None) -> None:
    """Unpack a release archive (one top folder of regular files) into ``dest``, whole or not at all.

    ``files``: {relative path: {"sha256": ...}} each unpacked file must match (the registry's list)."""
    from zoo.presets import rewriting

    problem = None
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
        with rewriting(dest, keep=False) as tmp:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                tops = {m.name.split("/", 1)[0] for m in members}
                if len(tops) != 1:
                    raise PresetDownloadError(f"{source}: a preset archive holds one folder, this one {len(tops)} top-level entries")
                for m in members:
                    rel = m.name.split("/", 1)[1] if "/" in m.name else ""
                    parts = rel.split("/")
                    if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
                        raise PresetDownloadError(f"{source}: refusing archive member {m.name!r} (links, devices and paths outside the folder are not unpacked)")
                    target = os.path.join(tmp, *parts) if rel else tmp
                    if m.isdir():
                        os.makedirs(target, exist_ok=True)
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with tar.extractfile(m) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
            if not is_preset(tmp):
                raise PresetDownloadError(f"{source}: the archive holds no {CONFIG}: it is not a zoo preset")
            for rel, spec in (files or {}).items():
                path = os.path.join(tmp, *rel.split("/"))
                if not os.path.isfile(path):
                    raise PresetDownloadError(f"{source}: {rel} is missing from the archive the registry describes")
                if spec.get("sha256") and dl.sha256_of(path) != spec["sha256"]:
                    raise PresetDownloadError(f"{source}: {rel} does not match the sha256 the registry records")
            with open(os.path.join(tmp, SOURCE_MARK), "w", encoding="utf-8") as f:
                json.dump({"source": source, "archive_sha256": archive_sha256}, f)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        problem = f"{source}: not a readable preset archive ({' '.join(str(exc).split())})"
    except PresetDownloadError as exc:
        problem = str(exc)
    if problem:
        if os.path.isfile(archive) and archive.startswith(cache_dir() + os.sep):
            os.remove(archive)
            problem += "; the download was deleted: run again to fetch it anew"
        raise PresetDownloadError(problem)


def _from_hf(handle: str, progress: bool | None, files: dict | None = None) -> str:
    """hf://owner/repo[@revision]: each preset file through huggingface_hub (cached; offline once cached)."""
    match = re.fullmatch(r"hf://([\w.-]+/[\w.-]+)(?:@([\w./-]+))?", handle)
    if not match:
        raise PresetNotFound(f"{handle!r}: write a Hugging Face preset as hf://owner/repo or hf://owner/repo@revision")
    repo, revision = match.group(1), match.group(2)
    try:
        import huggingface_hub
        from huggingface_hub import errors as hf_errors
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

        RemoteEntryNotFoundError = getattr(hf_errors, "RemoteEntryNotFoundError", EntryNotFoundError)  # huggingface_hub >= 1.0
    except ImportError:
        raise PresetNotFound(f"{handle}: hf:// presets need huggingface_hub: pip install {HUGGINGFACE_HUB_PIN}") from None

    if not _progress(progress):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    kwargs = dict(repo_id=repo, revision=revision, cache_dir=os.path.join(dl.cache_dir(), "hf"), endpoint=os.environ.get("HF_ENDPOINT") or None)

    # huggingface_hub retries an unreachable hub for ~20 s per file before it falls back to its cache:
    # one quick probe first, and a pinned commit that is cached needs no network at all.
    offline = bool(os.environ.get("HF_HUB_OFFLINE")) or not _reachable(kwargs["endpoint"])
    if not offline and revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        try:
            huggingface_hub.hf_hub_download(filename=CONFIG, local_files_only=True, **kwargs)
            offline = True
        except LocalEntryNotFoundError:
            pass

    def get(filename: str, required: bool) -> str | None:
        try:
            return huggingface_hub.hf_hub_download(filename=filename, local_files_only=offline, **kwargs)
        except LocalEntryNotFoundError as exc:  # offline and not cached (a subclass of EntryNotFoundError: caught first)
            if required:
                raise PresetDownloadError(f"{handle}: {filename} is neither reachable nor in the cache ({' '.join(str(exc).split())[:300]})") from None
            return None
        except (EntryNotFoundError, RemoteEntryNotFoundError):
            if required:
                raise PresetNotFound(f"{handle}: the repository has no {filename}: it is not a zoo preset") from None
            return None
        except RevisionNotFoundError:
            raise PresetNotFound(f"{handle}: the repository has no revision {revision!r} (a branch, tag or commit)") from None
        except RepositoryNotFoundError:
            raise PresetNotFound(f"{handle}: no repository {repo!r} at {kwargs['endpoint'] or 'the Hugging Face Hub'} (a private one needs HF_TOKEN)") from None
        except Exception as exc:  # huggingface_hub's HTTP errors: unknown repository or revision, server errors
            raise PresetDownloadError(f"{handle}: {filename}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None

    names = list(files) if files else [*HF_REQUIRED, *HF_OPTIONAL]
    paths = {n: get(n, required=n in HF_REQUIRED or bool(files)) for n in names if "/" not in n}
    folder = os.path.dirname(paths[CONFIG])
    for rel, spec in (files or {}).items():
        path = paths.get(rel)
        if path and spec.get("sha256") and dl.sha256_of(path) != spec["sha256"]:
            raise PresetDownloadError(f"{handle}: {rel} does not match the sha256 the registry records")
    return folder


def _reachable(endpoint: str | None, timeout: float = 3.0) -> bool:
    """Whether the hub's host accepts a connection (assumed so behind a proxy, which huggingface_hub goes through)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")):
        return True
    import socket

    parsed = urllib.parse.urlparse(endpoint or "https://huggingface.co")
    try:
        socket.create_connection((parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)), timeout=timeout).close()
    except OSError:
        return False
    return True


# ---------------------------------------------------------------- listing and publishing


def listing() -> list[dict]:
    """Every preset the registry names or this machine holds: name, kind, size, metrics, where it is."""
    entries = registry()
    rows = []
    for name in sorted(set(entries) | _local_names()):
        entry = entries.get(name, {})
        local = local_sources(name)
        folder = local[0][1] if local else None
        kind, metrics, size = entry.get("kind"), entry.get("metrics"), entry.get("size")
        if folder and (kind is None or metrics is None):
            with open(os.path.join(folder, CONFIG), encoding="utf-8") as f:
                kind = kind or kind_of(json.load(f))
            meta_path = os.path.join(folder, METADATA)
            if metrics is None and os.path.isfile(meta_path):
                with open(meta_path, encoding="utf-8") as f:
                    metrics = metrics_of(json.load(f))
        if folder and size is None:
            size = sum(os.path.getsize(p) for p, _ in _preset_files(folder))
        rows.append({
            "name": name,
            "kind": kind,
            "size": size,
            "metrics": metrics or {},
            "local": [where for where, _ in local],
            "download": entry.get("url") or entry.get("hf"),
            "registered": name in entries,
        })
    return rows


def _preset_files(folder: str) -> list[tuple[str, str]]:
    """[(path, relative path)] of a preset's files, hidden and temporary ones left out, sorted."""
    out = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for n in sorted(names):
            if not n.startswith("."):
                path = os.path.join(root, n)
                out.append((path, os.path.relpath(path, folder).replace(os.sep, "/")))
    return out


def publish(model: str, out: str, name: str | None = None, url: str | None = None, hf: str | None = None, description: str | None = None) -> tuple[str, dict]:
    """Pack a preset into ``out/NAME.tar.gz`` and return (name, its registry entry).

    The archive is reproducible (sorted members, no times or owners), so packing the
    same files again gives the same sha256. ``url``: where the archive will be served
    (a folder URL ending in / gets the archive's name appended)."""
    from zoo import atomic

    folder = resolve(model, download=False)
    if name is None:
        name = os.path.basename(os.path.normpath(folder))
        if name == "preset":  # a training run's preset/: name it after the run
            name = os.path.basename(os.path.dirname(os.path.normpath(folder)))
    if not _plain_name(name):
        raise ValueError(f"preset name {name!r}: use letters, digits, '.', '_' and '-' only")
    os.makedirs(out, exist_ok=True)
    archive_name = f"{name}{ARCHIVE_SUFFIX}"
    archive = os.path.join(out, archive_name)
    files = {}
    with atomic.replacing(archive) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
                tar.addfile(_tarinfo(name, directory=True))
                seen_dirs = set()
                for path, rel in _preset_files(folder):
                    parts = rel.split("/")
                    for i in range(1, len(parts)):
                        d = "/".join(parts[:i])
                        if d not in seen_dirs:
                            seen_dirs.add(d)
                            tar.addfile(_tarinfo(f"{name}/{d}", directory=True))
                    with open(path, "rb") as f:
                        data = f.read()
                    tar.addfile(_tarinfo(f"{name}/{rel}", size=len(data)), io.BytesIO(data))
                    files[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with open(os.path.join(folder, CONFIG), encoding="utf-8") as f:
        config = json.load(f)
    meta = {}
    if os.path.isfile(os.path.join(folder, METADATA)):
        with open(os.path.join(folder, METADATA), encoding="utf-8") as f:
            meta = json.load(f)
    if url and url.endswith("/"):
        url += archive_name
    entry = {
        "description": description or _description(folder),
        "kind": kind_of(config),
        "model": config.get("class_name"),
        "metrics": metrics_of(meta),
        "size": sum(f["bytes"] for f in files.values()),
        "archive": {"file": archive_name, "bytes": os.path.getsize(archive), "sha256": dl.sha256_of(archive)},
        "files": files,
        "url": url,
        "hf": hf,
        "created": meta.get("created"),
    }
    return name, entry


def _tarinfo(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = 0 if directory else size
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def add_to_registry(path: str, name: str, entry: dict) -> None:
    """Write ``entry`` under ``name`` into the registry JSON file ``path`` (created if absent), whole."""
    from zoo import atomic

    entries = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    entries[name] = entry
    atomic.write_text(path, json.dumps(entries, indent=1, sort_keys=False) + "\n")


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "?"
