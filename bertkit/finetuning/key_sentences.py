"""``long_text: key_sentences``: a long text becomes its most central sentences (the notes' 抽取重要片段).

The text is split into sentences (English ``.!?``, Chinese ``。！？；…``: pretraining's splitter); each sentence
gets a vector — the mean of the model's own input embeddings over its tokens (cheap, no forward pass), or a
sentence encoder's (``key_sentence_model``); sentences are ranked by cosine similarity to the document's mean
vector (the mean of the sentence vectors) and taken best first while they fit the window, then kept in their
original order. A text with no sentence boundary falls back to ``head``, with a warning naming why.

The ranking at prediction reads the fine-tuned model's embeddings, which moved little from the pretrained ones the
training texts were ranked with (learning rates of 1e-5 … 5e-5); a ``key_sentence_model`` ranks both the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..encoding.modules import MODULES_FILE
from ..pretraining.documents import split_sentences
from .config import FinetuneConfig
from .data import LabelMap
from .tasks import SequenceTask

logger = logging.getLogger(__name__)
# sentences (text) and their token ids → one vector per sentence, (sentences, width)
SentenceVectors = Callable[[Sequence[str], Sequence[Sequence[int]]], np.ndarray]


def rank_sentences(vectors: np.ndarray) -> np.ndarray:
    """Sentence indices, most similar (cosine) to the mean of the sentence vectors first; ties keep text order."""
    vectors = np.asarray(vectors, dtype=np.float64)
    centre = vectors.mean(0)
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(centre)
    similarity = vectors @ centre / np.where(norms > 0, norms, 1.0)
    return np.argsort(-similarity, kind="stable")


def select_sentences(lengths: Sequence[int], vectors: np.ndarray, budget: int) -> list[int]:
    """Indices of the sentences kept, in text order: best ranked first, each taken if it still fits ``budget``
    tokens; when none fits, the best one alone (the caller cuts it to the budget)."""
    if len(lengths) != len(vectors):
        raise ValueError(f"{len(lengths)} sentence lengths but {len(vectors)} sentence vectors")
    order = rank_sentences(vectors)
    kept, used = [], 0
    for i in order:
        if used + lengths[i] <= budget:
            kept.append(int(i))
            used += lengths[i]
    return sorted(kept) if kept else [int(order[0])]


def key_sentence_run(sentence_ids: Sequence[Sequence[int]], vectors: np.ndarray, budget: int) -> list[int]:
    """The token ids the model sees: the kept sentences' ids joined in text order, at most ``budget`` of them."""
    kept = select_sentences([len(ids) for ids in sentence_ids], vectors, budget)
    return [t for i in kept for t in sentence_ids[i]][:budget]


def word_embeddings(model: nn.Module) -> nn.Embedding:
    """The input (word) embedding table of a task model of any architecture."""
    tables = [m for name, m in model.named_modules() if name.endswith(("word_embeddings", "word_embedding"))]
    if not tables or not isinstance(tables[0], nn.Embedding):
        raise ValueError(f"{type(model).__name__} has no word embedding table to rank sentences with")
    return tables[0]


def embedding_vectors(model: nn.Module) -> SentenceVectors:
    """Sentence vectors as the mean of the model's input embeddings over each sentence's tokens (read at each call,
    so a fine-tuned model ranks with its own)."""
    def vectors(sentences: Sequence[str], ids: Sequence[Sequence[int]]) -> np.ndarray:
        table = word_embeddings(model).weight.detach()
        with torch.no_grad():
            return torch.stack([table[torch.tensor(list(run), device=table.device)].float().mean(0)
                                for run in ids]).cpu().numpy()
    return vectors


def encoder_vectors(folder: str | Path) -> SentenceVectors:
    """Sentence vectors from a sentence encoder folder (sentence-transformers layout: ``modules.json``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"key_sentence_model: no such folder {folder}")
    if not (folder / MODULES_FILE).is_file():
        raise ValueError(f"key_sentence_model {folder} is not a sentence encoder: it has no {MODULES_FILE} "
                         "(a sentence-transformers folder, as bertkit train-embeddings writes)")
    from ..encoding.sentence_encoder import SentenceEncoder  # only when a run asks for it

    encoder = SentenceEncoder.from_pretrained(folder)

    def vectors(sentences: Sequence[str], ids: Sequence[Sequence[int]]) -> np.ndarray:
        return encoder.encode(list(sentences))
    return vectors


class KeySentenceTask(SequenceTask):
    """Sequence tasks whose single texts past the window are cut to their key sentences (pairs: as before)."""

    def __init__(self, config: FinetuneConfig, tokenizer, labels: LabelMap, vectors: SentenceVectors):
        super().__init__(config, tokenizer, labels)
        self.vectors = vectors

    def key_run(self, text: str, ids: list[int]) -> list[int]:
        """The text's key sentences' token ids, or its head (with a warning) when it has one sentence."""
        sentences = split_sentences(text)
        sentence_ids = [self.tokenizer.text_to_ids(s) for s in sentences]
        pairs = [(s, i) for s, i in zip(sentences, sentence_ids, strict=True) if i]
        if len(pairs) < 2:
            logger.warning("key_sentences: a text of %d tokens has no sentence boundary (no . ! ? 。！？；… "
                           "between sentences), so its first %d tokens are kept (head)", len(ids), self.budget)
            return ids[:self.budget]
        sentences, sentence_ids = [s for s, _ in pairs], [i for _, i in pairs]
        return key_sentence_run(sentence_ids, self.vectors(sentences, sentence_ids), self.budget)

    def windows(self, example: dict[str, Any]) -> list[tuple[list[int], list[int]]]:
        """One window: the text itself when it fits, else its key sentences."""
        if "text_pair" in example:
            return super().windows(example)
        tok = self.tokenizer
        ids = tok.text_to_ids(example["text"])
        run = ids if len(ids) <= self.budget else self.key_run(example["text"], ids)
        return [([tok.cls_token_id, *run, tok.sep_token_id], [0] * (len(run) + 2))]
