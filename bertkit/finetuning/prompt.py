"""Prompt-based classification (PET, Schick & Schütze 2021; LM-BFF, Gao et al. 2021): the masked-LM head itself
classifies. A *pattern* turns an example into a cloze sentence with one mask (``"{text} It was [MASK]."``); a
*verbaliser* maps each label to a word (``{"pos": "great", "neg": "terrible"}``); the label's score is the MLM logit
of its word at the mask. No new weights: with no training at all this is zero-shot classification.

Rules, checked before any work:
- a pattern holds ``{text}`` once, ``{text_b}`` at most once (pairs), and exactly one ``[MASK]``, written so whatever
  the tokenizer: it becomes the tokenizer's own mask token (``<mask>`` for RoBERTa). No other ``{field}``.
- a verbaliser word must be exactly one token of the vocabulary, read as the tokenizer reads it at the mask: with a
  leading space where the pattern has a space before ``[MASK]`` (RoBERTa's ``Ġgreat``; WordPiece ignores the space).
  A word of several tokens is refused, naming the word and its pieces (no averaging: pick a one-token synonym).
- an example too long for ``max_length`` loses tokens from the end of its longest text, never from the pattern, so
  the mask is always there. A mask token written inside a text is removed, so the pattern's is the only one.

PET's loss: ``(1 − α) · CE(scores, label) + α · L_MLM`` with α = ``prompt_mlm_weight`` (PET: 1e-4), ``L_MLM`` the
usual masked-LM loss (15 %, 80 / 10 / 10) on the pattern-filled inputs, which keeps the head a language model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import write_text_atomic

MASK = "[MASK]"
FIELDS = ("{text}", "{text_b}")
PROMPT_FILE = "prompt.json"  # beside a prompt-tuned MLM folder: pattern, verbaliser, input settings
_PARTS = re.compile(r"(\{text\}|\{text_b\}|\[MASK\])")


def check_pattern(pattern: Any) -> str:
    """The pattern if it has ``{text}`` once, ``{text_b}`` at most once and exactly one ``[MASK]``; else ValueError."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"pattern must be a text such as '{{text}} It was [MASK].', got {pattern!r}")
    unknown = sorted(set(re.findall(r"\{[^{}]*\}", pattern)) - set(FIELDS))
    if unknown:
        raise ValueError(f"pattern has unknown field(s) {unknown}; it may use {{text}} and {{text_b}} only")
    masks = pattern.count(MASK)
    if masks != 1:
        raise ValueError(f"pattern must hold exactly one {MASK} (where the verbaliser word goes), got {masks} in "
                         f"{pattern!r}")
    if pattern.count("{text}") != 1:
        raise ValueError(f"pattern must hold {{text}} exactly once (where the example goes), got "
                         f"{pattern.count('{text}')} in {pattern!r}")
    if pattern.count("{text_b}") > 1:
        raise ValueError(f"pattern may hold {{text_b}} (a pair's second text) at most once: {pattern!r}")
    return pattern


def check_verbalizer(verbalizer: Any) -> dict[str, str]:
    """A non-empty {label: word} mapping of at least two labels, each word distinct and non-empty."""
    if not isinstance(verbalizer, dict) or len(verbalizer) < 2:
        raise ValueError(f"verbalizer must map at least two labels to words, e.g. {{\"pos\": \"great\", \"neg\": "
                         f"\"terrible\"}}, got {verbalizer!r}")
    words = {str(label): word for label, word in verbalizer.items()}
    for label, word in words.items():
        if not isinstance(word, str) or not word.strip() or word != word.strip():
            raise ValueError(f"verbalizer word of label {label!r} must be one word without spaces, got {word!r}")
    repeated = sorted({w for w in words.values() if list(words.values()).count(w) > 1})
    if repeated:
        raise ValueError(f"verbalizer gives the word(s) {repeated} to several labels; each label needs its own word")
    return words


def space_before_mask(pattern: str) -> bool:
    """Whether the pattern puts a space before ``[MASK]`` (the verbaliser word is then read with one)."""
    at = pattern.index(MASK)
    return at > 0 and pattern[at - 1].isspace()


def verbalizer_ids(tokenizer: Any, pattern: str, verbalizer: dict[str, str], labels: Sequence[str]) -> list[int]:
    """The vocabulary id of each label's word, in ``labels`` order; a word of several tokens (or unknown) refused."""
    missing = [label for label in labels if label not in verbalizer]
    if missing:
        raise ValueError(f"the verbalizer has no word for label(s) {missing}; it maps {sorted(verbalizer)}")
    prefix = " " if space_before_mask(pattern) else ""
    ids = []
    for label in labels:
        word = verbalizer[label]
        pieces = tokenizer.text_to_ids(prefix + word)
        if len(pieces) != 1:
            shown = tokenizer.convert_ids_to_tokens(pieces)
            raise ValueError(f"verbalizer word {word!r} (label {label!r}) is {len(pieces)} tokens of this vocabulary "
                             f"{shown}, not one; a verbaliser word must be a single token: choose another word")
        if pieces[0] == tokenizer.unk_token_id:
            raise ValueError(f"verbalizer word {word!r} (label {label!r}) is not in the vocabulary (it reads as "
                             f"{tokenizer.unk_token}); choose another word")
        ids.append(pieces[0])
    return ids


def fill(pattern: str, text: str, text_b: str | None, mask_token: str) -> str:
    """The pattern with the texts and the tokenizer's mask token in place (one pass: a text is never re-read)."""
    values = {"{text}": text, "{text_b}": text_b or "", MASK: mask_token}
    return "".join(values.get(part, part) for part in _PARTS.split(pattern))


def encode_prompt(tokenizer: Any, pattern: str, text: str, text_b: str | None, max_length: int
                  ) -> tuple[list[int], int]:
    """Input ids of the filled pattern (special tokens added) and the mask's position, within ``max_length``."""
    mask = tokenizer.mask_token
    texts = {"text": text.replace(mask, " "), "text_b": (text_b or "").replace(mask, " ")}
    while True:
        ids = tokenizer.encode(fill(pattern, texts["text"], texts["text_b"], mask))
        excess = len(ids) - max_length
        if excess <= 0:
            return ids, ids.index(tokenizer.mask_token_id)
        counts = {name: len(tokenizer.text_to_ids(value)) for name, value in texts.items()}
        longest = max(counts, key=counts.get)
        if counts[longest] == 0:
            raise ValueError(f"the pattern {pattern!r} alone is {len(ids)} tokens, more than max_length="
                             f"{max_length}; raise max_length or shorten the pattern")
        keep = max(0, counts[longest] - excess)
        value = texts[longest]
        spans = tokenizer.text_to_ids_with_offsets(value)[1]
        cut = value[:spans[keep - 1][1]] if keep else ""
        texts[longest] = cut if len(cut) < len(value) else value[:-1]  # always shorter: the loop ends


def prompt_scores(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  token_type_ids: torch.Tensor | None, mask_positions: torch.Tensor,
                  label_ids: Sequence[int]) -> torch.Tensor:
    """(batch, labels): the MLM logits at each row's mask, restricted to the verbaliser's ids."""
    if not hasattr(model, "cls") or not hasattr(model.cls, "predictions"):
        raise ValueError(f"{type(model).__name__} has no masked-LM head; prompts need an MLM model "
                         "(bertkit.AutoModelForMaskedLM)")
    hidden = model.base_model(input_ids, attention_mask, token_type_ids).last_hidden_state
    at_mask = hidden[torch.arange(hidden.shape[0], device=hidden.device), mask_positions]
    return model.cls.predictions(at_mask)[:, list(label_ids)]  # the vocabulary row only where it is read


def pet_loss(scores: torch.Tensor, labels: torch.Tensor, mlm_loss: torch.Tensor | None,
             mlm_weight: float) -> torch.Tensor:
    """PET's objective: ``(1 − α) · CE(scores, labels) + α · L_MLM`` (just the cross-entropy when α = 0)."""
    loss = F.cross_entropy(scores.float(), labels)
    if mlm_weight == 0 or mlm_loss is None:
        return loss
    return (1 - mlm_weight) * loss + mlm_weight * mlm_loss


def save_prompt(folder: str | os.PathLike, pattern: str, verbalizer: dict[str, str], labels: Sequence[str],
                settings: dict[str, Any]) -> Path:
    """Write ``prompt.json``: the pattern, the verbaliser in label order and the input settings (max_length …)."""
    values = {"pattern": pattern, "verbalizer": {label: verbalizer[label] for label in labels}, **settings}
    path = Path(folder) / PROMPT_FILE
    write_text_atomic(path, json.dumps(values, indent=2, ensure_ascii=False) + "\n")
    return path


def read_prompt(folder: str | os.PathLike) -> dict[str, Any]:
    """``prompt.json`` of a prompt-tuned folder, its pattern and verbaliser checked."""
    path = Path(folder) / PROMPT_FILE
    values = json.loads(path.read_text(encoding="utf-8"))
    check_pattern(values.get("pattern"))
    check_verbalizer(values.get("verbalizer"))
    return values
