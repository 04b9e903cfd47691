"""`zoo prepare` (IAM-OnDB archives -> one cache) and `zoo download` (PTB, enwik8, text8)."""

from __future__ import annotations

import json
import os

from zoo.cli.common import _fail


def cmd_prepare(args) -> None:
    """Read the IAM-OnDB archives into one compressed cache. Missing readings are
    interpolated and isolated glitch jumps dropped unless --no-repair is given;
    the cache records which (report: repaired)."""
    from zoo.data.cache import prepare, resolve_iam_dir

    data_dir = resolve_iam_dir(args.data)
    data = prepare(data_dir, args.out, progress=not args.quiet, repair=args.repair)
    print(json.dumps({"cache": args.out, "megabytes": round(os.path.getsize(args.out) / 1e6, 1), **data.report}, indent=1))


def cmd_download(args) -> None:
    """Fetch a text corpus into the cache (resumable, sha256-checked) and print its files."""
    from zoo.data.download import DownloadError, fetch_corpus

    try:
        files = fetch_corpus(args.name, args.cache, url=args.url, sha256=args.sha256, progress=not args.quiet)
    except DownloadError as exc:
        _fail(str(exc))
    print(json.dumps(files, indent=1))


def add_parsers(sub) -> None:
    s = sub.add_parser("prepare", help="read the IAM-OnDB archives into one compressed cache", description=cmd_prepare.__doc__)
    s.add_argument("--data", required=True, help="folder with lineStrokes-all.tar.gz, ascii-all.tar.gz and splits/ (or their extracted folders)")
    s.add_argument("--out", default=os.path.join("cache", "iam-ondb.npz"), help="cache file to write (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument(
        "--no-repair", dest="repair", action="store_false",
        help="keep recording glitches as recorded: no interpolated missing readings, no dropped jumps (for comparing NLL figures)",
    )
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("download", help="fetch PTB, enwik8 or text8 into the cache (resumable, sha256-checked)")
    s.add_argument("name", choices=["ptb", "enwik8", "text8"])
    s.add_argument("--cache", help="cache folder (default: $ZOO_CACHE_DIR or ~/.cache/zoo)")
    s.add_argument("--url", help="a mirror to fetch from instead of the official address")
    s.add_argument("--sha256", help="expected sha256 of the archive (default: the one recorded by the first download)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_download)
