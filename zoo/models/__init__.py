"""One model per file; importing this package registers them with Keras."""

from zoo.models.predictor import HandwritingPredictor

__all__ = ["HandwritingPredictor"]
