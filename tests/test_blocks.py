"""The shared blocks against independent oracles: torch.nn.TransformerEncoderLayer (post- and pre-LN), T5's relative
position buckets and bias, DistilBERT's sinusoids; ALBERT's layer sharing; what configs are refused."""

import json

import pytest
import torch
import transformers
from family_fixtures import hf_model, max_diff, perturb
from torch import nn

from bertkit.config import BertConfig
from bertkit.model import AutoModel, BertModel, RobertaModel
from bertkit.model.embeddings import sinusoidal_table
from bertkit.model.encoder import Encoder, layer_schedule
from bertkit.model.position_bias import RelativePositionBias, relative_position_bucket


def small(**overrides) -> BertConfig:
    return BertConfig(**dict(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=40, max_position_embeddings=32, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0, layer_norm_eps=1e-5) | overrides)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
def test_encoder_stack_equals_torch_transformer_encoder(norm_first):
    config = small(norm_first=norm_first)
    torch.manual_seed(0)
    ours = perturb(Encoder(config)).eval()
    layer = nn.TransformerEncoderLayer(24, 4, 40, dropout=0.0, activation="gelu", layer_norm_eps=1e-5,
                                       batch_first=True, norm_first=norm_first)
    theirs = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(24, eps=1e-5) if norm_first else None,
                                   enable_nested_tensor=False).eval()
    with torch.no_grad():
        for mine, torch_layer in zip(ours.layer, theirs.layers, strict=True):
            attention = mine.attention
            torch_layer.self_attn.in_proj_weight.copy_(torch.cat(
                [attention.self.query.weight, attention.self.key.weight, attention.self.value.weight]))
            torch_layer.self_attn.in_proj_bias.copy_(torch.cat(
                [attention.self.query.bias, attention.self.key.bias, attention.self.value.bias]))
            torch_layer.self_attn.out_proj.load_state_dict(attention.output.dense.state_dict())
            torch_layer.norm1.load_state_dict(attention.output.LayerNorm.state_dict())
            torch_layer.linear1.load_state_dict(mine.intermediate.dense.state_dict())
            torch_layer.linear2.load_state_dict(mine.output.dense.state_dict())
            torch_layer.norm2.load_state_dict(mine.output.LayerNorm.state_dict())
        if norm_first:
            theirs.norm.load_state_dict(ours.LayerNorm.state_dict())
        x = torch.randn(3, 9, 24)
        mask = torch.ones(3, 9, dtype=torch.long)
        mask[1, 6:] = 0
        a = ours(x, mask)[0]
        b = theirs(x, src_key_padding_mask=mask == 0)
    assert max_diff(a, b, mask) <= 1e-5


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("buckets,distance", [(32, 128), (8, 20), (10, 7)])
def test_relative_position_buckets_equal_t5s(bidirectional, buckets, distance):
    from transformers.models.t5.modeling_t5 import T5Attention

    offsets = torch.arange(-300, 301)
    ours = relative_position_bucket(offsets, bidirectional, buckets, distance)
    theirs = T5Attention._relative_position_bucket(offsets, bidirectional, buckets, distance)
    assert torch.equal(ours, theirs)


def test_relative_bias_equals_t5_compute_bias_and_is_used():
    config = small(position_embedding_type="relative_bias", relative_attention_num_buckets=16,
                   relative_attention_max_distance=20)
    t5 = transformers.T5Config(d_model=24, num_heads=4, d_kv=6, relative_attention_num_buckets=16,
                               relative_attention_max_distance=20)
    from transformers.models.t5.modeling_t5 import T5Attention

    theirs = T5Attention(t5, has_relative_attention_bias=True)
    ours = RelativePositionBias(config)
    ours.relative_attention_bias.weight.data.copy_(theirs.relative_attention_bias.weight.data)
    assert torch.equal(ours(11, 11), theirs.compute_bias(11, 11))

    torch.manual_seed(0)
    model = perturb(BertModel(config)).eval()
    assert model.embeddings.position_embeddings is None
    ids = torch.randint(1, 50, (1, 10))
    with torch.no_grad():
        a = model(ids).last_hidden_state
        model.encoder.relative_attention_bias.relative_attention_bias.weight.zero_()
        b = model(ids).last_hidden_state
    assert max_diff(a, b) > 1e-2  # the bias is what tells positions apart


@pytest.mark.parametrize("positions", ["absolute", "sinusoidal", "none", "relative_bias"])
def test_padding_does_not_change_real_tokens(positions):
    torch.manual_seed(0)
    model = perturb(BertModel(small(position_embedding_type=positions))).eval()
    ids = torch.randint(1, 50, (1, 7))
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 5)], dim=1).long()
    with torch.no_grad():
        alone = model(ids).last_hidden_state
        batched = model(padded, mask).last_hidden_state[:, :7]
    assert max_diff(alone, batched) <= 1e-5


def test_gradients_reach_the_relative_bias_through_both_kernels():
    torch.manual_seed(0)
    model = BertModel(small(position_embedding_type="relative_bias", attention_probs_dropout_prob=0.1)).train()
    ids = torch.randint(1, 50, (2, 6))
    for kwargs in ({}, {"output_attentions": True}):
        model.zero_grad()
        model(ids, **kwargs).last_hidden_state.sum().backward()
        assert model.encoder.relative_attention_bias.relative_attention_bias.weight.grad.abs().sum() > 0


def test_sinusoids_equal_transformers_and_stay_fixed():
    from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings

    theirs = torch.empty(40, 36)
    create_sinusoidal_embeddings(40, 36, theirs)
    assert max_diff(sinusoidal_table(40, 36), theirs) <= 1e-6
    model = BertModel(small(position_embedding_type="sinusoidal"))
    table = model.embeddings.position_embeddings.weight
    assert not table.requires_grad and max_diff(table, sinusoidal_table(32, 24)) == 0.0


def test_albert_shares_layers_as_its_groups_say():
    config = small(num_hidden_layers=6, num_hidden_groups=2, inner_group_num=2, embedding_size=8)
    assert layer_schedule(config) == [[0, 1], [0, 1], [0, 1], [2, 3], [2, 3], [2, 3]]
    model = BertModel(config)
    assert len(model.encoder.layer) == 4 and model.embeddings_project.in_features == 8
    shared = BertModel(small(num_hidden_layers=12, num_hidden_groups=1))
    unshared = BertModel(small(num_hidden_layers=12))
    assert len(shared.encoder.layer) == 1
    assert shared.num_parameters() < unshared.num_parameters() / 5


def write_config(folder, **values):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(values))
    return folder


@pytest.mark.parametrize("values,message", [
    (dict(model_type="mpnet"), "model_type 'mpnet' is not supported"),
    (dict(model_type="bert", position_embedding_type="relative_key", is_decoder=True), "bidirectional encoders"),
    (dict(model_type="bert", is_decoder=True, attention="performer"), "cannot decode"),
    (dict(model_type="bert", is_decoder=True, position_embedding_type="relative_bias"), "is bidirectional here"),
    (dict(model_type="roberta", tie_word_embeddings=False), "tie_word_embeddings"),
    (dict(model_type="bert", rotary_dim=16), "rotary_dim=16 set, but position_embedding_type is 'absolute'"),
    (dict(model_type="bert", hidden_act="mish"), "hidden_act must be one of"),
    (dict(model_type="bert", hidden_size=30, num_attention_heads=4), "not a multiple"),
    (dict(model_type="albert", num_hidden_layers=12, num_hidden_groups=5), "not a multiple of num_hidden_groups"),
    (dict(model_type="distilbert", type_vocab_size=2), "distilbert models have type_vocab_size=0"),
])
def test_configs_bertkit_cannot_honour_are_refused(tmp_path, values, message):
    folder = write_config(tmp_path / "m", **values)
    with pytest.raises(ValueError, match=message):
        AutoModel.from_pretrained(folder)


def test_a_folder_of_another_architecture_is_refused_by_name(tmp_path):
    hf_model("roberta", "model").save_pretrained(tmp_path / "roberta")
    with pytest.raises(ValueError, match="holds a 'roberta' model .* not BertModel"):
        BertModel.from_pretrained(tmp_path / "roberta")
    with pytest.raises(ValueError, match="RobertaModel is a roberta model but the config is for 'bert'"):
        RobertaModel(BertConfig())


def test_weights_that_do_not_fit_are_refused_naming_the_tensors(tmp_path):
    """A BERT config over a DistilBERT checkpoint: the layers are absent under BERT's names."""
    hf_model("distilbert", "model").save_pretrained(tmp_path / "m")
    write_config(tmp_path / "m", model_type="bert", vocab_size=103, hidden_size=36, num_hidden_layers=3,
                 num_attention_heads=3, intermediate_size=37, max_position_embeddings=40, type_vocab_size=0)
    with pytest.raises(ValueError, match=r"48 encoder weights are missing \(encoder.layer.0.attention.output"):
        AutoModel.from_pretrained(tmp_path / "m")
    write_config(tmp_path / "m", model_type="distilbert", vocab_size=103, dim=36, n_layers=3, n_heads=3,
                 hidden_dim=40, max_position_embeddings=40)
    with pytest.raises(ValueError, match=r"tensor transformer.layer.0.ffn.lin1.bias has shape \(37,\) .* \(40,\)"):
        AutoModel.from_pretrained(tmp_path / "m")


def test_roberta_refuses_inputs_beyond_its_positions():
    config = small(model_type="roberta", pad_token_id=1, max_position_embeddings=12)
    model = RobertaModel(config).eval()
    model(torch.full((1, 10), 5))  # 10 tokens + padding index + 1 = 12 positions
    with pytest.raises(ValueError, match="input has 11 tokens but the model has only 10 positions"):
        model(torch.full((1, 11), 5))


def test_distilbert_ignores_segment_ids_as_transformers_does():
    model = AutoModel.from_config(small(model_type="distilbert", type_vocab_size=0)).eval()
    ids = torch.tensor([[2, 3, 4]])
    with torch.no_grad():
        plain = model(ids).last_hidden_state
        paired = model(ids, token_type_ids=torch.tensor([[0, 1, 1]])).last_hidden_state
    assert torch.equal(plain, paired)


def test_any_bert_folder_becomes_another_architecture_from_scratch():
    bert = BertConfig.preset("mini", vocab_size=99)
    albert = bert.as_architecture("albert")
    assert (albert.model_type, albert.num_hidden_groups, albert.embedding_size, albert.hidden_size) == (
        "albert", 1, 128, 256)
    assert bert.as_architecture("distilbert").type_vocab_size == 0
    assert AutoModel.from_config(albert).num_parameters() < AutoModel.from_config(bert).num_parameters() / 2
