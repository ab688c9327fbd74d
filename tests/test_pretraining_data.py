"""Pretraining data: documents, NSP/SOP/full-sentence instances, and every masking scheme (property tests)."""

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bertkit.model.heads import IGNORE_INDEX
from bertkit.pretraining.documents import documents_from_lines, read_documents, split_sentences
from bertkit.pretraining.instances import Sentence, SpecialIds, create_instances, instances_from_document
from bertkit.pretraining.masking import MaskingConfig, _unit_lengths, choose_positions, mask_instance, word_groups

SPECIAL = SpecialIds(cls=101, sep=102, pad=0, mask=103)
VOCAB = 1000


def test_documents_and_sentences(tmp_path):
    assert documents_from_lines("a.\nb.\n\n\nc.\n") == [["a.", "b."], ["c."]]
    assert split_sentences("It works. Does it? Yes! 3.5 stays whole. 你好。我是谁？好") == [
        "It works.", "Does it?", "Yes!", "3.5 stays whole.", "你好。", "我是谁？", "好"]
    (tmp_path / "raw.txt").write_text("One doc. Two sentences.\n\nSecond doc here.")
    assert read_documents([tmp_path / "raw.txt"], "raw") == [["One doc.", "Two sentences."], ["Second doc here."]]
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    with pytest.raises(ValueError, match="corpus is empty"):
        read_documents([tmp_path / "empty.txt"])
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        read_documents([tmp_path / "missing.txt"])


def corpus(num_docs=6, sentences=8, seed=0):
    """Documents whose token ids say where they come from: doc d, sentence s, token t → 200 + 100d + 10s + t."""
    rng = random.Random(seed)
    return [[Sentence([200 + 100 * d + 10 * s + t for t in range(rng.randint(3, 9))], [True] * 9)
             for s in range(sentences)] for d in range(num_docs)]


def segments(instance):
    first_sep = instance.input_ids.index(SPECIAL.sep)
    return instance.input_ids[1:first_sep], instance.input_ids[first_sep + 1:-1]


def doc_of(token):
    return (token - 200) // 100


def test_nsp_negatives_come_from_another_document_and_positives_continue():
    documents = corpus()
    instances = create_instances(documents, 32, SPECIAL, random.Random(1), "nsp", short_seq_prob=0.1)
    labels = Counter(i.label for i in instances)
    assert 0.3 < labels[1] / len(instances) < 0.7
    for instance in instances:
        assert len(instance.input_ids) <= 32
        assert instance.input_ids[0] == SPECIAL.cls and instance.input_ids[-1] == SPECIAL.sep
        a, b = segments(instance)
        assert a and b
        assert instance.token_type_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        if instance.label == 1:
            assert {doc_of(t) for t in b} != {doc_of(t) for t in a}
        else:
            assert {doc_of(t) for t in a + b} == {doc_of(a[0])} and max(a) < min(b)  # B continues A


def test_nsp_draws_random_next_segments_half_of_the_time():
    """Long documents (chunks end at the document's end rarely, where a lone sentence is always paired at random),
    ~2,000 instances: the rate of random B is 0.5 within ±0.04 (≈ 3.5 standard errors)."""
    instances = create_instances(corpus(num_docs=45, sentences=700, seed=3), 128, SPECIAL, random.Random(4), "nsp",
                                 short_seq_prob=0.0)
    assert len(instances) > 1900
    assert abs(sum(i.label for i in instances) / len(instances) - 0.5) < 0.04


def test_sop_negatives_are_swapped_segments_and_full_sentences_have_one_segment():
    instances = create_instances(corpus(), 40, SPECIAL, random.Random(2), "sop")
    assert {i.label for i in instances} == {0, 1}
    for instance in instances:
        a, b = segments(instance)
        assert {doc_of(t) for t in a + b} == {doc_of(a[0])}  # never another document
        assert (max(a) < min(b)) == (instance.label == 0)
    for instance in create_instances(corpus(), 40, SPECIAL, random.Random(3), "none"):
        assert instance.input_ids.count(SPECIAL.sep) == 1 and set(instance.token_type_ids) == {0}
        assert len(instance.input_ids) <= 40


def test_target_length_is_shortened_with_short_seq_prob():
    long_doc = [[Sentence(list(range(300 + 10 * s, 305 + 10 * s)), [True] * 5) for s in range(200)]] * 2
    rng = random.Random(0)
    always = instances_from_document(long_doc, 0, 64, SPECIAL, rng, "sop", short_seq_prob=1.0)
    never = instances_from_document(long_doc, 0, 64, SPECIAL, rng, "sop", short_seq_prob=0.0)
    assert sum(len(i.input_ids) for i in always) / len(always) < 0.8 * sum(len(i.input_ids) for i in never) / len(
        never)
    assert all(len(i.input_ids) >= 60 for i in never[:-1])


def test_lone_sentence_documents_and_one_document_nsp():
    with pytest.raises(ValueError, match="at least two documents"):
        create_instances([[Sentence([5, 6], [True, True])]], 16, SPECIAL, random.Random(0), "nsp")
    assert create_instances([[Sentence([5, 6], [True, True])]], 16, SPECIAL, random.Random(0), "sop") == []


def sequence(n, seed):
    rng = random.Random(seed)
    ids = [SPECIAL.cls] + [rng.randrange(200, VOCAB) for _ in range(n)] + [SPECIAL.sep]
    starts = [True] + [rng.random() < 0.6 for _ in range(n)] + [True]
    return ids, starts


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 200), seed=st.integers(0, 10**6), strategy=st.sampled_from(["token", "whole_word", "ngram",
                                                                                     "span"]))
def test_masking_counts_exclusions_and_word_integrity(n, seed, strategy):
    ids, starts = sequence(n, seed)
    ids += [SPECIAL.pad] * 3
    starts += [True] * 3
    maskable = [i not in (SPECIAL.cls, SPECIAL.sep, SPECIAL.pad) for i in ids]
    config = MaskingConfig(strategy=strategy, max_predictions_per_seq=20)
    out = mask_instance(ids, starts, maskable, SPECIAL.mask, VOCAB, config, random.Random(seed))
    budget = min(20, max(1, round(n * 0.15)))
    assert len(out.masked_positions) <= budget
    if strategy == "token":
        assert len(out.masked_positions) == budget
    assert all(maskable[p] for p in out.masked_positions)  # never [CLS], [SEP], [PAD]
    assert [p for p, label in enumerate(out.labels) if label != IGNORE_INDEX] == out.masked_positions
    assert all(out.labels[p] == ids[p] for p in out.masked_positions)
    assert all(out.input_ids[p] == ids[p] for p in range(len(ids)) if p not in out.masked_positions)
    if strategy != "token":  # whole words: a word is masked entirely or not at all
        chosen = set(out.masked_positions)
        for group in word_groups(starts, maskable):
            assert chosen.isdisjoint(group) or chosen.issuperset(group)


def test_80_10_10_split_statistically():
    config = MaskingConfig(max_predictions_per_seq=1000)
    rng = random.Random(0)
    outcome = Counter()
    for seed in range(300):
        ids, starts = sequence(120, seed)
        out = mask_instance(ids, starts, [0 < p < len(ids) - 1 for p in range(len(ids))], SPECIAL.mask, VOCAB,
                            config, rng)
        for p in out.masked_positions:
            outcome["mask" if out.input_ids[p] == SPECIAL.mask else "same" if out.input_ids[p] == ids[p] else
                    "random"] += 1
    total = sum(outcome.values())
    assert total == 300 * 18
    # 5,400 draws: three standard deviations of a 10 % share are ±1.2 points
    assert abs(outcome["mask"] / total - 0.8) < 0.017
    assert abs(outcome["random"] / total - 0.1) < 0.013
    assert abs(outcome["same"] / total - 0.1) < 0.013 + 1 / VOCAB
    assert all(isinstance(i, int) and 0 <= i < VOCAB for i in out.input_ids)  # random tokens are real ids


def test_unit_lengths_follow_albert_and_spanbert():
    """n-grams: n ∝ 1/n over 1..3 (ALBERT); spans: geometric p = 0.2 clipped at 10 (SpanBERT); 30,000 draws each
    (a standard error ≤ 0.003)."""
    draws = 30000
    rng = random.Random(0)
    ngram = Counter(_unit_lengths(MaskingConfig(strategy="ngram"), rng) for _ in range(draws))
    for n, share in {1: 6 / 11, 2: 3 / 11, 3: 2 / 11}.items():
        assert abs(ngram[n] / draws - share) < 0.012, n
    span = Counter(_unit_lengths(MaskingConfig(strategy="span"), rng) for _ in range(draws))
    expected = {k: 0.2 * 0.8 ** (k - 1) for k in range(1, 10)} | {10: 0.8 ** 9}
    assert set(span) == set(expected)
    for k, share in expected.items():
        assert abs(span[k] / draws - share) < 0.012, k


def test_an_overlong_unit_shrinks_to_what_the_budget_leaves():
    """Spans of 9 words (p ≈ 0) over 20 one-token words with a budget of 2: each run masks one unit shrunk to 2
    consecutive words (Google's rule), not two separate words, and never nothing."""
    config = MaskingConfig(strategy="span", mlm_probability=0.1, span_geometric_p=1e-9, max_span_length=9)
    runs = [choose_positions([True] * 20, [True] * 20, config, random.Random(seed)) for seed in range(40)]
    assert all(len(run) == 2 for run in runs)
    assert sum(run[1] == run[0] + 1 for run in runs) >= 36  # a start among the last words leaves a shorter unit
    token = choose_positions([True] + [False] * 9, [True] * 10, MaskingConfig(strategy="token", mlm_probability=0.2),
                             random.Random(0))
    assert len(token) == 2  # token masking takes pieces of one long word, whole-word masking could not


def test_whole_word_masks_wordpieces_and_ngrams_make_longer_units():
    starts = [True, True, False, False, True, False, True, True, False, True]
    assert word_groups(starts, [False] + [True] * 8 + [False]) == [[1, 2, 3], [4, 5], [6], [7, 8]]

    def mean_run(strategy):
        runs = []
        for seed in range(200):
            ids, st_ = sequence(150, seed)
            chosen = choose_positions([True] * len(ids), [0 < p < len(ids) - 1 for p in range(len(ids))],
                                      MaskingConfig(strategy=strategy, max_predictions_per_seq=40),
                                      random.Random(seed))
            run = 1
            for a, b in zip(chosen, chosen[1:], strict=False):
                if b == a + 1:
                    run += 1
                else:
                    runs.append(run)
                    run = 1
            runs.append(run)
        return sum(runs) / len(runs)

    token, ngram, span = mean_run("token"), mean_run("ngram"), mean_run("span")
    assert token < 1.3 < ngram < span  # spans (geometric, mean ≈ 3.7 words before clipping) are the longest


def test_masking_config_rejects_bad_values():
    with pytest.raises(ValueError, match="masking strategy"):
        MaskingConfig(strategy="random")
    for probability in (1.5, 0.0, 1.0):
        with pytest.raises(ValueError, match="mlm_probability"):
            MaskingConfig(mlm_probability=probability)
    with pytest.raises(ValueError, match="must not exceed 1"):
        MaskingConfig(mask_replace_prob=0.6, random_replace_prob=0.5)
    assert MaskingConfig(mask_replace_prob=0.8, random_replace_prob=0.2).random_replace_prob == 0.2  # no "same"
    with pytest.raises(ValueError):  # one flag per token
        word_groups([True, False], [True, True, True])


def test_chinese_whole_word_masking_keeps_jieba_words_together(chinese_vocab):
    from bertkit.corpora import peoples_daily_paragraphs
    from bertkit.pretraining.tokenized import tokenize_documents
    from bertkit.tokenization import BertTokenizer
    from bertkit.tokenization.chinese import segment

    tokenizer = BertTokenizer(chinese_vocab)
    paragraphs = peoples_daily_paragraphs()[100:130]
    (document,) = tokenize_documents([paragraphs], tokenizer, "jieba", progress=False)
    config = MaskingConfig(strategy="whole_word", max_predictions_per_seq=40)
    rng = random.Random(0)
    whole_words_masked = 0
    for text, sentence in zip(paragraphs, document, strict=True):
        assert sentence.ids == tokenizer.text_to_ids(text)
        ids, offsets = tokenizer.text_to_ids_with_offsets(text)
        spans, position = [], 0
        for word in segment(text):  # each jieba word of two or more CJK characters: its token positions
            start = text.index(word, position)
            position = start + len(word)
            if len(word) > 1 and all("\u4e00" <= c <= "\u9fff" for c in word):
                spans.append([i for i, (a, _) in enumerate(offsets) if start <= a < position])
        out = mask_instance(sentence.ids, sentence.word_starts, [True] * len(sentence.ids), SPECIAL.mask,
                            len(tokenizer), config, rng)
        chosen = set(out.masked_positions)
        for span in spans:
            assert chosen.isdisjoint(span) or chosen.issuperset(span)
            whole_words_masked += chosen.issuperset(span)
    assert whole_words_masked > 20  # multi-character words were masked, whole
