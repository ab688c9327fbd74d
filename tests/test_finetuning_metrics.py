"""Metrics against independent oracles (scikit-learn, scipy, seqeval), BIO handling, word alignment, long text."""

import numpy as np
import pytest
from finetuning_fixtures import tiny_tokenizer

from bertkit.finetuning import long_text, metrics, ner


def test_classification_metrics_match_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    gold, predicted = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    predicted[:150] = gold[:150]
    ours = metrics.classification_metrics(gold, predicted, 4)
    assert ours["accuracy"] == pytest.approx(sklearn.accuracy_score(gold, predicted))
    assert ours["macro_f1"] == pytest.approx(sklearn.f1_score(gold, predicted, average="macro"))
    assert ours["mcc"] == pytest.approx(sklearn.matthews_corrcoef(gold, predicted))


def test_correlations_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, 200).astype(float)  # ties, as similarity scores have
    y = x + rng.normal(0, 2, 200)
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_entity_metrics_match_seqeval():
    seqeval = pytest.importorskip("seqeval.metrics")
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "I-ORG"], ["B-LOC", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "I-ORG", "O"], ["B-LOC", "O"]]
    ours = metrics.entity_metrics(gold, predicted)
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, predicted))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, predicted))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, predicted)) and ours["f1"] == pytest.approx(0.5)


def test_qa_metrics_follow_squad():
    assert metrics.qa_metrics(["the Eiffel Tower"], ["Eiffel tower."]) == {"exact_match": 1.0, "f1": 1.0}
    assert metrics.qa_metrics(["Eiffel Tower in Paris"], ["Tower"])["f1"] == pytest.approx(2 * 0.25 / 1.25)
    assert metrics.qa_metrics(["江泽民"], ["泽民"])["f1"] == pytest.approx(0.8)  # CJK counted per character


def test_bio_spans_repair_and_strict():
    tags = ["O", "I-PER", "I-PER", "B-LOC", "I-ORG"]
    assert ner.bio_spans(tags) == [("PER", 1, 3), ("LOC", 3, 4), ("ORG", 4, 5)]
    assert ner.repair_bio(tags) == ["O", "B-PER", "I-PER", "B-LOC", "B-ORG"]
    with pytest.raises(ValueError, match="tag 1 is 'I-PER' after 'O', which breaks BIO \\(2 such"):
        ner.strict_bio(tags, "train example 3")
    with pytest.raises(ValueError, match="'PER' is not BIO|tag 0 is 'PER', not BIO"):
        ner.check_tags(["PER"])


def test_labels_go_on_first_pieces_and_long_sentences_split():
    tokenizer = tiny_tokenizer()
    words = ["films", "xx", "good"]  # films → film ##s, xx → x ##x
    (chunk,) = ner.chunk_words(tokenizer, words, 16)
    assert tokenizer.convert_ids_to_tokens(chunk.input_ids) == ["[CLS]", "film", "##s", "x", "##x", "good", "[SEP]"]
    assert chunk.word_ids == [None, 0, 0, 1, 1, 2, None]
    assert ner.first_piece_labels(chunk.word_ids, [5, 6, 7]) == [-100, 5, -100, 6, -100, 7, -100]
    assert ner.words_from_pieces(chunk.word_ids, [0, 5, 9, 6, 9, 7, 0]) == {0: 5, 1: 6, 2: 7}
    chunks = ner.chunk_words(tokenizer, words * 3, 6)  # 4 pieces per window: whole words only
    assert [c.first_word for c in chunks] == [0, 2, 4, 6, 8]
    assert all(len(c.input_ids) <= 6 for c in chunks)
    assert [w for c in chunks for w in dict.fromkeys(x for x in c.word_ids if x is not None)] == list(range(9))


def test_long_text_strategies():
    ids = list(range(20))
    assert long_text.windows(ids, "head", 8) == [list(range(8))]
    assert long_text.windows(ids, "tail", 8) == [list(range(12, 20))]
    assert long_text.windows(ids, "head+tail", 8, head_tokens=3) == [[0, 1, 2, 15, 16, 17, 18, 19]]
    assert long_text.windows(ids, "sliding", 8, stride=5) == [ids[0:8], ids[5:13], ids[10:18], ids[12:20]]
    assert long_text.windows(ids[:5], "sliding", 8) == [ids[:5]]
    logits = np.array([[1.0, 0.0], [3.0, -2.0], [0.0, 5.0]])
    np.testing.assert_allclose(long_text.aggregate(logits, np.array([0, 0, 1]), 2, "mean"), [[2, -1], [0, 5]])
    np.testing.assert_allclose(long_text.aggregate(logits, np.array([0, 0, 1]), 2, "max"), [[3, 0], [0, 5]])
    with pytest.raises(ValueError, match="head_tokens=8 must lie between 1 and max_length - 3 = 7"):
        long_text.check_strategy("head+tail", 8, 8, None, "mean")
    with pytest.raises(ValueError, match="long_text must be one of"):
        long_text.check_strategy("middle", 8, 3, None, "mean")
