"""`python -m zoo`: prepare, train, evaluate, sample, density.

Every subcommand has --help. TensorFlow's C++ start-up logging is sent to
/dev/null (Python's own errors and warnings still reach the terminal); set
ZOO_DEBUG=1 to see everything.

One module per command group, each registering its own subparsers with
``add_parsers(sub)``: data.py (prepare, download), handwriting.py (train,
evaluate, sample, density), writing.py (write, read), export.py (export),
presets.py (presets, publish), serve.py (serve: the web page); text.py holds the text models' side of train,
evaluate and sample. common.py holds what they share. A new command touches
its group's module only (and COMMAND_GROUPS below for a new group).
"""

from __future__ import annotations

import argparse
import os

from zoo.cli import data, export, handwriting, presets, serve, writing
from zoo.cli.common import (  # noqa: F401  (re-exported: bench/ and tests import them from zoo.cli)
    DEFAULT_MODEL,
    DEFAULT_RECOGNIZER,
    DEFAULT_WRITER,
    _check_picture_path,
    _fail,
    _positive_int,
    _sampling_bias,
    _silence_native_stderr,
)
from zoo.cli.data import cmd_download, cmd_prepare  # noqa: F401
from zoo.cli.export import cmd_export  # noqa: F401
from zoo.cli.handwriting import cmd_density, cmd_evaluate, cmd_sample, cmd_train  # noqa: F401
from zoo.cli.presets import cmd_presets, cmd_publish  # noqa: F401
from zoo.cli.text import cmd_train_text  # noqa: F401
from zoo.cli.writing import cmd_read, cmd_write, page_lines  # noqa: F401

# In the order `python -m zoo --help` lists them.
COMMAND_GROUPS = (data, handwriting, writing, export, presets, serve)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zoo", description="Graves (2013) sequence generation model zoo.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parsers(sub)
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    _silence_native_stderr()
    from zoo.data.iam import IAMDataError

    try:
        args.func(args)
    except (FileNotFoundError, IAMDataError, ValueError) as exc:
        # These carry a message that names the problem and its fix.
        if os.environ.get("ZOO_DEBUG"):
            raise
        _fail(str(exc))
