"""Handwriting in the browser: the exported sampling loop on onnxruntime-web in headless Chromium,
next to Python's onnxruntime on the same graphs, and the page's load time.

For each model, `python -m zoo serve --model M` serves the page (export/web/) on
a free port of 127.0.0.1 and Debian's Chromium opens it headless (Playwright,
no browser download). Measured side by side in one run, batch 1:

- **Chromium**: ms per pen point of the page's whole-loop graph (``loop.onnx``,
  onnxruntime-web's wasm backend, one thread, in the page's Web Worker): the
  page's own timing of ``session.run`` (``zooPage.timings.loopMs``) divided by
  the steps the loop ran, writing ``TEXT`` at bias 0.75 with numpy's noise for
  seed 0 (given through the page's test hook), best of ``--repeats``;
- **Python onnxruntime**: the same graph with the same inputs
  (``export.runtime.SynthesisModel.strokes_loop``), with one intra-op thread
  (as the page) and with the runtime's default threads;
- **style prime**: ms per teacher-forced point of a stored style through the
  step graph (``model.onnx``), one ``session.run`` per point from JavaScript,
  against ``SynthesisModel.teacher_force`` (models with styles only);
- **load**: ms from opening ``/?text=Hello%20world`` in a fresh browser context
  (empty cache) to the first stroke drawn, and to the model being ready;
  median of ``--loads``.

Models: the shipped ``iam-synthesis`` (3 x 400, the paper's size) and, unless
``--no-small``, ``iam-synthesis-small`` (3 x 128).

    python bench/web_speed.py                     # table
    python bench/web_speed.py --json
    python bench/web_speed.py --screenshot docs/img/web-hello-world.png   # also the page writing "Hello world"

Timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

TEXT = "the quick brown fox jumps over the lazy dog"
BIAS = 0.75
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    for path in [os.environ.get("ZOO_CHROMIUM")] + [shutil.which(n) for n in CHROMIUM_NAMES]:
        if path:
            return path
    sys.exit("no Chromium found: `apt-get install chromium` (Debian) or set ZOO_CHROMIUM")


class Served:
    """`python -m zoo serve --model MODEL` on a free port of 127.0.0.1, for a `with` block."""

    def __init__(self, model: str):
        self.model = model

    def __enter__(self) -> str:
        env = {**os.environ, "PYTHONPATH": REPO}
        cmd = [sys.executable, "-m", "zoo", "serve", "--model", self.model, "--port", "0"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"http://\S+/", line)
        if not match:
            self.proc.kill()
            sys.exit(f"zoo serve --model {self.model} did not start: {line}{self.proc.stderr.read()}")
        return match.group(0)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def loop_inputs(sampler, text: str, seed: int = 0) -> dict:
    """What zoo.sampling.driver.write hands the loop graph for one line without a style."""
    import numpy as np

    from zoo.data.offsets import start_input
    from zoo.sampling import driver

    ids, padded = driver.encode_lines(sampler.alphabet, [text])
    caps = driver.line_caps([len(ids[0])], None, 40)
    noise = driver.sampling_noise(int(caps.max()), 1, seed)
    x = start_input(1, sampler.offset_mean, sampler.offset_std)
    return {"x": x, "state": sampler.zero_state(1), "noise": noise, "bias": np.float32(BIAS), "caps": caps, "text": padded}


def python_loop_ms(sampler, inputs: dict) -> tuple[float, int]:
    """(ms per step, steps run) of one run of the loop graph in Python's onnxruntime."""
    t0 = time.perf_counter()
    points, _, _ = sampler.strokes_loop(inputs["x"], inputs["state"], inputs["noise"], inputs["bias"], inputs["caps"], inputs["text"])
    seconds = time.perf_counter() - t0
    return 1e3 * seconds / points.shape[0], points.shape[0]


def python_prime_ms(sampler, style: str) -> float:
    """ms per teacher-forced point of ``style``'s prime through the step graph in Python (one run)."""
    import numpy as np

    from zoo.data.offsets import normalize, start_input
    from zoo.sampling import driver

    offsets, text = sampler.styles[style]
    _, padded = driver.encode_lines(sampler.alphabet, [f"{text} {TEXT}"])
    x = start_input(1, sampler.offset_mean, sampler.offset_std)
    primed = np.concatenate([x[:, None], normalize(offsets, sampler.offset_mean, sampler.offset_std)[None]], 1)[:, :-1]
    t0 = time.perf_counter()
    sampler.teacher_force(primed, sampler.zero_state(1), padded)
    return 1e3 * (time.perf_counter() - t0) / primed.shape[1]


def page_write(page, text: str, style: str = "", noise=None) -> dict:
    """Write ``text`` on the page (the noise given through its test hook) and return zooPage's result."""
    page.fill("#text", text)
    page.select_option("#style", style)
    page.eval_on_selector("#bias", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", str(BIAS))
    if noise is not None:
        page.evaluate("([v, s, c]) => zooPage.useNoise(v, s, c)", [noise.ravel().tolist(), noise.shape[0], noise.shape[1]])
    page.click("#write")
    page.wait_for_function("['done', 'error'].includes(zooPage.state)", timeout=300_000)
    result = page.evaluate("({state: zooPage.state, error: zooPage.error, steps: zooPage.steps, timings: zooPage.timings})")
    if result["state"] != "done":
        sys.exit(f"the page failed: {result['error']}")
    return result


def load_times(browser, url: str, loads: int, screenshot: str | None) -> dict:
    """Median ms from opening the page (fresh context, empty cache) with ?text=Hello world to the model ready and to the first stroke."""
    first, ready = [], []
    for i in range(loads):
        context = browser.new_context(viewport={"width": 1100, "height": 760}, device_scale_factor=1)
        page = context.new_page()
        page.goto(url + "?text=Hello%20world&bias=1")
        page.wait_for_function("zooPage.timings.firstStroke !== null || zooPage.state === 'error'", timeout=300_000)
        timings = page.evaluate("zooPage.timings")
        first.append(timings["firstStroke"])
        ready.append(timings["ready"])
        if screenshot and i == loads - 1:
            page.wait_for_function("zooPage.state === 'done'", timeout=300_000)
            page.screenshot(path=screenshot)
        context.close()
    return {"first_stroke_ms": statistics.median(first), "ready_ms": statistics.median(ready), "first_stroke_all_ms": first}


def bench_model(browser, name: str, folder: str, repeats: int, loads: int, screenshot: str | None) -> dict:
    """One model's row: each engine run once per round, ``repeats`` rounds after a warm-up round
    (interleaved, so that what else runs on the machine weighs on every engine alike), best taken."""
    from export import runtime

    threads = runtime.default_threads(os.path.join(folder, "loop.onnx"))
    samplers = {"python_1_thread": runtime.load(folder, threads=1)}
    if threads != 1:
        samplers["python_default_threads"] = runtime.load(folder)
    inputs = loop_inputs(samplers["python_1_thread"], TEXT)
    style = sorted(samplers["python_1_thread"].styles)[0] if samplers["python_1_thread"].styles else None
    times = {key: [] for key in [*samplers, "chromium", "chromium_prime", "python_prime"]}
    steps = {}
    with Served(folder) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "?speed=6")
        page.wait_for_function("['ready', 'error'].includes(zooPage.state)", timeout=300_000)
        for round_ in range(repeats + 1):  # round 0 warms every engine up and is not counted
            for key, sampler in samplers.items():
                ms, steps[key] = python_loop_ms(sampler, inputs)
                times[key].append(ms)
            result = page_write(page, TEXT, noise=inputs["noise"])
            times["chromium"].append(result["timings"]["loopMs"] / result["steps"])
            steps["chromium"] = result["steps"]
            if style:
                prime_points = len(samplers["python_1_thread"].styles[style][0])
                times["chromium_prime"].append(page_write(page, TEXT, style=style)["timings"]["primeMs"] / prime_points)
                times["python_prime"].append(python_prime_ms(samplers["python_1_thread"], style))
        context.close()
        loaded = load_times(browser, url, loads, screenshot)
    best = {key: min(values[1:]) for key, values in times.items() if len(values) > 1}
    row = {
        "model": name,
        "chromium_ms_per_point": best["chromium"],
        "chromium_steps": steps["chromium"],
        "python_ms_per_point_1_thread": best["python_1_thread"],
        "python_steps": steps["python_1_thread"],
        "python_default_threads": threads,
        "python_ms_per_point_default_threads": best.get("python_default_threads", best["python_1_thread"]),
        **loaded,
    }
    if style:
        row["chromium_prime_ms_per_point"], row["python_prime_ms_per_point"] = best["chromium_prime"], best["python_prime"]
    row["chromium_vs_python_1_thread"] = row["chromium_ms_per_point"] / row["python_ms_per_point_1_thread"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="loop runs timed per engine (best taken; default: %(default)s)")
    p.add_argument("--loads", type=int, default=3, help="page loads timed per model (median; default: %(default)s)")
    p.add_argument("--no-small", dest="small", action="store_false", help="time only the iam-synthesis preset (3 x 400)")
    p.add_argument("--screenshot", help="save the iam-synthesis page writing 'Hello world' to this PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()

    from playwright.sync_api import sync_playwright

    from zoo.presets import preset_path

    models = [("iam-synthesis (3x400)", preset_path("iam-synthesis"))]
    if args.small:
        models.append(("iam-synthesis-small (3x128)", preset_path("iam-synthesis-small")))
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True)
        for i, (name, folder) in enumerate(models):
            rows.append(bench_model(browser, name, folder, args.repeats, args.loads, args.screenshot if i == 0 else None))
        version = browser.version
        browser.close()
    import onnxruntime

    report = {"chromium": version, "onnxruntime": onnxruntime.__version__, "text": TEXT, "batch": 1, "rows": rows}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"Chromium {version} (onnxruntime-web, wasm, 1 thread) vs Python onnxruntime {onnxruntime.__version__}; batch 1, ms per pen point (loop.onnx)")
    print("| model | Chromium | Python, 1 thread | Python, default threads | Chromium / Python 1 thread | style prime per point: Chromium / Python | page load: ready / first stroke |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        prime = f"{r['chromium_prime_ms_per_point']:.3f} / {r['python_prime_ms_per_point']:.3f} ms" if "python_prime_ms_per_point" in r else "-"
        print(
            f"| {r['model']} | {r['chromium_ms_per_point']:.3f} ms ({r['chromium_steps']} steps) | {r['python_ms_per_point_1_thread']:.3f} ms ({r['python_steps']} steps) "
            f"| {r['python_ms_per_point_default_threads']:.3f} ms ({r['python_default_threads']} thread{'s' if r['python_default_threads'] > 1 else ''}) | {r['chromium_vs_python_1_thread']:.1f}x "
            f"| {prime} | {r['ready_ms']:.0f} / {r['first_stroke_ms']:.0f} ms |"
        )


if __name__ == "__main__":
    main()
