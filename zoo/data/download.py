"""Fetch corpora into a cache directory: resumable, checksummed, atomic.

A download goes to ``NAME.part`` and is renamed only once complete and its
sha256 matches, so an interrupted download never looks finished and the next
call resumes it with an HTTP Range request. A wrong checksum deletes the file
and says so.

Known corpora are listed in ``CORPORA``. This project was written on a machine
without internet access, so their sha256 sums could not be recorded here; the
first complete download of each records its sum in ``checksums.json`` of the
cache directory and every later use is checked against it (pass ``sha256=`` to
pin a value you trust). The unpacked files are also checked by size.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib

from zoo import atomic

CHUNK = 1 << 16

CORPORA = {
    "enwik8": {
        "url": "http://mattmahoney.net/dc/enwik8.zip",
        "members": {"enwik8": "enwik8"},
        "sizes": {"enwik8": 100_000_000},
    },
    "text8": {
        "url": "http://mattmahoney.net/dc/text8.zip",
        "members": {"text8": "text8"},
        "sizes": {"text8": 100_000_000},
    },
    "ptb": {
        "url": "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
        "members": {
            f"ptb.{kind}{split}.txt": f"./simple-examples/data/ptb.{kind}{split}.txt"
            for kind in ("", "char.")
            for split in ("train", "valid", "test")
        },
        "sizes": {},
    },
}


class DownloadError(RuntimeError):
    """A download that failed, was cut short, or does not match its checksum."""


def cache_dir() -> str:
    return os.environ.get("ZOO_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "zoo"))


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_into(url: str, part: str, progress: bool, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (resuming from its size)."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part is whole
            return
        raise
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored the Range header: start again
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=os.path.basename(part)[: -len(".part")])
        with open(part, "ab" if have else "wb") as f:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                f.write(block)
                if bar:
                    bar.update(len(block))
        if bar:
            bar.close()
    size = os.path.getsize(part)
    if total is not None and size < total:
        raise DownloadError(f"{url}: connection closed after {size} of {total} bytes")


def download(
    url: str,
    folder: str | None = None,
    filename: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    progress: bool = True,
    timeout: float = 60.0,
    record: bool = True,
) -> str:
    """Download ``url`` into ``folder`` (default: the cache) and return the file's path.

    Resumes a previous partial download; retries a dropped connection
    ``retries`` times (resuming each time); checks ``sha256`` if given, or the
    sum recorded by an earlier download of the same file. ``record=False``
    leaves the recording of a first sum to the caller (`fetch_corpus` records
    it only once the archive has unpacked and passed its checks)."""
    folder = folder or cache_dir()
    os.makedirs(folder, exist_ok=True)
    filename = filename or os.path.basename(url.split("?")[0]) or "download"
    path = os.path.join(folder, filename)
    known = _recorded_sums(folder)
    expected = (sha256 or known.get(filename) or "").lower() or None
    if os.path.isfile(path):
        if expected is None or sha256_of(path) == expected:
            return path
        os.remove(path)  # a finished file that no longer matches: fetch it again
    part = path + ".part"
    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, progress, timeout)
            break
        except (OSError, http.client.HTTPException, DownloadError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            if attempt == retries:
                kept = os.path.getsize(part) if os.path.exists(part) else 0
                raise DownloadError(
                    f"{url}: download failed after {retries + 1} tries ({exc}); {kept} bytes are kept in {part} "
                    "and the next call resumes from there"
                ) from None
            time.sleep(min(2.0**attempt, 10.0) * 0.1)
    actual = sha256_of(part)
    if expected and actual != expected:
        os.remove(part)
        origin = "" if sha256 else f" (recorded in {os.path.join(folder, 'checksums.json')} by the first download; if that one was bad, delete its entry)"
        raise DownloadError(
            f"{url}: sha256 {actual} does not match the expected {expected}{origin}; the download was deleted. "
            "Run again to fetch it anew; if it keeps failing the file on the server changed."
        )
    os.replace(part, path)
    if record and filename not in known:
        _record_sum(folder, filename, actual)
    return path


def _recorded_sums(folder: str) -> dict:
    path = os.path.join(folder, "checksums.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _record_sum(folder: str, filename: str, digest: str) -> None:
    sums = _recorded_sums(folder)
    sums[filename] = digest
    atomic.write_text(os.path.join(folder, "checksums.json"), json.dumps(sums, indent=1, sort_keys=True))


def fetch_corpus(name: str, folder: str | None = None, url: str | None = None, sha256: str | None = None, progress: bool = True) -> dict:
    """Download a known corpus and unpack its files: {file name: path}."""
    if name not in CORPORA:
        raise DownloadError(f"unknown corpus {name!r}; known: {', '.join(sorted(CORPORA))}")
    spec = CORPORA[name]
    folder = os.path.join(folder or cache_dir(), name)
    wanted = {out: os.path.join(folder, out) for out in spec["members"]}
    if all(os.path.isfile(p) for p in wanted.values()):
        return wanted
    # The first sum of an archive is recorded only after it has unpacked and passed
    # the checks below: a corrupt first download must not poison the later ones.
    archive = download(url or spec["url"], folder, sha256=sha256, progress=progress, record=False)

    def refuse(problem: str):
        os.remove(archive)
        return DownloadError(f"{problem}; the archive was deleted and no checksum recorded: run again to download it anew (or try --url MIRROR)")

    try:
        if archive.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                read = {m: z.read(m) for m in spec["members"].values() if m in z.namelist()}
        else:
            with tarfile.open(archive) as t:
                names = set(t.getnames())
                read = {m: t.extractfile(m).read() for m in spec["members"].values() if m in names}
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise refuse(f"{archive} is not a readable archive ({' '.join(str(exc).split())})") from None
    for out, member in spec["members"].items():
        if member not in read:
            raise refuse(f"{archive} has no member {member!r}: it is not the right file for {name}")
        size = spec["sizes"].get(out)
        if size is not None and len(read[member]) != size:
            raise refuse(f"{member} in {archive} has {len(read[member])} bytes, expected {size}: the archive is not {name}")
    filename = os.path.basename(archive)
    if filename not in _recorded_sums(folder):
        _record_sum(folder, filename, sha256_of(archive))
    for out, member in spec["members"].items():
        data = read[member]
        with atomic.replacing(wanted[out]) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
    return wanted
