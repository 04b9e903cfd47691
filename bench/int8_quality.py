"""How close the int8 graphs (``zoo export --int8``) are to the float ones, on real data.

Handwriting presets: real IAM-OnDB validation lines teacher-forced through the
step graph (``model.onnx`` and ``model.int8.onnx``) side by side: the mixture
parameters' largest and mean differences and the log-likelihood of the lines
(nats per line over normalised offsets, as the presets' cards report it),
float vs int8. Text presets:
bits per character of a text (default: the PTB character test set) through
both step graphs, state carried, 32 streams in parallel.

    python bench/int8_quality.py --data cache/iam-ondb.npz --text /work/shared/data/ptb/ptb.char.test.txt
    python bench/int8_quality.py --models iam-prediction --json
    python bench/int8_quality.py --models /tmp/syn-export --lines 4 --max-points 50   # any folder exported with --int8

A preset without a current export (missing, or of an older format) is skipped
with the command that makes one.

Needs numpy and onnxruntime (and the repo's numpy-only data readers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from export import runtime  # noqa: E402
from zoo.data.offsets import normalize, start_input  # noqa: E402
from zoo.sampling.driver import encode_lines  # noqa: E402

PARAMS = ("eos", "pi", "mu1", "mu2", "sigma1", "sigma2", "rho")


def _nll(p: dict, target: np.ndarray) -> np.ndarray:
    """Per-point negative log-likelihood (B,) of normalised targets (B, 3) under the step's mixture."""
    x1, x2, e = target[:, :1], target[:, 1:2], target[:, 2]
    z1, z2 = (x1 - p["mu1"]) / p["sigma1"], (x2 - p["mu2"]) / p["sigma2"]
    one_minus = 1.0 - p["rho"] ** 2
    log_n = -np.log(2 * np.pi * p["sigma1"] * p["sigma2"] * np.sqrt(one_minus)) - (z1**2 + z2**2 - 2 * p["rho"] * z1 * z2) / (2 * one_minus)
    a = np.log(p["pi"] + 1e-30) + log_n
    top = a.max(-1)
    log_mix = top + np.log(np.sum(np.exp(a - top[:, None]), axis=-1))
    log_eos = np.where(e > 0.5, np.log(p["eos"].reshape(-1) + 1e-8), np.log(1 - p["eos"].reshape(-1) + 1e-8))
    return -(log_mix + log_eos)


def handwriting_quality(folder: str, data, lines: int, max_points: int) -> dict:
    sessions = {p: runtime.load(folder, precision=p) for p in ("float32", "int8")}
    model = sessions["float32"]
    from zoo.data.cache import VALIDATION_SPLIT

    idx = data.split_indices(VALIDATION_SPLIT)[:lines]
    raw = [data.line(int(i))[:max_points] for i in idx]
    count, steps = len(raw), max(len(r) for r in raw)
    x = np.zeros((count, steps + 1, 3), np.float32)
    mask = np.zeros((count, steps), np.float32)
    x[:, 0] = start_input(count, model.offset_mean, model.offset_std)
    for b, r in enumerate(raw):
        x[b, 1 : len(r) + 1] = normalize(r, model.offset_mean, model.offset_std)
        mask[b, : len(r)] = 1
    extra = {}
    if model.alphabet is not None:  # a synthesis model reads the lines' text
        _, extra["text"] = encode_lines(model.alphabet, [data.texts[int(i)] for i in idx], substitute=True)
    noise, bias = np.full((count, 4), 0.5, np.float32), np.float32(0.0)
    states = {p: s.zero_state(count) for p, s in sessions.items()}
    nll = {p: np.zeros(count) for p in sessions}
    diff_max = {k: 0.0 for k in PARAMS}
    diff_sum = {k: 0.0 for k in PARAMS}
    for t in range(steps):
        outs = {}
        for p, s in sessions.items():
            out = s.step(x[:, t], states[p], noise, bias, **extra)
            states[p] = {k: out[f"{k}_next"] for k in states[p]}
            nll[p] += _nll(out, x[:, t + 1]) * mask[:, t]
            outs[p] = out
        m = mask[:, t] > 0
        for k in PARAMS:
            d = np.abs(outs["float32"][k] - outs["int8"][k])[m]
            diff_max[k] = max(diff_max[k], float(d.max()))
            diff_sum[k] += float(d.reshape(int(m.sum()), -1).mean(-1).sum())
    n_points = float(mask.sum())
    ll = {p: float(-v.sum() / count) for p, v in nll.items()}  # normalised offsets, as the presets' cards
    return {
        "lines": count,
        "points": int(n_points),
        "log_likelihood_nats_per_line": {p: round(v, 2) for p, v in ll.items()},
        "log_likelihood_diff_nats_per_line": round(ll["int8"] - ll["float32"], 3),
        "log_likelihood_diff_percent": round(100 * (ll["int8"] - ll["float32"]) / abs(ll["float32"]), 3),
        "param_max_abs_diff": {k: round(v, 4) for k, v in diff_max.items()},
        "param_mean_abs_diff": {k: round(v / n_points, 5) for k, v in diff_sum.items()},
    }


def text_quality(folder: str, path: str, symbols: int, streams: int = 32) -> dict:
    from zoo.data.text import read_corpus

    sessions = {p: runtime.load(folder, precision=p) for p in ("float32", "int8")}
    model = sessions["float32"]
    ids = model.vocabulary.encode(read_corpus(path, model.vocabulary.level))[: symbols + 1]
    per = (len(ids) - 1) // streams
    x = np.stack([ids[s * per : s * per + per + 1] for s in range(streams)]).astype(np.int32)  # (streams, per + 1)
    states = {p: s.zero_state(streams) for p, s in sessions.items()}
    nats = {p: 0.0 for p in sessions}
    logit_diff, agree = 0.0, 0
    u = np.full(streams, 0.5, np.float32)
    for t in range(per):
        outs = {}
        for p, s in sessions.items():
            out = s.step(x[:, t], states[p], u, 1.0)
            states[p] = {k: out[f"{k}_next"] for k in states[p]}
            logits = out["logits"].astype(np.float64)
            logz = np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1)) + logits.max(-1)
            nats[p] += float(np.sum(logz - logits[np.arange(streams), x[:, t + 1]]))
            outs[p] = logits
        logit_diff = max(logit_diff, float(np.abs(outs["float32"] - outs["int8"]).max()))
        agree += int(np.sum(outs["float32"].argmax(-1) == outs["int8"].argmax(-1)))
    n = per * streams
    bpc = {p: v / n / np.log(2) for p, v in nats.items()}
    return {
        "symbols": n,
        "bits_per_char": {p: round(v, 4) for p, v in bpc.items()},
        "bpc_diff": round(bpc["int8"] - bpc["float32"], 4),
        "logits_max_abs_diff": round(logit_diff, 4),
        "argmax_agreement": round(agree / n, 4),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="iam-prediction,iam-synthesis,iam-synthesis-small,ptb-char-small", help="presets or exported folders (with int8 graphs)")
    p.add_argument("--data", default="cache/iam-ondb.npz", help="IAM-OnDB cache or folder (handwriting)")
    p.add_argument("--lines", type=int, default=64, help="validation lines (default: %(default)s)")
    p.add_argument("--max-points", type=int, default=700, help="points per line at most (default: %(default)s)")
    p.add_argument("--text", default="/work/shared/data/ptb/ptb.char.test.txt", help="text file (text models)")
    p.add_argument("--symbols", type=int, default=50000, help="symbols of the text (default: %(default)s)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results, data = {}, None
    for name in [n for n in args.models.split(",") if n]:
        try:
            sampler = runtime.load(name)
        except runtime.ExportNotFound as exc:  # no export, or one of an older format than this runtime drives
            folder = name if os.path.isdir(name) else os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models", name)
            print(f"{name}: skipped ({str(exc).split('; ')[0]}); make a current export with int8 graphs: python -m zoo export --model {name} --format all --int8 --out {folder}", file=sys.stderr)
            continue
        if not runtime.has_onnx(sampler.folder, "int8"):
            print(f"{name}: no int8 graphs; make them with python -m zoo export --model {name} --format all --int8 --out {sampler.folder}", file=sys.stderr)
            continue
        if sampler.info["kind"] == "text":
            results[name] = text_quality(sampler.folder, args.text, args.symbols)
        else:
            if data is None:
                from zoo.data.cache import load_handwriting

                data = load_handwriting(args.data)
            results[name] = handwriting_quality(sampler.folder, data, args.lines, args.max_points)
        if not args.json:
            print(name, json.dumps(results[name], indent=1))
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
