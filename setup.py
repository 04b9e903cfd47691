"""The one build step pyproject.toml cannot say: the default presets go into the wheel.

saved_models/ stays at the top of the repository; building copies the files that
`zoo write`, `zoo sample` and `zoo read` need of the presets in PACKAGED into the
package as zoo/_presets/NAME/ (read with importlib.resources by zoo.hub). The
SavedModel folders stay out (they are in the release archives, `zoo publish`).
A preset missing from saved_models/ (a recognizer not trained yet) is skipped.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
PACKAGED = ("iam-synthesis", "iam-prediction", "iam-recognizer")
FILES = (
    "config.json", "metadata.json", "README.md", "model.weights.h5", "styles.npz",
    "model.onnx", "loop.onnx", "model.int8.onnx", "loop.int8.onnx",
)


class BuildPyWithPresets(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's saved_models/ directly
        for name in PACKAGED:
            source = os.path.join(ROOT, "saved_models", name)
            if not os.path.isfile(os.path.join(source, "config.json")):
                print(f"note: saved_models/{name} is absent: not packaged (it can still be downloaded)")
                continue
            target = os.path.join(self.build_lib, "zoo", "_presets", name)
            shutil.rmtree(target, ignore_errors=True)
            os.makedirs(target)
            for f in FILES:
                if os.path.isfile(os.path.join(source, f)):
                    shutil.copyfile(os.path.join(source, f), os.path.join(target, f))


setup(cmdclass={"build_py": BuildPyWithPresets})
