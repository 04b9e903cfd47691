"""Online handwriting recognizer: pen offsets -> text, trained with CTC.

The BLSTM-CTC recognizer of Graves et al. (2009, "A Novel Connectionist System
for Unconstrained Handwriting Recognition", TPAMI), here as the zoo's judge of
legibility: it reads the same (dx, dy, pen-up) offsets that the synthesis
network writes, with no timestamps, so real and synthesized lines are read
alike.

    strokes (B, T, 3)  --normalise-->  two strided 1-D convolutions (T -> T/4 frames)
                       -->  N bidirectional LSTM layers  -->  logits (B, T/4, 1 + C)

Class 0 is CTC's blank; classes 1..C are the characters of the alphabet (the
synthesis alphabet's ids). The loss is CTC's negative log-likelihood of the
transcription (Graves et al. 2006) summed over the alignments, per line, with
each line's own frame and label lengths (``keras.ops.ctc_loss``; not
``keras.losses.CTC``, which takes every sequence as full length).
"""

import keras
from keras import ops

from zoo.data import offsets
from zoo.data.alphabet import Alphabet


@keras.saving.register_keras_serializable("zoo")
class HandwritingRecognizer(offsets.NormalizedOffsets, keras.Model):
    """inputs (strokes (B, T, 3) normalised, lengths (B,)) -> logits (B, ceil(T / 4), 1 + C)."""

    task = "recognition"  # what zoo.data.pipeline.batches_for feeds it
    STRIDES = (2, 2)  # the convolutions' strides: one frame per 4 pen points (IAM-OnDB: ~20 points per character)

    def __init__(self, alphabet, units=128, num_layers=2, filters=64, kernel_size=5, dropout=0.0, offset_mean=(0.0, 0.0), offset_std=(1.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        self.alphabet = alphabet if isinstance(alphabet, Alphabet) else Alphabet(**alphabet)
        self.units = units
        self.num_layers = num_layers
        self.filters = filters
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.offset_mean = tuple(float(v) for v in offset_mean)
        self.offset_std = tuple(float(v) for v in offset_std)
        self.convs = [
            keras.layers.Conv1D(filters, kernel_size, strides=s, padding="valid", activation="relu", name=f"conv_{i + 1}")
            for i, s in enumerate(self.STRIDES)
        ]
        self.blstms = [
            keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True, dropout=dropout), name=f"blstm_{i + 1}")
            for i in range(num_layers)
        ]
        self.logits = keras.layers.Dense(len(self.alphabet) + 1, name="logits")

    @property
    def num_classes(self) -> int:
        return len(self.alphabet) + 1

    def build(self, input_shape=None):
        if self.built:
            return
        width = 3
        for conv in self.convs:
            conv.build((None, None, width))
            width = self.filters
        for blstm in self.blstms:
            blstm.build((None, None, width))
            width = 2 * self.units
        self.logits.build((None, None, width))
        self.built = True

    @classmethod
    def frame_lengths(cls, lengths):
        """Pen points per line -> frames per line after the strided convolutions (ceil(T / stride) each)."""
        for s in cls.STRIDES:
            lengths = (lengths + s - 1) // s
        return lengths

    def call(self, inputs, training=False):
        strokes, lengths = inputs
        frames = ops.cast(lengths, "int32")
        h = strokes * ops.cast(ops.arange(ops.shape(strokes)[1])[None, :] < frames[:, None], strokes.dtype)[..., None]
        for conv, s in zip(self.convs, self.STRIDES):
            # The same zeros on both sides whatever the batch's padded length ("same" padding would
            # shift a line's frames by one with the batch length): frame i sees points s*i - k//2 .. s*i + k//2;
            # frames past a line's end are zeroed, so a line reads the same alone or in any batch.
            h = conv(ops.pad(h, [[0, 0], [self.kernel_size // 2, (self.kernel_size - 1) // 2], [0, 0]]))
            frames = (frames + s - 1) // s
            mask = ops.arange(ops.shape(h)[1])[None, :] < frames[:, None]
            h = h * ops.cast(mask, h.dtype)[..., None]
        for blstm in self.blstms:
            h = blstm(h, mask=mask, training=training)
        return self.logits(h)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean over lines of CTC's -log Pr(text | strokes), each line with its own lengths. y: ids (B, U), 0 = padding."""
        frames = self.frame_lengths(ops.cast(x[1], "int32"))
        y = ops.cast(y, "int32")
        labels = ops.sum(ops.cast(y > 0, "int32"), axis=1)
        loss = ops.mean(ops.ctc_loss(y, y_pred, labels, frames, mask_index=0))
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "alphabet": self.alphabet.get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dropout": self.dropout,
            "offset_mean": list(self.offset_mean),
            "offset_std": list(self.offset_std),
        }
