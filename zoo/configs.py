"""Named configurations: what ``python -m zoo train NAME`` builds and how it trains it.

Each entry holds the network's shape and a ``train`` recipe: the settings a
flag left out takes (``apply_recipe``). A recipe says where its settings come
from (``source``): measured on this project's hardware (the run and the
figure it reached are named), or the paper's, not yet measured here. Flags
given on the command line always win.

``split`` names the corpus's conventional split (`zoo.data.text.SPLITS`),
used when no --valid-file is given. Kept free of heavy imports: `python -m zoo
train --help` lists them without loading Keras.
"""

# Graves (2013, sec. 3-5). Text: truncated BPTT with the state carried (seq_length symbols per
# sequence, zeroed every reset_every sequences); handwriting: whole lines, batches of real lengths.
TEXT_MODELS = {
    "ptb-char": dict(
        level="char", units=1000, num_layers=1, help="Penn Treebank characters, 1x1000 (Table 1)",
        train=dict(seq_length=100, batch_size=32, optimizer="adam", learning_rate=2e-3, weight_noise=0.075, reset_every=100),
        source="the paper's size and weight noise (sec. 3.1) with Adam; not yet measured here (hours on a CPU)",
    ),
    "ptb-word": dict(
        level="word", units=1000, num_layers=1, max_vocab=10000, help="Penn Treebank words, 1x1000, 10k vocabulary (Table 1)",
        train=dict(seq_length=100, batch_size=32, optimizer="adam", learning_rate=2e-3, weight_noise=0.0, reset_every=100),
        source="the paper's size (sec. 3.1) with Adam; not yet measured here",
    ),
    "enwik8": dict(
        level="byte", units=700, num_layers=7, split="enwik8",
        help="Hutter Prize Wikipedia bytes, 7x700, ~21.3M weights (Table 2); first 96M bytes train, last 4M validation",
        train=dict(seq_length=100, batch_size=32, optimizer="adam", learning_rate=2e-3, weight_noise=0.0, reset_every=100),
        source="the paper's size and split (sec. 3.2) with Adam; not yet measured here (days on a CPU)",
    ),
    "char-small": dict(
        level="char", units=256, num_layers=1,
        help="any text file by character, 1x256: trains on a CPU in minutes (ptb.char.valid.txt: 1.92 bpc held out after 10 min)",
        # The settings of the shipped ptb-char-small: short sequences give many small steps per
        # second, Adam at 0.01 moves fast, and weight noise keeps 1x256 from memorising 370k symbols.
        train=dict(seq_length=25, batch_size=32, optimizer="adam", learning_rate=0.01, weight_noise=0.075, reset_every=100, steps_per_epoch=240),
        source="measured: saved_models/ptb-char-small (ptb.char.valid.txt, 10.3 min on a 2-core CPU: 1.918 bpc on its held-out 5%, 1.865 on ptb.char.test.txt)",
    ),
}

HANDWRITING_MODELS = {
    "prediction": dict(
        units=400, num_layers=3, num_mixtures=20, help="IAM-OnDB pen offsets, 3x400 LSTM + 20 Gaussians (sec. 4)",
        # Graves' RMSProp (eq. 38-45) at the paper's rate; the shipped 3x128 preset ran its
        # later epochs at 5e-4, which a 3x400 network has not been measured with.
        train=dict(batch_size=32, learning_rate=1e-4),
        source="the paper's (sec. 4.2: RMSProp 1e-4, momentum 0.9); iam-prediction (3x128) was trained with these settings, then 5e-4",
    ),
    "synthesis": dict(
        units=400, num_layers=3, num_mixtures=20, window_components=10, help="IAM-OnDB text -> pen offsets, 3x400 + soft window of 10 Gaussians (sec. 5)",
        train=dict(batch_size=32, learning_rate=1e-4),
        source="the paper's (sec. 5: RMSProp 1e-4); iam-synthesis (3x400; its model card has the NLL and CER on testset_v) was trained at lr 1e-4 (batches of 32 on CPU, 128 on a GPU); iam-synthesis-small (3x128, -1037.7) at 5e-4, then 1.5e-4",
    ),
    "recognizer": dict(
        units=128, num_layers=2, help="IAM-OnDB pen offsets -> text, 2 strided convolutions + 2 BLSTM(128) + CTC (Graves et al. 2009)",
        # Adam is what CTC trains well with here; the rate was lowered by hand (1e-3, 3e-4, 1e-4) as
        # the validation loss levelled off, and augmentation (scale, slant, rotation) narrows the
        # gap between the training writers and testset_v's.
        train=dict(batch_size=32, learning_rate=1e-3, dropout=0.0),
        source="measured: saved_models/iam-recognizer (its model card has the curve and the CER on testset_v)",
    ),
}


def recipe(name: str) -> dict:
    """The training settings of a named configuration (text or handwriting)."""
    config = TEXT_MODELS.get(name) or HANDWRITING_MODELS.get(name)
    if config is None:
        raise ValueError(f"no configuration named {name!r}; known: {', '.join([*HANDWRITING_MODELS, *TEXT_MODELS])}")
    return config["train"]


def apply_recipe(args, name: str) -> dict:
    """Fill every training flag left out (None) on ``args`` from the named configuration's recipe;
    flags the user gave are kept. Returns the recipe."""
    settings = recipe(name)
    for key, value in settings.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return settings
