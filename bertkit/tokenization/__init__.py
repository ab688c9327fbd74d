"""Layer 1: text → WordPiece, byte-level BPE or SentencePiece ids. Pure Python; torch is imported only to return
``"pt"`` tensors."""

from .auto import AutoTokenizer
from .basic import BasicTokenizer
from .batch import BatchEncoding
from .chinese import JiebaBertTokenizer  # imported here: the loader finds a folder's pre_tokenizer among them
from .gpt2 import GPT2Tokenizer
from .roberta import RobertaTokenizer
from .sentencepiece import SentencePieceProcessor
from .sp_families import (
    AlbertTokenizer,
    CamembertTokenizer,
    DebertaV2Tokenizer,
    T5Tokenizer,
    XLMRobertaTokenizer,
    XLNetTokenizer,
)
from .tokenizer import BertTokenizer
from .tokenizer_json import UnsupportedTokenizer, read_tokenizer_json
from .vocab import load_vocab, save_vocab
from .wordpiece import WordPiece

__all__ = ["AlbertTokenizer", "AutoTokenizer", "BasicTokenizer", "BatchEncoding", "BertTokenizer", "CamembertTokenizer",
           "DebertaV2Tokenizer", "GPT2Tokenizer", "JiebaBertTokenizer", "RobertaTokenizer", "SentencePieceProcessor",
           "T5Tokenizer", "UnsupportedTokenizer", "WordPiece", "XLMRobertaTokenizer", "XLNetTokenizer", "load_vocab",
           "read_tokenizer_json", "save_vocab"]
