"""`zoo export`: a preset to ONNX (step + whole sampling loop) and/or SavedModel."""

from __future__ import annotations

import json
import os
import time


def cmd_export(args) -> None:
    """Export a preset: model.onnx (one sampling step), loop.onnx (the whole sampling loop, noise as an input)
    and saved_model/ (log-likelihood, step and sampler signatures); metadata.json records the export."""
    from export import export_model

    formats = ("onnx", "saved_model") if args.format == "all" else (args.format,)
    t0 = time.time()
    entry = export_model(args.model, args.out, formats=formats, opset=args.opset, int8=args.int8)
    files = sorted(f for f in os.listdir(args.out) if f.endswith(".onnx") or f == "saved_model")
    print(json.dumps({"out": args.out, "kind": entry["runtime"]["kind"], "files": files, "seconds": round(time.time() - t0, 1)}))


def add_parsers(sub) -> None:
    s = sub.add_parser("export", help="export a model to ONNX (step + whole sampling loop) and/or SavedModel", description=cmd_export.__doc__)
    s.add_argument("--model", required=True, help="preset name or folder")
    s.add_argument("--format", choices=["saved_model", "onnx", "all"], default="all", help="what to write (default: %(default)s)")
    s.add_argument("--out", required=True, help="folder to write into; the preset's own folder adds the export to the preset")
    s.add_argument("--opset", type=int, help="ONNX opset (default: export.onnx.OPSET)")
    s.add_argument("--int8", action="store_true", help="also write int8 copies of the ONNX graphs (loop.int8.onnx, model.int8.onnx) for --precision int8")
    s.set_defaults(func=cmd_export)
