"""RobertaTokenizer: GPT-2's byte-level BPE with RoBERTa's special tokens around the text.

RoBERTa (and BART, Longformer, which use its template) add ``<s> A </s>`` to one text and ``<s> A </s></s> B </s>``
to a pair: the separator is doubled between the two texts, and every token has segment id 0, since RoBERTa has no
segment embeddings to speak of. Everything else is ``GPT2Tokenizer``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from .batch import Sequence
from .byte_offsets import Span, trim_leading_spaces
from .gpt2 import GPT2Tokenizer


class RobertaTokenizer(GPT2Tokenizer):
    """RoBERTa's tokenizer; ids equal ``transformers.RobertaTokenizerFast`` on the same folder."""

    tokenizer_class = "RobertaTokenizer"

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        merges_file: str | os.PathLike | None = None,
        *,
        vocab: dict[str, int] | None = None,
        merges: list[tuple[str, str]] | None = None,
        add_prefix_space: bool = False,
        bos_token: str | None = "<s>",
        eos_token: str | None = "</s>",
        unk_token: str | None = "<unk>",
        sep_token: str | None = "</s>",
        pad_token: str | None = "<pad>",
        cls_token: str | None = "<s>",
        mask_token: str | None = "<mask>",
        additional_special_tokens: Iterable[str] = (),
        model_max_length: int = 512,
        errors: str = "replace",
        lstrip_tokens: Iterable[str] = (),
        rstrip_tokens: Iterable[str] = (),
    ):
        super().__init__(vocab_file, merges_file, vocab=vocab, merges=merges, add_prefix_space=add_prefix_space,
                         bos_token=bos_token, eos_token=eos_token, unk_token=unk_token, sep_token=sep_token,
                         pad_token=pad_token, cls_token=cls_token, mask_token=mask_token,
                         additional_special_tokens=additional_special_tokens, model_max_length=model_max_length,
                         errors=errors, lstrip_tokens=lstrip_tokens, rstrip_tokens=rstrip_tokens)

    def trim_offsets(self, ids: list[int], spans: list[Span]) -> list[Span]:
        """RoBERTa's post-processor moves each span past the token's leading space (``trim_offsets``)."""
        return trim_leading_spaces([self.ids_to_tokens[i] for i in ids], spans, self.add_prefix_space)

    def build_inputs(self, ids_a: list[int], ids_b: list[int] | None, spans_a: list[Span] | None = None,
                     spans_b: list[Span] | None = None) -> Sequence:
        """``<s> A </s>``, or ``<s> A </s></s> B </s>`` for a pair; all in segment 0."""
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        seq = Sequence()
        seq.append(cls, 0, True, None)
        seq.append(ids_a, 0, False, spans_a)
        seq.append(sep, 0, True, None)
        if ids_b is not None:
            seq.append(sep, 0, True, None)
            seq.append(ids_b, 0, False, spans_b)
            seq.append(sep, 0, True, None)
        return seq
