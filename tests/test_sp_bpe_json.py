"""A SentencePiece BPE tokenizer's ``tokenizer.json`` (BPE + Metaspace + byte fallback) encodes as bertkit does.

Oracles: the Rust ``tokenizers`` library (it loads the written tokenizer.json), transformers' ``AutoTokenizer`` (it
reads the saved folder through that file) and the ``sentencepiece`` library (the ids bertkit gives are its ids).
Models: SentencePiece BPE trained by bertkit (``train_unigram_folder(model_type="bpe")``) for several families,
with nmt_nfkc or identity normalisation, with and without byte fallback.
"""

from __future__ import annotations

import json

import pytest
import sentencepiece
import tokenizers
import transformers
from sentencepiece_fixtures import HARD_TEXT, held_out_lines, training_lines

from bertkit.tokenization import AutoTokenizer
from bertkit.tokenization.sp_tokenizer_json import bpe_merges
from bertkit.tokenization.unigram_training import train_unigram_folder

# family, normalisation, byte fallback. ALBERT / XLNet's NFKD preparation is left out with byte fallback: the Rust
# Precompiled normaliser skips its rules on grapheme clusters of 6 bytes or more (NFKD'd Hangul stays as jamo).
CASES = [("t5", "nmt_nfkc", False), ("xlm-roberta", "identity", True), ("albert", "nmt_nfkc", False),
         ("xlnet", "identity", False), ("t5", "nmt_nfkc", True)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("sp-bpe-json")
    text = folder / "text.txt"
    text.write_text("\n".join(training_lines()[:600]) + "\n", encoding="utf-8")
    return {case: train_unigram_folder([str(text)], folder / "-".join(map(str, case)), 400, case[0], 0.995,
                                       model_type="bpe", normalization=case[1], byte_fallback=case[2]).vocab_file.parent
            for case in CASES}


def _lines() -> list[str]:
    return HARD_TEXT + ["tab\there  two  spaces ", "  lead", "trail  ", "a\u3000b"] + list(held_out_lines()[::60])


@pytest.mark.parametrize("case", CASES, ids=lambda case: "-".join(map(str, case)))
def test_the_rust_library_encodes_the_tokenizer_json_as_bertkit(folders, case):
    folder = folders[case]
    document = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert document["model"]["type"] == "BPE" and document["model"]["byte_fallback"] == case[2]
    rust, ours = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json")), AutoTokenizer.from_pretrained(folder)
    mismatches = [(line, rust.encode(line).ids, ours(line)["input_ids"]) for line in _lines()
                  if rust.encode(line).ids != ours(line)["input_ids"]]
    assert mismatches[:3] == []
    pair = ("first part", "second part")
    assert rust.encode(*pair).ids == ours(*pair)["input_ids"]


@pytest.mark.parametrize("case", CASES[:2], ids=lambda case: "-".join(map(str, case)))
def test_bertkit_ids_are_the_sentencepiece_librarys(folders, case):
    folder = folders[case]
    ours = AutoTokenizer.from_pretrained(folder)
    library = sentencepiece.SentencePieceProcessor(model_file=str(ours.vocab_file))
    for line in _lines()[::5]:
        expected = [ours._spm_ids[i] for i in library.encode(line)]  # the family's ids of the library's pieces
        assert ours(line, add_special_tokens=False)["input_ids"] == expected, line


@pytest.mark.parametrize("case", CASES[:3], ids=lambda case: "-".join(map(str, case)))
def test_transformers_reads_the_saved_folder_with_the_same_ids(folders, case, tmp_path):
    ours = AutoTokenizer.from_pretrained(folders[case])
    ours.save_pretrained(tmp_path)
    theirs, again = transformers.AutoTokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)
    assert type(again) is type(ours)
    for line in _lines()[::4]:
        assert theirs(line)["input_ids"] == ours(line)["input_ids"] == again(line)["input_ids"], line


def test_merges_follow_the_scores_of_the_merged_pieces(folders):
    sp = AutoTokenizer.from_pretrained(folders[CASES[0]]).sp
    merges = bpe_merges(sp)
    rank = [sp.scores[sp.piece_to_id[left + right]] for left, right in merges]
    assert rank == sorted(rank, reverse=True) and len(merges) >= 300
    assert all(left in sp.piece_to_id and right in sp.piece_to_id for left, right in merges)
