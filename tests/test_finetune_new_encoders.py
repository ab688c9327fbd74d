"""``bertkit finetune`` on today's encoders: a tiny folder written by transformers for RoFormer, XLM-R, DeBERTa-v2
and ModernBERT fine-tunes, and the saved ``best/`` folder is transformers' own XxxForSequenceClassification (equal
logits on the texts ``bertkit predict`` reads back); regression, multi-label and token classification likewise, and
what the architecture's class cannot hold is refused by name."""

import json

import pytest
import torch
import transformers
from finetuning_fixtures import ner_examples, sentiment_examples, tiny_tokenizer
from new_encoder_fixtures import ARCHITECTURES, transformers_config

from bertkit.cli import main
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.input_settings import InputSettings
from bertkit.finetuning.models import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    TaskConfig,
    encoder_config,
)
from bertkit.finetuning.predict import SequenceClassifier, TokenClassifier
from bertkit.finetuning.train import finetune

TEXTS = ["the film was superb", "a dull plot and really awful cast", "it is quite lovely"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Each architecture's bare encoder with random weights, saved by transformers beside the tiny WordPiece vocab."""
    root, tokenizer = tmp_path_factory.mktemp("encoders"), tiny_tokenizer()
    out = {}
    for model_type in ARCHITECTURES:
        torch.manual_seed(0)
        folder = root / model_type
        encoder = transformers.AutoModel.from_config(transformers_config(model_type, tokenizer.vocab_size))
        encoder.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        out[model_type] = folder
    return out


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def run(tmp_path, model, **options) -> FinetuneConfig:
    """A short run's config: 2 epochs over the synthetic sentiment rows unless the options say otherwise."""
    data = {f"{split}_file": write_jsonl(tmp_path / f"sentiment_{split}.jsonl", sentiment_examples(n, seed))
            for split, n, seed in (("train", 64, 0), ("dev", 16, 1), ("test", 16, 2))}
    return FinetuneConfig(**(dict(model=str(model), output_dir=str(tmp_path / "out"), max_length=24, batch_size=16,
                                  epochs=2, learning_rate=3e-3, warmup_ratio=0.1, progress=False, seed=1, threads=1)
                             | data | options))


def their_logits(folder, texts, auto=transformers.AutoModelForSequenceClassification) -> torch.Tensor:
    """transformers' class for the folder, fed by transformers' tokenizer of the folder."""
    model = auto.from_pretrained(folder).eval()
    batch = transformers.BertTokenizerFast.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_a_classifier_fine_tunes_and_its_folder_is_transformers_own_class(folders, tmp_path, model_type, capsys):
    config = run(tmp_path, folders[model_type])
    result = finetune(config)
    best = f"{config.output_dir}/best"
    saved = json.loads(open(f"{best}/config.json").read())
    own = {"roformer": "RoFormer", "xlm-roberta": "XLMRoberta", "deberta-v2": "DebertaV2", "modernbert": "ModernBert"}
    assert saved["architectures"] == [f"{own[model_type]}ForSequenceClassification"] and "auto_map" not in saved
    assert saved["id2label"] == {"0": "neg", "1": "pos"} and 0.0 <= result.dev["accuracy"] <= 1.0
    before = transformers.AutoModel.from_pretrained(folders[model_type]).state_dict()
    after = transformers.AutoModelForSequenceClassification.from_pretrained(best).base_model.state_dict()
    moved = [name for name, weight in after.items() if not torch.equal(weight, before[name])]
    assert len(moved) > len(after) // 2  # the encoder was fine-tuned, not only the head
    classifier = SequenceClassifier.from_pretrained(best)
    expected = their_logits(best, TEXTS)
    assert abs(classifier.predict_logits(TEXTS) - expected.numpy()).max() <= 1e-5
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(TEXTS) + "\n")
    assert main(["predict", "--model", best, str(inputs)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in lines] == [["neg", "pos"][int(i)] for i in expected.argmax(-1)]


@pytest.mark.parametrize("model_type, task", [("deberta-v2", "regression"), ("modernbert", "multi_label")])
def test_regression_and_multi_label_folders_equal_transformers(folders, tmp_path, model_type, task):
    rows = sentiment_examples(32, 3)
    if task == "regression":  # a pair task (BertSim): score 5 where both texts share the side
        rows = [{"text": a["text"], "text_pair": b["text"], "score": 4.0 * (a["label"] == b["label"]) + 1}
                for a, b in zip(rows, rows[1:] + rows[:1], strict=True)]
    else:
        rows = [{"text": r["text"], "label": [r["label"], "odd"] if i % 2 else [r["label"]]}
                for i, r in enumerate(rows)]
    data = {f"{split}_file": write_jsonl(tmp_path / f"{split}.jsonl", rows) for split in ("train", "dev", "test")}
    config = run(tmp_path, folders[model_type], task=task, epochs=1, **data)
    finetune(config)
    best = f"{config.output_dir}/best"
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(best)
    kind = "regression" if task == "regression" else "multi_label_classification"
    assert theirs.config.problem_type == kind
    expected = their_logits(best, TEXTS)
    assert abs(SequenceClassifier.from_pretrained(best).predict_logits(TEXTS) - expected.numpy()).max() <= 1e-5


@pytest.mark.parametrize("model_type", ["deberta-v2"])
def test_token_classification_folders_equal_transformers(folders, tmp_path, model_type):
    data = {f"{split}_file": write_jsonl(tmp_path / f"{split}.jsonl", ner_examples(24, seed))
            for split, seed in (("train", 0), ("dev", 1), ("test", 2))}
    config = run(tmp_path, folders[model_type], task="token_classification", epochs=1, **data)
    finetune(config)
    best = f"{config.output_dir}/best"
    ours = TokenClassifier.from_pretrained(best).model
    batch = transformers.BertTokenizerFast.from_pretrained(best)(TEXTS, padding=True, return_tensors="pt")
    expected = their_logits(best, TEXTS, transformers.AutoModelForTokenClassification)
    with torch.no_grad():
        got = ours(batch["input_ids"], batch["attention_mask"]).logits
    real = batch["attention_mask"].bool()  # padding positions' outputs are nobody's labels
    assert (got[real] - expected[real]).abs().max() <= 1e-5


def test_what_the_own_classes_cannot_hold_is_refused_by_name(folders, tmp_path):
    labels = dict(id2label={0: "neg", 1: "pos"})
    with pytest.raises(ValueError, match="deberta-v2 classifies as transformers' class does"):
        BertForSequenceClassification(TaskConfig.over(encoder_config(folders["deberta-v2"]), pooling="mean", **labels))
    with pytest.raises(ValueError, match="remote-code classifier has no xlm-roberta variant"):
        finetune(run(tmp_path, folders["xlm-roberta"], classifier_head="two_layer"))
    with pytest.raises(ValueError, match="deberta-v2's own classifier pools inside its head"):
        finetune(run(tmp_path, folders["deberta-v2"], long_text="hierarchical", overwrite=True))
    with pytest.raises(ValueError, match="modernbert's classifier pools cls or mean"):
        TaskConfig.over(encoder_config(folders["modernbert"]), pooling="max", **labels)
    ner = write_jsonl(tmp_path / "ner.jsonl", ner_examples(8, 0))
    data = {f"{split}_file": ner for split in ("train", "dev", "test")}
    with pytest.raises(ValueError, match="modernbert fine-tunes classification, multi_label, regression here"):
        finetune(run(tmp_path, folders["modernbert"], task="token_classification", overwrite=True, **data))


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_a_classifier_folder_written_by_transformers_predicts_with_its_logits(folders, tmp_path, model_type):
    config = transformers_config(model_type, tiny_tokenizer().vocab_size)
    config.num_labels, config.problem_type = 3, "single_label_classification"
    torch.manual_seed(1)
    theirs = transformers.AutoModelForSequenceClassification.from_config(config)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():  # every weight off its initial value (zero biases, unit norms included)
        for param in theirs.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    theirs.save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    ours = SequenceClassifier.from_pretrained(tmp_path)
    assert not ours.model.loading_report.missing and not ours.model.loading_report.unexpected
    assert abs(ours.predict_logits(TEXTS) - their_logits(tmp_path, TEXTS).numpy()).max() <= 1e-5


@pytest.mark.parametrize("task", ["token_classification", "question_answering"])
@pytest.mark.parametrize("model_type", ["roformer", "xlm-roberta", "deberta-v2"])
def test_token_and_span_heads_save_transformers_own_classes(folders, tmp_path, model_type, task):
    token = task == "token_classification"
    model_class = BertForTokenClassification if token else BertForQuestionAnswering
    auto = transformers.AutoModelForTokenClassification if token else transformers.AutoModelForQuestionAnswering
    config = TaskConfig.over(encoder_config(folders[model_type]), id2label={0: "O", 1: "B-X", 2: "I-X"} if token
                             else {}, finetuning=InputSettings.from_dict({"task": task}))
    ours = model_class.from_pretrained(folders[model_type], config=config)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in ours.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    ours.save_pretrained(tmp_path)
    theirs = auto.from_pretrained(tmp_path).eval()
    input_ids = torch.randint(5, 40, (2, 7), generator=generator)
    with torch.no_grad():
        got, expected = ours.eval()(input_ids), theirs(input_ids=input_ids)
    pairs = [(got.logits, expected.logits)] if token else [(got.start_logits, expected.start_logits),
                                                          (got.end_logits, expected.end_logits)]
    assert all((a - b).abs().max() <= 1e-5 for a, b in pairs)


@pytest.mark.parametrize("model_type", ["deberta-v2", "modernbert"])
def test_a_bert_shape_renamed_to_deberta_or_modernbert_gets_their_task_config(tmp_path, model_type):
    from bertkit.config import BertConfig

    base = BertConfig.preset("tiny", vocab_size=64, hidden_size=32, num_attention_heads=2, intermediate_size=64)
    config = TaskConfig.over(base.as_architecture(model_type), id2label={0: "a", 1: "b"}, pooling="cls"
                             if model_type == "modernbert" else "pooled")
    assert type(config).__name__ == {"deberta-v2": "DebertaV2TaskConfig", "modernbert": "ModernBertTaskConfig"}[
        model_type] and config.hidden_size == 32
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # every weight off its initial value
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape))
    model.save_pretrained(tmp_path)
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    ours = BertForSequenceClassification.from_pretrained(tmp_path)
    input_ids = torch.randint(5, 60, (2, 6))
    with torch.no_grad():
        assert (ours(input_ids).logits - theirs(input_ids=input_ids).logits).abs().max() <= 1e-5
