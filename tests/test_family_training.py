"""The family in the training commands: pretraining each architecture from scratch (ALBERT with SOP, RoBERTa on
full sentences with dynamic masking), continuing from their folders, fine-tuning any of them."""

import json

import pytest
import torch
import transformers

from bertkit.cli import main
from bertkit.config import BertConfig
from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.model import AutoModelForMaskedLM, AutoModelForPreTraining
from bertkit.pretraining import PretrainingConfig, run_pretraining
from bertkit.training.metrics import read_metrics

TINY = dict(model_preset="tiny", max_seq_length=48, batch_size=8, warmup_steps=1, logging_steps=2, progress=False,
            max_steps=4, eval_steps=4, eval_batches=1, learning_rate=1e-3)


@pytest.fixture(scope="module")
def review_corpus(tmp_path_factory):
    reviews = [text for _, text in rotten_tomatoes_reviews()[:400]]
    path = tmp_path_factory.mktemp("corpus") / "reviews.txt"
    path.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, len(reviews), 4)) + "\n")
    return path


def pretrain(corpus, tokenizer, out, **extra) -> dict:
    config = PretrainingConfig(corpus=[str(corpus)], tokenizer=str(tokenizer), output_dir=str(out), **(TINY | extra))
    return run_pretraining(config)


@pytest.mark.parametrize("architecture,pair_task,transformers_class", [
    ("albert", "sop", "AlbertForPreTraining"),
    ("roberta", "none", "RobertaForMaskedLM"),
    ("electra", "none", "ElectraForMaskedLM"),
    ("distilbert", "none", "DistilBertForMaskedLM"),
])
def test_pretraining_each_architecture_from_scratch(review_corpus, minilm_dir, tmp_path, architecture, pair_task,
                                                    transformers_class):
    summary = pretrain(review_corpus, minilm_dir, tmp_path, architecture=architecture, pair_task=pair_task,
                       dynamic_masking=True)
    assert summary["steps"] == 4
    evals = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["split"] == "eval"]
    assert evals and 0 <= evals[-1]["mlm_accuracy"] <= 1 and ("nsp_accuracy" in evals[-1]) == (pair_task != "none")
    written = json.loads((tmp_path / "model" / "config.json").read_text())
    assert written["model_type"] == architecture and written["architectures"] == [transformers_class]
    ours = AutoModelForPreTraining.from_pretrained(tmp_path / "model") if pair_task != "none" else \
        AutoModelForMaskedLM.from_pretrained(tmp_path / "model")
    theirs = getattr(transformers, transformers_class).from_pretrained(tmp_path / "model").eval()
    ids = torch.tensor([[101, 2023, 3185, 2003, 103, 1012, 102]])
    with torch.no_grad():
        a = ours(ids)
        b = theirs(input_ids=ids)
    ours_logits = a.prediction_logits if hasattr(a, "prediction_logits") else a.logits
    theirs_logits = b.prediction_logits if hasattr(b, "prediction_logits") else b.logits
    assert (ours_logits - theirs_logits).abs().max() <= 1e-4
    if architecture == "albert":  # the shape ALBERT is known for: factorized embeddings, one shared layer
        assert written["embedding_size"] == 128 and written["num_hidden_groups"] == 1
    if architecture == "roberta":  # room for 48 tokens after the padding index
        assert written["max_position_embeddings"] == 48 + 0 + 1


def test_roberta_full_sentences_are_one_segment(review_corpus, minilm_dir, tmp_path):
    from bertkit.pretraining.run import build_data
    from bertkit.tokenization import BertTokenizer

    config = PretrainingConfig(corpus=[str(review_corpus)], tokenizer=str(minilm_dir), output_dir=str(tmp_path),
                               **(TINY | dict(architecture="roberta", pair_task="none")))
    data = build_data(config, BertTokenizer.from_pretrained(minilm_dir))
    assert config.dynamic_masking and all(not e.token_type_ids.any() for e in data.train)


def test_a_pair_task_needs_a_sentence_head(review_corpus, minilm_dir, tmp_path, capsys):
    args = ["pretrain", "--corpus", str(review_corpus), "--tokenizer", str(minilm_dir), "--model-preset", "tiny",
            "--progress", "false", "--output-dir", str(tmp_path), "architecture=roberta", "pair_task=nsp"]
    assert main(args) == 2
    assert "roberta has no sentence-pair head for pair_task: nsp" in capsys.readouterr().err
    assert main(args[:-2] + ["architecture=mpnet"]) == 2
    assert "architecture must be one of" in capsys.readouterr().err


@pytest.mark.parametrize("options, expected", [
    ({}, "nsp"), ({"architecture": "albert"}, "sop"), ({"architecture": "roberta"}, "none"),
    ({"architecture": "distilbert"}, "none"), ({"architecture": "electra"}, "none"), ({"objective": "electra"}, "none"),
    ({"init_from": "albert"}, "sop"), ({"init_from": "roberta"}, "none"),
    ({"architecture": "albert", "pair_task": "nsp"}, "nsp"),
])
def test_the_pair_task_follows_the_objective_and_architecture(options, expected, tmp_path):
    from bertkit import AutoModel, BertConfig
    from bertkit.pretraining import PretrainingConfig

    if "init_from" in options:  # the architecture of the folder pretraining continues
        kind = options["init_from"]
        AutoModel.from_config(BertConfig.preset("tiny", model_type=kind, vocab_size=50)).save_pretrained(tmp_path)
        options = {"init_from": str(tmp_path)}
    assert PretrainingConfig(**options).pair_task == expected


def test_continued_pretraining_and_fine_tuning_from_a_roberta_folder(minilm_dir, tmp_path):
    """A transformers RoBERTa folder (with bertkit's WordPiece vocabulary) continues pretraining and fine-tunes."""
    import shutil

    vocab = (minilm_dir / "vocab.txt").read_text().splitlines()
    hf = transformers.RobertaForMaskedLM(transformers.RobertaConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=66, pad_token_id=0, type_vocab_size=1))
    hf.save_pretrained(tmp_path / "roberta")
    for name in ("vocab.txt", "tokenizer_config.json"):
        if (minilm_dir / name).exists():
            shutil.copy(minilm_dir / name, tmp_path / "roberta" / name)
    reviews = [text for _, text in rotten_tomatoes_reviews()[:80]]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, 80, 4)) + "\n")
    summary = run_pretraining(PretrainingConfig(
        corpus=[str(corpus)], init_from=str(tmp_path / "roberta"), output_dir=str(tmp_path / "continued"),
        **(TINY | dict(pair_task="none", max_seq_length=64, eval_fraction=0))))
    assert summary["steps"] == 4

    from finetuning_fixtures import sentiment_examples

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(e) + "\n" for e in sentiment_examples(64, 0)))
    out = tmp_path / "finetuned"
    assert main(["finetune", f"model={tmp_path / 'continued' / 'model'}", f"train_file={train}", f"output_dir={out}",
                 "epochs=1", "batch_size=8", "max_length=32", "pooling=cls", "progress=false", "threads=1"]) == 0
    written = json.loads((out / "best" / "config.json").read_text())
    # [CLS] pooling + a linear head is not transformers' RobertaClassificationHead: the folder ships its own class
    assert written["model_type"] == "roberta"
    assert written["architectures"] == ["RobertaBertkitForSequenceClassification"]
    assert "AutoModelForSequenceClassification" in written["auto_map"]
    from bertkit.finetuning.predict import load_predictor

    predictor = load_predictor(out / "best")
    (prediction,) = predictor.predict(["a wonderful film"])
    assert set(prediction["probabilities"]) == {"pos", "neg"}
    # transformers runs the shipped RoBERTa class with bertkit's scores
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(out / "best", trust_remote_code=True)
    ids = torch.tensor([[0, 2023, 2003, 1037, 2, 1, 1], [0, 6919, 2143, 2003, 2307, 999, 2]])
    mask = (ids != 1).long()
    with torch.no_grad():
        expected = theirs.eval()(input_ids=ids, attention_mask=mask).logits
        got = predictor.model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(got, expected, atol=1e-5)


def test_presets_keep_what_makes_each_architecture():
    albert = BertConfig.preset("tiny", model_type="albert")
    assert albert.num_hidden_groups == 1 and albert.embedding_size == 128
    assert BertConfig.preset("mini", model_type="distilbert").type_vocab_size == 0


def test_fine_tuning_from_scratch_as_another_architecture(tmp_path, capsys):
    from finetuning_fixtures import save_tiny_model, sentiment_examples

    folder = save_tiny_model(tmp_path / "tiny")
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(e) + "\n" for e in sentiment_examples(48, 0)))
    common = [f"model={folder}", f"train_file={train}", "epochs=1", "batch_size=8", "max_length=24",
              "progress=false", "threads=1"]
    assert main(["finetune", *common, f"output_dir={tmp_path / 'albert'}", "init=random", "architecture=albert",
                 "pooling=pooled"]) == 0  # transformers' own class
    written = json.loads((tmp_path / "albert" / "best" / "config.json").read_text())
    assert written["model_type"] == "albert" and written["architectures"] == ["AlbertForSequenceClassification"]
    assert written["num_hidden_groups"] == 1
    capsys.readouterr()
    assert main(["finetune", *common, f"output_dir={tmp_path / 'x'}", "architecture=albert"]) == 2
    assert "only applies to a model trained from scratch (init: random)" in capsys.readouterr().err


def test_a_regression_folder_loads_in_transformers_with_one_output(tmp_path):
    """BertSim-style regression: transformers reads num_labels from id2label (empty before: 0 outputs)."""
    from finetuning_fixtures import save_tiny_model, sentiment_examples

    folder = save_tiny_model(tmp_path / "tiny")
    rows = [{"text": e["text"], "text_pair": e["text"][::-1], "score": float(e["label"] == "pos")}
            for e in sentiment_examples(48, 0)]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["finetune", "task=regression", f"model={folder}", f"train_file={train}", "epochs=1", "pooling=pooled",
                 "max_length=24", "progress=false", "threads=1", f"output_dir={tmp_path / 'out'}"]) == 0
    from bertkit.finetuning.predict import load_predictor
    from bertkit.tokenization import BertTokenizer

    best = tmp_path / "out" / "best"
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(best).eval()
    assert theirs.config.num_labels == 1
    ours = load_predictor(best).model
    batch = BertTokenizer.from_pretrained(best)(["good film"], ["film good"], return_tensors="pt")
    with torch.no_grad():
        assert (ours(**batch).logits - theirs(**batch).logits).abs().max() <= 1e-5
