"""DeBERTa-v2 / v3 (disentangled attention on the shared blocks) against transformers' DebertaV2Model /
DebertaV2ForMaskedLM / DebertaV2ForSequenceClassification: every weight perturbed, padded batches, folders both
ways, log buckets, the published v3 sizes' parameter counts, LoRA on it, and the configs it refuses."""

import copy
import json

import pytest
import torch
import transformers
from family_fixtures import perturb
from transformers.models.deberta_v2 import modeling_deberta_v2 as hf_deberta

from bertkit.cli import main
from bertkit.config import BertConfig
from bertkit.model.auto import AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining
from bertkit.model.deberta_v2 import DebertaV2ForMaskedLM, DebertaV2ForSequenceClassification, DebertaV2Model
from bertkit.model.deberta_v2_architecture import DEBERTA_V3_PRESETS, DebertaV2Config
from bertkit.model.disentangled_attention import log_bucket_positions
from bertkit.model.parameters import total_parameters
from bertkit.model.pruning import prune_heads
from bertkit.peft import PeftConfig, apply_peft, merge_lora
from bertkit.peft.lora import LoraLinear

# odd sizes: 3 heads of width 12; dropout off so that train-mode-only paths are not compared
SHAPE = dict(vocab_size=103, hidden_size=36, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
             max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
CASES = {
    # v3's layout: log buckets, shared keys, LayerNorm-ed table, no absolute positions, lm_predictions head
    "v3": dict(relative_attention=True, position_buckets=8, pos_att_type="p2c|c2p", norm_rel_ebd="layer_norm",
               share_att_key=True, position_biased_input=False, legacy=False),
    # own position projections, c2p only, absolute positions and segments in the input, legacy cls head
    "c2p-own-keys": dict(relative_attention=True, pos_att_type=["c2p"], share_att_key=False, type_vocab_size=3),
    # no buckets (distances clipped at ±12), both terms with own projections, v2-xlarge's convolution
    "unbucketed-conv": dict(relative_attention=True, max_relative_positions=12, pos_att_type=["p2c", "c2p"],
                            conv_kernel_size=3, conv_act="gelu", legacy=False),
    "shared-c2p": dict(relative_attention=True, pos_att_type="c2p", share_att_key=True, position_buckets=6,
                       max_relative_positions=20, position_biased_input=False),
    "absolute-only": dict(hidden_act="relu"),
}


def hf_model(case: str, kind: str = "DebertaV2ForMaskedLM", seed: int = 0, **extra) -> torch.nn.Module:
    """A perturbed random transformers DeBERTa-v2 of ``case``, eval mode."""
    config = transformers.DebertaV2Config(**SHAPE | CASES[case] | extra)
    torch.manual_seed(seed)
    return perturb(getattr(transformers, kind)(config), seed).eval()


def batch(seq: int = 17, types: int = 1) -> dict[str, torch.Tensor]:
    """Ids (padding where the mask is 0), a padded mask, segment ids, MLM labels on the real tokens."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, SHAPE["vocab_size"], (3, seq), generator=g)
    mask = torch.ones(3, seq, dtype=torch.long)
    mask[1, 11:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    labels = torch.where(mask.bool(), torch.randint(0, SHAPE["vocab_size"], (3, seq), generator=g), -100)
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=torch.randint(0, types, (3, seq), generator=g),
                labels=labels)


def real(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The rows of real tokens (padded positions' outputs are not defined the same way)."""
    return t[mask.bool()]


def gap(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest difference over the real tokens."""
    return (real(a, mask) - real(b, mask)).abs().max().item()


@pytest.mark.parametrize("case", list(CASES))
def test_masked_lm_equals_transformers_from_its_folder(case, tmp_path):
    hf = hf_model(case)
    hf.save_pretrained(tmp_path)
    ours = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert isinstance(ours, DebertaV2ForMaskedLM) and not ours.loading_report.missing
    assert not ours.loading_report.unexpected
    x = batch(types=CASES[case].get("type_vocab_size", 1))
    with torch.no_grad():
        theirs, mine = hf(**x, output_hidden_states=True), ours(**x, output_hidden_states=True)
    mask = x["attention_mask"]
    assert len(mine.hidden_states) == len(theirs.hidden_states) == SHAPE["num_hidden_layers"] + 1
    for a, b in zip(theirs.hidden_states, mine.hidden_states, strict=True):
        assert gap(a, b, mask) <= 1e-5
    assert gap(theirs.logits, mine.logits, mask) <= 1e-5
    assert abs(theirs.loss.item() - mine.loss.item()) <= 1e-5


@pytest.mark.parametrize("case", ["v3", "c2p-own-keys"])
def test_bare_model_has_transformers_names_and_outputs(case, tmp_path):
    hf = hf_model(case, "DebertaV2Model")
    hf.save_pretrained(tmp_path)
    ours = AutoModel.from_pretrained(tmp_path)
    assert isinstance(ours, DebertaV2Model) and ours.pooler is None
    assert set(ours.hf_names().values()) == set(hf.state_dict())
    x = batch(types=CASES[case].get("type_vocab_size", 1))
    x.pop("labels")
    with torch.no_grad():
        theirs, mine = hf(**x, output_attentions=True), ours(**x, output_attentions=True)
    mask = x["attention_mask"]
    assert gap(theirs.last_hidden_state, mine.last_hidden_state, mask) <= 1e-5
    for a, b in zip(theirs.attentions, mine.attentions, strict=True):  # the maps of the real queries
        assert gap(a.transpose(1, 2), b.transpose(1, 2), mask) <= 1e-5


@pytest.mark.parametrize("case", ["v3", "unbucketed-conv", "c2p-own-keys"])
def test_bertkit_folder_loads_in_transformers_with_equal_logits(case, tmp_path):
    config = DebertaV2Config(**SHAPE | CASES[case])
    torch.manual_seed(3)
    ours = perturb(DebertaV2ForMaskedLM(config), seed=3).eval()
    ours.save_pretrained(tmp_path)
    theirs, info = transformers.DebertaV2ForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    x = batch(types=CASES[case].get("type_vocab_size", 1))
    with torch.no_grad():
        a, b = theirs.eval()(**x), ours(**x)
    assert gap(a.logits, b.logits, x["attention_mask"]) <= 1e-5
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5
    assert AutoModelForPreTraining.from_pretrained(tmp_path).config == ours.config  # the folder reads back whole


@pytest.mark.parametrize(("case", "labels", "problem_type"), [
    ("v3", torch.tensor([2, 0, 1]), None),
    ("v3", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), "multi_label_classification"),
    ("c2p-own-keys", torch.tensor([-1, 0, 1]), None),  # transformers' default loss skips a negative label
    ("shared-c2p", torch.tensor([0.5, -1.0, 2.0]), None),  # one label: regression
])
def test_classifier_equals_transformers_both_ways(case, labels, problem_type, tmp_path):
    num_labels = 1 if labels.dim() == 1 and labels.is_floating_point() else 3
    hf = hf_model(case, "DebertaV2ForSequenceClassification", num_labels=num_labels, pooler_hidden_act="tanh",
                  cls_dropout=0.0, problem_type=problem_type)
    hf.save_pretrained(tmp_path / "theirs")
    ours = DebertaV2ForSequenceClassification.from_pretrained(tmp_path / "theirs")
    assert ours.num_labels == num_labels and ours.problem_type == problem_type and not ours.loading_report.missing
    x = batch(types=CASES[case].get("type_vocab_size", 1)) | dict(labels=labels)
    with torch.no_grad():
        a, b = hf(**x), ours(**x)
    # transformers flattens a regression's logits to (batch,); bertkit keeps (batch, num_labels)
    assert (a.logits.view_as(b.logits) - b.logits).abs().max() <= 1e-5
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5
    ours.save_pretrained(tmp_path / "ours")  # and back: transformers' class reads bertkit's folder
    again, info = transformers.DebertaV2ForSequenceClassification.from_pretrained(tmp_path / "ours",
                                                                                    output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    with torch.no_grad():
        assert (again.eval()(**x).logits - a.logits).abs().max() <= 1e-5
    assert again.config.num_labels == num_labels and again.config.problem_type == problem_type


def test_log_buckets_equal_transformers_and_keep_short_distances():
    distance = torch.arange(-700, 701)
    for buckets, max_position in ((256, 512), (8, 40), (6, 20)):
        ours = log_bucket_positions(distance, buckets, max_position)
        theirs = hf_deberta.make_log_bucket_position(distance, buckets, max_position).long()
        assert torch.equal(ours, theirs)
        near = distance.abs() <= buckets // 2
        assert torch.equal(ours[near], distance[near])  # short distances keep their own row
        assert torch.equal(ours[distance > 0].diff() >= 0, torch.ones_like(ours[distance > 0].diff(), dtype=bool))


def test_inputs_past_the_position_table_equal_transformers_without_absolute_positions(tmp_path):
    hf = hf_model("v3")  # no absolute table: distances past max_relative_positions share the last buckets
    hf.save_pretrained(tmp_path)
    ours = AutoModelForMaskedLM.from_pretrained(tmp_path)
    ids = torch.randint(3, SHAPE["vocab_size"], (2, 2 * SHAPE["max_position_embeddings"] + 5),
                        generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert (hf(input_ids=ids).logits - ours(input_ids=ids).logits).abs().max() <= 1e-5


def test_relative_positions_change_the_output_and_reach_their_gradients():
    config = DebertaV2Config(**SHAPE | CASES["v3"])
    torch.manual_seed(0)
    model = perturb(DebertaV2ForMaskedLM(config))
    x = batch()
    model(**x).loss.backward()
    encoder = model.deberta.encoder
    assert encoder.relative.rel_embeddings.weight.grad.abs().sum() > 0
    assert encoder.relative.LayerNorm.weight.grad.abs().sum() > 0
    with torch.no_grad():
        before = model.eval()(**x).logits
        encoder.relative.rel_embeddings.weight.mul_(-1.5)
        assert gap(model(**x).logits, before, x["attention_mask"]) > 1e-3


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    config = DebertaV2Config(**SHAPE | CASES["unbucketed-conv"])
    torch.manual_seed(0)
    plain = perturb(DebertaV2ForMaskedLM(config)).train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.gradient_checkpointing_enable()
    x = batch()
    losses = [m(**x).loss for m in (plain, checkpointed)]
    for loss in losses:
        loss.backward()
    assert abs(losses[0].item() - losses[1].item()) <= 1e-6
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert (a.grad - b.grad).abs().max() <= 1e-6, name


@pytest.mark.parametrize("preset", list(DEBERTA_V3_PRESETS))
def test_v3_presets_count_as_transformers(preset, capsys):
    config = DebertaV2Config.preset(preset)
    hf_config = transformers.DebertaV2Config(**config.to_dict())
    with torch.device("meta"):  # one build: the masked LM holds the encoder
        masked_lm = transformers.DebertaV2ForMaskedLM(hf_config)
    encoder = masked_lm.deberta
    assert total_parameters(config) == encoder.num_parameters()
    assert total_parameters(config, with_heads=True) == masked_lm.num_parameters()
    assert main(["params", "--arch", "deberta-v2", "--preset", preset]) == 0
    assert f"{encoder.num_parameters():,}" in capsys.readouterr().out


# microsoft/deberta-v3-base's config.json and deberta-v2-xlarge's (its convolution, d_head written out), as published
V3_BASE_JSON = dict(model_type="deberta-v2", attention_probs_dropout_prob=0.1, hidden_act="gelu",
                    hidden_dropout_prob=0.1, hidden_size=768, initializer_range=0.02, intermediate_size=3072,
                    max_position_embeddings=512, relative_attention=True, position_buckets=256,
                    norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type="p2c|c2p", layer_norm_eps=1e-7,
                    max_relative_positions=-1, position_biased_input=False, num_attention_heads=12,
                    num_hidden_layers=12, type_vocab_size=0, vocab_size=128100)
V2_XLARGE_JSON = V3_BASE_JSON | dict(hidden_size=1536, intermediate_size=6144, num_attention_heads=24,
                                     num_hidden_layers=24, attention_head_size=64, conv_kernel_size=3, conv_act="gelu",
                                     pooler_dropout=0, pooler_hidden_act="gelu", pooler_hidden_size=1536)


def test_bert_shapes_take_v3_attention_and_v3_names_win():
    tiny = DebertaV2Config.preset("tiny", vocab_size=50)
    assert (tiny.num_hidden_layers, tiny.hidden_size, tiny.num_attention_heads, tiny.intermediate_size) == \
        (2, 128, 2, 512)
    assert tiny.relative_attention and tiny.position_buckets == 256 and tiny.pos_att_type == ["p2c", "c2p"]
    assert DebertaV2Config.preset("small").num_hidden_layers == 6  # v3-small, not BERT's small (4 layers)


def test_published_config_files_read_as_the_presets_and_count_as_transformers(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(V3_BASE_JSON))
    assert DebertaV2Config.from_json_file(tmp_path / "config.json") == DebertaV2Config.preset("base")
    (tmp_path / "config.json").write_text(json.dumps(V2_XLARGE_JSON))
    with torch.device("meta"):
        xlarge = transformers.DebertaV2Model(transformers.DebertaV2Config.from_json_file(tmp_path / "config.json"))
    assert main(["params", "--model", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{xlarge.num_parameters():,}" in out and "convolution over the embeddings" in out


def lora_model() -> torch.nn.Module:
    """A perturbed v3-layout masked LM: shared keys, so LoRA on query / key also moves the position terms."""
    torch.manual_seed(0)
    return perturb(DebertaV2ForMaskedLM(DebertaV2Config(**SHAPE | CASES["v3"]))).eval()


def test_zero_initialised_lora_equals_the_base_model():
    base = lora_model()
    tuned = apply_peft(copy.deepcopy(base), PeftConfig(method="lora", r=4, target_modules=["query", "key", "value"]))
    assert sum(isinstance(m, LoraLinear) for m in tuned.modules()) == 3 * SHAPE["num_hidden_layers"]
    x = batch()
    with torch.no_grad():
        assert (base(**x).logits - tuned(**x).logits).abs().max() <= 1e-6


def test_merged_lora_equals_unmerged_and_reaches_the_position_terms():
    tuned = apply_peft(lora_model(), PeftConfig(method="lora", r=4, lora_alpha=8, target_modules=["key"]))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in tuned.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.2)
    x = batch()
    with torch.no_grad():
        unmerged = tuned(**x).logits
        merged_model = merge_lora(copy.deepcopy(tuned))
        merged = merged_model(**x).logits
        base = lora_model()(**x).logits
    assert not any(isinstance(m, LoraLinear) for m in merged_model.modules())
    assert set(merged_model.state_dict()) == set(lora_model().state_dict())
    assert (merged - unmerged).abs().max() <= 1e-5
    assert (unmerged - base).abs().max() > 1e-3


@pytest.mark.parametrize("method", ["head", "bitfit", "lora", "houlsby", "pfeiffer", "prompt", "ptuning"])
def test_every_peft_method_on_a_classifier_keeps_rows_independent_of_padding_and_trains(method):
    torch.manual_seed(0)
    model = perturb(DebertaV2ForSequenceClassification(DebertaV2Config(**SHAPE | CASES["v3"]), num_labels=3))
    model = apply_peft(model.eval(), PeftConfig(method=method, r=2, adapter_size=3, num_virtual_tokens=3,
                                                encoder_hidden_size=6))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the methods start as the identity: noise shows a wrong wiring
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.2)
    x = {k: v[:, :11] for k, v in batch().items() if k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        batched = model(**x).logits
        for row, length in ((0, 11), (2, 5)):
            alone = model(**{k: v[row:row + 1, :length] for k, v in x.items()}).logits
            assert (alone - batched[row]).abs().max() <= 1e-5
    model.train()
    model(**x, labels=torch.tensor([0, 1, 2])).loss.backward()
    trained = dict((n, p) for n, p in model.named_parameters() if p.requires_grad)
    assert "classifier.weight" in trained and "pooler.dense.weight" in trained
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.values())


@pytest.mark.parametrize("method", ["prefix", "ptuning_v2"])
def test_prefix_methods_are_refused_as_keys_without_a_relative_position(method):
    model = DebertaV2ForSequenceClassification(DebertaV2Config(**SHAPE | CASES["v3"]))
    with pytest.raises(ValueError, match="relative positions \\(disentangled\\) cannot score them"):
        apply_peft(model, PeftConfig(method=method, num_virtual_tokens=3, encoder_hidden_size=6))


@pytest.mark.parametrize(("fields", "message"), [
    (dict(relative_attention=False, position_buckets=256), "relative_attention is false.*position_buckets=256"),
    (dict(relative_attention=False, pos_att_type="c2p"), "relative_attention is false.*pos_att_type"),
    (dict(relative_attention=False, norm_rel_ebd="layer_norm"), "relative_attention is false.*norm_rel_ebd"),
    (dict(relative_attention=True, pos_att_type="c2p|p2p"), "pos_att_type must list each of"),
    (dict(relative_attention=True, pos_att_type="c2p|c2p"), "pos_att_type must list each of"),
    (dict(relative_attention=True), "relative_attention needs pos_att_type"),
    (dict(relative_attention=True, pos_att_type="c2p", norm_rel_ebd="batch_norm"), "norm_rel_ebd must be"),
    (dict(relative_attention=True, pos_att_type="c2p", position_buckets=100), "position_buckets=100 needs"),
    (dict(relative_attention="yes", pos_att_type="c2p"), "relative_attention must be true or false"),
    (dict(embedding_size=20), "embedding_size"),
    (dict(pooler_hidden_size=20), "pooler_hidden_size"),
    (dict(conv_kernel_size=4), "conv_kernel_size must be odd"),
    (dict(position_biased_input=False, position_embedding_type="absolute"), "follows position_biased_input"),
    (dict(is_decoder=True), "post-LN encoder"),
])
def test_bad_configs_are_refused_with_the_reason(fields, message):
    with pytest.raises(ValueError, match=message):
        DebertaV2Config(**SHAPE | fields)


def test_bad_folders_and_arguments_are_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "deberta-v2", "relative_attention": false, '
                                          '"position_buckets": 256}')
    with pytest.raises(ValueError, match="position_buckets=256"):
        AutoModel.from_pretrained(tmp_path)
    config = DebertaV2Config(**SHAPE | CASES["v3"])
    with pytest.raises(ValueError, match="no pooler"):
        DebertaV2Model(config, add_pooling_layer=True)
    with pytest.raises(ValueError, match="num_labels"):
        DebertaV2ForSequenceClassification(config, num_labels=0)
    with pytest.raises(ValueError, match="DebertaV2Config"):
        DebertaV2Model(BertConfig(**SHAPE | dict(model_type="deberta-v2")))  # a BertConfig lacks DeBERTa's fields
    with pytest.raises(ValueError, match="unknown DeBERTa preset"):
        DebertaV2Config.preset("huge")
    pruned = prune_heads(DebertaV2Model(config), {0: [1]})
    with pytest.raises(ValueError, match="pruned heads are not supported with disentangled attention"):
        pruned(torch.ones(1, 5, dtype=torch.long))

