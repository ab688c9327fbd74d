"""Instances cut from documents, checked on documents whose token ids say where each token stands: within a document
ids run consecutively (doc d, k-th token → 100,000·d + k), so a segment that is a contiguous piece of its document
has consecutive ids, and a sentence's first and last ids are known."""

import random
from collections import Counter

import pytest

from bertkit.pretraining.instances import (
    Sentence,
    SpecialIds,
    _random_span,
    create_instances,
    instances_from_document,
    truncate_pair,
)

SPECIAL = SpecialIds(cls=1, sep=2, pad=0, mask=3)


def documents(count: int = 6, sentences: int = 60, lengths: tuple[int, int] = (3, 9), seed: int = 0,
              word_every: int = 0) -> list[list[Sentence]]:
    """Consecutive ids per document; ``word_every`` > 0: a word starts every that many tokens (else every token)."""
    rng = random.Random(seed)
    docs = []
    for d in range(count):
        k, doc = 0, []
        for _ in range(sentences):
            n = rng.randint(*lengths)
            ids = [100_000 * (d + 1) + k + t for t in range(n)]
            doc.append(Sentence(ids, [not word_every or (k + t) % word_every == 0 for t in range(n)]))
            k += n
        docs.append(doc)
    return docs


def segments(ids: list[int]) -> list[list[int]]:
    """The text between the special tokens."""
    parts, current = [], []
    for token in ids[1:]:
        if token == SPECIAL.sep:
            parts.append(current)
            current = []
        else:
            current.append(token)
    return parts


def consecutive(ids: list[int]) -> bool:
    return all(b == a + 1 for a, b in zip(ids, ids[1:], strict=False))


def test_no_sentence_of_a_document_is_used_twice():
    """Sentences displaced by a random B are put back for the next chunk, never repeated."""
    docs = documents()
    for task in ("nsp", "sop", "none"):
        for index in range(3):
            instances = instances_from_document(docs, index, 48, SPECIAL, random.Random(index), task)
            own = Counter(t for i in instances for t in i.input_ids if t // 100_000 == index + 1)
            assert own and max(own.values()) == 1, task


def test_segments_are_contiguous_pieces_trimmed_at_either_end():
    """A and B are runs of their documents; an over-long pair loses tokens from the front or the back of the longer
    segment (both happen), exactly down to the length allowed."""
    docs = documents(sentences=200)
    starts = {s.ids[0] for d in docs for s in d}
    ends = {s.ids[-1] for d in docs for s in d}
    trimmed_front = trimmed_back = full = 0
    for instance in create_instances(docs, 40, SPECIAL, random.Random(3), "sop", short_seq_prob=0.0):
        a, b = segments(instance.input_ids)
        assert consecutive(a) and consecutive(b) and len(instance.input_ids) <= 40
        run = b + a if instance.label else a + b  # swapped pairs read back in document order
        trimmed_front += run[0] not in starts
        trimmed_back += run[-1] not in ends
        full += len(instance.input_ids) == 40
    assert trimmed_front > 10 and trimmed_back > 10  # both ends are cut
    assert full >= 100  # a cut pair is cut exactly to max_seq_length


def test_word_starts_follow_the_tokens_and_a_cut_segment_starts_a_word():
    docs = documents(sentences=200, word_every=3)
    for instance in create_instances(docs, 40, SPECIAL, random.Random(5), "nsp", short_seq_prob=0.0):
        assert len(instance.word_starts) == len(instance.input_ids)
        first_sep = instance.input_ids.index(SPECIAL.sep)
        for position, token in enumerate(instance.input_ids):
            if token in (SPECIAL.cls, SPECIAL.sep) or position in (1, first_sep + 1):
                assert instance.word_starts[position] is True, position  # specials and segment starts
            else:
                assert instance.word_starts[position] == ((token % 100_000) % 3 == 0)


def test_full_sentences_fill_the_sequence_and_have_no_pair_label():
    """task none: one segment of whole sentences up to max_seq_length − 2 (sentences of 5 tokens: chunks of 3 fit
    15 exactly, of 4 are cut to 16), every token used; short_seq_prob 0 keeps every chunk full."""
    docs = documents(count=2, sentences=30, lengths=(5, 5))
    for max_seq_length, expected in ((17, 17), (18, 18)):
        instances = create_instances(docs, max_seq_length, SPECIAL, random.Random(0), "none", short_seq_prob=0.0)
        assert {i.label for i in instances} == {0}
        assert all(SPECIAL.sep not in i.input_ids[:-1] and set(i.token_type_ids) == {0} for i in instances)
        lengths = Counter(len(i.input_ids) for i in instances)
        assert lengths.most_common(1)[0][0] == expected and lengths[expected] >= len(instances) - 2
    instances = create_instances(docs, 17, SPECIAL, random.Random(0), "none", short_seq_prob=0.0)
    assert sorted(t for i in instances for t in i.input_ids[1:-1]) == sorted(t for d in docs for s in d for t in s.ids)


def test_short_sequences_defaults_and_the_smallest_length():
    docs = documents(sentences=200)
    always_short = create_instances(docs, 64, SPECIAL, random.Random(1), "nsp", short_seq_prob=1.0)
    assert sum(len(i.input_ids) < 40 for i in always_short) > 0.3 * len(always_short)
    default = create_instances(docs, 64, SPECIAL, random.Random(1))  # nsp, short_seq_prob 0.1
    assert {i.label for i in default} == {0, 1}
    assert 0.75 < sum(len(i.input_ids) >= 60 for i in default) / len(default) < 0.97
    assert create_instances(documents(count=2), 64, SPECIAL, random.Random(2), "nsp")  # two documents suffice
    assert instances_from_document(docs, 0, 5, SPECIAL, random.Random(0), "nsp")  # room for two tokens
    assert instances_from_document(docs, 0, 64, SPECIAL, random.Random(0)) == \
        instances_from_document(docs, 0, 64, SPECIAL, random.Random(0), "nsp", 0.1)  # the defaults
    with pytest.raises(ValueError, match="leaves no room"):
        instances_from_document(docs, 0, 4, SPECIAL, random.Random(0), "nsp")


def test_segment_a_takes_a_random_number_of_sentences():
    """The cut between A and B is uniform over the chunk's sentences (not always after the first)."""
    docs = documents(sentences=200, lengths=(4, 4))
    sizes = Counter()
    for instance in create_instances(docs, 44, SPECIAL, random.Random(7), "sop", short_seq_prob=0.0):
        if not instance.label:
            sizes[len(segments(instance.input_ids)[0]) // 4] += 1
    assert len(sizes) >= 5 and max(sizes.values()) < 0.4 * sum(sizes.values())


def test_a_random_span_stops_at_the_sentence_that_reaches_its_target():
    docs = documents(count=2, sentences=40, lengths=(5, 5))
    for target, sentences in ((6, 2), (10, 2), (11, 3), (1, 1)):
        span = _random_span(docs, 0, target, random.Random(0))
        assert len(span) == sentences and consecutive([t for s in span for t in s.ids]), target
        assert {t // 100_000 for s in span for t in s.ids} == {2}  # never the excluded document


def test_the_first_chunk_of_a_document_may_be_short_too():
    """Documents of one 20-token chunk: with short_seq_prob 1 their first target is drawn, so some split."""
    docs = documents(count=40, sentences=5, lengths=(4, 4))
    instances = create_instances(docs, 64, SPECIAL, random.Random(0), "sop", short_seq_prob=1.0)
    assert len(instances) > 1.05 * len(docs)  # 45 of 40 (a 20-token chunk splits where its target is ≤ 16)


def test_a_tie_trims_the_second_segment_as_google_does():
    a, b = Sentence(list(range(5)), [True] * 5), Sentence(list(range(10, 15)), [True] * 5)
    truncate_pair(a, b, 9, random.Random(0))
    assert len(a.ids) == 5 and len(b.ids) == 4
