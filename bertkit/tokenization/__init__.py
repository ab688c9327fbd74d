"""Layer 1: text → WordPiece or byte-level BPE ids. Pure Python; torch is imported only to return ``"pt"`` tensors."""

from .auto import AutoTokenizer
from .basic import BasicTokenizer
from .batch import BatchEncoding
from .gpt2 import GPT2Tokenizer
from .roberta import RobertaTokenizer
from .tokenizer import BertTokenizer
from .tokenizer_json import UnsupportedTokenizer, read_tokenizer_json
from .vocab import load_vocab, save_vocab
from .wordpiece import WordPiece

__all__ = ["AutoTokenizer", "BasicTokenizer", "BatchEncoding", "BertTokenizer", "GPT2Tokenizer", "RobertaTokenizer",
           "UnsupportedTokenizer", "WordPiece", "load_vocab", "read_tokenizer_json", "save_vocab"]
