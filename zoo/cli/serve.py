"""`zoo serve`: the handwriting web page (export/web/) over a synthesis preset, on a local HTTP server.

The page runs the preset's exported float graphs (``loop.onnx`` for sampling,
``model.onnx`` to read a style's prime) with onnxruntime-web in a Web Worker.
What it serves:

    /                      export/web/index.html, and the page's other files beside it
    /preset.json           what the page needs to know of the preset, made from it at start-up
                           (alphabet, normalisation, state layout, styles, wrap width, defaults)
    /model/loop.onnx       the preset's graphs, from the files its metadata.json names
    /model/model.onnx
    /ort/FILE              onnxruntime-web's dist/ files, as `npm ci` in export/web installed them

Nothing about the preset is copied into export/web by hand: a retrained or
re-exported preset is served as it is on disk. No TensorFlow is imported:
the server only reads files.
"""

from __future__ import annotations

import errno
import http.server
import json
import os
import socket
import sys
import urllib.parse

from zoo.cli.common import DEFAULT_WRITER, _fail

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB_DIR = os.path.join(REPO, "export", "web")
ORT_DIST = os.path.join(WEB_DIR, "node_modules", "onnxruntime-web", "dist")
# The onnxruntime-web files the page loads: the wasm-only ES module build, and the wasm binary
# with its loader (a build that can use threads; the page runs it with one).
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# The page's own files that may be served (the folder also holds package.json and node_modules/).
PAGE_SUFFIXES = (".html", ".js", ".css", ".svg", ".png", ".ico")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming refuses any other type
    ".onnx": "application/octet-stream",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
NPM_HINT = "run `npm ci` in export/web (Node.js and npm install the pinned onnxruntime-web)"


def _write_defaults() -> dict:
    """`zoo write`'s own defaults (wrap width, bias, seed, rewrites) and the driver's step cap per character and longest dwell,
    read from where they are set, so that the page writes as the CLI does."""
    import inspect

    from zoo.cli import build_parser
    from zoo.sampling import driver

    args = build_parser().parse_args(["write", "x", "--out", "x.svg"])
    defaults = {k: v.default for k, v in inspect.signature(driver.write).parameters.items()}
    return {"wrap_width": args.width, "bias": args.bias, "seed": args.seed, "max_steps_per_char": defaults["max_steps_per_char"],
            "rewrites": args.rewrites, "max_dwell": defaults["max_dwell"]}


def page_config(folder: str, name: str) -> dict:
    """The JSON the page reads: everything it needs to know of the synthesis preset in ``folder``.

    Raises ValueError (with the fix) when the folder is not a synthesis preset with a current ONNX export."""
    import numpy as np

    from export.runtime import EXPORT_COMMAND, ExportNotFound, current_export, graph_files, read_export
    from zoo.presets import default_style, load_styles

    try:
        entry = read_export(folder)
    except ExportNotFound as exc:
        raise ValueError(str(exc)) from None
    if not current_export(folder):
        # The page has no other engine to fall back on: graphs of older weights would write for the new ones.
        raise ValueError(f"{name}'s ONNX export was made from other weights than the ones it holds now; export it again with: {EXPORT_COMMAND.replace('PRESET', name).replace('FOLDER', folder)}")
    info = entry["runtime"]
    if info.get("kind") != "synthesis":
        raise ValueError(f"{name} is a {info.get('kind')} model; the page writes text, so it needs a synthesis preset such as {DEFAULT_WRITER}")
    graphs = graph_files(entry)
    if "loop" not in graphs:
        raise ValueError(f"{name} has no loop graph (loop.onnx); export it again with: python -m zoo export --model {name} --format onnx --out {folder}")
    styles = [
        # Raw float32 offsets: .tolist() gives each float32's exact value, which the page rounds back to float32.
        {"name": style, "text": text, "offsets": np.asarray(offsets, np.float32).tolist()}
        for style, (offsets, text) in load_styles(folder).items()
    ]
    return {
        "name": name,
        "format": info["format"],
        "units": info["units"],
        "num_layers": info["num_layers"],
        "alphabet": info["alphabet"]["chars"],
        "offset_mean": info["offset_mean"],
        "offset_std": info["offset_std"],
        "state": info["state"],
        "graphs": {"loop": "model/loop.onnx", "step": "model/model.onnx"},
        "styles": styles,
        "default_style": default_style(folder),  # selected when the page opens
        **_write_defaults(),
    }


class PageServer(http.server.ThreadingHTTPServer):
    """The page's HTTP server: static page files, the generated preset.json, the graphs, onnxruntime-web."""

    daemon_threads = True

    def __init__(self, address, config: dict, graph_paths: dict):
        self.config_bytes = json.dumps(config, separators=(",", ":")).encode()
        self.graph_paths = graph_paths  # URL path -> file
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, PageHandler)


class PageHandler(http.server.BaseHTTPRequestHandler):
    server: PageServer

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/", "/index.html"):
            return self._file(os.path.join(WEB_DIR, "index.html"))
        if path == "/preset.json":
            return self._send(self.server.config_bytes, CONTENT_TYPES[".json"])
        if path in self.server.graph_paths:
            return self._file(self.server.graph_paths[path])
        folder, _, name = path.rpartition("/")
        # Only plain file names from two folders: no "..", no sub-folders, nothing else of the disk.
        if name and not name.startswith(".") and "\\" not in name:
            if folder == "/ort" and name in ORT_FILES:
                return self._file(os.path.join(ORT_DIST, name))
            if folder == "" and name.endswith(PAGE_SUFFIXES):
                return self._file(os.path.join(WEB_DIR, name))
        self.send_error(404, "not found")

    def _file(self, path: str):
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError:
            return self.send_error(404, "not found")
        self._send(body, CONTENT_TYPES.get(os.path.splitext(path)[1], "application/octet-stream"))

    def _send(self, body: bytes, content_type: str):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")  # a re-exported preset shows on reload
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        if os.environ.get("ZOO_DEBUG"):
            super().log_message(format, *args)


def cmd_serve(args) -> None:
    """Serve the handwriting page for a synthesis preset: type text, pick a style, download SVG or PNG.
    The page needs onnxruntime-web: run `npm ci` in export/web once."""
    from zoo.presets import preset_path

    try:
        folder = preset_path(args.model)
    except FileNotFoundError as exc:
        _fail(str(exc))
    try:
        # A preset's name as the page shows it: the name given, or a folder's own name.
        config = page_config(folder, os.path.basename(os.path.normpath(args.model)) if os.sep in args.model else args.model)
    except ValueError as exc:
        _fail(str(exc))
    if not os.path.isfile(os.path.join(WEB_DIR, "index.html")):
        _fail(f"the page is not here ({WEB_DIR} has no index.html): `zoo serve` runs from a checkout of the repository")
    missing = [f for f in ORT_FILES if not os.path.isfile(os.path.join(ORT_DIST, f))]
    if missing:
        _fail(f"onnxruntime-web is not installed ({os.path.join(ORT_DIST, missing[0])} is missing): {NPM_HINT}")
    from export.runtime import graph_files, read_export

    graphs = graph_files(read_export(folder))
    graph_paths = {"/" + config["graphs"][role]: os.path.join(folder, graphs[role]["file"]) for role in ("loop", "step")}
    try:
        server = PageServer((args.host, args.port), config, graph_paths)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            _fail(f"port {args.port} on {args.host} is busy: choose another with --port (--port 0 takes any free one)")
        _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {args.model} at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


def _port(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port: give 1-65535, or 0 for any free one")
    return value


def add_parsers(sub) -> None:
    s = sub.add_parser("serve", help="serve the handwriting web page (onnxruntime-web) for a synthesis preset", description=cmd_serve.__doc__)
    s.add_argument("--model", default=DEFAULT_WRITER, help="synthesis preset name or folder (default: %(default)s)")
    s.add_argument("--port", type=_port, default=8000, help="TCP port (default: %(default)s; 0: any free port, printed)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    s.set_defaults(func=cmd_serve)
