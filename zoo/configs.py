"""Named configurations of the paper's text runs (Graves 2013, sec. 3.1-3.2).

``split`` names the corpus's conventional split (`zoo.data.text.SPLITS`),
used when no --valid-file is given. Kept free of heavy imports: `python -m zoo
train --help` lists them without loading Keras.
"""

TEXT_MODELS = {
    "ptb-char": dict(level="char", units=1000, num_layers=1, help="Penn Treebank characters, 1x1000 (Table 1)"),
    "ptb-word": dict(level="word", units=1000, num_layers=1, max_vocab=10000, help="Penn Treebank words, 1x1000, 10k vocabulary (Table 1)"),
    "enwik8": dict(
        level="byte", units=700, num_layers=7, split="enwik8",
        help="Hutter Prize Wikipedia bytes, 7x700, ~21.3M weights (Table 2); first 96M bytes train, last 4M validation",
    ),
    "char-small": dict(level="char", units=512, num_layers=1, help="any text file by character, 1x512: trains on a CPU in minutes"),
}
