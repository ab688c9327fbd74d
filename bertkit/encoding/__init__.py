"""Layer 2 — sentence embeddings: sentence-transformers folders, pooling, whitening, bi-encoder training.

``SentenceEncoder`` (sentence_encoder.py) runs a folder's pipeline; modules.py reads and writes the folder;
pooling.py has every pooling mode; whitening.py fits BERT-whitening; losses.py and training.py train a bi-encoder on
pairs.
"""

from .batching import pad_batch
from .modules import Dense, Normalize
from .pooling import Pooling
from .sentence_encoder import SentenceEncoder
from .whitening import Whitening, fit_whitening

__all__ = ["Dense", "Normalize", "Pooling", "SentenceEncoder", "Whitening", "fit_whitening", "pad_batch"]
