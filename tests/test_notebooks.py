"""The Colab notebooks in colab/ run top to bottom outside Colab, and are stored without outputs.

Each notebook is executed with nbclient in a temporary folder, with
ZOO_NOTEBOOK_SMOKE=1 (tiny steps) and ZOO_DATA_DIR naming a small IAM-OnDB
copy: a few forms taken from the real archives when ZOO_DATA_DIR names them,
else forms written by the tests. Any cell error fails the test; the test is
skipped only when nbclient is missing or no Jupyter kernel can start here.
"""

from __future__ import annotations

import glob
import json
import os
import tarfile
import time

import pytest

from conftest import REPO, make_iam_folder, real_data_dir

NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "colab", "*.ipynb")))
CELL_TIMEOUT = 600  # seconds; the smoke runs take about a minute each on a busy 2-core machine


def test_colab_holds_the_three_notebooks():
    names = {os.path.basename(p) for p in NOTEBOOKS}
    assert {"quickstart.ipynb", "train_on_gpu.ipynb", "exported_inference.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_stored_without_outputs(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)  # plain JSON: no nbformat needed for this check
    assert nb["nbformat"] == 4
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{os.path.basename(path)} cell {i} has outputs: strip them"
            assert cell.get("execution_count") is None, f"{os.path.basename(path)} cell {i} has an execution count"
    assert "widgets" not in nb.get("metadata", {}), "widget state is saved: strip it"
    source = "".join("".join(c["source"]) for c in nb["cells"])
    assert "colab.research.google.com/github/" in "".join(nb["cells"][0]["source"]), "no Open in Colab badge first"
    assert 'REPO_URL = ""' not in source


def iam_subset(src: str, dst: str, per_split: dict) -> None:
    """A few forms of each split of the IAM-OnDB copy at ``src``, extracted into ``dst`` with their split lists."""
    chosen = {}
    for split, n in per_split.items():
        with open(os.path.join(src, "splits", f"{split}.txt")) as f:
            chosen[split] = [line.strip() for line in f if line.strip()][:n]
    forms = tuple(form for forms in chosen.values() for form in forms)
    os.makedirs(os.path.join(dst, "splits"), exist_ok=True)
    for split, names in chosen.items():
        with open(os.path.join(dst, "splits", f"{split}.txt"), "w") as f:
            f.write("".join(f" {form}\n" for form in names))
    for name in ("ascii", "lineStrokes"):
        with tarfile.open(os.path.join(src, f"{name}-all.tar.gz")) as tar:
            members = [m for m in tar if m.isfile() and os.path.basename(m.name).startswith(forms)]
            tar.extractall(dst, members=members, filter="data")


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    """A data root holding a small iam-ondb/ (real forms when the real copy is here)."""
    root = tmp_path_factory.mktemp("notebook-data")
    src = real_data_dir()
    if src and os.path.isfile(os.path.join(src, "lineStrokes-all.tar.gz")):
        iam_subset(src, str(root / "iam-ondb"), {"trainset": 6, "testset_v": 2, "testset_f": 2})
    else:
        make_iam_folder(str(root / "iam-ondb"), lines_per_form=4)
    return str(root)


@pytest.fixture(scope="module")
def kernel_name():
    """The Jupyter kernel the notebooks run on; skips when nbclient is missing or no kernel starts."""
    nbclient = pytest.importorskip("nbclient", reason="pip install -r requirements.txt (nbclient, nbformat, ipykernel)")
    pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    from jupyter_client.manager import start_new_kernel

    del nbclient
    try:
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    except Exception as exc:  # no kernelspec, no ports, no subprocesses...
        pytest.skip(f"a Jupyter kernel cannot start here: {type(exc).__name__}: {exc}")
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs_top_to_bottom(path, kernel_name, smoke_data, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {
        **os.environ,
        "ZOO_NOTEBOOK_SMOKE": "1",
        "ZOO_DATA_DIR": smoke_data,
        "PYTHONPATH": os.pathsep.join([REPO, *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MPLBACKEND": "Agg",
    }
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=CELL_TIMEOUT, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.time()
    client.execute(env=env)  # a cell error raises CellExecutionError with the cell and its traceback
    took = time.time() - start
    print(f"{os.path.basename(path)}: smoke run {took:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
