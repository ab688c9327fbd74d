"""Layer 1: text → WordPiece ids. Pure Python; torch is imported only to return ``"pt"`` tensors."""

from .basic import BasicTokenizer
from .batch import BatchEncoding
from .tokenizer import BertTokenizer
from .vocab import load_vocab, save_vocab
from .wordpiece import WordPiece

__all__ = ["BasicTokenizer", "BatchEncoding", "BertTokenizer", "WordPiece", "load_vocab", "save_vocab"]
