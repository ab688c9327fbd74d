"""Fine-tuning end to end on a tiny random BERT: it learns, keeps the best model with its label map, predicts
through the library and the CLI, and the saved classifier loads in transformers with the same logits."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from finetuning_fixtures import ner_examples, sentiment_examples, tiny_dir  # noqa: F401

from bertkit.cli import main
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.models import BertForSequenceClassification
from bertkit.finetuning.predict import SequenceClassifier, TokenClassifier
from bertkit.finetuning.train import finetune
from bertkit.training.metrics import read_metrics


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def files(tmp_path, rows_of_split):
    return {f"{split}_file": write_jsonl(tmp_path / f"{split}.jsonl", rows) for split, rows in rows_of_split.items()}


def quick(tmp_path, model, **options):
    defaults = dict(model=str(model), output_dir=str(tmp_path / "out"), max_length=32, batch_size=16, epochs=3,
                    learning_rate=3e-3, head_lr_scale=1.0, warmup_ratio=0.1, progress=False, seed=1, threads=1)
    return FinetuneConfig(**(defaults | options))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dir):  # noqa: F811
    tmp = tmp_path_factory.mktemp("cls")
    data = files(tmp, {"train": sentiment_examples(320, 0), "dev": sentiment_examples(80, 1),
                       "test": sentiment_examples(80, 2)})
    config = quick(tmp, tiny_dir, **data, evals_per_epoch=2, pooling="pooled")  # transformers' own head
    return config, finetune(config)


def test_classifier_learns_and_keeps_the_best_model(trained):
    config, result = trained
    assert result.dev["accuracy"] >= 0.9 and result.test["accuracy"] >= 0.9
    evals = [r for r in read_metrics(f"{config.output_dir}/metrics.jsonl") if r["split"] == "eval"]
    assert len(evals) == 6 and evals[-1]["epoch"] == 3.0  # 2 evaluations per epoch
    assert max(r["accuracy"] for r in evals) == result.dev["accuracy"]
    saved = json.loads(open(f"{config.output_dir}/best/config.json").read())
    assert saved["id2label"] == {"0": "neg", "1": "pos"} and saved["label2id"] == {"neg": 0, "pos": 1}
    assert saved["architectures"] == ["BertForSequenceClassification"] and saved["finetuning"]["max_length"] == 32
    summary = json.loads(open(f"{config.output_dir}/results.json").read())
    assert summary["test"]["accuracy"] == result.test["accuracy"] and summary["sizes"]["train"] == 320


def test_saved_classifier_predicts_through_library_and_cli(trained, tmp_path, capsys):
    config, result = trained
    classifier = SequenceClassifier.from_pretrained(f"{config.output_dir}/best")
    out = classifier.predict(["the film was superb", "a dull plot", "really awful movie"])
    assert [o["label"] for o in out] == ["pos", "neg", "neg"]
    assert all(abs(sum(o["probabilities"].values()) - 1) < 1e-6 for o in out)
    inputs = tmp_path / "in.txt"
    inputs.write_text("the cast was lovely\nit is boring\n")
    assert main(["predict", "--model", f"{config.output_dir}/best", str(inputs)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["text"], r["label"]) for r in lines] == [("the cast was lovely", "pos"), ("it is boring", "neg")]
    shown = [p for r in lines for p in r["probabilities"].values()]  # 4 significant digits, not float64's 16
    assert all(p == float(f"{p:.4g}") for p in shown) and abs(sum(lines[0]["probabilities"].values()) - 1) < 1e-3
    assert main(["predict", "--model", str(tmp_path / "nothing"), str(inputs)]) == 2
    assert "config.json is missing" in capsys.readouterr().err


def test_transformers_loads_the_saved_classifier_with_equal_logits(trained):
    transformers = pytest.importorskip("transformers")
    config, _ = trained
    folder = f"{config.output_dir}/best"
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    ours = BertForSequenceClassification.from_pretrained(folder)
    assert theirs.config.id2label == {0: "neg", 1: "pos"}
    ids = torch.tensor([[2, 7, 8, 9, 3, 0], [2, 10, 11, 12, 13, 3]])
    mask = (ids != 0).long()
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask).logits
        got = ours(ids, mask).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_train_head_only_freezes_the_encoder(tmp_path, tiny_dir):  # noqa: F811
    data = files(tmp_path, {"train": sentiment_examples(64, 0), "dev": sentiment_examples(16, 1)})
    result = finetune(quick(tmp_path, tiny_dir, **data, epochs=1, train_head_only=True))
    from bertkit.model import BertModel

    original = BertModel.from_pretrained(tiny_dir).state_dict()
    tuned = BertForSequenceClassification.from_pretrained(f"{result.output_dir}/best")
    for name, tensor in tuned.bert.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    head = tuned.classifier.weight
    assert not torch.allclose(head, torch.zeros_like(head))


def test_pair_regression_bertsim_learns_a_similarity_score(tmp_path, tiny_dir, capsys):  # noqa: F811
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fun", "dull", "great", "awful"]

    def rows(n):  # the score: positive words on both sides together
        out = []
        for _ in range(n):
            a, b = rng.choice(words, 3), rng.choice(words, 3)
            score = sum(w in ("good", "fun", "great") for w in [*a, *b]) / 6
            out.append({"text": " ".join(a), "text_pair": " ".join(b), "score": score})
        return out

    data = files(tmp_path, {"train": rows(400), "dev": rows(80)})
    result = finetune(quick(tmp_path, tiny_dir, task="regression", **data, epochs=4, classifier_head="two_layer",
                            pooling="mean"))
    assert result.metric == "spearman" and result.dev["spearman"] > 0.5
    out = SequenceClassifier.from_pretrained(f"{result.output_dir}/best").predict(["good fun"], ["good fun"])
    assert set(out[0]) == {"score"}
    # the tiny folder holds vocab.txt only (google-research/bert's layout): the reference rule, stated and kept
    assert "pairs past max_length=32 are cut by the 'reference' rule" in capsys.readouterr().err
    best = json.loads((Path(result.output_dir) / "best" / "tokenizer_config.json").read_text())
    assert best["pair_truncation"] == "reference"


def test_token_classifier_learns_entities_and_decodes_spans(tmp_path, tiny_dir):  # noqa: F811
    data = files(tmp_path, {"train": ner_examples(300, 0), "dev": ner_examples(60, 1)})
    result = finetune(quick(tmp_path, tiny_dir, task="token_classification", **data, epochs=4))
    assert result.metric == "f1" and result.dev["f1"] >= 0.9
    out = TokenClassifier.from_pretrained(f"{result.output_dir}/best").predict(["alice visited in new york"])
    assert [(e["type"], e["text"]) for e in out[0]["entities"]] == [("PER", "alice"), ("LOC", "new york")]


def test_multi_label_uses_bce_and_reports_f1(tmp_path, tiny_dir):  # noqa: F811
    rows = [{"text": e["text"], "label": [e["label"]] + (["film"] if "film" in e["text"].split() else [])}
            for e in sentiment_examples(300, 0)]
    data = files(tmp_path, {"train": rows[:240], "dev": rows[240:]})
    result = finetune(quick(tmp_path, tiny_dir, task="multi_label", **data, epochs=6, pooling="mean"))
    assert result.metric == "micro_f1" and result.dev["micro_f1"] > 0.8
    out = SequenceClassifier.from_pretrained(f"{result.output_dir}/best").predict(["good"])
    assert set(out[0]["probabilities"]) == {"film", "neg", "pos"}


def test_cli_finetune_reads_yaml_with_overrides_and_refuses_bad_options(tmp_path, tiny_dir, capsys):  # noqa: F811
    data = files(tmp_path, {"train": sentiment_examples(48, 0), "dev": sentiment_examples(16, 1)})
    options = data | {"model": tiny_dir, "lr": "1e-3", "epochs": 3, "max_length": 32, "threads": 1, "progress": "false"}
    (tmp_path / "run.yaml").write_text("".join(f"{k}: {v}\n" for k, v in options.items()))
    assert main(["finetune", "--config", str(tmp_path / "run.yaml"), "epochs=1", f"output_dir={tmp_path / 'o'}",
                 "--train-head-only"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epochs_run"] == 1.0 and report["metric"] == "accuracy"
    saved = json.loads((tmp_path / "o" / "results.json").read_text())["config"]
    assert saved["learning_rate"] == 1e-3 and saved["train_head_only"] is True
    assert main(["finetune", "--config", str(tmp_path / "run.yaml"), "max_length=100"]) == 2
    assert "max_length=100 is beyond the model's 64 positions" in capsys.readouterr().err
    assert main(["finetune", "--config", str(tmp_path / "run.yaml"), "learning_speed=3"]) == 2
    assert "unknown fine-tuning option(s) ['learning_speed']" in capsys.readouterr().err


def far_sentiment_examples(n: int, seed: int, before: int = 70) -> list[dict]:
    """The sentiment word after ``before`` filler words: past the tiny model's 64 positions."""
    rows = sentiment_examples(n, seed)
    filler = " ".join(["the film"] * (before // 2))
    return [dict(row, text=f"{filler} {row['text']}") for row in rows]


def test_long_documents_fine_tune_past_the_positions_with_local_attention(tmp_path, tiny_dir):  # noqa: F811
    data = files(tmp_path, {"train": far_sentiment_examples(320, 0), "dev": far_sentiment_examples(80, 1),
                            "test": far_sentiment_examples(80, 2)})
    config = quick(tmp_path, tiny_dir, **data, max_length=96, max_positions=112, attention="local", local_window=16,
                   pooling="max")  # one word among 80 tokens: a mean dilutes it
    result = finetune(config)
    assert result.test["accuracy"] >= 0.9  # the deciding word lies at positions 71–79, beyond the 64 pretrained
    saved = json.loads(open(f"{config.output_dir}/best/config.json").read())
    assert saved["attention"] == "local" and saved["local_window"] == 16 and saved["max_position_embeddings"] == 112
    classifier = SequenceClassifier.from_pretrained(f"{config.output_dir}/best")  # pads to the window by itself
    rows = far_sentiment_examples(80, 2)
    predicted = [p["label"] for p in classifier.predict([r["text"] for r in rows])]
    assert np.mean([p == r["label"] for p, r in zip(predicted, rows, strict=True)]) == result.test["accuracy"]
    head = finetune(quick(tmp_path, tiny_dir, **data, max_length=64, pooling="max", overwrite=True))
    assert head.test["accuracy"] < 0.75  # truncated at the pretrained length, the word is never seen


def test_long_document_settings_are_refused_by_name(tmp_path, tiny_dir):  # noqa: F811
    data = files(tmp_path, {"train": sentiment_examples(8, 0), "dev": sentiment_examples(4, 1)})
    with pytest.raises(ValueError, match="beyond the model's 64 positions.*max_positions"):
        finetune(quick(tmp_path, tiny_dir, **data, max_length=96))
    with pytest.raises(ValueError, match="attention must be one of"):
        quick(tmp_path, tiny_dir, attention="lsh")
    with pytest.raises(ValueError, match="local_window must be a positive integer"):
        quick(tmp_path, tiny_dir, local_window=0)
