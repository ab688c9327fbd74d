"""XLNet under bertkit's fine-tuning heads: sequence classification is transformers' XLNetForSequenceClassification
(the sequence summary of the last token → tanh → logits_proj) — equal logits and losses on a left-padded batch with
every weight perturbed, folders both ways — and the inputs or settings it cannot honour are refused."""

import json

import pytest
import torch
import transformers

from bertkit.finetuning.models import (
    BertForSequenceClassification,
    TaskConfig,
    XLNetTaskConfig,
    default_pooling,
)
from bertkit.model.xlnet_architecture import XLNetConfig

SIZES = dict(vocab_size=120, d_model=32, n_layer=2, n_head=4, d_inner=48, pad_token_id=5)


def perturb(model: torch.nn.Module, seed: int) -> None:
    """Every weight moved off its initial value (zero biases, unit LayerNorms included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))


def left_padded_batch() -> dict[str, torch.Tensor]:
    """Three sequences padded on the left as XLNet's tokenizer pads: <pad>… tokens <sep> <cls>, segments 0 / 1 / 2."""
    lengths, width = [9, 6, 4], 9
    input_ids = torch.full((3, width), SIZES["pad_token_id"])
    attention_mask = torch.zeros(3, width, dtype=torch.long)
    token_type_ids = torch.full((3, width), 3)  # XLNet's padding segment
    generator = torch.Generator().manual_seed(1)
    for row, n in enumerate(lengths):
        input_ids[row, -n:] = torch.randint(10, SIZES["vocab_size"], (n,), generator=generator)
        input_ids[row, -2:] = torch.tensor([4, 3])  # <sep> <cls>
        attention_mask[row, -n:] = 1
        token_type_ids[row, -n:] = torch.tensor([0] * (n - 1) + [2])
        token_type_ids[row, -n + n // 2:-1] = 1  # a second segment
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


@pytest.mark.parametrize("problem, labels", [
    ("single_label_classification", torch.tensor([2, 0, 1])),
    ("regression", torch.tensor([0.5, -1.0, 2.0])),
    ("multi_label_classification", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])),
])
def test_a_transformers_xlnet_classifier_loads_with_equal_logits_and_loss(tmp_path, problem, labels):
    num_labels = 1 if problem == "regression" else 3
    config = transformers.XLNetConfig(**SIZES, num_labels=num_labels, problem_type=problem)
    theirs = transformers.XLNetForSequenceClassification(config)
    perturb(theirs, 0)
    theirs.save_pretrained(tmp_path)
    ours = BertForSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(ours.config, XLNetTaskConfig) and ours.config.num_labels == num_labels
    assert not ours.loading_report.missing and not ours.loading_report.unexpected
    batch = left_padded_batch()
    theirs.eval()
    with torch.no_grad():
        expected = theirs(**batch, labels=labels)
        got = ours(**batch, labels=labels)
    assert (got.logits - expected.logits).abs().max() <= 1e-5
    assert abs(got.loss.item() - expected.loss.item()) <= 1e-5


def test_a_bertkit_xlnet_classifier_saves_a_folder_transformers_reads(tmp_path):
    base = XLNetConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=48, mem_len=None, clamp_len=6)
    task = TaskConfig.over(base, id2label={0: "neg", 1: "pos"}, problem_type="single_label_classification")
    assert isinstance(task, XLNetTaskConfig) and task.clamp_len == 6  # XLNet's own fields travel with the task
    torch.manual_seed(0)
    ours = BertForSequenceClassification(task)
    assert ours.head_prefixes == ("sequence_summary.", "logits_proj.")
    perturb(ours, 1)
    ours.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["architectures"] == ["XLNetForSequenceClassification"] and saved["clamp_len"] == 6
    assert not (tmp_path / "modeling_bertkit.py").exists()  # transformers' own class holds the head
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(theirs).__name__ == "XLNetForSequenceClassification"
    ours.eval()
    batch, labels = left_padded_batch(), torch.tensor([1, 0, 1])
    with torch.no_grad():
        expected, got = theirs(**batch, labels=labels), ours(**batch, labels=labels)
    assert (got.logits - expected.logits).abs().max() <= 1e-5
    assert abs(got.loss.item() - expected.loss.item()) <= 1e-5
    again = BertForSequenceClassification.from_pretrained(tmp_path)  # and back: the same model
    with torch.no_grad():
        assert torch.equal(again(**batch).logits, got.logits)


def test_heads_xlnet_cannot_hold_are_refused():
    base = XLNetConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=48)
    assert default_pooling("xlnet") == "pooled"
    with pytest.raises(ValueError, match="pooling: pooled .*got pooling: mean, classifier_head: linear"):
        TaskConfig.over(base, id2label={0: "a", 1: "b"}, pooling="mean")
    with pytest.raises(ValueError, match="got pooling: pooled, classifier_head: two_layer"):
        TaskConfig.over(base, id2label={0: "a", 1: "b"}, classifier_head="two_layer")


def test_a_batch_padded_on_the_right_reads_the_last_real_token():
    base = XLNetConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=48, mem_len=None)
    torch.manual_seed(0)
    model = BertForSequenceClassification(TaskConfig.over(base, id2label={0: "a", 1: "b"})).eval()
    perturb(model, 2)
    left = left_padded_batch()
    masks = left["attention_mask"].bool()
    right = {k: torch.stack([torch.cat([row[mask], row[~mask]]) for row, mask in zip(v, masks, strict=True)])
             for k, v in left.items()}  # the same texts with their padding moved to the right
    assert right["attention_mask"][:, -1].tolist() == [1, 0, 0]
    with torch.no_grad():
        assert (model(**right).logits - model(**left).logits).abs().max() <= 1e-5


def test_a_pretrained_xlnet_folder_starts_a_classifier_with_its_own_settings(tmp_path):
    from bertkit.finetuning.models import encoder_config

    config = transformers.XLNetConfig(**SIZES, mem_len=16, clamp_len=5, same_length=False)
    pretrained = transformers.XLNetLMHeadModel(config)
    perturb(pretrained, 3)
    pretrained.save_pretrained(tmp_path)
    base = encoder_config(tmp_path)
    assert isinstance(base, XLNetConfig) and (base.mem_len, base.clamp_len) == (16, 5)
    task = TaskConfig.over(base, id2label={0: "neg", 1: "pos"})
    model = BertForSequenceClassification.from_pretrained(tmp_path, config=task).eval()
    assert sorted(model.loading_report.missing) == ["logits_proj.bias", "logits_proj.weight",
                                                    "sequence_summary.summary.bias",
                                                    "sequence_summary.summary.weight"]  # only the fresh head
    batch = left_padded_batch()
    with torch.no_grad():
        theirs = pretrained.transformer.eval()(**batch).last_hidden_state
        ours = model.transformer(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert (ours.last_hidden_state - theirs).abs().max() <= 1e-5


@pytest.mark.parametrize("task, ours_class, theirs_class", [
    ("token_classification", "BertForTokenClassification", "XLNetForTokenClassification"),
    ("question_answering", "BertForQuestionAnswering", "XLNetForQuestionAnsweringSimple"),
])
def test_token_and_span_heads_save_folders_transformers_reads(tmp_path, task, ours_class, theirs_class):
    from bertkit.finetuning import models
    from bertkit.finetuning.input_settings import InputSettings

    base = XLNetConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=48, mem_len=None)
    labels = {0: "O", 1: "B-X", 2: "I-X"} if task == "token_classification" else {}
    config = TaskConfig.over(base, id2label=labels, finetuning=InputSettings.from_dict({"task": task}))
    torch.manual_seed(0)
    ours = getattr(models, ours_class)(config)
    perturb(ours, 4)
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [theirs_class]
    theirs = getattr(transformers, theirs_class).from_pretrained(tmp_path).eval()
    ours.eval()
    batch = left_padded_batch()
    with torch.no_grad():
        got, expected = ours(**batch), theirs(**batch)
    names = ("logits",) if task == "token_classification" else ("start_logits", "end_logits")
    for name in names:
        assert (getattr(got, name) - getattr(expected, name)).abs().max() <= 1e-5


@pytest.mark.parametrize("setting", [dict(summary_type="first"), dict(summary_use_proj=False),
                                     dict(summary_activation="relu"), dict(summary_first_dropout=0.2)])
def test_a_sequence_summary_bertkit_does_not_compute_is_refused(tmp_path, setting):
    transformers.XLNetForSequenceClassification(transformers.XLNetConfig(**SIZES, num_labels=2, **setting)
                                                ).save_pretrained(tmp_path)
    key = next(iter(setting))
    with pytest.raises(ValueError, match=f"cannot compute: {key}="):
        BertForSequenceClassification.from_pretrained(tmp_path)
