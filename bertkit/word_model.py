"""A word-level model from a character-level one: same weights, a vocabulary grown with words (WoBERT).

The char-level model's own tokenizer says which characters make each new word; the word's embedding starts as
their mean (``model.vocab_resize``). The new vocabulary must begin with the old one, id for id, as
``train_tokenizer(..., pre_tokenize="jieba", base_vocab=old vocab.txt)`` writes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .checkpoint import CONFIG_FILE
from .model import BertForMaskedLM, BertForPreTraining, BertModel
from .model.vocab_resize import append_mean_embeddings
from .tokenization import BertTokenizer
from .tokenization.wordpiece import CONTINUATION

_ARCHITECTURES = {cls.__name__: cls for cls in (BertForPreTraining, BertForMaskedLM, BertModel)}


def source_ids(old: BertTokenizer, token: str) -> list[int]:
    """Old ids whose embeddings a new token starts from: its pieces under the old tokenizer."""
    ids = old.text_to_ids(token.removeprefix(CONTINUATION)) if token != CONTINUATION else []
    return ids or [old.unk_token_id]


def make_word_model(
    char_model_dir: str | os.PathLike, word_tokenizer_dir: str | os.PathLike, output_dir: str | os.PathLike
) -> Path:
    """Load a char-level model folder, grow it to the word vocabulary, save model + word tokenizer to ``output_dir``."""
    char_model_dir = Path(char_model_dir)
    old = BertTokenizer.from_pretrained(char_model_dir)
    new = BertTokenizer.from_pretrained(word_tokenizer_dir)
    old_tokens = sorted(old.vocab, key=old.vocab.__getitem__)
    new_tokens = sorted(new.vocab, key=new.vocab.__getitem__)
    if new_tokens[: len(old_tokens)] != old_tokens:
        raise ValueError(f"the vocabulary in {word_tokenizer_dir} does not start with {char_model_dir}'s "
                         f"{len(old_tokens)} tokens in the same order; extend the old vocab.txt (--base-vocab)")
    config_path = char_model_dir / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{char_model_dir} has no {CONFIG_FILE}")
    architectures = json.loads(config_path.read_text(encoding="utf-8")).get("architectures") or ["BertModel"]
    model_class = _ARCHITECTURES.get(architectures[0], BertModel)
    model = model_class.from_pretrained(char_model_dir)
    if model.config.vocab_size != len(old_tokens):
        raise ValueError(f"{char_model_dir}: config.vocab_size={model.config.vocab_size} but vocab.txt has "
                         f"{len(old_tokens)} tokens")
    append_mean_embeddings(model, [source_ids(old, t) for t in new_tokens[len(old_tokens):]])
    return model.save_pretrained(output_dir, tokenizer=new)
