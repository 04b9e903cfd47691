"""gpu/slim.sh: the tree sent to a lent GPU machine keeps only the presets a run starts from, and comes back whole."""

import os
import shutil
import subprocess

import pytest

from conftest import REPO


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("git") is None or not os.path.isdir(os.path.join(REPO, ".git")), reason="needs git and a checkout")
def test_slim_keeps_the_init_preset_and_undo_restores_the_index(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-checkout", REPO, str(clone)], check=True)
    # A checkout of the code and two presets' small files is enough: the script works on the index.
    git("checkout", "-q", "HEAD", "--", "gpu", "saved_models/iam-synthesis-small/config.json", "saved_models/iam-prediction/config.json", cwd=clone)
    git("reset", "-q", cwd=clone)  # the index as a full checkout has it (the other files count as deleted on disk)
    shutil.copy(os.path.join(REPO, "gpu", "slim.sh"), clone / "gpu" / "slim.sh")  # the script as it is in this tree
    before_index, before_exclude = git("ls-files", cwd=clone), (clone / ".git/info/exclude").read_text()

    run = lambda *a: subprocess.run(["bash", "gpu/slim.sh", *a], cwd=clone, capture_output=True, text=True)  # noqa: E731
    assert run("no-such-preset").returncode == 2
    out = run("iam-synthesis-small")
    assert out.returncode == 0, out.stderr + out.stdout
    kept = set(git("ls-files", "--", "saved_models", "docs", cwd=clone).split())
    assert kept == {f"saved_models/iam-synthesis-small/{f}" for f in ("config.json", "metadata.json", "model.weights.h5", "styles.npz")}
    assert "/saved_models/iam-prediction/model.weights.h5" in (clone / ".git/info/exclude").read_text().split()
    assert git("ls-files", "--", "zoo/cli/common.py", cwd=clone).strip() == "zoo/cli/common.py"  # code still travels
    assert run("iam-synthesis-small").returncode == 2  # twice without --undo is refused

    out = run("--undo")
    assert out.returncode == 0, out.stderr
    assert git("ls-files", cwd=clone) == before_index and (clone / ".git/info/exclude").read_text() == before_exclude
