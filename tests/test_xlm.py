"""XLM against transformers' XLMModel / XLMWithLMHeadModel: random perturbed weights, folders both ways, a padded
batch with languages (and segment ids, which XLM reads as word ids), losses, parameter counts, refusals."""

import json

import pytest
import torch
import transformers
from family_fixtures import max_diff, perturb

from bertkit.config import BertConfig
from bertkit.model import AutoModel, AutoModelForMaskedLM, XLMModel, XLMWithLMHeadModel
from bertkit.model.parameters import total_parameters

SHAPE = dict(vocab_size=103, emb_dim=36, n_layers=3, n_heads=3, n_langs=4, max_position_embeddings=40, dropout=0.0,
             attention_dropout=0.0)
CLASSES = {"XLMModel": AutoModel, "XLMWithLMHeadModel": AutoModelForMaskedLM}


def hf_xlm(kind: str, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return perturb(getattr(transformers, kind)(transformers.XLMConfig(**SHAPE | extra)), 0).eval()


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 103, (3, 17), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 2  # XLM's pad_index
    return dict(input_ids=ids, attention_mask=mask, langs=torch.randint(0, 4, (3, 17), generator=g))


def outputs(model, **batch) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    tokens = out.last_hidden_state if hasattr(out, "last_hidden_state") else out.logits
    return dict(tokens=tokens, hidden=torch.stack(out.hidden_states))


def assert_same(ours, theirs, batch, tolerance=1e-5):
    mask = batch.get("attention_mask", inputs()["attention_mask"])
    a, b = outputs(ours, **batch), outputs(theirs, **batch)
    assert max_diff(a["tokens"], b["tokens"], mask) <= tolerance
    real = mask.bool()[None].expand(a["hidden"].shape[:3])
    assert max_diff(a["hidden"], b["hidden"], real) <= tolerance


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("extra", [{}, dict(gelu_activation=False, n_langs=1), dict(use_lang_emb=False)])
def test_transformers_folders_load_with_the_same_outputs(tmp_path, kind, extra):
    theirs = hf_xlm(kind, **extra)
    theirs.save_pretrained(tmp_path)
    ours = CLASSES[kind].from_pretrained(tmp_path)
    assert type(ours).__name__ == kind
    assert ours.loading_report.missing == [] and ours.loading_report.unexpected == []
    batch = inputs()
    assert_same(ours, theirs, batch)
    segments = torch.zeros_like(batch["input_ids"])
    segments[:, 8:] = 1
    assert_same(ours, theirs, batch | dict(token_type_ids=segments))  # word rows 0 and 1 added, as transformers
    no_mask = {k: v for k, v in batch.items() if k != "attention_mask"}  # the pad token is masked by itself
    assert_same(ours, theirs, no_mask)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_bertkit_folders_load_in_transformers_with_the_same_outputs(tmp_path, kind):
    shape = transformers.XLMConfig(**SHAPE)
    (tmp_path / "shape").mkdir()
    (tmp_path / "shape" / "config.json").write_text(shape.to_json_string())
    torch.manual_seed(3)
    config = BertConfig.from_json_file(tmp_path / "shape" / "config.json")
    assert config.n_langs == 4 and config.intermediate_size == 144 and config.hidden_act == "gelu"
    ours = perturb(CLASSES[kind].from_config(config), 3).eval()
    folder = ours.save_pretrained(tmp_path / "ours")
    written = json.loads((folder / "config.json").read_text())
    assert written["model_type"] == "xlm" and written["emb_dim"] == 36 and written["gelu_activation"] is True
    theirs = getattr(transformers, kind).from_pretrained(folder).eval()
    assert_same(ours, theirs, inputs())
    again = CLASSES[kind].from_pretrained(folder)
    assert torch.equal(outputs(again, **inputs())["tokens"], outputs(ours, **inputs())["tokens"])


def test_the_lm_loss_matches():
    theirs = hf_xlm("XLMWithLMHeadModel")
    ours = XLMWithLMHeadModel(BertConfig.from_dict(theirs.config.to_dict())).eval()
    state = theirs.state_dict()
    ours.load_state_dict({name: state[hf] for name, hf in ours.hf_names().items()})
    batch = inputs()
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, 1:4] = batch["input_ids"][:, 1:4]
    with torch.no_grad():
        assert abs(ours(**batch, labels=labels).loss.item() - theirs(**batch, labels=labels).loss.item()) <= 1e-5


@pytest.mark.parametrize("preset,kwargs", [
    ("mlm-en-2048", {}),
    ("mlm-17-1280", dict(vocab_size=200000, n_langs=17, use_lang_emb=False, emb_dim=1280, n_layers=16, n_heads=16)),
    ("small", dict(emb_dim=512, n_layers=4, n_heads=8, vocab_size=30522, pad_token_id=2)),
])
def test_parameter_counts_equal_transformers(preset, kwargs):
    config = BertConfig.preset(preset, model_type="xlm")
    with torch.device("meta"):
        theirs = transformers.XLMConfig(**kwargs)
        model, lm = transformers.XLMModel(theirs), transformers.XLMWithLMHeadModel(theirs)
    assert total_parameters(config) == model.num_parameters()
    assert total_parameters(config, with_heads=True) == lm.num_parameters()


@pytest.mark.parametrize("values,message", [
    (dict(sinusoidal_embeddings=True), "sinusoidal_embeddings=True"),
    (dict(causal=True), "causal=True"),
    (dict(asm=True), "asm=True"),
])
def test_xlm_settings_bertkit_cannot_compute_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        BertConfig.from_dict(transformers.XLMConfig(**SHAPE | values).to_dict())


def test_bad_inputs_and_configs_are_refused():
    with pytest.raises(ValueError, match="n_langs=3 .* is XLM's"):
        BertConfig(n_langs=3)
    with pytest.raises(ValueError, match="XLM's feed-forward is 4 × emb_dim"):
        BertConfig(model_type="xlm", hidden_size=36, num_attention_heads=3, intermediate_size=37, type_vocab_size=0)
    model = XLMModel(BertConfig.from_dict(transformers.XLMConfig(**SHAPE).to_dict())).eval()
    batch = inputs()
    with pytest.raises(ValueError, match=r"langs must lie in \[0, 4\)"):
        model(**batch | dict(langs=torch.full_like(batch["langs"], 4)))
    with pytest.raises(ValueError, match="langs has shape"):
        model(**batch | dict(langs=batch["langs"][:, :3]))
    with pytest.raises(ValueError, match="token_type_ids index the word embeddings"):
        model(**batch, token_type_ids=torch.full_like(batch["langs"], 103))


def test_positional_arguments_follow_bertkit_encoders():
    """Fine-tuning heads call every encoder as (input_ids, attention_mask, token_type_ids): the third is segments."""
    theirs = hf_xlm("XLMModel")
    ours = XLMModel(BertConfig.from_dict(theirs.config.to_dict())).eval()
    state = theirs.state_dict()
    ours.load_state_dict({name: state[hf] for name, hf in ours.hf_names().items()})
    batch = inputs()
    segments = (torch.arange(17) >= 8).long().expand(3, 17)
    with torch.no_grad():
        a = ours(batch["input_ids"], batch["attention_mask"], segments).last_hidden_state
        b = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   token_type_ids=segments).last_hidden_state
    assert max_diff(a, b, batch["attention_mask"]) <= 1e-5
