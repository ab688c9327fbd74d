"""SBERT's classification objective (``loss: softmax``): equal to sentence-transformers' SoftmaxLoss on the same batch
with the same weights, trained end to end by train-embeddings, and its refusals of unlabelled or mislabelled rows."""

import json
import random

import pytest
import torch
from encoding_fixtures import ADJECTIVES, NOUNS, build_folder, make_tiny_bert

from bertkit.cli import main
from bertkit.encoding import SentenceEncoder
from bertkit.encoding.losses import SoftmaxClassifier
from bertkit.encoding.training import EmbeddingTrainConfig, WithClassifier, batch_loss, load_data, number_labels

PREMISES = ["how do I open a file", "the quick dog sleeps", "install the package with apt", "a cold river",
            "the old library opens"]
HYPOTHESES = ["use open() to read a file", "a cat is awake", "apt-get install the package", "the garden grows",
              "a library is open"]
LABELS = [0, 2, 0, 1, 0]  # three classes, one of them seen once: each row's term of the mean differs


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), minilm_dir)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_bert, minilm_dir):
    """Mean pooling, a Dense layer (its gradients are compared too) and Normalize."""
    return build_folder(tmp_path_factory.mktemp("st") / "model", tiny_bert, minilm_dir, pooling="mean",
                        dense=(32, 24, torch.nn.Tanh()), normalize=True)


def st_loss_and_grads(folder):
    """sentence-transformers' SoftmaxLoss (3 labels) on the batch; its classifier is returned to copy across."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses

    model = SentenceTransformer(str(folder), device="cpu").eval()  # eval: no dropout on either side
    torch.manual_seed(7)
    loss_fn = losses.SoftmaxLoss(model, embedding_dimension=24, num_labels=3)
    features = [model.preprocess(list(column)) for column in (PREMISES, HYPOTHESES)]
    loss = loss_fn(features, torch.tensor(LABELS))
    loss.backward()
    grads = (model[0].model.embeddings.word_embeddings.weight.grad, model[2].linear.weight.grad,
             loss_fn.classifier.weight.grad)
    return loss.item(), grads, loss_fn.classifier


def our_loss_and_grads(folder, classifier):
    encoder = SentenceEncoder.from_pretrained(folder)
    head = SoftmaxClassifier(encoder.dimension, 3)
    head.classifier.load_state_dict({k: v.detach().clone() for k, v in classifier.state_dict().items()})
    batch = {}
    for i, column in enumerate((PREMISES, HYPOTHESES)):
        ids, _ = encoder.tokenize(column)
        width = max(map(len, ids))
        batch[f"input_ids_{i}"] = torch.tensor([x + [0] * (width - len(x)) for x in ids])
        batch[f"attention_mask_{i}"] = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    batch["labels"] = torch.tensor(LABELS)
    loss = batch_loss(WithClassifier(encoder, head), batch, "softmax", scale=20.0)
    loss.backward()
    grads = (encoder.model.embeddings.word_embeddings.weight.grad, encoder.head[0].linear.weight.grad,
             head.classifier.weight.grad)
    return loss.item(), grads


def test_softmax_loss_equals_sentence_transformers(folder):
    theirs, their_grads, classifier = st_loss_and_grads(folder)
    ours, our_grads = our_loss_and_grads(folder, classifier)
    assert abs(ours - theirs) <= 1e-5
    for name, mine, other in zip(("word embeddings", "Dense", "classifier"), our_grads, their_grads, strict=True):
        assert other.abs().max() > 0, name
        torch.testing.assert_close(mine, other, rtol=1e-3, atol=1e-6, msg=name)


def test_classifier_is_a_linear_layer_on_u_v_and_their_distance():
    head = SoftmaxClassifier(4, 3)
    u, v = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    head = head.double()
    weight, bias = head.classifier.weight, head.classifier.bias
    expected = u @ weight[:, :4].T + v @ weight[:, 4:8].T + (u - v).abs() @ weight[:, 8:].T + bias
    torch.testing.assert_close(head(u, v), expected)
    with pytest.raises(ValueError, match="at least 2 labels, got 1"):
        SoftmaxClassifier(4, 1)


def labelled_rows(n, seed):
    """(premise, hypothesis, label): "same" when the hypothesis names the premise's noun, else "different"."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        same = rng.random() < 0.5
        other = noun if same else rng.choice([x for x in NOUNS if x != noun])
        rows.append({"premise": f"the {adjective} {noun} is here", "hypothesis": f"I saw a {other}",
                     "label": "same" if same else "different"})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_embeddings_with_softmax(folder, tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", labelled_rows(32, seed=0))
    dev = write_jsonl(tmp_path / "dev.jsonl", labelled_rows(16, seed=1))
    out = tmp_path / "out"
    assert main(["train-embeddings", f"model={folder}", f"train_file={train}", f"dev_file={dev}", "loss=softmax",
                 "batch_size=8", "epochs=2", "lr=1e-3", "classifier_lr_scale=3", "evals_per_epoch=1",
                 "progress=false",
                 f"output_dir={out}"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == ["different", "same"] and report["metric"] == "accuracy"
    assert report["steps"] == 8  # 32 rows in batches of 8, none dropped, 2 epochs
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r["accuracy"] for r in records if r["split"] == "eval"]
    assert len(evals) == 2 and report["best_dev"] == max(evals)
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0]  # the classifier and the encoder learned the labels
    trained = SentenceEncoder.from_pretrained(out / "model")  # a plain folder: the classifier is not saved
    assert [type(m).__name__ for m in trained.head] == ["Dense", "Normalize"]


def test_labels_from_a_tsv_column_anywhere_and_by_index(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("label\tpremise\thypothesis\n1\ta dog\tan animal\n0\ta dog\ta river\n2\ta dog\ta cat\n")
    config = EmbeddingTrainConfig(train_file=str(path), loss="softmax", output_dir=str(tmp_path / "o"))
    train, dev = load_data(config)
    assert train == [("a dog", "an animal", "1"), ("a dog", "a river", "0"), ("a dog", "a cat", "2")]
    numbered, _, names = number_labels(train, dev, None)
    assert [row[-1] for row in numbered] == [1, 0, 2] and names == ["0", "1", "2"]
    assert number_labels(train, dev, 4)[2] == ["0", "1", "2", "3"]  # a class the sample lacks


def test_softmax_refusals(tmp_path):
    unlabelled = write_jsonl(tmp_path / "pairs.jsonl", [{"premise": "a dog", "hypothesis": "an animal"}])
    config = EmbeddingTrainConfig(train_file=str(unlabelled), loss="softmax", output_dir=str(tmp_path / "o"))
    with pytest.raises(ValueError, match=r"pairs.jsonl line 1: loss softmax needs \(premise, hypothesis, label\) "
                                         r"rows, and this row has no label"):
        load_data(config)
    blank = tmp_path / "blank.tsv"
    blank.write_text("premise\thypothesis\tlabel\na dog\tan animal\t\n")
    with pytest.raises(ValueError, match="blank.tsv line 2: .* has no label"):
        load_data(EmbeddingTrainConfig(train_file=str(blank), loss="softmax", output_dir=str(tmp_path / "o")))
    rows = [("a", "b", 0), ("c", "d", 2)]
    with pytest.raises(ValueError, match=r"labels \['2'\] are outside 0 … 1 \(num_labels=2\)"):
        number_labels(rows, [], 2)
    with pytest.raises(ValueError, match=r"dev labels \['neutral'\] never occur in the training rows"):
        number_labels([("a", "b", "yes"), ("c", "d", "no")], [("e", "f", "neutral")], None)
    with pytest.raises(ValueError, match=r"num_labels=3, but the training rows have 2 labels"):
        number_labels([("a", "b", "yes"), ("c", "d", "no")], [], 3)
    with pytest.raises(ValueError, match=r"at least 2 labels; the training rows have only \['yes'\]"):
        number_labels([("a", "b", "yes")], [], None)
    with pytest.raises(ValueError, match="classifier_lr_scale must be above 0, got 0"):
        EmbeddingTrainConfig(train_file="x.jsonl", loss="softmax", classifier_lr_scale=0)
    with pytest.raises(ValueError, match="num_labels is for loss softmax"):
        EmbeddingTrainConfig(train_file="x.jsonl", loss="mnrl", num_labels=3)
    with pytest.raises(ValueError, match="python_docs holds pairs without scores or labels"):
        load_data(EmbeddingTrainConfig(dataset="python_docs", loss="softmax", output_dir=str(tmp_path / "o")))
