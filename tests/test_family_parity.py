"""Every architecture of the family against transformers' own classes: folders written by transformers load in
bertkit, folders written by bertkit load in transformers, with the same outputs (≤ 1e-5), safetensors and .bin."""

import json

import pytest
import torch
import transformers
from family_fixtures import CASES, ROLES, batch, hf_model, max_diff, perturb

from bertkit.model import AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining

AUTO = dict(zip(ROLES, (AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining), strict=True))


def comparable(out) -> dict[str, torch.Tensor]:
    """The outputs both libraries give, under one name each: per-token and per-sequence."""
    found = {}
    for name in ("last_hidden_state", "prediction_logits", "logits"):
        if getattr(out, name, None) is not None:
            found["tokens"] = getattr(out, name)
            break
    for name in ("pooler_output", "seq_relationship_logits", "sop_logits"):
        if getattr(out, name, None) is not None:
            found["sequence"] = getattr(out, name)
    if getattr(out, "hidden_states", None) is not None:
        found["hidden_states"] = torch.stack(out.hidden_states)
    return found


def assert_same_outputs(ours, theirs, inputs, tolerance=1e-5):
    with torch.no_grad():
        a = comparable(ours(**inputs, output_hidden_states=True))
        b = comparable(theirs(**inputs, output_hidden_states=True))
    assert a.keys() == b.keys()
    mask = inputs["attention_mask"]
    assert max_diff(a["tokens"], b["tokens"], mask) <= tolerance
    if "sequence" in a:
        assert max_diff(a["sequence"], b["sequence"]) <= tolerance
    real = mask.bool()[None].expand(a["hidden_states"].shape[:3])
    assert max_diff(a["hidden_states"], b["hidden_states"], real) <= tolerance
    return a


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", list(CASES))
def test_transformers_folders_load_with_the_same_outputs(tmp_path, case, role):
    theirs = hf_model(case, role)
    theirs.save_pretrained(tmp_path / "st")
    ours = AUTO[role].from_pretrained(tmp_path / "st")
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.loading_report.missing == [] and ours.loading_report.unexpected == []
    assert_same_outputs(ours, theirs, batch(case))


@pytest.mark.parametrize("case", ["roberta", "albert", "distilbert-sinusoidal", "electra"])
def test_pytorch_model_bin_folders_load_too(tmp_path, case):
    theirs = hf_model(case, "pretraining")
    theirs.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(theirs.state_dict(), tmp_path / "pytorch_model.bin")  # read back with weights_only=True
    ours = AutoModelForPreTraining.from_pretrained(tmp_path)
    assert_same_outputs(ours, theirs, batch(case))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", list(CASES))
def test_bertkit_folders_load_in_transformers_with_the_same_outputs(tmp_path, case, role):
    config = hf_model(case, "model").config  # the shape, as transformers reads it
    (tmp_path / "shape").mkdir()
    (tmp_path / "shape" / "config.json").write_text(config.to_json_string())
    from bertkit.config import BertConfig

    torch.manual_seed(3)
    ours = perturb(AUTO[role].from_config(BertConfig.from_json_file(tmp_path / "shape" / "config.json")), 3).eval()
    folder = ours.save_pretrained(tmp_path / "ours")
    written = json.loads((folder / "config.json").read_text())
    assert written["model_type"] == config.model_type and written["architectures"] == [type(ours).__name__]
    theirs = getattr(transformers, type(ours).__name__).from_pretrained(folder).eval()
    assert_same_outputs(ours, theirs, batch(case))
    again = AUTO[role].from_pretrained(folder)
    with torch.no_grad():
        for x, y in zip(comparable(ours(**batch(case))).values(), comparable(again(**batch(case))).values(),
                        strict=True):
            assert torch.equal(x, y)


@pytest.mark.parametrize("case", ["bert", "roberta", "albert", "electra", "distilbert", "ernie"])
def test_masked_lm_loss_and_pretraining_losses_match(case):
    theirs = hf_model(case, "masked_lm")
    from bertkit.config import BertConfig

    ours = AutoModelForMaskedLM.from_config(BertConfig.from_dict(theirs.config.to_dict()))
    ours.load_state_dict(_our_state(ours, theirs))
    inputs = batch(case)
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, 1:4] = inputs["input_ids"][:, 1:4]
    with torch.no_grad():
        a = ours.eval()(**inputs, labels=labels)
        b = theirs(**inputs, labels=labels)
        fused = ours(**inputs, labels=labels, return_logits=False)  # the pretraining step's path
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5
    assert abs(fused.mlm_loss.item() - b.loss.item()) <= 1e-5
    assert torch.equal(fused.mlm_predictions, b.logits[labels != -100].argmax(-1))


def test_albert_sop_and_electra_discriminator_losses_match():
    albert = hf_model("albert", "pretraining")
    ours = AutoModelForPreTraining.from_config(_config(albert)).eval()
    ours.load_state_dict(_our_state(ours, albert))
    inputs = batch("albert")
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, 2:5] = inputs["input_ids"][:, 2:5]
    order = torch.tensor([0, 1, 1])
    with torch.no_grad():
        a = ours(**inputs, labels=labels, next_sentence_label=order)
        b = albert(**inputs, labels=labels, sentence_order_label=order)
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5

    electra = hf_model("electra", "pretraining")
    ours = AutoModelForPreTraining.from_config(_config(electra)).eval()
    ours.load_state_dict(_our_state(ours, electra))
    inputs = batch("electra")
    replaced = torch.randint(0, 2, inputs["input_ids"].shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a, b = ours(**inputs, labels=replaced), electra(**inputs, labels=replaced)
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5


def _config(theirs):
    from bertkit.config import BertConfig

    return BertConfig.from_dict(theirs.config.to_dict())


def _our_state(ours, theirs) -> dict[str, torch.Tensor]:
    """transformers' tensors under bertkit's names, through bertkit's name map."""
    state = theirs.state_dict()
    return {name: state[hf] for name, hf in ours.hf_names().items()}
