"""A text model as a compressor: bits per character against bzip2 and xz, side by side.

    python bench/text_compression.py --model runs/ptb-char-cpu/preset \
        --text-file ../shared/data/ptb/ptb.char.test.txt [--dynamic-lr 0.3] [--json]

The compressors see the same text the model scores (PTB's character files
with spaces restored) and use no training data; the model's figure is its
log-loss in bits per character, i.e. the size an arithmetic coder driven by
it would reach. zpaq is used when installed (`zpaq` on PATH), else left out.
"""

from __future__ import annotations

import argparse
import bz2
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def compressor_bpc(text: str) -> dict:
    data = text.encode("utf-8")
    n = len(text)
    out = {
        "bzip2 -9": len(bz2.compress(data, 9)) * 8 / n,
        "xz -9e": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)) * 8 / n,
    }
    if shutil.which("zpaq"):
        with tempfile.TemporaryDirectory() as tmp:
            src, arc = os.path.join(tmp, "text"), os.path.join(tmp, "text.zpaq")
            with open(src, "wb") as f:
                f.write(data)
            subprocess.run(["zpaq", "a", arc, src, "-m5"], check=True, capture_output=True)
            out["zpaq -m5"] = os.path.getsize(arc) * 8 / n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="text preset name or folder")
    ap.add_argument("--text-file", required=True)
    ap.add_argument("--dynamic-lr", type=float, default=0.3)
    ap.add_argument("--no-dynamic", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from zoo.data.text import read_corpus
    from zoo.evaluation import evaluate_text
    from zoo.presets import from_preset

    model = from_preset(args.model)
    text = read_corpus(args.text_file, "char")
    rows = {name: {"bpc": v, "seconds": None} for name, v in compressor_bpc(text).items()}
    ids = model.vocabulary.encode("\n" + text)
    t0 = time.time()
    static = evaluate_text(model, ids, progress=not args.json)
    rows["LSTM, static"] = {"bpc": static["bpc_static"], "seconds": round(time.time() - t0, 1)}
    if not args.no_dynamic:
        t0 = time.time()
        dynamic = evaluate_text(model, ids, dynamic=True, learning_rate=args.dynamic_lr, progress=not args.json)
        rows[f"LSTM, dynamic (lr {args.dynamic_lr:g})"] = {"bpc": dynamic["bpc_dynamic"], "seconds": round(time.time() - t0, 1)}
    base = rows["bzip2 -9"]["bpc"]
    if args.json:
        print(json.dumps({"characters": len(text), "unknown": static["unknown_symbols"], "rows": rows}, indent=1))
        return
    print(f"{len(text):,} characters of {os.path.basename(args.text_file)} ({static['unknown_symbols']} outside the model's vocabulary)")
    print(f"{'coder':<28}{'bits/char':>10}{'vs bzip2':>10}{'seconds':>10}")
    for name, row in rows.items():
        secs = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        print(f"{name:<28}{row['bpc']:>10.3f}{row['bpc'] / base:>10.2f}{secs:>10}")


if __name__ == "__main__":
    main()
