"""XLNet against transformers' XLNetModel / XLNetLMHeadModel: random perturbed weights, folders both ways, a padded
batch with segments, two-stream attention (perm_mask + target_mapping) and its loss, memory across consecutive
segments, and the refusals (a mask no factorisation order gives, mem_len on a model without memory, …)."""

import json

import pytest
import torch
import transformers
from family_fixtures import perturb

from bertkit.model import AutoModel, AutoModelForPreTraining
from bertkit.model.parameters import total_parameters
from bertkit.model.xlnet import XLNetLMHeadModel, XLNetModel
from bertkit.model.xlnet_architecture import XLNetConfig

SHAPE = dict(vocab_size=103, d_model=36, n_layer=3, n_head=3, d_inner=37, dropout=0.0, mem_len=None)
VARIANTS = {
    "bi": {},
    "uni-same-length": dict(attn_type="uni", same_length=True, ff_activation="relu"),
    "clamped-bi-data": dict(clamp_len=3, bi_data=True, ff_activation="gelu_new"),
}
CLASSES = {"XLNetModel": AutoModel, "XLNetLMHeadModel": AutoModelForPreTraining}


def hf_xlnet(kind: str, seed: int = 0, **extra) -> torch.nn.Module:
    torch.manual_seed(seed)
    return perturb(getattr(transformers, kind)(transformers.XLNetConfig(**SHAPE | extra)), seed).eval()


def padded_batch(batch: int = 4, seq: int = 13) -> dict[str, torch.Tensor]:
    """Ids, a padded mask (pad id 5 where it is 0) and two segments per row."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(6, 103, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 5
    segments = torch.zeros_like(ids)
    segments[:, 6:] = 1
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=segments)


def order_masks(batch: int, seq: int, predictions: int, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """perm_mask and target_mapping from a random factorisation order per row: i sees j iff j comes earlier in
    the order; the last ``predictions`` tokens of the order are predicted."""
    g = torch.Generator().manual_seed(seed)
    rank = torch.stack([torch.randperm(seq, generator=g) for _ in range(batch)])
    perm = (rank[:, None, :] >= rank[:, :, None]).float()
    targets = rank.argsort(dim=1)[:, -predictions:]
    mapping = torch.nn.functional.one_hot(targets, seq).float()
    return perm, mapping


def pieces(variant: str, inputs: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The inputs as one batch, or row by row for "uni": transformers' causal mask cannot take a data mask (padding
    or perm_mask) for more than one row (an in-place add onto a (q, k, 1, 1) tensor)."""
    if not variant.startswith("uni"):
        return [inputs]
    return [{k: v[i: i + 1] for k, v in inputs.items()} for i in range(len(inputs["input_ids"]))]


def run(model, **inputs):
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True)


def tokens(out) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def assert_close(ours, theirs, tolerance: float = 1e-5) -> None:
    """Outputs, every layer's states and the returned memory agree."""
    assert (tokens(ours) - tokens(theirs)).abs().max() <= tolerance
    assert len(ours.hidden_states) == len(theirs.hidden_states)
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        assert (a - b).abs().max() <= tolerance
    assert (ours.mems is None) == (theirs.mems is None)
    for a, b in zip(ours.mems or (), theirs.mems or (), strict=True):
        assert a.shape == b.shape and (a - b).abs().max() <= tolerance


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_transformers_folders_load_with_the_same_outputs(tmp_path, kind, variant):
    theirs = hf_xlnet(kind, **VARIANTS[variant])
    theirs.save_pretrained(tmp_path)
    ours = CLASSES[kind].from_pretrained(tmp_path)
    assert type(ours).__name__ == kind
    assert ours.loading_report.missing == [] and ours.loading_report.unexpected == []
    batch = padded_batch()
    for piece in pieces(variant, batch):
        assert_close(run(ours, **piece), run(theirs, **piece))
    no_segments = {k: v for k, v in batch.items() if k != "token_type_ids"}
    for piece in pieces(variant, no_segments):
        assert_close(run(ours, **piece), run(theirs, **piece))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_two_stream_attention_and_its_loss_match(tmp_path, variant):
    theirs = hf_xlnet("XLNetLMHeadModel", 1, **VARIANTS[variant])
    theirs.save_pretrained(tmp_path)
    ours = XLNetLMHeadModel.from_pretrained(tmp_path)
    batch = padded_batch()
    perm, mapping = order_masks(4, 13, predictions=3)
    labels = torch.gather(batch["input_ids"], 1, mapping.argmax(-1))
    labels[0, 1] = -100  # an ignored prediction
    inputs = batch | dict(perm_mask=perm, target_mapping=mapping, labels=labels)
    for piece in pieces(variant, inputs):
        a, b = run(ours, **piece), run(theirs, **piece)
        assert a.logits.shape == (len(piece["input_ids"]), 3, 103)
        assert len(a.hidden_states) == 2 * (3 + 1)  # (content, query) per layer input and at the end
        assert_close(a, b)
        assert abs(a.loss.item() - b.loss.item()) <= 1e-5
    with torch.no_grad():  # each layer's (content, query) attention maps, as transformers lays them out
        ours_maps = ours(**piece, output_attentions=True).attentions
        theirs_maps = theirs(**piece, output_attentions=True).attentions
    for mine, their in zip(ours_maps, theirs_maps, strict=True):
        assert all((x - y).abs().max() <= 1e-5 for x, y in zip(mine, their, strict=True))


@pytest.mark.parametrize("variant", ["bi", "uni-same-length", "clamped-bi-data"])
def test_memory_across_two_segments_matches(tmp_path, variant):
    extra = VARIANTS[variant] | dict(mem_len=5, reuse_len=4)
    theirs = hf_xlnet("XLNetLMHeadModel", 2, **extra)
    theirs.save_pretrained(tmp_path)
    ours = XLNetLMHeadModel.from_pretrained(tmp_path)
    assert ours.config.mem_len == 5 and ours.config.reuse_len == 4
    batch = padded_batch(seq=14)
    if variant.startswith("uni"):  # see pieces(): no data mask in transformers' causal batches
        batch.pop("attention_mask")
    first = {k: v[:, :7] for k, v in batch.items()}
    second = {k: v[:, 7:] for k, v in batch.items()}
    a1, b1 = run(ours, **first, use_mems=True), run(theirs, **first, use_mems=True)
    assert_close(a1, b1)
    assert a1.mems[0].shape == (4, 4, 36)  # reuse_len 4 of the 7 positions, batch 4
    a2, b2 = run(ours, **second, mems=a1.mems, use_mems=True), run(theirs, **second, mems=b1.mems, use_mems=True)
    assert_close(a2, b2)
    assert a2.mems[0].shape == (5, 4, 36)  # the last mem_len of memory + reused inputs
    crossed = run(theirs, **second, mems=a1.mems, use_mems=True)  # bertkit's memory feeds transformers unchanged
    assert (crossed.logits - a2.logits).abs().max() <= 1e-5


def test_causal_memory_steps_equal_the_full_forward(tmp_path):
    """With causal attention the second segment over the first's memory sees exactly what the whole sequence's
    forward shows it: the same logits for those positions."""
    hf_xlnet("XLNetLMHeadModel", 3, attn_type="uni", mem_len=8).save_pretrained(tmp_path)
    ours = XLNetLMHeadModel.from_pretrained(tmp_path)
    ids = padded_batch(seq=14)["input_ids"][:1]
    whole = run(ours, input_ids=ids)
    first = run(ours, input_ids=ids[:, :8], use_mems=True)
    second = run(ours, input_ids=ids[:, 8:], mems=first.mems, use_mems=False)
    assert (second.logits - whole.logits[:, 8:]).abs().max() <= 1e-5
    assert (first.logits - whole.logits[:, :8]).abs().max() <= 1e-5
    assert second.mems is None


@pytest.mark.parametrize("kind", list(CLASSES))
def test_bertkit_folders_load_in_transformers_with_the_same_outputs(tmp_path, kind):
    shape = transformers.XLNetConfig(**SHAPE | dict(mem_len=6, clamp_len=4))
    (tmp_path / "shape").mkdir()
    (tmp_path / "shape" / "config.json").write_text(shape.to_json_string())
    config = XLNetConfig.from_json_file(tmp_path / "shape" / "config.json")
    assert (config.hidden_size, config.attention_head_size, config.intermediate_size) == (36, 12, 37)
    assert config.mem_len == 6 and config.clamp_len == 4 and config.attention_probs_dropout_prob == 0.0
    torch.manual_seed(4)
    ours = perturb(CLASSES[kind].from_config(config), 4).eval()
    folder = ours.save_pretrained(tmp_path / "ours")
    written = json.loads((folder / "config.json").read_text())
    assert written["model_type"] == "xlnet" and written["d_model"] == 36 and written["d_head"] == 12
    assert written["mem_len"] == 6 and written["dropout"] == 0.0 and written["architectures"] == [kind]
    theirs = getattr(transformers, kind).from_pretrained(folder).eval()
    batch = padded_batch()
    assert_close(run(ours, **batch), run(theirs, **batch))
    perm, mapping = order_masks(4, 13, predictions=2, seed=5)
    two_stream = batch | dict(perm_mask=perm, target_mapping=mapping)
    assert_close(run(ours, **two_stream), run(theirs, **two_stream))
    again = CLASSES[kind].from_pretrained(folder)  # and back into bertkit
    assert_close(run(again, **batch), run(ours, **batch), tolerance=0.0)


def test_positional_inputs_follow_bertkits_encoders(tmp_path):
    """Fine-tuning heads call every encoder as (input_ids, attention_mask, token_type_ids): XLNet takes that order
    (transformers' third is mems), and has no pooler to add."""
    theirs = hf_xlnet("XLNetModel")
    theirs.save_pretrained(tmp_path)
    ours = XLNetModel.from_pretrained(tmp_path)
    batch = padded_batch()
    positional = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state
    assert (positional - run(theirs, **batch).last_hidden_state).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="no pooler"):
        XLNetModel(ours.config, add_pooling_layer=True)


def test_a_folder_without_memory_keeps_mem_len_none(tmp_path):
    hf_xlnet("XLNetModel").save_pretrained(tmp_path)
    ours = AutoModel.from_pretrained(tmp_path)
    assert ours.config.mem_len is None
    written = json.loads((ours.save_pretrained(tmp_path / "again") / "config.json").read_text())
    assert written["mem_len"] is None


def test_the_published_config_json_reads_as_the_base_preset(tmp_path):
    """xlnet-base-cased's config.json as published (transformers 2-era keys: untie_r, summary_*, task params)."""
    published = dict(
        architectures=["XLNetLMHeadModel"], attn_type="bi", bi_data=False, bos_token_id=1, clamp_len=-1, d_head=64,
        d_inner=3072, d_model=768, dropout=0.1, end_n_top=5, eos_token_id=2, ff_activation="gelu",
        initializer_range=0.02, layer_norm_eps=1e-12, mem_len=None, model_type="xlnet", n_head=12, n_layer=12,
        pad_token_id=5, reuse_len=None, same_length=False, start_n_top=5, summary_activation="tanh",
        summary_last_dropout=0.1, summary_type="last", summary_use_proj=True, untie_r=True, vocab_size=32000,
        task_specific_params={"text-generation": {"do_sample": True, "max_length": 250}})
    (tmp_path / "config.json").write_text(json.dumps(published))
    config = XLNetConfig.from_json_file(tmp_path / "config.json")
    assert config == XLNetConfig.preset("base")
    theirs = transformers.XLNetConfig.from_json_file(tmp_path / "config.json")
    assert (theirs.d_model, theirs.n_layer, theirs.d_inner, theirs.mem_len) == (
        config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.mem_len)


@pytest.mark.parametrize("size", ["base", "large"])
def test_parameter_counts_equal_transformers(size):
    config = XLNetConfig.preset(size)
    theirs_config = transformers.XLNetConfig(d_model=config.hidden_size, n_layer=config.num_hidden_layers,
                                             n_head=config.num_attention_heads, d_inner=config.intermediate_size)
    with torch.device("meta"):
        theirs = transformers.XLNetLMHeadModel(theirs_config)
        their_encoder = transformers.XLNetModel(theirs_config)
    assert total_parameters(config, with_heads=True) == theirs.num_parameters()
    assert total_parameters(config) == their_encoder.num_parameters()


# -- bad input --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    config = XLNetConfig(vocab_size=50, hidden_size=12, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=16, mem_len=4)
    return XLNetLMHeadModel(config).eval()


def test_a_mask_that_is_not_a_permutation_mask_is_refused(tiny):
    ids = torch.randint(6, 50, (2, 5))
    perm, _ = order_masks(2, 5, predictions=2)
    tiny(ids, perm_mask=perm)  # a real order: accepted
    partial = torch.zeros(2, 6, 6)  # 0 1 2 3 before 4 before 5, which sees 0 1 2 3 as they see it: an order, not
    partial[:, :4, 4] = partial[:, 4, 5] = 1  # sorted by predecessor counts (5 has one, 4 four), so peeled
    tiny(torch.randint(6, 50, (2, 6)), perm_mask=partial)
    with pytest.raises(ValueError, match=r"perm_mask must be \(batch, sequence, sequence\)"):
        tiny(ids, perm_mask=perm[:, :4, :4])
    with pytest.raises(ValueError, match="only 0 .* and 1"):
        tiny(ids, perm_mask=perm * 0.5)
    cyclic = torch.ones(2, 5, 5)
    for i in range(5):  # i sees only i - 1 (mod 5): 0 before 1 before … before 4 before 0
        cyclic[:, i, (i - 1) % 5] = 0
    with pytest.raises(ValueError, match="has a cycle"):
        tiny(ids, perm_mask=cyclic)
    with pytest.raises(ValueError, match="target_mapping must be"):
        tiny(ids, target_mapping=torch.zeros(2, 1, 4))


def test_memory_misuse_is_refused(tiny):
    ids = torch.randint(6, 50, (2, 5))
    untrained = XLNetModel(XLNetConfig(vocab_size=50, hidden_size=12, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=16, mem_len=None)).eval()
    assert untrained(ids, use_mems=True).mems[0].shape == (5, 2, 12)  # transformers' rule: all of it
    with pytest.raises(ValueError, match="trained without memory"):
        untrained(ids, use_mems=True, mem_len=3)
    with pytest.raises(ValueError, match="without use_mems"):
        tiny(ids, use_mems=False, mem_len=3)
    assert tiny(ids, use_mems=True, mem_len=3).mems[0].shape == (3, 2, 12)
    with pytest.raises(ValueError, match="mem_len must be an integer"):
        tiny(ids, use_mems=True, mem_len=-2)
    mems = tiny(ids, use_mems=True).mems
    with pytest.raises(ValueError, match="mems holds 1 tensors"):
        tiny(ids, mems=mems[:1])
    with pytest.raises(ValueError, match=r"\(memory length, batch, hidden\)"):
        tiny(ids[:1], mems=mems)


def test_other_bad_input_is_refused(tiny, tmp_path):
    ids = torch.randint(6, 50, (2, 5))
    with pytest.raises(ValueError, match="labels must be"):
        tiny(ids, labels=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="input_ids must lie in"):
        tiny(ids + 50)
    with pytest.raises(ValueError, match="batch .* must be even"):
        XLNetModel(XLNetConfig(vocab_size=50, hidden_size=12, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=16, bi_data=True))(ids[:1])
    with pytest.raises(ValueError, match="d_head must be"):
        XLNetConfig(hidden_size=12, num_attention_heads=2, attention_head_size=5)
    with pytest.raises(ValueError, match="attn_type"):
        XLNetConfig(attn_type="sideways")
    with pytest.raises(ValueError, match="one dropout"):
        XLNetConfig(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.2)
    values = transformers.XLNetConfig(**SHAPE).to_dict() | dict(mystery_switch=True)
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match="mystery_switch"):
        XLNetConfig.from_json_file(tmp_path / "config.json")


def test_training_drops_out_and_every_weight_learns_from_the_two_streams():
    torch.manual_seed(5)
    model = XLNetLMHeadModel(XLNetConfig(vocab_size=50, hidden_size=12, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=16, hidden_dropout_prob=0.2)).train()
    batch = {k: v[:, :9] % 50 for k, v in padded_batch(seq=9).items()}
    perm, mapping = order_masks(4, 9, predictions=2)
    labels = torch.gather(batch["input_ids"], 1, mapping.argmax(-1))
    out = model(**batch, perm_mask=perm, target_mapping=mapping, labels=labels)
    assert out.mems is None  # use_mems_train defaults to false
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    again = model(**batch, perm_mask=perm, target_mapping=mapping)
    assert not torch.allclose(out.logits, again.logits)  # a fresh dropout mask


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(6)
    config = XLNetConfig(vocab_size=50, hidden_size=12, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=16, hidden_dropout_prob=0.1)
    batch = {k: v[:, :9] % 50 for k, v in padded_batch(seq=9).items()}
    perm, mapping = order_masks(4, 9, predictions=2)
    grads, calls = [], []
    for checkpointed in (False, True):
        torch.manual_seed(6)
        model = XLNetLMHeadModel(config).train()
        if checkpointed:
            model.gradient_checkpointing_enable()
        runs = []
        model.transformer.layer[0].register_forward_pre_hook(lambda *_, runs=runs: runs.append(1))
        torch.manual_seed(7)  # the same dropout masks in both runs (replayed by the checkpoint)
        model(**batch, perm_mask=perm, target_mapping=mapping,
              labels=torch.gather(batch["input_ids"], 1, mapping.argmax(-1))).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        calls.append(len(runs))
    assert calls == [1, 2]  # the checkpointed layer ran again in the backward pass
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
