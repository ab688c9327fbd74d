"""Augmentation for task distillation (Tang et al. 2019): each rule, the augmented set, and a step on sentences
without a gold label (soft targets only)."""

import random

import pytest
import torch
import torch.nn.functional as F
from finetuning_fixtures import sentiment_examples, tiny_tokenizer
from test_distillation import batch_of, tiny_classifier

from bertkit.distillation import DistillConfig, every_other_layer, student_from_layers
from bertkit.distillation.augment import augmented_texts, mask_words, replace_words, sample_ngram
from bertkit.distillation.losses import soft_target_loss
from bertkit.distillation.task import Distiller, build_loss, step_function, training_features
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import LabelMap
from bertkit.finetuning.tasks import build_task
from bertkit.model.heads import IGNORE_INDEX

WORDS = "the film is a quiet , moving portrait of a family at war with itself".split()


def test_masking_replaces_each_word_with_its_probability():
    rng = random.Random(0)
    assert mask_words(WORDS, 0.0, "[MASK]", rng) == WORDS
    assert mask_words(WORDS, 1.0, "[MASK]", rng) == ["[MASK]"] * len(WORDS)
    masked = [w for _ in range(500) for w in mask_words(WORDS, 0.1, "[MASK]", rng)]
    assert 0.08 < masked.count("[MASK]") / len(masked) < 0.12  # 7,500 draws: σ ≈ 0.0035


def test_replacement_draws_training_words_by_frequency():
    rng = random.Random(1)
    vocabulary, cumulative = ["good", "bad"], [9, 10]  # counts 9 and 1
    replaced = [w for _ in range(400) for w in replace_words(WORDS, 1.0, vocabulary, cumulative, rng)]
    assert set(replaced) == {"good", "bad"}
    assert 0.85 < replaced.count("good") / len(replaced) < 0.95
    assert replace_words(WORDS, 0.0, vocabulary, cumulative, rng) == WORDS


def test_ngram_sampling_keeps_one_contiguous_run_of_at_most_five_words():
    rng = random.Random(2)
    text = " ".join(WORDS)
    lengths = set()
    for _ in range(300):
        kept = sample_ngram(WORDS, 1.0, rng)
        lengths.add(len(kept))
        assert 1 <= len(kept) <= 5 and f" {' '.join(kept)} " in f" {text} "
    assert lengths == {1, 2, 3, 4, 5}
    assert sample_ngram(WORDS, 0.0, rng) == WORDS and sample_ngram(["one"], 1.0, rng) == ["one"]


def test_augmented_texts_are_new_distinct_at_most_copies_each_and_seeded():
    texts = [e["text"] for e in sentiment_examples(40, seed=3)]
    made = augmented_texts(texts, 3, "[MASK]", seed=5)
    assert made == augmented_texts(texts, 3, "[MASK]", seed=5) != augmented_texts(texts, 3, "[MASK]", seed=6)
    assert len(made) == len(set(made)) and not set(made) & set(texts)
    assert 0 < len(made) <= 3 * len(texts)
    assert augmented_texts(texts, 0, "[MASK]") == []
    with pytest.raises(ValueError, match=r"p_mask must be a probability in \[0, 1\], got 1.5"):
        augmented_texts(texts, 1, "[MASK]", p_mask=1.5)
    with pytest.raises(ValueError, match="augment_copies must be an integer ≥ 0, got -1"):
        DistillConfig(teacher="x", augment_copies=-1)


def sentiment_task():
    config = FinetuneConfig(task="classification", max_length=32)
    return build_task(config, tiny_tokenizer(), LabelMap(["neg", "pos"]))


def test_augmented_features_carry_no_gold_label_and_pairs_are_refused():
    train = sentiment_examples(20, seed=4)
    config = DistillConfig(teacher="x", augment_copies=2)
    features = training_features(sentiment_task(), train, config, "[MASK]")
    labelled, augmented = features[:20], features[20:]
    assert [f["label"] for f in labelled] == [{"neg": 0, "pos": 1}[e["label"]] for e in train]
    assert augmented and all(f["label"] == IGNORE_INDEX for f in augmented)
    assert len(training_features(sentiment_task(), train, DistillConfig(teacher="x"), "[MASK]")) == 20
    pairs = [{"text": "a", "text_pair": "b", "label": "pos"}]
    with pytest.raises(ValueError, match="augments single sentences; this data set holds sentence pairs"):
        training_features(sentiment_task(), pairs, config, "[MASK]")


def test_a_step_on_unlabelled_rows_is_the_soft_target_loss_and_cross_entropy_skips_them():
    teacher = tiny_classifier(layers=4, seed=7)
    student = student_from_layers(teacher, every_other_layer(4, 2))
    config = DistillConfig(teacher="x", alpha=0.5, beta=0.5, temperature=2.0)
    loss = build_loss(student, teacher, config)
    step = step_function(teacher, loss)
    distiller = Distiller(student, loss).eval()
    texts = ["a good film", "a bad film", "good good", "bad"]
    batch = batch_of(texts, [1, IGNORE_INDEX, IGNORE_INDEX, 0])
    total, parts = step(distiller, batch)
    with torch.no_grad():
        s, t = student(**{k: v for k, v in batch.items() if k != "labels"}).logits, teacher(
            **{k: v for k, v in batch.items() if k != "labels"}).logits
    expected = 0.5 * soft_target_loss(s, t, 2.0) + 0.5 * F.cross_entropy(s[[0, 3]], torch.tensor([1, 0]))
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-6)
    none, _ = step(distiller, batch_of(texts, [IGNORE_INDEX] * 4))
    torch.testing.assert_close(none, 0.5 * soft_target_loss(s, t, 2.0), rtol=1e-5, atol=1e-6)
    assert parts["tokens"] == float(batch["attention_mask"].sum())
