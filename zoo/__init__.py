"""A model zoo for Graves (2013), "Generating Sequences With Recurrent Neural Networks".

The package reads as the architecture: ``zoo.data`` (archives -> cache -> batches),
``zoo.layers`` and ``zoo.models`` (the equations), ``zoo.training`` (optimiser,
trainer), ``zoo.sampling`` and ``zoo.render`` (strokes -> pictures).
"""

import os

# TensorFlow's C++ start-up logging goes to stderr before Python can stop it;
# the variable must be set before TensorFlow is imported anywhere.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
