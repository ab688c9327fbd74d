"""From token ids to model inputs: special tokens, truncation, padding, tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")


class BatchEncoding(dict):
    """The tokenizer's output: a dict (``enc["input_ids"]``) whose keys are also attributes (``enc.input_ids``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any) -> BatchEncoding:
        """Move every tensor to ``device`` (for ``return_tensors="pt"``)."""
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()})


@dataclass
class Sequence:
    """One model input before padding: ids with their segment ids, special-token mask and offsets."""

    input_ids: list[int] = field(default_factory=list)
    token_type_ids: list[int] = field(default_factory=list)
    special_tokens_mask: list[int] = field(default_factory=list)
    offset_mapping: list[tuple[int, int]] = field(default_factory=list)

    def append(self, ids: list[int], segment: int, special: bool, offsets: list[tuple[int, int]] | None) -> None:
        """Add a run of tokens from one segment."""
        self.input_ids += ids
        self.token_type_ids += [segment] * len(ids)
        self.special_tokens_mask += [int(special)] * len(ids)
        self.offset_mapping += offsets if offsets is not None else [(0, 0)] * len(ids)


def check_text(text: Any, name: str) -> None:
    """A clear error for anything that is not a string."""
    if not isinstance(text, str):
        raise ValueError(f"{name} must be a string, got {type(text).__name__}: {text!r:.60}")


def as_text_list(value: Any, name: str) -> list[str]:
    """A single text or a list/tuple of texts, every one checked to be a string."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a string or a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        check_text(item, f"{name}[{i}]")
    return list(value)


def truncation_lengths(len_a: int, len_b: int | None, budget: int, strategy: str) -> tuple[int, int | None]:
    """How many tokens of A (and B) to keep so that they fit in ``budget``.

    ``longest_first`` removes one token at a time from the longer side (from B on a tie), which is what
    google-research/bert and transformers do; ``only_first``/``only_second`` cut one side and fail if that is
    not enough.
    """
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f"truncation must be one of {TRUNCATION_STRATEGIES} or True/False, got {strategy!r}")
    total = len_a + (len_b or 0)
    excess = total - budget
    if excess <= 0:
        return len_a, len_b
    if len_b is None or strategy == "only_first":
        if excess > len_a:
            raise ValueError(
                f"cannot truncate to {budget} tokens by shortening the first text only ({len_a} tokens): "
                f"the second text alone has {len_b} tokens; use truncation='longest_first'"
            )
        return len_a - excess, len_b
    if strategy == "only_second":
        if excess > len_b:
            raise ValueError(
                f"cannot truncate to {budget} tokens by shortening the second text only ({len_b} tokens): "
                f"the first text alone has {len_a} tokens; use truncation='longest_first'"
            )
        return len_a, len_b - excess
    # longest_first: first level the longer side down to the shorter, then share the rest (B takes the odd one).
    longer_cut = min(abs(len_a - len_b), excess)
    rest = excess - longer_cut
    cut_a = rest // 2 + (longer_cut if len_a > len_b else 0)
    cut_b = excess - cut_a
    return len_a - cut_a, len_b - cut_b


def rust_truncation_lengths(len_a: int, len_b: int | None, budget: int, strategy: str) -> tuple[int, int | None]:
    """``truncation_lengths`` as the Rust ``tokenizers`` library does ``longest_first`` (transformers' fast path).

    The shorter text keeps what it can up to half the budget and the longer one the rest, so when both must be cut
    the longer one keeps the odd token (``truncation_lengths`` cuts B first on a tie, as the Python reference).
    """
    if len_b is None or strategy != "longest_first" or len_a + len_b <= budget:
        return truncation_lengths(len_a, len_b, budget, strategy)
    short, long = sorted((len_a, len_b))
    long = short if short > budget else max(short, budget - short)
    if short + long > budget:
        short, long = budget // 2, budget // 2 + budget % 2
    return (long, short) if len_a > len_b else (short, long)


# How ``longest_first`` shares an odd budget between a pair: "tokenizers" as the Rust library (transformers' fast
# tokenizers: the longer text, B on a tie, keeps the odd token), "reference" as google-research/bert and transformers'
# Python tokenizers (A keeps it). A model scores truncated pairs best with the rule it was trained with.
PAIR_TRUNCATIONS = {"tokenizers": rust_truncation_lengths, "reference": truncation_lengths}
PAIR_RULES = {"tokenizers": "the longer text keeps an odd budget's extra token, the second on a tie, as transformers",
              "reference": "the first text keeps an odd budget's extra token, as google-research/bert"}


def check_pair_truncation(rule: str) -> str:
    """The rule's name, or a clear error naming the known ones."""
    if rule not in PAIR_TRUNCATIONS:
        raise ValueError(f"pair_truncation must be one of {tuple(PAIR_TRUNCATIONS)}, got {rule!r}")
    return rule


def pad_sequences(sequences: list[Sequence], length: int, pad_id: int) -> list[dict[str, list]]:
    """Right-pad every sequence to ``length``; the attention mask marks the real tokens."""
    rows = []
    for seq in sequences:
        n = len(seq.input_ids)
        pad = length - n
        rows.append(
            {
                "input_ids": seq.input_ids + [pad_id] * pad,
                "token_type_ids": seq.token_type_ids + [0] * pad,
                "attention_mask": [1] * n + [0] * pad,
                "special_tokens_mask": seq.special_tokens_mask + [1] * pad,
                "offset_mapping": seq.offset_mapping + [(0, 0)] * pad,
            }
        )
    return rows


def padded_length(lengths: list[int], padding: bool | str, max_length: int | None) -> int | None:
    """The length to pad to, or None for no padding."""
    if padding is True:
        padding = "longest"
    if padding is False or padding == "do_not_pad":
        return None
    if padding not in PADDING_STRATEGIES:
        raise ValueError(f"padding must be True/False or one of {PADDING_STRATEGIES}, got {padding!r}")
    if padding == "max_length":
        if max_length is None:
            raise ValueError("padding='max_length' needs max_length (or a tokenizer with model_max_length)")
        if lengths and max(lengths) > max_length:
            raise ValueError(
                f"a sequence has {max(lengths)} tokens, more than max_length={max_length}; pass truncation=True"
            )
        return max_length
    return max(lengths, default=0)


def to_tensors(columns: dict[str, list], return_tensors: str | None) -> dict[str, Any]:
    """Turn equal-length lists into ``"pt"`` tensors or ``"np"`` arrays (int64), or leave them as lists."""
    if return_tensors is None:
        return columns
    if return_tensors not in ("pt", "np"):
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
    lengths = {len(row) for row in columns["input_ids"]}
    if len(lengths) > 1:
        raise ValueError(
            f"cannot make a tensor of sequences of different lengths {sorted(lengths)}; pass padding=True"
        )
    import numpy as np

    arrays = {name: np.asarray(rows, dtype=np.int64) for name, rows in columns.items()}
    if return_tensors == "np":
        return arrays
    import torch  # only here: the tokenizer itself never needs torch

    return {name: torch.from_numpy(array) for name, array in arrays.items()}


class EncodesBatches:
    """The tokenizers' ``__call__``: a text or a batch (with optional pairs) → truncated, padded columns.

    A tokenizer supplies ``_build`` (one sequence: tokenize, truncate, special tokens), ``model_max_length``,
    ``pad_token_id``, and says whether it returns segment ids unless asked (BERT does, GPT-2 does not).
    """

    token_type_ids_by_default = True

    def check_can_pad(self) -> None:
        """Refuse padding a tokenizer cannot do (GPT-2 has no pad token); every padded tokenizer can."""

    def __call__(
        self,
        text: str | list[str],
        text_pair: str | list[str] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool = True,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
    ) -> BatchEncoding:
        """Tokenize a text or a batch (with optional pairs) into input ids, segment ids and attention masks."""
        batched = not isinstance(text, str)
        texts = as_text_list(text, "text")
        pairs = as_text_list(text_pair, "text_pair") if text_pair is not None else None
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} text pairs")
        if truncation is True:
            truncation = "longest_first"
        if max_length is None and (truncation or padding == "max_length"):
            max_length = self.model_max_length
        sequences = [self._build(a, pairs[i] if pairs else None, add_special_tokens, truncation, max_length,
                                 return_offsets_mapping) for i, a in enumerate(texts)]
        length = padded_length([len(s.input_ids) for s in sequences], padding, max_length)
        if length is not None:
            self.check_can_pad()
        rows = pad_sequences(sequences, length if length is not None else 0, self.pad_token_id)
        if return_token_type_ids is None:
            return_token_type_ids = self.token_type_ids_by_default
        keep = ["input_ids"]
        keep += ["token_type_ids"] * return_token_type_ids + ["attention_mask"] * return_attention_mask
        keep += ["special_tokens_mask"] * return_special_tokens_mask + ["offset_mapping"] * return_offsets_mapping
        columns = {name: [row[name] for row in rows] for name in keep}
        if not batched and return_tensors is None:
            columns = {name: rows[0] for name, rows in columns.items()}
        return BatchEncoding(to_tensors(columns, return_tensors))
