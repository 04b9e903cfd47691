"""The handwriting web page (export/web/, served by `zoo serve`) in a real headless Chromium.

`zoo serve` runs in a subprocess on 127.0.0.1 (a free port); Playwright drives
Debian's Chromium (no browser download: ``executable_path``). The page runs
the shipped iam-synthesis preset's loop.onnx with onnxruntime-web in a Web
Worker. These tests type text, wait for the drawing, check its paths and the
downloads, the unknown-character message and its substitution, and the parity
of the page's pen offsets with the numpy + onnxruntime sampler for the same
noise. They need `npm ci` in export/web (.ci/run does it) and skip only when no
Chromium can be found (set ZOO_CHROMIUM to a browser's path).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from conftest import REPO
from export.runtime import load
from zoo.cli.common import DEFAULT_WRITER
from zoo.cli.writing import page_lines
from zoo.presets import default_style, preset_path
from zoo.render.svg import offsets_to_strokes, read_svg_offsets
from zoo.sampling import driver

PRESET = DEFAULT_WRITER  # what `zoo serve` serves unless told otherwise: the page users open
WRAP_WIDTH = 60  # zoo write --width's default, which /preset.json also carries (checked below)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The same offsets within this many of the model's normalised units (offset / offset_std): a
# thousandth of a percent of a typical pen movement. Not bit for bit: onnxruntime-web's wasm
# kernels round differently from the native ones (last-bit differences per step, carried through
# the recurrent state), as native onnxruntime's own graph optimisations do (README, "In the browser").
PARITY_TOLERANCE = 1e-4


def find_chromium() -> str | None:
    """$ZOO_CHROMIUM, else a Chromium or Chrome on the PATH (Debian's package installs /usr/bin/chromium)."""
    if os.environ.get("ZOO_CHROMIUM"):
        return os.environ["ZOO_CHROMIUM"]
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found: `apt-get install chromium` (Debian) or set ZOO_CHROMIUM to a Chromium/Chrome binary"
)


def zoo_serve(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("ZOO_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", "serve", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def server():
    """`zoo serve` on a free port of 127.0.0.1: its URL."""
    proc = zoo_serve("--model", PRESET, "--host", "127.0.0.1", "--port", "0")
    line = proc.stdout.readline()  # the server prints its URL once it listens
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if not match:
        proc.kill()
        pytest.fail(f"zoo serve did not start: {line}{proc.stderr.read()}")
    yield match.group(0)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def page(server):
    """The page, opened once, its model loaded; tests set the controls they use."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 800})
        tab = context.new_page()
        errors = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(server + "?speed=6")  # speed 6: draw at once
        tab.wait_for_function("window.zooPage && ['ready', 'error'].includes(zooPage.state)", timeout=60_000)
        assert tab.evaluate("zooPage.state") == "ready", tab.evaluate("zooPage.error")
        assert tab.eval_on_selector("#style", "el => el.value") == (default_style(preset_path(PRESET)) or "")  # as zoo write
        yield tab
        assert not errors, errors
        browser.close()


@pytest.fixture(scope="module")
def python_writer():
    return load(PRESET)


def set_substitute(page, on: bool) -> None:
    """The substitute checkbox, which the page shows only while the text has characters the model cannot write."""
    page.eval_on_selector("#substitute", "(el, on) => { el.checked = on; el.dispatchEvent(new Event('change')); }", on)


def write(page, text: str, style: str = "", bias: float = 0.75, seed: int = 0, noise: np.ndarray | None = None, substitute: bool = False,
          max_dwell: int | None = None) -> dict:
    """Type the text, set the controls, press Write and wait for the drawing to finish; the page's result."""
    page.fill("#text", "")
    page.locator("#text").press_sequentially(text)
    page.select_option("#style", style)
    page.fill("#seed", str(seed))
    page.eval_on_selector("#bias", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", str(bias))
    set_substitute(page, substitute)
    if noise is not None:
        page.evaluate("([values, steps, count, maxDwell]) => zooPage.useNoise(values, steps, count, maxDwell)",
                      [noise.ravel().tolist(), noise.shape[0], noise.shape[1], max_dwell])
    page.click("#write")
    page.wait_for_function("['done', 'error'].includes(zooPage.state)", timeout=60_000)
    result = page.evaluate("({state: zooPage.state, error: zooPage.error, lines: zooPage.lines, offsets: zooPage.offsets, timings: zooPage.timings, attempts: zooPage.attempts})")
    assert result["state"] == "done", result["error"]
    result["offsets"] = [np.asarray(line, np.float32).reshape(-1, 3) for line in result["offsets"]]
    return result


def test_serve_gives_the_preset_as_the_page_needs_it(server, python_writer):
    """/preset.json is made from the preset (never copied by hand), and `zoo write`'s defaults come with it."""
    import urllib.request

    with urllib.request.urlopen(server + "preset.json") as response:
        config = json.load(response)
    assert config["alphabet"] == python_writer.alphabet.chars
    assert config["offset_mean"] == python_writer.offset_mean.tolist() and config["offset_std"] == python_writer.offset_std.tolist()
    assert (config["wrap_width"], config["bias"], config["max_steps_per_char"]) == (WRAP_WIDTH, driver.WRITE_BIAS, 40)
    assert (config["rewrites"], config["max_dwell"]) == (driver.REWRITES, driver.MAX_DWELL)
    assert {s["name"] for s in config["styles"]} == set(python_writer.styles)
    assert config["default_style"] == python_writer.default_style == default_style(preset_path(PRESET))  # zoo write's, selected on opening
    style = config["styles"][0]
    np.testing.assert_array_equal(np.asarray(style["offsets"], np.float32), python_writer.styles[style["name"]][0])
    for path in ("model/loop.onnx", "ort/ort-wasm-simd-threaded.wasm"):
        with urllib.request.urlopen(server + path) as response:
            assert len(response.read()) > 100_000
    with pytest.raises(urllib.error.HTTPError):  # only the page's files and the preset's graphs are served
        urllib.request.urlopen(server + "../README.md")
    # Serving reads files: no TensorFlow in the server's process.
    check = "import sys; from zoo.cli.serve import page_config; page_config(sys.argv[1], 'x'); assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", check, os.path.join(REPO, "saved_models", PRESET)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_types_a_sentence_draws_it_and_downloads_it(page, tmp_path):
    text = "A quick brown fox"
    result = write(page, text, seed=3)
    assert result["lines"] == page_lines(text, WRAP_WIDTH)
    (offsets,) = result["offsets"]
    assert 20 < len(offsets) <= 40 * len(text) and offsets[-1, 2] == 1.0  # stopped in time, the pen lifted at the end
    strokes = offsets_to_strokes(offsets)
    paths = page.eval_on_selector_all("#drawing path", "paths => paths.map(p => p.getAttribute('d'))")
    assert len(paths) == len(strokes) > 3
    for d, stroke in zip(paths, strokes):
        assert d.startswith("M") and len(re.findall(r"-?\d+\.\d,-?\d+\.\d", d)) == max(len(stroke), 1)
    assert "pen points" in page.inner_text("#status")

    # The same seed writes the same strokes; another seed, others.
    again = write(page, text, seed=3)["offsets"][0]
    np.testing.assert_array_equal(again, offsets)
    assert not np.array_equal(write(page, text, seed=4)["offsets"][0][:20], offsets[:20])
    write(page, text, seed=3)

    with page.expect_download() as info:
        page.click("#download-svg")
    svg = tmp_path / info.value.suggested_filename
    info.value.save_as(svg)
    assert svg.name == "handwriting.svg"
    root = ET.parse(svg).getroot()
    assert len([n for n in root.iter() if n.tag.endswith("path")]) == len(strokes)
    (read_back,) = read_svg_offsets(str(svg))  # `zoo read` reads a downloaded page as it reads `zoo write`'s SVGs
    np.testing.assert_allclose(read_back, offsets, atol=0.006)

    with page.expect_download() as info:
        page.click("#download-png")
    assert info.value.suggested_filename == "handwriting.png"
    info.value.save_as(tmp_path / "handwriting.png")
    png = (tmp_path / "handwriting.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (2 * int(root.get("width")), 2 * int(root.get("height")))


def test_the_pen_is_drawn_as_it_moved_and_the_page_stays_responsive(page):
    """At 200 points per second the strokes appear over time; the main thread answers while the worker samples."""
    page.eval_on_selector("#speed", "el => { el.value = 2; el.dispatchEvent(new Event('input')); }")
    try:
        page.fill("#text", "Hello")
        page.click("#write")
        assert page.evaluate("zooPage.state") in ("writing", "drawing")  # answered at once: sampling is off the main thread
        page.wait_for_function("zooPage.state === 'drawing' && document.querySelectorAll('#drawing path').length > 0", timeout=60_000)
        early = page.evaluate("document.querySelector('#drawing').innerHTML.length")
        page.wait_for_timeout(300)
        later = page.evaluate("document.querySelector('#drawing').innerHTML.length")
        assert later > early
        page.wait_for_function("zooPage.state === 'done'", timeout=60_000)
        assert page.evaluate("document.querySelector('#drawing').innerHTML.length") >= later
    finally:
        page.eval_on_selector("#speed", "el => { el.value = 6; el.dispatchEvent(new Event('input')); }")


def test_unknown_characters_are_shown_before_sampling_with_the_offer_to_substitute(page, python_writer):
    text = "Café über 5€"
    alphabet = python_writer.alphabet
    set_substitute(page, False)
    page.fill("#text", text)
    assert page.is_visible("#unknown")
    message = page.inner_text("#unknown-message")
    for c in alphabet.unknown(text):  # é, ü, €
        assert f"“{c}”" in message
    assert page.is_disabled("#write")  # nothing is sampled until the text is changed or substitution chosen

    page.set_checked("#substitute", True)
    assert "written as their other case, or as a space" in page.inner_text("#unknown-message")
    assert page.is_enabled("#write")
    result = write(page, text, substitute=True)
    assert result["lines"] == [text]
    page.fill("#text", "Plain words")
    assert page.is_hidden("#unknown")

    # The page's alphabet and wrapping mirror Alphabet and zoo write's page_lines, character for character.
    cases = ["Ästhetik ÀÉ ß ǅ İ 𝒜 ok", "naïve Œuvre — “quotes” ½", text]
    mirrored = page.evaluate(
        """async ([chars, cases]) => {
            const { Alphabet } = await import('/writing.js');
            const a = new Alphabet(chars);
            return cases.map((t) => [a.unknown(t), a.substitute(t)]);
        }""",
        [alphabet.chars, cases],
    )
    assert mirrored == [[alphabet.unknown(t), alphabet.substitute(t)] for t in cases]
    # ... and its rewrites mirror the driver's: the same dwell on the same window, the same seeds.
    phis = np.random.default_rng(1).random((40, 3, 9)).astype(np.float32)
    phis[5:30, 1, 4] = 2.0  # line 1 stays on character 4 for 25 steps
    dwell = page.evaluate(
        """async ([phis, cases]) => {
            const { longestDwell, rewriteSeed } = await import('/writing.js');
            const data = Float32Array.from(phis);
            return [cases.map(([b, end, length]) => longestDwell(data, 3, 9, b, end, length)),
                    [[0, 0], [5, 1], [4294967295, 2]].map(([s, a]) => rewriteSeed(s, a))];
        }""",
        [phis.ravel().tolist(), [[0, 40, 8], [1, 40, 8], [1, 20, 5], [2, 0, 8], [2, 13, 1]]],
    )
    assert dwell[0] == [driver.longest_dwell(phis[:end, b], length) for b, end, length in [[0, 40, 8], [1, 40, 8], [1, 20, 5], [2, 0, 8], [2, 13, 1]]]
    assert dwell[0][1] >= 25 and dwell[0][3] == 0
    assert dwell[1] == [driver.rewrite_seed(s, a) for s, a in [[0, 0], [5, 1], [4294967295, 2]]]
    paragraphs = ["ab efghij", "Hello   world\n\nsecond\tline  here\r\nthird", " x\u00a0y \u2028z  ", "a b c d e f g", "word " * 30 + "x" * 130]
    for width in (3, 8, WRAP_WIDTH):
        wrapped = page.evaluate(
            "async ([texts, width]) => { const { pageLines } = await import('/writing.js'); return texts.map((t) => pageLines(t, width)); }",
            [paragraphs, width],
        )
        assert wrapped == [page_lines(t, width) for t in paragraphs]


def _max_normalised_difference(page_lines_offsets, python_offsets, std) -> float:
    assert [len(o) for o in page_lines_offsets] == [len(o) for o in python_offsets]  # every line stopped at the same step
    worst = 0.0
    for ours, theirs in zip(page_lines_offsets, python_offsets):
        np.testing.assert_array_equal(ours[:, 2], theirs[:, 2])  # the same pen-ups
        worst = max(worst, float((np.abs(ours[:, :2] - theirs[:, :2]) / std).max()))
    return worst


@pytest.mark.parametrize(
    "text, style_index, bias, seed, max_dwell",
    [
        ("Hello world\nthe sea was calm", None, 0.75, 1, None),  # two lines sampled together in one batch
        # Primed with a stored style through the step graph; with a longest dwell of 1 every try
        # fails, so each line is written three times (its primed state sliced) and the first is kept.
        ("Graves wrote this", 0, 1.0, 7, 1),
    ],
)
def test_page_writes_what_the_numpy_onnxruntime_sampler_writes_for_the_same_noise(page, python_writer, text, style_index, bias, seed, max_dwell):
    style = sorted(python_writer.styles)[style_index] if style_index is not None else None
    lines = page_lines(text, WRAP_WIDTH)
    texts = [f"{python_writer.styles[style][1]} {t}" for t in lines] if style else lines
    ids, _ = driver.encode_lines(python_writer.alphabet, texts)
    caps = driver.line_caps([len(i) for i in ids], python_writer.styles[style] if style else None, 40)
    noise = driver.sampling_noise(int(caps.max()), len(lines), seed)  # what driver.write draws for this seed
    expected = python_writer.write(lines, bias=bias, seed=seed, style=style or "none", **({"max_dwell": max_dwell} if max_dwell else {}))
    result = write(page, text, style=style or "", bias=bias, noise=noise, max_dwell=max_dwell)
    assert result["lines"] == lines
    assert result["attempts"] == ([1] * len(lines) if max_dwell is None else [1 + driver.REWRITES] * len(lines))
    worst = _max_normalised_difference(result["offsets"], expected, python_writer.offset_std)
    assert worst <= PARITY_TOLERANCE, f"the page's offsets differ from Python's by {worst:.2e} of offset_std"


def test_serve_refuses_a_bad_preset_or_a_busy_port_in_one_line():
    bad = zoo_serve("--model", "no-such-preset", "--port", "0")
    _, err = bad.communicate(timeout=60)
    assert bad.returncode != 0 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and "no preset 'no-such-preset'" in err

    prediction = zoo_serve("--model", "iam-prediction", "--port", "0")
    _, err = prediction.communicate(timeout=60)
    assert prediction.returncode != 0 and "Traceback" not in err and "needs a synthesis preset" in err

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = zoo_serve("--port", str(port))
        _, err = busy.communicate(timeout=60)
    assert busy.returncode != 0 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and f"port {port} on 127.0.0.1 is busy" in err
