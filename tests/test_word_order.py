"""StructBERT's word-order objective (bertkit.pretraining.word_order): the shuffle is a real permutation of exactly
three consecutive unmasked, non-special tokens, its labels are the original tokens, the loss adds a term over the
shuffled positions only (against the formula in float64), the batches resume exactly, and a tiny BERT learns to put
trigrams back."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from bertkit.config import BertConfig
from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.model import BertForPreTraining
from bertkit.pretraining import MaskingConfig, PretrainingConfig
from bertkit.pretraining.dataset import PretrainingBatches, to_example
from bertkit.pretraining.instances import create_instances
from bertkit.pretraining.objective import pretraining_step
from bertkit.pretraining.run import special_ids
from bertkit.pretraining.tokenized import tokenize_documents
from bertkit.pretraining.word_order import (
    WordOrderBatches,
    add_word_order,
    evaluate_word_order,
    shuffle_trigram,
    word_order_step,
)
from bertkit.tokenization import BertTokenizer
from bertkit.training.loop import Trainer, TrainingArguments


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def examples(tokenizer):
    """Real reviews cut into NSP instances of 48 tokens, 4 reviews a document."""
    reviews = [text for _, text in rotten_tomatoes_reviews()[:800]]
    documents = [reviews[i:i + 4] for i in range(0, len(reviews), 4)]
    tokenized = tokenize_documents(documents, tokenizer, "wordpiece", False)
    return [to_example(i) for i in create_instances(tokenized, 48, special_ids(tokenizer), random.Random(0), "nsp",
                                                    0.1)]


def source(examples, tokenizer, seed=0):
    return PretrainingBatches(examples, 16, special_ids(tokenizer), len(tokenizer), MaskingConfig(), seed=seed)


def specials(tokenizer) -> set[int]:
    s = special_ids(tokenizer)
    return {s.cls, s.sep, s.pad, s.mask}


def test_a_shuffle_is_a_real_permutation_of_three_unmasked_consecutive_tokens(examples, tokenizer):
    special = specials(tokenizer)
    plain, shuffled_batches = source(examples, tokenizer), WordOrderBatches(source(examples, tokenizer), 1.0, special)
    rows = 0
    for _ in range(4):
        original, batch = plain.next_batch(), shuffled_batches.next_batch()
        assert torch.equal(batch["labels"], original["labels"])  # the masking is untouched
        for row in range(batch["input_ids"].shape[0]):
            ids, before, labels = batch["input_ids"][row], original["input_ids"][row], original["labels"][row]
            where = (batch["word_order_labels"][row] != -100).nonzero().flatten().tolist()
            assert len(where) == 3 and where == list(range(where[0], where[0] + 3))  # exactly one trigram
            assert batch["word_order_labels"][row, where].tolist() == before[where].tolist()  # the originals
            assert sorted(ids[where].tolist()) == sorted(before[where].tolist())  # a permutation of them ...
            assert ids[where].tolist() != before[where].tolist()  # ... that changes the sequence
            assert (labels[where] == -100).all() and not set(before[where].tolist()) & special
            assert bool(batch["attention_mask"][row, where].all())
            outside = torch.ones_like(ids, dtype=torch.bool)
            outside[where] = False
            assert torch.equal(ids[outside], before[outside])  # nothing else moved
            rows += 1
    assert rows == 64


def test_the_share_of_shuffled_rows_follows_the_probability_and_resumes_exactly(examples, tokenizer):
    batches = WordOrderBatches(source(examples, tokenizer), 0.25, specials(tokenizer), seed=3)
    shuffled = sum(int((batches.next_batch()["word_order_labels"] != -100).any(-1).sum()) for _ in range(25))
    n, p = 25 * 16, 0.25  # a binomial count: within 4.5 standard deviations
    assert abs(shuffled - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)), shuffled
    state = batches.state_dict()
    following = batches.next_batch()
    resumed = WordOrderBatches(source(examples, tokenizer), 0.25, specials(tokenizer), seed=3)
    resumed.load_state_dict(state)
    again = resumed.next_batch()
    assert all(torch.equal(following[k], again[k]) for k in following)
    with pytest.raises(ValueError, match=r"word_order_probability must be in \(0, 1\]"):
        WordOrderBatches(source(examples, tokenizer), 0.0, specials(tokenizer))


def test_nothing_to_shuffle_gives_none():
    rng = random.Random(0)
    assert shuffle_trigram([101, 7, 7, 7, 102], [-100] * 5, {101, 102}, rng) is None  # three equal tokens
    assert shuffle_trigram([101, 5, 6, 7, 102], [-100, -100, 6, -100, -100], {101, 102}, rng) is None  # masked
    assert shuffle_trigram([101, 5, 6, 102, 8, 9], [-100] * 6, {101, 102}, rng) is None  # a [SEP] inside
    assert shuffle_trigram([101, 5, 6, 7, 0, 0], [-100] * 6, {101, 102}, rng, length=3) is None  # padding beyond
    ids, labels = shuffle_trigram([101, 5, 5, 7, 102], [-100] * 5, {101, 102}, rng)
    assert ids[1:4] != [5, 5, 7] and sorted(ids[1:4]) == [5, 5, 7] and labels == [-100, 5, 5, 7, -100]


def float64_losses(model, batch):
    """L_mlm and L_word as the paper defines them, from every position's logits in float64."""
    with torch.no_grad():
        hidden = model.bert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state
        logits = model.cls.predictions(hidden).double()
    log_probs = logits.log_softmax(-1)

    def mean_nll(labels):
        chosen = labels != -100
        return -log_probs[chosen].gather(-1, labels[chosen][:, None]).mean().item()

    return mean_nll(batch["labels"]), mean_nll(batch["word_order_labels"])


def test_the_loss_adds_a_term_over_the_shuffled_positions_only(examples, tokenizer):
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=len(tokenizer), hidden_dropout_prob=0.0,
                                                 attention_probs_dropout_prob=0.0)).eval()
    batch = WordOrderBatches(source(examples, tokenizer), 0.5, specials(tokenizer)).next_batch()
    assert 0 < int((batch["word_order_labels"] != -100).any(-1).sum()) < 16
    mlm, word = float64_losses(model, batch)
    with torch.no_grad():
        loss, stats = pretraining_step(model, batch, pair_task=False)  # the MLM step dispatches on the labels
        assert loss.item() == pytest.approx(mlm + word, rel=1e-5)
        assert stats["mlm_loss"] == pytest.approx(mlm, rel=1e-5)
        assert stats["word_order_loss"] == pytest.approx(word, rel=1e-5)
        assert stats["word_order_tokens"] == float((batch["word_order_labels"] != -100).sum())
        with_pair, pair_stats = word_order_step(model, batch, pair_task=True)
        nsp = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
                              .seq_relationship_logits.double(), batch["next_sentence_label"]).item()
        assert with_pair.item() == pytest.approx(mlm + word + nsp, rel=1e-5)
        plain = {k: v for k, v in batch.items() if k != "word_order_labels"}
        none = add_word_order(plain, 0.0, specials(tokenizer), random.Random(0))  # no row shuffled: L_word = 0
        assert torch.equal(none["input_ids"], plain["input_ids"])
        assert word_order_step(model, none, False)[0].item() == pytest.approx(
            pretraining_step(model, plain, False)[0].item(), rel=1e-6)


def test_a_tiny_bert_learns_to_restore_the_order(examples, tokenizer, tmp_path):
    special = specials(tokenizer)
    rng = random.Random(5)
    held_out = [add_word_order(b, 1.0, special, rng) for b in
                (source(examples[-64:], tokenizer, seed=9).next_batch() for _ in range(2))]
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=len(tokenizer)))
    before = evaluate_word_order(model, held_out)["word_order_loss"]
    batches = WordOrderBatches(source(examples[:-64], tokenizer), 1.0, special)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=25, learning_rate=5e-3, warmup_steps=3,
                             progress=False, device="cpu", threads=1)
    Trainer(model, args, batches, lambda m, b: pretraining_step(m, b, pair_task=False)).train()
    after = evaluate_word_order(model, held_out)
    assert after["word_order_loss"] < before - 2.0, (before, after)
    with pytest.raises(ValueError, match="no shuffled trigram"):
        evaluate_word_order(model, [add_word_order(held_out[0], 0.0, special, rng)])


@pytest.mark.parametrize("values, message", [
    (dict(word_order_probability=1.5), r"word_order_probability must be a number in \[0, 1\]"),
    (dict(word_order_probability=0.05, objective="electra"), "to objective: mlm, not objective: electra"),
    (dict(word_order_probability=0.05, objective="plm"), "to objective: mlm, not objective: plm"),
])
def test_word_order_settings_that_do_not_apply_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        PretrainingConfig(**values)


def test_pretrain_with_word_order_probability_adds_the_loss(minilm_dir, tmp_path):
    from bertkit.pretraining import run_pretraining
    from bertkit.training.metrics import read_metrics

    reviews = [text for _, text in rotten_tomatoes_reviews()[:200]]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, 200, 4)) + "\n")
    summary = run_pretraining(PretrainingConfig(
        corpus=[str(corpus)], tokenizer=str(minilm_dir), model_preset="tiny", max_seq_length=48, batch_size=8,
        max_steps=3, warmup_steps=1, logging_steps=1, eval_fraction=0, progress=False, threads=1,
        word_order_probability=0.5, output_dir=str(tmp_path / "out")))
    assert summary["config"]["word_order_probability"] == 0.5
    records = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert len(records) == 3 and all(r["word_order_tokens"] % 3 == 0 for r in records)
    assert sum(r["word_order_tokens"] for r in records) > 0  # ~4 of 8 rows a step, 3 tokens each
    assert all(r["loss"] == pytest.approx(r["mlm_loss"] + r["word_order_loss"] + r["nsp_loss"], rel=1e-5)
               for r in records)


def test_held_out_evaluation_scores_word_order_on_fixed_shuffles(minilm_dir, tmp_path):
    """The run's evaluation adds word-order loss / accuracy on the held-out batches, every row shuffled, the same
    shuffles each time: the final record equals evaluate_word_order on the saved model and rebuilt batches."""
    from bertkit.pretraining import run_pretraining
    from bertkit.pretraining.run import build_data, held_out_word_order
    from bertkit.training.metrics import read_metrics

    reviews = [text for _, text in rotten_tomatoes_reviews()[:240]]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, 240, 4)) + "\n")
    config = PretrainingConfig(
        corpus=[str(corpus)], tokenizer=str(minilm_dir), model_preset="tiny", max_seq_length=48, batch_size=8,
        max_steps=4, warmup_steps=1, logging_steps=2, eval_steps=2, eval_batches=3, eval_fraction=0.2,
        progress=False, threads=1, word_order_probability=0.5, output_dir=str(tmp_path / "out"))
    run_pretraining(config)
    evals = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if r["split"] == "eval"]
    assert len(evals) == 2 and all({"word_order_loss", "word_order_accuracy", "mlm_loss"} <= set(r) for r in evals)
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    batches = held_out_word_order(config, build_data(config, tokenizer).eval_batches, special := special_ids(
        tokenizer))
    rows = sum(len(b["input_ids"]) for b in batches)
    assert evals[-1]["shuffled"] == 3 * rows  # a trigram in every held-out row
    assert [b["input_ids"].tolist() for b in held_out_word_order(config, build_data(config, tokenizer).eval_batches,
                                                                 special)] == [b["input_ids"].tolist() for b in batches]
    saved = BertForPreTraining.from_pretrained(tmp_path / "out" / "model")
    assert evaluate_word_order(saved, batches)["word_order_loss"] == pytest.approx(evals[-1]["word_order_loss"],
                                                                                   rel=1e-5)
    assert held_out_word_order(PretrainingConfig(corpus=["x"], tokenizer="x", output_dir=str(tmp_path)), batches,
                               special) == []
