"""`zoo write` (text -> handwriting with a synthesis preset) and `zoo read` (handwriting -> text
with a recognizer). On the onnxruntime path neither imports TensorFlow or Keras: keep the
imports here lazy (tests/test_shipped_presets.py and tests/test_hub.py check it).
"""

from __future__ import annotations

import functools
import json
import os
import time

from zoo.cli.common import DEFAULT_RECOGNIZER, DEFAULT_WRITER, _beam_width, _check_picture_path, _fail, _positive_int, _rewrite_count, _sampling_bias


def page_lines(text: str, width: int) -> list[str]:
    """Paragraphs -> lines of at most ``width`` characters (long words are split, never refused)."""
    import textwrap

    lines = []
    for paragraph in text.splitlines():
        paragraph = " ".join(paragraph.split())
        if paragraph:
            lines += textwrap.wrap(paragraph, width=width, break_long_words=True, break_on_hyphens=False)
    return lines


def _onnx_writer(args):
    """The onnxruntime sampler `zoo write` uses when the preset carries a current export, or None.

    Loading it directly, not through from_preset, keeps TensorFlow and Keras out of
    the process: their import took ~4.5 of the 4.6 s of a one-line `zoo write`."""
    from zoo.presets import preset_path
    from zoo.sampling.engines import choose

    try:
        folder = preset_path(args.model)
    except FileNotFoundError as exc:
        _fail(str(exc))
    if choose(folder, args.backend, args.precision) != "onnx":
        return None
    from export import runtime

    sampler = runtime.load(folder, precision=args.precision)
    if sampler.kind == "recognition":
        _fail(f"{args.model} is a recognizer: it reads handwriting (zoo read); `write` needs a synthesis preset such as {DEFAULT_WRITER}")
    return sampler if hasattr(sampler, "write") else None  # a prediction preset: from_preset's path explains


def cmd_write(args) -> None:
    from zoo.data.alphabet import UnknownCharacters
    from zoo.render import save_drawing

    # Where the pictures go is checked before any model is loaded or any point sampled.
    _check_picture_path(args.out)
    if args.alignment:
        _check_picture_path(args.alignment, "--alignment", (".png", ".svg", ".pdf"))
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    else:
        text = "\n".join(args.text)
    lines = page_lines(text, args.width)
    if not lines:
        _fail("the text is empty: give the words to write, e.g. python -m zoo write \"Hello world\" --out hello.svg")
    model = _onnx_writer(args)
    if model is not None:
        write = model.write
    else:
        from zoo.presets import from_preset
        from zoo.sampling.handwriting import write as keras_write

        model = from_preset(args.model)
        if not hasattr(model, "alphabet") or getattr(model, "task", None) == "recognition":
            _fail(f"{args.model} is a {type(model).__name__}; `write` needs a synthesis preset such as {DEFAULT_WRITER}")
        write = functools.partial(keras_write, model, backend=args.backend, precision=args.precision)
    prime = None
    if args.prime_line:
        from zoo.data.cache import load_handwriting

        if not args.data:
            _fail("--prime-line needs --data, the IAM-OnDB folder the line comes from")
        data = load_handwriting(args.data)
        try:
            i = data.index(args.prime_line)
        except KeyError as exc:
            _fail(str(exc.args[0]))
        prime = (data.line(i), data.texts[i])
    batch = [ln for ln in lines for _ in range(args.count)]
    t0 = time.time()
    try:
        offsets, alignments = write(
            batch, bias=args.bias, seed=args.seed, prime=prime, style=args.style, substitute=args.substitute, return_alignment=True,
            rewrites=args.rewrites,
        )
    except UnknownCharacters as exc:
        _fail(str(exc))
    seconds = time.time() - t0
    save_drawing(offsets, args.out)
    if args.alignment:
        from zoo.render.figures import plot_alignment  # matplotlib: only for the figure (the onnxruntime path needs numpy alone)

        plot_alignment(*alignments[0], args.alignment, offsets[0])
    print(json.dumps({"out": args.out, "lines": len(batch), "points": int(sum(len(o) for o in offsets)), "seconds": round(seconds, 2)}))


def _offsets_in(path: str) -> list:
    """The pen offsets per line held by a file that `zoo read` reads."""
    import numpy as np

    from zoo.render.svg import read_svg_offsets

    if not os.path.isfile(path):
        _fail(f"no file {path!r}")
    lower = path.lower()
    try:
        if lower.endswith(".svg"):
            return read_svg_offsets(path)
        if lower.endswith(".npy"):
            array = np.load(path)
            if array.ndim == 2 and array.shape[1] == 3:
                return [array]
            if array.ndim == 3 and array.shape[2] == 3:
                return list(array)
            raise ValueError(f"{path} holds an array of shape {array.shape}: pen offsets are (N, 3) or (K, N, 3)")
        if lower.endswith(".npz"):
            with np.load(path) as z:
                return [z[k] for k in z.files]
    except (OSError, ValueError, EOFError) as exc:
        _fail(f"cannot read pen offsets from {path}: {exc}")
    if lower.endswith(".png"):
        _fail(f"{path} is a picture, not pen offsets: read the .svg that zoo write wrote (it carries the offsets)")
    _fail(f"cannot tell what {path!r} holds: give FILE.svg (written by zoo write or zoo sample), FILE.npy or FILE.npz")


def cmd_read(args) -> None:
    """Print the text of every line of handwriting in the files, one per line."""
    from zoo.presets import preset_path
    from zoo.reading import read
    from zoo.sampling.engines import choose

    try:
        folder = preset_path(args.model)
    except FileNotFoundError as exc:
        _fail(f"{exc}; train a recognizer with `python -m zoo train recognizer --data DIR --out RUN`")
    lines = [ln for path in args.files for ln in _offsets_in(path)]
    if choose(folder, args.backend) == "onnx":  # numpy + onnxruntime only: no TensorFlow import
        from export import runtime

        reader = runtime.load(folder)
    else:
        from zoo.presets import from_preset

        reader = from_preset(folder)
    if getattr(reader, "task", None) != "recognition" and getattr(reader, "kind", None) != "recognition":
        _fail(f"{args.model} is not a recognizer; read with --model {DEFAULT_RECOGNIZER} or another recognizer preset")
    for text in read(reader, lines, beam_width=args.beam, backend=args.backend):
        print(text)


def add_parsers(sub) -> None:
    from zoo.sampling.driver import REWRITES, WRITE_BIAS  # numpy only: the parser stays light

    s = sub.add_parser("write", help="write text by hand with a synthesis model, to SVG or PNG")
    s.add_argument("text", nargs="*", help="the text; long text is wrapped into lines of --width characters")
    s.add_argument("--file", help="read the text from this UTF-8 file (one paragraph per line)")
    s.add_argument("--model", default=DEFAULT_WRITER, help="synthesis preset name or folder (default: %(default)s)")
    s.add_argument("--bias", type=_sampling_bias, default=WRITE_BIAS, help="sampling bias b >= 0 of eq. 61-62: 0 varied (scribbles more), 1-2 neat (default: %(default)s)")
    style = s.add_mutually_exclusive_group()
    style.add_argument("--style", help="a named style stored with the preset (primed sampling, sec. 5.5); default: the preset's default style, the most legible (iam-synthesis: none, unprimed; iam-synthesis-small: a06-014-05); 'none': unprimed")
    style.add_argument("--prime-line", help="prime with this IAM-OnDB line id (needs --data)")
    s.add_argument("--data", help="IAM-OnDB folder or cache, for --prime-line")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--rewrites", type=_rewrite_count, default=REWRITES,
                   help="write a line again with new noise when it loops on one letter or runs to the step cap, up to N times (default: %(default)s; 0: never)")
    s.add_argument("--count", type=_positive_int, default=1, help="versions of each line")
    s.add_argument("--width", type=_positive_int, default=60, help="wrap lines at this many characters (default: %(default)s)")
    s.add_argument("--substitute", action="store_true", help="replace characters the model does not know instead of failing")
    s.add_argument("--alignment", help="also save the window alignment of the first line (Fig. 13) to this PNG (or .svg, .pdf)")
    s.add_argument("--out", required=True, help="FILE.svg or FILE.png")
    s.add_argument("--backend", choices=["auto", "keras", "onnx"], default="auto", help="auto: onnxruntime when the preset carries a current ONNX export, else Keras")
    s.add_argument("--precision", choices=["float32", "int8"], default="float32", help="int8: onnxruntime's int8 graphs (zoo export --int8), faster, approximate")
    s.set_defaults(func=cmd_write)

    s = sub.add_parser("read", help="read handwriting back to text with a recognizer (SVGs written by zoo write/sample, .npy/.npz offsets)")
    s.add_argument("files", nargs="+", help="FILE.svg written by `zoo write`/`zoo sample`, FILE.npy ((N, 3) or (K, N, 3) pen offsets) or FILE.npz (one array per line)")
    s.add_argument("--model", default=DEFAULT_RECOGNIZER, help="recognizer preset name or folder (default: %(default)s)")
    s.add_argument("--beam", type=_beam_width, default=0, help="CTC beam search of this many prefixes (default: 0, greedy decoding)")
    s.add_argument("--backend", choices=["auto", "keras", "onnx"], default="auto", help="auto: onnxruntime when the preset carries a current ONNX export, else Keras")
    s.set_defaults(func=cmd_read)
