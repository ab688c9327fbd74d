"""Every fine-tuned folder loads in transformers with bertkit's outputs (≤ 1e-5), per task and head.

Plain folders (the pooler + one linear layer, token classification, QA) load in transformers' own classes; folders
whose head transformers lacks (``pooling: cls / mean / max``, ``classifier_head: two_layer``) carry
``modeling_bertkit.py`` and an ``auto_map``, and load with ``trust_remote_code=True``.
"""

import json

import pytest
import torch
from finetuning_fixtures import tiny_dir  # noqa: F401

from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import LabelMap
from bertkit.finetuning.models import MODEL_CLASSES
from bertkit.finetuning.predict import load_predictor
from bertkit.finetuning.train import build_model

transformers = pytest.importorskip("transformers")

LABELS = {"classification": ["neg", "pos", "neutral"], "multi_label": ["film", "neg", "pos"], "regression": [],
          "token_classification": ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"], "question_answering": []}
AUTO = {"classification": "AutoModelForSequenceClassification", "multi_label": "AutoModelForSequenceClassification",
        "regression": "AutoModelForSequenceClassification", "token_classification": "AutoModelForTokenClassification",
        "question_answering": "AutoModelForQuestionAnswering"}
# (task, pooling, head): the tasks and every head and sentence vector a folder can hold
CASES = [
    ("classification", "pooled", "linear"),
    ("classification", "cls", "linear"),
    ("classification", "mean", "linear"),
    ("classification", "max", "linear"),
    ("classification", "mean_sqrt_len_tokens", "linear"),  # sentence-transformers' other modes
    ("classification", "weightedmean", "linear"),
    ("classification", "lasttoken", "linear"),
    ("classification", "pooled", "two_layer"),
    ("multi_label", "pooled", "linear"),
    ("multi_label", "mean", "two_layer"),
    ("regression", "pooled", "linear"),
    ("regression", "pooled", "two_layer"),  # the BertSim recipe's head
    ("regression", "max", "two_layer"),
    ("token_classification", "pooled", "linear"),
    ("question_answering", "pooled", "linear"),
]
# a padded batch of a pair and a single text: padding must not change the mean / max / CLS vectors
IDS = torch.tensor([[2, 7, 8, 9, 3, 10, 11, 3, 0, 0], [2, 12, 13, 14, 15, 16, 17, 18, 19, 3]])
TYPES = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1, 0, 0], [0] * 10])
MASK = (IDS != 0).long()


def saved_folder(tmp_path, tiny_dir, task, pooling, head):  # noqa: F811
    """A task model built as ``bertkit finetune`` builds it, its weights jittered (so every tensor matters, the
    head's included), saved as the Trainer saves the best model."""
    config = FinetuneConfig(task=task, model=str(tiny_dir), pooling=pooling, classifier_head=head, max_length=16,
                            progress=False)
    model = build_model(config, LabelMap(LABELS[task])).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.2)
    folder = tmp_path / f"{task}-{pooling}-{head}"
    from bertkit.tokenization import AutoTokenizer

    model.save_pretrained(folder, tokenizer=AutoTokenizer.from_pretrained(tiny_dir))
    return model, folder


def outputs(model, **inputs):
    with torch.no_grad():
        out = model(**inputs)
    if getattr(out, "start_logits", None) is not None:  # QA: start and end logits
        return torch.stack([out.start_logits, out.end_logits])
    return out.logits


@pytest.mark.parametrize("task,pooling,head", CASES)
def test_folder_loads_in_transformers_with_equal_outputs(tmp_path, tiny_dir, task, pooling, head):  # noqa: F811
    ours, folder = saved_folder(tmp_path, tiny_dir, task, pooling, head)
    remote = task in ("classification", "multi_label", "regression") and (pooling, head) != ("pooled", "linear")
    saved = json.loads((folder / "config.json").read_text())
    assert ((folder / "modeling_bertkit.py").is_file(), "auto_map" in saved) == (remote, remote)
    auto = getattr(transformers, AUTO[task])
    theirs = auto.from_pretrained(folder, trust_remote_code=remote).eval()
    expected_class = "BertkitForSequenceClassification" if remote else MODEL_CLASSES[task].__name__
    assert type(theirs).__name__ == saved["architectures"][0] == expected_class
    if task == "regression":
        assert theirs.config.num_labels == 1 and theirs.config.problem_type == "regression"
    elif task != "question_answering":
        assert list(theirs.config.id2label.values()) == LABELS[task]
    got = outputs(ours, input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES)
    expected = outputs(theirs, input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES)
    assert got.shape == expected.shape and got.abs().max() > 1e-2  # real, not vanishing, outputs
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    reloaded = type(ours).from_pretrained(folder)  # bertkit reads its own folder back, auto_map and all
    torch.testing.assert_close(outputs(reloaded, input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES), got,
                               atol=0, rtol=0)


def test_remote_code_folder_predicts_through_bertkit_and_transformers_alike(tmp_path, tiny_dir):  # noqa: F811
    _, folder = saved_folder(tmp_path, tiny_dir, "classification", "mean", "two_layer")
    predictor = load_predictor(folder)
    texts = ["the film was superb", "a dull plot really"]
    ours = [r["probabilities"] for r in predictor.predict(texts)]
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        theirs = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    for row, probabilities in zip(theirs, ours, strict=True):
        assert [model.config.id2label[i] for i in range(3)] == list(probabilities)
        torch.testing.assert_close(row, torch.tensor(list(probabilities.values())), atol=1e-5, rtol=0)


def test_remote_head_trains_in_transformers(tmp_path, tiny_dir):  # noqa: F811
    """The shipped class is a real transformers model: its loss is bertkit's loss, and gradients reach the head."""
    ours, folder = saved_folder(tmp_path, tiny_dir, "regression", "pooled", "two_layer")
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    scores = torch.tensor([0.2, 0.9])
    loss = theirs(input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES, labels=scores).loss
    torch.testing.assert_close(loss, ours(IDS, MASK, TYPES, labels=scores).loss, atol=1e-5, rtol=0)
    loss.backward()
    assert theirs.classifier.dense.weight.grad.abs().sum() > 0


def test_without_trust_remote_code_transformers_builds_another_model(tmp_path, tiny_dir):  # noqa: F811
    """Why the README names the folders that need the flag: without it transformers silently builds its own class,
    with a fresh pooler, and scores differently."""
    ours, folder = saved_folder(tmp_path, tiny_dir, "classification", "mean", "linear")
    plain = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert type(plain).__name__ == "BertForSequenceClassification"
    got = outputs(ours, input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES)
    assert not torch.allclose(outputs(plain, input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES), got, atol=1e-3)
