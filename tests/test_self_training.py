"""Self-training (bertkit.finetuning.self_training) on a tiny random BERT: pseudo-labels and the threshold against
the model's own logits, the student's loss against the formula in float64, the noise, a 2-round run end to end
(per-round metrics, a final folder that predicts), and each bad input refused or warned about."""

import json
import logging

import numpy as np
import pytest
import torch
from finetuning_fixtures import sentiment_examples, tiny_dir, tiny_tokenizer  # noqa: F401

from bertkit.cli import main
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import LabelMap
from bertkit.finetuning.predict import SequenceClassifier
from bertkit.finetuning.self_training import (
    PseudoLabels,
    balanced_rows,
    noisy_texts,
    pseudo_label,
    read_unlabeled,
    soft_collate,
    student_features,
    student_loss,
    student_step,
    warn_overlap,
)
from bertkit.finetuning.tasks import build_task
from bertkit.finetuning.train import build_model, finetune
from bertkit.model.heads import IGNORE_INDEX
from bertkit.training.metrics import read_metrics

LABELS = LabelMap(["neg", "pos"])


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def options(tmp_path, model, **extra):
    return dict(model=str(model), output_dir=str(tmp_path / "out"), max_length=32, batch_size=16, epochs=2,
                learning_rate=3e-3, head_lr_scale=1.0, progress=False, seed=1, threads=1) | extra


@pytest.fixture(scope="module")
def setup(tiny_dir):  # noqa: F811
    """A tiny classifier with a random head, its task and tokenizer."""
    config = FinetuneConfig(model=str(tiny_dir), max_length=32, progress=False)
    torch.manual_seed(3)
    model = build_model(config, LABELS).eval()
    return config, model, build_task(config, tiny_tokenizer(), LABELS), tiny_tokenizer()


def own_logits(model, tokenizer, texts):
    """The model's logits for each text alone (no batching, no padding), in float64."""
    with torch.no_grad():
        return np.array([model(torch.tensor([tokenizer(t, truncation=True, max_length=32)["input_ids"]])).logits[0]
                         .double().numpy() for t in texts])


def test_pseudo_labels_are_the_teachers_argmax_on_the_rows_over_the_threshold(setup):
    _, model, task, tokenizer = setup
    texts = [e["text"] for e in sentiment_examples(40, seed=4)]
    logits = own_logits(model, tokenizer, texts)
    top = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).max(1)
    threshold = float(np.median(top))
    pseudo = pseudo_label(model, task, texts, threshold)
    expected = np.flatnonzero(top >= threshold)
    assert 0 < len(expected) < len(texts)
    np.testing.assert_array_equal(pseudo.kept, expected)
    np.testing.assert_array_equal(pseudo.labels, logits[expected].argmax(1))
    np.testing.assert_allclose(pseudo.logits, logits, atol=1e-5)
    assert len(pseudo_label(model, task, texts, 0.0).kept) == len(texts)


def test_no_row_over_the_threshold_is_an_error_naming_it(setup):
    _, model, task, _ = setup
    with pytest.raises(ValueError, match=r"confidence_threshold=1\.0.*highest top probability is 0\.\d+"):
        pseudo_label(model, task, ["the film was good", "a dull plot"], 1.0)


def test_student_loss_is_cross_entropy_on_gold_rows_and_kl_on_pseudo_rows():
    gen = torch.Generator().manual_seed(0)
    logits, teacher = torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen) * 2
    labels = torch.tensor([2, IGNORE_INDEX, 0, IGNORE_INDEX, IGNORE_INDEX, 1])
    z, t = logits.double().numpy(), teacher.double().numpy()
    log_s = z - np.log(np.exp(z).sum(1, keepdims=True))
    log_t = t - np.log(np.exp(t).sum(1, keepdims=True))
    rows = [-log_s[i, y] if y >= 0 else (np.exp(log_t[i]) * (log_t[i] - log_s[i])).sum()
            for i, y in enumerate(labels.tolist())]
    assert float(student_loss(logits, labels, teacher)) == pytest.approx(np.mean(rows), rel=1e-5)
    gold_only = torch.tensor([0, 1, 2, 0, 1, 2])  # no pseudo rows: plain cross-entropy
    assert float(student_loss(logits, gold_only, teacher)) == pytest.approx(
        -np.mean(log_s[np.arange(6), gold_only.numpy()]), rel=1e-5)


def test_student_batches_carry_the_clean_texts_teacher_logits_on_the_noisy_inputs(setup):
    _, model, task, tokenizer = setup
    train = sentiment_examples(5, seed=1)
    texts = [e["text"] for e in sentiment_examples(12, seed=2)]
    pseudo = pseudo_label(model, task, texts, 0.0)
    inputs = noisy_texts(texts, texts, "[MASK]", seed=0)
    features = student_features(task, train, inputs, pseudo.logits)
    assert [f["label"] for f in features[:5]] == [LABELS.label2id[e["label"]] for e in train]
    for j, feature in enumerate(features[5:]):
        assert feature["label"] == IGNORE_INDEX
        assert feature["input_ids"] == tokenizer(inputs[j], truncation=True, max_length=32)["input_ids"]
        np.testing.assert_allclose(feature["teacher_logits"], pseudo.logits[j])
    batch = soft_collate(task, 2)(features)
    model.eval()
    loss, stats = student_step(model, batch)
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits
    assert float(loss.detach()) == pytest.approx(float(student_loss(logits, batch["labels"], batch["teacher_logits"])))
    assert stats["pseudo_fraction"] == pytest.approx(12 / 17)


def test_balancing_follows_the_labelled_shares_keeping_the_most_confident_and_repeating_the_rare():
    rng = np.random.default_rng(0)
    first = rng.uniform(0.05, 0.95, size=20)
    probabilities = np.stack([first, 1 - first], 1)
    kept = np.flatnonzero(probabilities.max(1) >= 0.6)
    pseudo = PseudoLabels([str(i) for i in range(20)], np.log(probabilities), probabilities, kept,
                          probabilities[kept].argmax(1))
    rows = balanced_rows(pseudo, np.array([0.25, 0.75]))
    by_class = {c: sorted((i for i in kept if probabilities[i].argmax() == c), key=lambda i: -probabilities[i, c])
                for c in (0, 1)}
    want = {0: round(0.25 * len(kept)), 1: round(0.75 * len(kept))}
    assert len(by_class[0]) > want[0] and 0 < len(by_class[1]) < want[1]  # one class cut, the other repeated
    for c in (0, 1):
        expected = [by_class[c][k % len(by_class[c])] for k in range(want[c])]
        assert [i for i in rows.tolist() if probabilities[i].argmax() == c] == expected


def test_noise_masks_or_replaces_words_in_place():
    texts = [e["text"] for e in sentiment_examples(200, seed=3)]
    noisy = noisy_texts(texts, texts, "[MASK]", seed=5)
    vocabulary = {w for t in texts for w in t.split()}
    changed = masked = total = 0
    for clean, new in zip(texts, noisy, strict=True):
        a, b = clean.split(), new.split()
        assert len(a) == len(b) and all(y == x or y == "[MASK]" or y in vocabulary for x, y in zip(a, b, strict=True))
        changed += sum(x != y for x, y in zip(a, b, strict=True))
        masked += b.count("[MASK]")
        total += len(a)
    assert 0.05 < masked / total < 0.15 and 0.1 < changed / total < 0.3  # p_mask 0.1, then p_replace 0.1
    assert noisy == noisy_texts(texts, texts, "[MASK]", seed=5) != noisy_texts(texts, texts, "[MASK]", seed=6)


def test_two_rounds_write_per_round_metrics_and_a_folder_that_predicts(tmp_path, tiny_dir):  # noqa: F811
    data = {f"{split}_file": write_jsonl(tmp_path / f"{split}.jsonl", rows) for split, rows in
            {"train": sentiment_examples(160, 0), "dev": sentiment_examples(40, 1),
             "test": sentiment_examples(40, 2)}.items()}
    unlabeled = tmp_path / "u.txt"
    unlabeled.write_text("".join(e["text"] + "\n" for e in sentiment_examples(160, 7)))
    config = FinetuneConfig(**options(tmp_path, tiny_dir, **data, unlabeled_file=str(unlabeled), self_training=2,
                                      confidence_threshold=0.6, epochs=4, learning_rate=5e-3, pooling="cls"))
    result = finetune(config)
    records = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert [(r["round"], r["split"]) for r in records] == [(n, s) for n in range(3) for s in ("dev", "test")]
    students = [r for r in records if r["round"] > 0]
    assert all(0 < r["pseudo_labelled"] <= 160 and r["labelled"] == 160 for r in students)
    for n in (1, 2):  # each student's own run, its dev evaluations in its folder
        evals = [r for r in read_metrics(tmp_path / "out" / f"round-{n}" / "metrics.jsonl") if r["split"] == "eval"]
        assert max(r["accuracy"] for r in evals) == next(r["accuracy"] for r in students
                                                         if r["round"] == n and r["split"] == "dev")
    classifier = SequenceClassifier.from_pretrained(tmp_path / "out" / "best")
    test = sentiment_examples(40, 2)
    predicted = classifier.predict([e["text"] for e in test])
    accuracy = np.mean([p["label"] == e["label"] for p, e in zip(predicted, test, strict=True)])
    assert accuracy == pytest.approx(records[-1]["accuracy"]) == pytest.approx(result.test["accuracy"])
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(summary["rounds"]) == 6 and summary["overlap"] == {"dev": 0, "test": 0}


def test_cli_runs_a_round_with_a_smaller_student(tmp_path, tiny_dir, capsys):  # noqa: F811
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_examples(32, 0))
    unlabeled = write_jsonl(tmp_path / "u.jsonl", [{"text": e["text"]} for e in sentiment_examples(40, 9)])
    args = [f"{k}={v}" for k, v in options(tmp_path, tiny_dir, epochs=1, student_epochs=2).items()]
    assert main(["finetune", *args, f"train_file={train}", f"unlabeled_file={unlabeled}", "self_training=1",
                 "student_layers=1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    records = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert printed["output_dir"] == str(tmp_path / "out") and len(records) == 2  # rounds 0 and 1: dev (no test_file)
    assert printed["rounds"] == [{"round": r["round"], "split": r["split"], "accuracy": r["accuracy"]} for r in records]
    evals = [sum(r["split"] == "eval" for r in read_metrics(tmp_path / "out" / f"round-{n}" / "metrics.jsonl"))
             for n in (0, 1)]
    assert evals == [1, 2]  # one evaluation an epoch: epochs=1 for the teacher, student_epochs=2
    saved = json.loads((tmp_path / "out" / "best" / "config.json").read_text())
    assert saved["num_hidden_layers"] == 1 and saved["id2label"] == {"0": "neg", "1": "pos"}


@pytest.mark.parametrize(("extra", "message"), [
    ({"self_training": 2}, "self_training needs unlabeled_file"),
    ({"unlabeled_file": "u.txt"}, "unlabeled_file is read only by self-training"),
    ({"self_training": 1, "unlabeled_file": "u.txt", "confidence_threshold": 1.5}, "confidence_threshold must be"),
    ({"self_training": -1}, "self_training must be a number of rounds"),
    ({"self_training": 1, "unlabeled_file": "u.txt", "task": "regression"}, "task must be classification"),
    ({"self_training": 1, "unlabeled_file": "u.txt", "peft": "lora"}, "does not combine with peft"),
    ({"self_training": 1, "unlabeled_file": "u.txt", "student_layers": 0}, "student_layers must be"),
    ({"self_training": 1, "unlabeled_file": "u.txt", "student_epochs": 0}, "student_epochs must be"),
    ({"self_training": 1, "unlabeled_file": "u.txt", "long_text": "hierarchical"}, "long_text=hierarchical"),
])
def test_bad_options_are_refused_by_name(extra, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**extra)


def test_an_unlabeled_file_without_text_is_refused(tmp_path):
    empty, blank_column = tmp_path / "u.txt", tmp_path / "u.jsonl"
    empty.write_text("")
    blank_column.write_text('{"text": "   "}\n')
    for path in (empty, blank_column):
        with pytest.raises(ValueError, match="holds no text"):
            read_unlabeled(FinetuneConfig(unlabeled_file=str(path), self_training=1))
    wrong = tmp_path / "w.jsonl"
    wrong.write_text('{"review": "good"}\n')
    with pytest.raises(ValueError, match="line 1 has no text in column 'text'"):
        read_unlabeled(FinetuneConfig(unlabeled_file=str(wrong), self_training=1))


def test_texts_shared_with_dev_and_test_are_warned_with_their_counts(caplog):
    splits = {"dev": sentiment_examples(30, 1), "test": sentiment_examples(30, 2)}
    texts = [e["text"] for e in sentiment_examples(50, 5)] + [e["text"] for e in splits["test"][:7]]
    texts += [splits["dev"][0]["text"]]
    expected = {name: len(set(texts) & {e["text"] for e in splits[name]}) for name in ("dev", "test")}
    with caplog.at_level(logging.WARNING):
        assert warn_overlap(texts, splits) == expected
    assert expected["test"] >= 7 and f"shares {expected['test']} texts with the test split" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        warn_overlap([e["text"] for e in sentiment_examples(5, 5)] + ["nothing like it"], {"dev": [], "test": []})
    assert caplog.text == ""


def test_resume_and_text_pairs_are_refused(tmp_path, tiny_dir):  # noqa: F811
    unlabeled = tmp_path / "u.txt"
    unlabeled.write_text("the film was good\n")
    config = FinetuneConfig(**options(tmp_path, tiny_dir, unlabeled_file=str(unlabeled), self_training=1))
    with pytest.raises(ValueError, match="--resume continues one training run"):
        finetune(config, resume=True)
    with pytest.raises(ValueError, match="a search cannot follow"):  # Ray Tune's on_evaluate would never be called
        finetune(config, on_evaluate=lambda scores: None)
    pairs = [dict(e, text_pair="a plot") for e in sentiment_examples(20, 0)]
    config = FinetuneConfig(**options(tmp_path, tiny_dir, train_file=write_jsonl(tmp_path / "p.jsonl", pairs),
                                      unlabeled_file=str(unlabeled), self_training=1))
    with pytest.raises(ValueError, match="holds text pairs"):
        finetune(config)
