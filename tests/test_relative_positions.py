"""Positions inside attention (relative_key, relative_key_query: Shaw et al.; nezha: NEZHA's functional encoding)
against the papers' formulas written here in float64, on a padded batch with every weight perturbed; transformers 4
layout folders (``attention.self.distance_embedding``) load and save back one to one; NEZHA folders both ways."""

import json
import math

import pytest
import torch
from family_fixtures import max_diff, perturb
from safetensors.torch import load_file, save_file

from bertkit.config import BertConfig
from bertkit.model import AutoModel, AutoModelForMaskedLM, BertModel, NezhaModel

SHAPE = dict(vocab_size=61, hidden_size=36, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
             max_position_embeddings=20, type_vocab_size=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 61, (3, 15), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, 7:] = 1
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def nezha_vectors(length: int, width: int, clip: int) -> torch.Tensor:
    """a[i][j], NEZHA's (and transformers 4's) sinusoid of clip(j − i) + clip, element by element."""
    a = torch.zeros(length, length, width, dtype=torch.float64)
    for i in range(length):
        for j in range(length):
            r = max(-clip, min(clip, j - i)) + clip
            for c in range(width):
                angle = r / 10000 ** ((c - c % 2) / width)
                a[i, j, c] = math.sin(angle) if c % 2 == 0 else math.cos(angle)
    return a


def reference(model: torch.nn.Module, ids, mask, types) -> torch.Tensor:
    """The encoder's last hidden state by the formulas, in float64 (post-LN BERT layers, exact GELU)."""
    config = model.config
    w = {k: v.double() for k, v in model.state_dict().items()}
    scheme, heads, d = config.position_embedding_type, config.num_attention_heads, config.head_size
    length = ids.shape[1]

    def norm(x, name):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], w[name + ".weight"], w[name + ".bias"],
                                              config.layer_norm_eps)

    def dense(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
    x = norm(x, "embeddings.LayerNorm")
    i, j = torch.arange(length)[:, None], torch.arange(length)[None, :]
    for n in range(config.num_hidden_layers):
        p = f"encoder.layer.{n}."
        q, k, v = (dense(x, p + "attention.self." + t).view(3, length, heads, d).transpose(1, 2)
                   for t in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2)
        if scheme.startswith("relative_key"):  # e(i − j) = distance_embedding[i − j + P − 1]
            e = w[p + "attention.self.distance_embedding.weight"][i - j + config.max_position_embeddings - 1]
            scores = scores + torch.einsum("bhid,ijd->bhij", q, e)
            if scheme == "relative_key_query":
                scores = scores + torch.einsum("bhjd,ijd->bhij", k, e)
        else:  # nezha: q_i·(k_j + a_ij)
            a = nezha_vectors(length, d, config.max_relative_position)
            scores = scores + torch.einsum("bhid,ijd->bhij", q, a)
        scores = scores / math.sqrt(d)
        scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        probs = scores.softmax(-1)
        context = probs @ v
        if scheme == "nezha":  # Σ_j p_ij (v_j + a_ij)
            context = context + torch.einsum("bhij,ijd->bhid", probs, a)
        context = context.transpose(1, 2).reshape(3, length, -1)
        x = norm(dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inner = torch.nn.functional.gelu(dense(x, p + "intermediate.dense"))
        x = norm(dense(inner, p + "output.dense") + x, p + "output.LayerNorm")
    return x


def model_of(scheme: str, **extra) -> torch.nn.Module:
    model_type = "nezha" if scheme == "nezha" else "bert"
    config = BertConfig(**SHAPE | dict(model_type=model_type, position_embedding_type=scheme) | extra)
    torch.manual_seed(0)
    return perturb(AutoModel.from_config(config), 0).eval()


@pytest.mark.parametrize("scheme,extra", [("relative_key", {}), ("relative_key_query", {}),
                                          ("nezha", dict(max_relative_position=64)),
                                          ("nezha", dict(max_relative_position=4))])  # 4 < 15: clipping matters
def test_scores_and_values_follow_the_formula_in_float64(scheme, extra):
    model = model_of(scheme, **extra)
    batch = inputs()
    with torch.no_grad():
        ours = model(**batch).last_hidden_state
        probs = model(**batch, output_attentions=True)  # the explicit path (probabilities kept)
    expected = reference(model, *batch.values())
    assert max_diff(ours, expected, batch["attention_mask"]) <= 1e-5
    assert max_diff(probs.last_hidden_state, expected, batch["attention_mask"]) <= 1e-5


def test_absolute_positions_take_the_plain_kernel():
    model = model_of("absolute")
    assert all(layer.attention.self.relative_positions is None for layer in model.encoder.layer)
    assert not any("distance" in name for name in model.state_dict())


def test_transformers_4_folders_with_relative_keys_load_and_save_back_in_their_layout(tmp_path):
    theirs = model_of("relative_key_query")
    # transformers 4's BertModel folder: BERT's names, the unused absolute table, each layer's distance_embedding
    state = {name: tensor.contiguous() for name, tensor in theirs.state_dict().items()}
    assert "embeddings.position_embeddings.weight" in state
    assert "encoder.layer.1.attention.self.distance_embedding.weight" in state
    folder = tmp_path / "hf4"
    folder.mkdir()
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    config = dict(SHAPE, model_type="bert", architectures=["BertModel"], position_embedding_type="relative_key_query",
                  transformers_version="4.46.3", layer_norm_eps=1e-12, pad_token_id=0, hidden_act="gelu")
    (folder / "config.json").write_text(json.dumps(config))
    ours = AutoModel.from_pretrained(folder)
    assert type(ours) is BertModel
    assert ours.loading_report.missing == [] and ours.loading_report.unexpected == []
    batch = inputs()
    with torch.no_grad():
        assert max_diff(ours(**batch).last_hidden_state, reference(theirs, *batch.values()),
                        batch["attention_mask"]) <= 1e-5
    saved = ours.save_pretrained(tmp_path / "back")
    again = load_file(saved / "model.safetensors")
    assert again.keys() == state.keys() and all(torch.equal(again[k], state[k]) for k in state)
    assert json.loads((saved / "config.json").read_text())["position_embedding_type"] == "relative_key_query"


def test_nezha_folders_have_transformers_names_and_no_position_table(tmp_path):
    ours = model_of("nezha", max_relative_position=5)
    folder = ours.save_pretrained(tmp_path)
    written = json.loads((folder / "config.json").read_text())
    assert written["model_type"] == "nezha" and written["max_relative_position"] == 5
    assert "position_embedding_type" not in written  # transformers 4's NezhaConfig has none
    names = load_file(folder / "model.safetensors").keys()
    assert not any("position" in name for name in names)  # the encoding is a function, not weights
    again = AutoModel.from_pretrained(folder)
    assert type(again) is NezhaModel and again.config.max_relative_position == 5
    batch = inputs()
    with torch.no_grad():
        assert torch.equal(again(**batch).last_hidden_state, ours(**batch).last_hidden_state)
    mlm = AutoModelForMaskedLM.from_pretrained(folder)
    assert mlm.loading_report.missing and all(n.startswith("cls.") for n in mlm.loading_report.missing)


def test_training_with_dropout_runs_and_backpropagates_into_the_distance_table():
    model = model_of("relative_key", attention_probs_dropout_prob=0.1).train()
    model(**inputs()).last_hidden_state.sum().backward()
    grad = model.encoder.layer[0].attention.self.distance_embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model_of("nezha", attention_probs_dropout_prob=0.1).train()(**inputs()).last_hidden_state.sum().backward()


@pytest.mark.parametrize("values,message", [
    (dict(position_embedding_type="relative_key", is_decoder=True), "bidirectional encoders"),
    (dict(model_type="nezha", position_embedding_type="nezha", attention="local"), "attention='local'"),
    (dict(model_type="nezha", position_embedding_type="nezha", max_relative_position=0), "max_relative_position"),
    (dict(position_embedding_type="nezha"), "'nezha' and model_type 'nezha' go together"),
    (dict(position_embedding_type="rotary", rotary_dim=5), "rotary_dim must be an even integer"),
])
def test_settings_the_schemes_cannot_honour_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        BertConfig(**SHAPE | values)


def test_longer_input_than_the_distance_table_and_position_ids_are_refused():
    model = model_of("relative_key")
    ids = torch.ones(1, 21, dtype=torch.long)
    with pytest.raises(ValueError, match="positions"):
        model(ids)
    with pytest.raises(ValueError, match="adds no position embeddings"):
        model(ids[:, :5], position_ids=torch.arange(5)[None])


def test_albert_keeps_transformers_4_name_and_distilbert_is_refused():
    config = BertConfig(**SHAPE | dict(model_type="albert", position_embedding_type="relative_key", embedding_size=20,
                                       num_hidden_groups=1, hidden_act="gelu_new"))
    names = AutoModel.from_config(config).hf_names().values()
    assert "encoder.albert_layer_groups.0.albert_layers.0.attention.distance_embedding.weight" in names
    with pytest.raises(ValueError, match="not model_type 'distilbert'"):
        BertConfig(**SHAPE | dict(model_type="distilbert", type_vocab_size=0, position_embedding_type="relative_key"))


def test_a_transformers_4_nezha_folder_loads(tmp_path):
    """NezhaForMaskedLM as transformers 4 wrote it: NezhaConfig's fields, ``nezha.`` names, BERT's MLM head and, in
    older saves, each layer's fixed encoding table (recomputed here, so skipped)."""
    from bertkit.model import AutoModelForMaskedLM, NezhaForMaskedLM

    config = BertConfig(**SHAPE | dict(model_type="nezha", position_embedding_type="nezha", max_relative_position=6))
    torch.manual_seed(0)
    ours = perturb(NezhaForMaskedLM(config), 0).eval()
    state = {hf: ours.state_dict()[name].contiguous() for name, hf in ours.hf_names().items()
             if name != "cls.predictions.decoder.weight"}
    assert "nezha.embeddings.word_embeddings.weight" in state and "cls.predictions.bias" in state
    for n in range(2):
        state[f"nezha.encoder.layer.{n}.attention.self.relative_positions_encoding.positions_encoding"] = \
            torch.zeros(20, 20, 12)
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    hf4 = dict(SHAPE, model_type="nezha", architectures=["NezhaForMaskedLM"], max_relative_position=6,
               classifier_dropout=0.1, bos_token_id=2, eos_token_id=3, pad_token_id=0, use_cache=True,
               hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.02, transformers_version="4.40.0")
    (tmp_path / "config.json").write_text(json.dumps(hf4))
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert type(loaded) is NezhaForMaskedLM and loaded.config.max_relative_position == 6
    assert loaded.loading_report.missing == [] and loaded.loading_report.unexpected == []
    batch = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, ours(**batch).logits)
