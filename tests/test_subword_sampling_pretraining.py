"""Subword regularisation in `bertkit pretrain` (``subword_alpha``): each copy of the corpus is a fresh sampled
segmentation of the same text, the held-out data keeps the best one, and SentencePiece's ``▁`` marks word starts for
whole-word masking.

Oracles: the tokenizer's own best segmentation (the same text decoded back), and the pieces' ``▁`` marks read by the
test itself."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from sentencepiece_fixtures import training_lines

from bertkit.pretraining.config import PretrainingConfig
from bertkit.pretraining.run import build_data, sampled_documents
from bertkit.pretraining.tokenized import continuation_ids, tokenize_documents, wordpiece_sentence
from bertkit.tokenization import AutoTokenizer, BertTokenizer
from bertkit.tokenization.unigram_training import train_unigram_folder


@pytest.fixture(scope="module")
def unigram(tmp_path_factory):
    root = tmp_path_factory.mktemp("unigram")
    text = root / "text.txt"
    text.write_text("\n".join(training_lines()[:500]) + "\n", encoding="utf-8")
    train_unigram_folder([str(text)], root / "tok", 400, "albert", character_coverage=0.995)
    return AutoTokenizer.from_pretrained(root / "tok")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Documents of English lines (a blank line between documents)."""
    lines = [line for line in training_lines()[:400] if len(line.split()) > 4][:120]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join("\n".join(lines[i:i + 6]) for i in range(0, len(lines), 6)) + "\n",
                    encoding="utf-8")
    return path


def config(corpus, tmp_path, **changes) -> PretrainingConfig:
    values = dict(corpus=[str(corpus)], tokenizer="unused", architecture="albert", max_seq_length=32,
                  dupe_factor=3, subword_alpha=0.5, output_dir=str(tmp_path / "out"), progress=False, seed=3)
    return PretrainingConfig(**(values | changes))


def words_of(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids).replace(" ", "")


def test_sentencepiece_word_starts_are_the_marked_pieces(unigram):
    continuations = continuation_ids(unigram)
    text = "Subword regularisation samples segmentations of unusually long words"
    sentence = wordpiece_sentence(text, unigram, continuations)
    tokens = unigram.convert_ids_to_tokens(sentence.ids)
    assert sentence.word_starts == [t.startswith("\u2581") for t in tokens]
    assert sum(sentence.word_starts) == len(text.split()) < len(tokens)  # whole words span several pieces
    assert unigram.convert_tokens_to_ids(unigram.mask_token) not in continuations


def test_each_copy_is_a_fresh_sampling_of_the_same_text(unigram, corpus, tmp_path):
    run = config(corpus, tmp_path)
    documents = [[line for line in block.splitlines()] for block in corpus.read_text().split("\n\n")]
    best = tokenize_documents(documents, unigram, progress=False)
    first, second = (sampled_documents(documents, unigram, run, copy, False) for copy in (0, 1))
    assert unigram.sampling is None  # back to the best segmentation afterwards
    flat = [[s.ids for doc in docs for s in doc] for docs in (best, first, second)]
    assert flat[1] != flat[0] and flat[2] != flat[1]  # sampled, and differently per copy
    assert sampled_documents(documents, unigram, run, 1, False)[0][0].ids == second[0][0].ids  # seeded
    for sampled in flat[1:]:  # another segmentation of the same text: the same characters decoded back
        assert [words_of(unigram, ids) for ids in sampled] == [words_of(unigram, ids) for ids in flat[0]]


def test_training_copies_sample_while_held_out_data_stays_best(unigram, corpus, tmp_path):
    sampled = build_data(config(corpus, tmp_path), unigram)
    plain = build_data(config(corpus, tmp_path, subword_alpha=None, dupe_factor=1), unigram)
    assert len(plain.eval_batches) == len(sampled.eval_batches) > 0
    for ours, best in zip(sampled.eval_batches, plain.eval_batches, strict=True):
        assert torch.equal(ours["input_ids"], best["input_ids"])
    # three sampled copies of the corpus, each cut into about as many instances as the one best copy
    assert 2 * len(plain.train) < len(sampled.train) < 4 * len(plain.train)
    assert unigram.sampling is None


def test_refusals_name_the_problem(unigram, corpus, tmp_path, chinese_vocab):
    wordpiece = BertTokenizer(chinese_vocab)
    with pytest.raises(ValueError, match="has one segmentation per text"):
        build_data(config(corpus, tmp_path), wordpiece)
    for changes, message in [(dict(subword_alpha=0), "must be a number > 0"),
                             (dict(subword_nbest_size=1), "0 and 1 sample nothing"),
                             (dict(subword_alpha=None, subword_nbest_size=8), "read with subword_alpha"),
                             (dict(dupe_factor=1), "dupe_factor must be"),
                             (dict(word_boundaries="jieba"), "word_boundaries: wordpiece"),
                             (dict(objective="plm", architecture="xlnet"), "reads its data another way")]:
        with pytest.raises(ValueError, match=message):
            config(corpus, tmp_path, **changes)
    assert dataclasses.replace(config(corpus, tmp_path), subword_nbest_size=16).subword_nbest_size == 16
