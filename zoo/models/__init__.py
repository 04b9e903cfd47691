"""One model per file; importing this package registers them with Keras."""

from zoo.models.language import LanguageModel
from zoo.models.predictor import HandwritingPredictor
from zoo.models.recognizer import HandwritingRecognizer
from zoo.models.synthesizer import HandwritingSynthesizer

__all__ = ["HandwritingPredictor", "HandwritingRecognizer", "HandwritingSynthesizer", "LanguageModel"]
