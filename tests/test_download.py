"""The downloader against a real HTTP server on 127.0.0.1 serving archives the test builds."""

import hashlib
import http.server
import io
import os
import tarfile
import threading

import pytest

from zoo.data import download as dl
from zoo.data.text import read_corpus


class Server:
    """Serves {path: bytes}; honours 'Range: bytes=N-'; can cut the first response short."""

    def __init__(self, files):
        self.files = files
        self.cut_first_after = None  # bytes sent before the first response is cut
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                server.requests.append((self.path, self.headers.get("Range")))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_first_after is not None:
                    cut, server.cut_first_after = server.cut_first_after, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server({})
    yield s
    s.close()


PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def test_download_records_checksum_and_reuses_the_file(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    path = dl.download(server.url + "/data.bin", str(tmp_path), progress=False)
    assert open(path, "rb").read() == PAYLOAD
    assert not os.path.exists(path + ".part")
    assert dl._recorded_sums(str(tmp_path))["data.bin"] == hashlib.sha256(PAYLOAD).hexdigest()
    n = len(server.requests)
    assert dl.download(server.url + "/data.bin", str(tmp_path), progress=False) == path
    assert len(server.requests) == n  # the cached, verified file is not fetched again


def test_bad_checksum_deletes_the_download_and_says_so(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    with pytest.raises(dl.DownloadError, match="does not match"):
        dl.download(server.url + "/data.bin", str(tmp_path), sha256="0" * 64, progress=False)
    assert os.listdir(tmp_path) == []


def test_changed_file_on_server_fails_the_recorded_checksum(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    path = dl.download(server.url + "/data.bin", str(tmp_path), progress=False)
    os.remove(path)
    server.files["/data.bin"] = PAYLOAD[::-1]
    with pytest.raises(dl.DownloadError, match="sha256"):
        dl.download(server.url + "/data.bin", str(tmp_path), progress=False)


def test_interrupted_download_keeps_the_part_and_resumes_with_a_range_request(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    server.cut_first_after = 30_000
    with pytest.raises(dl.DownloadError, match="next call resumes"):
        dl.download(server.url + "/data.bin", str(tmp_path), retries=0, progress=False)
    part = tmp_path / "data.bin.part"
    assert part.stat().st_size == 30_000
    assert not (tmp_path / "data.bin").exists()  # never looks finished
    path = dl.download(server.url + "/data.bin", str(tmp_path), progress=False)
    assert open(path, "rb").read() == PAYLOAD
    assert server.requests[-1] == ("/data.bin", "bytes=30000-")


def test_a_dropped_connection_is_retried_within_one_call(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    server.cut_first_after = 10_000
    path = dl.download(server.url + "/data.bin", str(tmp_path), retries=2, progress=False)
    assert open(path, "rb").read() == PAYLOAD
    assert [r for _, r in server.requests] == [None, "bytes=10000-"]


def test_missing_file_is_a_clear_error(server, tmp_path):
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download(server.url + "/nothing.zip", str(tmp_path), progress=False)


def ptb_archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for kind in ("", "char."):
            for split in ("train", "valid", "test"):
                text = " the cat sat <unk> \n a dog N \n" if not kind else " t h e _ c a t \n a _ d o g \n"
                data = text.encode()
                info = tarfile.TarInfo(f"./simple-examples/data/ptb.{kind}{split}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_fetch_ptb_unpacks_files_the_readers_read(server, tmp_path):
    server.files["/simple-examples.tgz"] = ptb_archive()
    files = dl.fetch_corpus("ptb", str(tmp_path), url=server.url + "/simple-examples.tgz", progress=False)
    assert read_corpus(files["ptb.char.train.txt"], "char") == "the cat\na dog\n"
    assert read_corpus(files["ptb.test.txt"], "word") == ["the", "cat", "sat", "<unk>", "<eos>", "a", "dog", "N", "<eos>"]
    n = len(server.requests)
    assert dl.fetch_corpus("ptb", str(tmp_path), url=server.url + "/simple-examples.tgz", progress=False) == files
    assert len(server.requests) == n


def test_corrupt_archive_is_deleted_with_a_clear_error(server, tmp_path):
    server.files["/simple-examples.tgz"] = b"this is not a tar archive" * 10
    with pytest.raises(dl.DownloadError, match="not a readable archive"):
        dl.fetch_corpus("ptb", str(tmp_path), url=server.url + "/simple-examples.tgz", progress=False)
    assert not (tmp_path / "ptb" / "simple-examples.tgz").exists()


def test_enwik8_archive_of_the_wrong_size_is_refused(server, tmp_path):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("enwik8", b"<mediawiki>" * 100)
    server.files["/enwik8.zip"] = buf.getvalue()
    with pytest.raises(dl.DownloadError, match="expected 100000000"):
        dl.fetch_corpus("enwik8", str(tmp_path), url=server.url + "/enwik8.zip", progress=False)


def test_a_corrupt_first_download_records_no_checksum(server, tmp_path):
    """The first sum is recorded once the archive unpacks and passes its checks, never before."""
    url = server.url + "/simple-examples.tgz"
    server.files["/simple-examples.tgz"] = b"this is not a tar archive" * 10
    with pytest.raises(dl.DownloadError, match="not a readable archive"):
        dl.fetch_corpus("ptb", str(tmp_path), url=url, progress=False)
    assert dl._recorded_sums(str(tmp_path / "ptb")) == {}
    # A readable archive without the corpus's files: deleted too, nothing recorded.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("./other/readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    server.files["/simple-examples.tgz"] = buf.getvalue()
    with pytest.raises(dl.DownloadError, match="has no member"):
        dl.fetch_corpus("ptb", str(tmp_path), url=url, progress=False)
    assert not (tmp_path / "ptb" / "simple-examples.tgz").exists()
    assert dl._recorded_sums(str(tmp_path / "ptb")) == {}
    # The right archive is then accepted, and its sum is the one recorded.
    good = ptb_archive()
    server.files["/simple-examples.tgz"] = good
    files = dl.fetch_corpus("ptb", str(tmp_path), url=url, progress=False)
    assert read_corpus(files["ptb.char.train.txt"], "char") == "the cat\na dog\n"
    assert dl._recorded_sums(str(tmp_path / "ptb")) == {"simple-examples.tgz": hashlib.sha256(good).hexdigest()}


def test_an_archive_of_the_wrong_size_is_deleted_and_not_recorded(server, tmp_path):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("text8", b" anarchism" * 100)
    server.files["/text8.zip"] = buf.getvalue()
    with pytest.raises(dl.DownloadError, match="expected 100000000"):
        dl.fetch_corpus("text8", str(tmp_path), url=server.url + "/text8.zip", progress=False)
    assert os.listdir(tmp_path / "text8") == []  # no archive kept, no checksums.json
