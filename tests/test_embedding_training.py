"""Bi-encoder training: the losses against sentence-transformers' own loss classes, and train-embeddings end to end."""

import json
import random

import numpy as np
import pytest
import torch
from encoding_fixtures import ADJECTIVES, NOUNS, build_folder, make_tiny_bert

from bertkit.cli import main
from bertkit.encoding import SentenceEncoder
from bertkit.encoding.training import EmbeddingTrainConfig, batch_loss, train_embeddings

ANCHORS = ["how do I open a file", "the quick dog sleeps", "install the package with apt", "a cold river"]
POSITIVES = ["use open() to read a file", "a fast dog is asleep", "apt-get install the package", "icy water flows"]
NEGATIVES = ["the garden grows", "servers break", "the train starts", "an old library"]
SCORES = [0.9, 0.2, 0.6, 0.2]  # a tie, so that CoSENT's "strictly higher" matters


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), minilm_dir)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_bert, minilm_dir):
    """Mean pooling, a Dense layer (its gradients are compared too) and Normalize."""
    return build_folder(tmp_path_factory.mktemp("st") / "model", tiny_bert, minilm_dir, pooling="mean",
                        dense=(32, 24, torch.nn.Tanh()), normalize=True)


def st_loss_and_grads(folder, loss_name, columns, labels):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses

    model = SentenceTransformer(str(folder), device="cpu").eval()  # eval: no dropout on either side
    loss_fn = {"mnrl": lambda: losses.MultipleNegativesRankingLoss(model),
               "cosent": lambda: losses.CoSENTLoss(model),
               "cosine": lambda: losses.CosineSimilarityLoss(model)}[loss_name]()
    features = [model.preprocess(list(column)) for column in columns]
    loss = loss_fn(features, torch.tensor(labels, dtype=torch.float32))
    loss.backward()
    word_embeddings = model[0].model.embeddings.word_embeddings.weight.grad
    return loss.item(), word_embeddings, model[2].linear.weight.grad


def our_loss_and_grads(folder, loss_name, columns, labels):
    encoder = SentenceEncoder.from_pretrained(folder)
    batch = {}
    for i, column in enumerate(columns):
        ids, _ = encoder.tokenize(column)
        width = max(map(len, ids))
        batch[f"input_ids_{i}"] = torch.tensor([x + [0] * (width - len(x)) for x in ids])
        batch[f"attention_mask_{i}"] = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    batch["scores"] = torch.tensor(labels)
    loss = batch_loss(encoder, batch, loss_name, scale=20.0)
    loss.backward()
    return loss.item(), encoder.model.embeddings.word_embeddings.weight.grad, encoder.head[0].linear.weight.grad


@pytest.mark.parametrize("loss_name, columns, labels", [
    ("mnrl", (ANCHORS, POSITIVES), [0, 0, 0, 0]),
    ("mnrl", (ANCHORS, POSITIVES, NEGATIVES), [0, 0, 0, 0]),  # a hard negative per anchor
    ("cosent", (ANCHORS, POSITIVES), SCORES),
    ("cosine", (ANCHORS, POSITIVES), SCORES),
])
def test_losses_equal_sentence_transformers(folder, loss_name, columns, labels):
    theirs, their_words, their_dense = st_loss_and_grads(folder, loss_name, columns, labels)
    ours, our_words, our_dense = our_loss_and_grads(folder, loss_name, columns, labels)
    assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
    assert their_dense.abs().max() > 0
    torch.testing.assert_close(our_dense, their_dense, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(our_words, their_words, rtol=1e-3, atol=1e-6)


def pair_rows(n, seed):
    """(anchor, positive): an adjective-noun phrase and the same two words in another sentence."""
    rng = random.Random(seed)
    combos = rng.sample([(a, b) for a in ADJECTIVES for b in NOUNS], n)
    return [{"anchor": f"{a} {b}", "positive": f"there is a {a} {b} here"} for a, b in combos]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_embeddings_command(folder, tmp_path, capsys):
    rows = pair_rows(60, seed=0)
    train, dev = write_jsonl(tmp_path / "train.jsonl", rows[:40]), write_jsonl(tmp_path / "dev.jsonl", rows[40:])
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {folder}\ntrain_file: {train}\ndev_file: {dev}\nbatch_size: 8\nprogress: false\n")
    out = tmp_path / "out"
    assert main(["train-embeddings", "--config", str(config), "epochs=4", "lr=2e-3", "evals_per_epoch=1",
                 f"output_dir={out}"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 20 and report["sizes"] == {"train": 40, "dev": 20} and report["metric"] == "mrr@10"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["split"] == "eval"]
    assert len(evals) == 4 and {"recall@1", "recall@10", "mrr@10"} <= set(evals[0])
    assert (out / "metrics.png").stat().st_size > 1000
    # training helped on the unseen dev pairs, measured against the untrained model
    before = SentenceEncoder.from_pretrained(folder)
    from bertkit.encoding.training import evaluate

    dev_rows = [(r["anchor"], r["positive"]) for r in rows[40:]]
    assert evaluate(SentenceEncoder.from_pretrained(out / "best"), dev_rows, False)["mrr@10"] > \
        evaluate(before, dev_rows, False)["mrr@10"]
    assert report["best_dev"] == max(r["mrr@10"] for r in evals)
    # the saved folders are sentence-transformers folders
    from sentence_transformers import SentenceTransformer

    texts = [r["anchor"] for r in rows[:5]]
    ours = SentenceEncoder.from_pretrained(out / "model").encode(texts)
    np.testing.assert_allclose(SentenceTransformer(str(out / "model"), device="cpu").encode(texts), ours, atol=1e-5)


def test_scored_pairs_train_with_cosent(folder, tmp_path):
    rng = random.Random(1)
    rows = [{"a": f"{a} {b}", "b": f"{c} {d}", "score": (a == c) * 0.5 + (b == d) * 0.5}
            for a, b, c, d in ((rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(ADJECTIVES[:3]),
                                rng.choice(NOUNS[:3])) for _ in range(48))]
    train = write_jsonl(tmp_path / "train.jsonl", rows[:32])
    dev = write_jsonl(tmp_path / "dev.jsonl", rows[32:])
    result = train_embeddings(EmbeddingTrainConfig(model=str(folder), train_file=str(train), dev_file=str(dev),
                                                   loss="cosent", batch_size=8, epochs=1, progress=False,
                                                   output_dir=str(tmp_path / "out")))
    assert result["steps"] == 4 and result["metric"] == "spearman" and -1 <= result["best_dev"] <= 1
    assert (tmp_path / "out" / "best" / "modules.json").is_file()


def test_bad_training_input(folder, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown bi-encoder training option\(s\) \['lossy'\]"):
        EmbeddingTrainConfig.from_dict({"lossy": "mnrl", "train_file": "x"})
    with pytest.raises(ValueError, match="loss must be one of"):
        EmbeddingTrainConfig(train_file="x", loss="triplet")
    with pytest.raises(ValueError, match="exactly one of them"):
        EmbeddingTrainConfig()
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"a": "x", "b": "y", "score": "high"}])
    with pytest.raises(ValueError, match="line 1: the last column must be a score, got 'high'"):
        train_embeddings(EmbeddingTrainConfig(model=str(folder), train_file=str(bad), loss="cosine",
                                              output_dir=str(tmp_path / "o")))
    one = write_jsonl(tmp_path / "one.jsonl", [{"anchor": "only an anchor"}])
    assert main(["train-embeddings", f"model={folder}", f"train_file={one}", f"output_dir={tmp_path / 'o'}"]) == 2
    assert "line 1: a row needs an anchor and a positive" in capsys.readouterr().err
