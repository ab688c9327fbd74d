"""ModernBERT against transformers' ModernBertModel / ForMaskedLM / ForSequenceClassification: every weight perturbed,
padded batches, global and sliding-window layers (a window of ±2 at 12 tokens), folders both ways, published configs,
parameter counts, the unpadded path, the blocked window against a float64 formula, LoRA, and bad input."""

import copy
import json
import re

import pytest
import torch
import transformers
from family_fixtures import perturb

from bertkit.model.auto import AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining
from bertkit.model.local_attention import blocked_window_attention, local_global_attention
from bertkit.model.modernbert import ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertModel
from bertkit.model.modernbert_architecture import ModernBertConfig
from bertkit.model.modernbert_unpadded import unpadded_forward
from bertkit.model.parameters import total_parameters
from bertkit.model.unpadded import pack
from bertkit.peft.lora import LoraLinear
from bertkit.peft.targets import replace_module

SHAPE = dict(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=40,
             max_position_embeddings=64, local_attention=4, pad_token_id=0, bos_token_id=1, eos_token_id=2,
             cls_token_id=1, sep_token_id=2, global_rope_theta=1000.0, local_rope_theta=100.0)
# every 3rd layer global (full, window, window) without biases; every 2nd with every bias and other activations
CASES = {"plain": dict(global_attn_every_n_layers=3),
         "biases": dict(global_attn_every_n_layers=2, norm_bias=True, attention_bias=True, mlp_bias=True,
                        classifier_bias=True, hidden_activation="gelu_pytorch_tanh", classifier_activation="silu")}
OURS = dict(hidden_activation="hidden_act", norm_eps="layer_norm_eps")  # transformers' name → bertkit's field


def hf_config(case: str, **extra) -> transformers.ModernBertConfig:
    """transformers' config of a case (eager attention: the plain softmax oracle)."""
    config = transformers.ModernBertConfig(**SHAPE | CASES[case] | extra)
    config._attn_implementation = "eager"
    return config


def our_config(case: str, **extra) -> ModernBertConfig:
    """The same case as bertkit's config."""
    return ModernBertConfig(**{OURS.get(k, k): v for k, v in (SHAPE | CASES[case] | extra).items()})


def hf_model(kind: str, case: str, seed: int = 0, **extra) -> torch.nn.Module:
    """A perturbed random transformers model (``kind``: ModernBertModel, …ForMaskedLM, …ForSequenceClassification)."""
    torch.manual_seed(seed)
    return perturb(getattr(transformers, kind)(hf_config(case, **extra)), seed).eval()


def batch(seq: int = 12) -> dict[str, torch.Tensor]:
    """Ids padded with the pad id where the mask is 0 (rows of seq, 9 and 3 tokens), MLM labels on real tokens."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, SHAPE["vocab_size"], (3, seq), generator=g)
    mask = torch.ones(3, seq, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    labels = torch.where(mask.bool(), torch.randint(0, SHAPE["vocab_size"], (3, seq), generator=g), -100)
    return dict(input_ids=ids, attention_mask=mask, labels=labels)


def real(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The rows of real tokens (padded positions' outputs are not defined the same way)."""
    return t[mask.bool()]


@pytest.mark.parametrize("seq", [12, 7])  # 12 tokens: the blocked window; 7: the masked (L, L) scores
@pytest.mark.parametrize("case", list(CASES))
def test_masked_lm_equals_transformers_from_its_folder(case, seq, tmp_path):
    hf = hf_model("ModernBertForMaskedLM", case)
    hf.save_pretrained(tmp_path)
    ours = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert isinstance(ours, ModernBertForMaskedLM) and not ours.loading_report.missing
    x = batch(seq)
    with torch.no_grad():
        theirs, mine = hf(**x, output_hidden_states=True), ours(**x, output_hidden_states=True)
    mask = x["attention_mask"]
    assert len(mine.hidden_states) == len(theirs.hidden_states) == SHAPE["num_hidden_layers"] + 1
    for a, b in zip(theirs.hidden_states, mine.hidden_states, strict=True):
        assert (real(a, mask) - real(b, mask)).abs().max() <= 1e-5
    assert (real(theirs.logits, mask) - real(mine.logits, mask)).abs().max() <= 1e-5
    assert abs(theirs.loss.item() - mine.loss.item()) <= 1e-5


def test_the_window_matters_at_this_length():
    """Global attention in every layer gives other outputs: the sliding layers are really windowed."""
    ours = perturb(ModernBertModel(our_config("plain"))).eval()
    everywhere = copy.deepcopy(ours)
    for layer in everywhere.layers:
        layer.attn.half_window = None
    x = batch()
    with torch.no_grad():
        a = ours(x["input_ids"], x["attention_mask"]).last_hidden_state
        b = everywhere(x["input_ids"], x["attention_mask"]).last_hidden_state
    assert (real(a, x["attention_mask"]) - real(b, x["attention_mask"])).abs().max() > 1e-3


def test_bare_model_equals_transformers_and_has_its_names(tmp_path):
    hf = hf_model("ModernBertModel", "biases")
    hf.save_pretrained(tmp_path)
    ours = AutoModel.from_pretrained(tmp_path)
    assert isinstance(ours, ModernBertModel)
    assert set(ours.hf_names().values()) == set(hf.state_dict())
    x = batch()
    with torch.no_grad():
        a = hf(x["input_ids"], attention_mask=x["attention_mask"]).last_hidden_state
        b = ours(x["input_ids"], x["attention_mask"]).last_hidden_state
    assert (real(a, x["attention_mask"]) - real(b, x["attention_mask"])).abs().max() <= 1e-5


@pytest.mark.parametrize("case,pooling", [("plain", "cls"), ("biases", "mean")])
def test_classifier_equals_transformers_from_its_folder(case, pooling, tmp_path):
    hf = hf_model("ModernBertForSequenceClassification", case, classifier_pooling=pooling, num_labels=3)
    hf.save_pretrained(tmp_path)
    ours = ModernBertForSequenceClassification.from_pretrained(tmp_path)
    assert not ours.loading_report.missing and ours.config.num_labels == 3
    x = batch()
    x["labels"] = torch.tensor([0, 2, 1])
    with torch.no_grad():
        a, b = hf(**x), ours(**x)
    assert (a.logits - b.logits).abs().max() <= 1e-5
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5


@pytest.mark.parametrize("labels,targets", [(1, torch.tensor([0.5, -1.0, 2.0])),
                                            (2, torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))])
def test_regression_and_multi_label_losses_equal_transformers(labels, targets, tmp_path):
    hf = hf_model("ModernBertForSequenceClassification", "plain", classifier_pooling="mean", num_labels=labels)
    hf.save_pretrained(tmp_path)
    ours = ModernBertForSequenceClassification.from_pretrained(tmp_path)
    x = batch() | dict(labels=targets)
    with torch.no_grad():
        a, b = hf(**x), ours(**x)
    assert (a.logits - b.logits).abs().max() <= 1e-5 and abs(a.loss.item() - b.loss.item()) <= 1e-5


@pytest.mark.parametrize("case", list(CASES))
def test_bertkit_folders_load_in_transformers_with_equal_outputs(case, tmp_path, capsys):
    from bertkit.cli import main

    torch.manual_seed(3)
    masked_lm = perturb(ModernBertForMaskedLM(our_config(case)), seed=3).eval()
    masked_lm.save_pretrained(tmp_path / "mlm")
    theirs, info = transformers.ModernBertForMaskedLM.from_pretrained(tmp_path / "mlm", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert theirs.config.layer_types == masked_lm.config.layer_types
    x = batch()
    with torch.no_grad():
        a, b = theirs.eval()(**x), masked_lm(**x)
    mask = x["attention_mask"]
    assert (real(a.logits, mask) - real(b.logits, mask)).abs().max() <= 1e-5
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5
    assert AutoModelForPreTraining.from_pretrained(tmp_path / "mlm").config == masked_lm.config  # reads back whole
    assert main(["params", "--model", str(tmp_path / "mlm")]) == 0
    assert re.search(rf"total \(ModernBertModel\) +{theirs.model.num_parameters():,}\n", capsys.readouterr().out)
    classifier = perturb(ModernBertForSequenceClassification(our_config(case, classifier_pooling="mean",
                                                                        id2label={0: "no", 1: "yes"})), 4).eval()
    classifier.save_pretrained(tmp_path / "cls")
    theirs = transformers.ModernBertForSequenceClassification.from_pretrained(tmp_path / "cls").eval()
    assert theirs.config.classifier_pooling == "mean" and theirs.config.id2label == {0: "no", 1: "yes"}
    x["labels"] = torch.tensor([1, 0, 1])
    with torch.no_grad():
        a, b = theirs(**x), classifier(**x)
    assert (a.logits - b.logits).abs().max() <= 1e-5 and abs(a.loss.item() - b.loss.item()) <= 1e-5


def test_a_published_config_json_reads_as_transformers_reads_it():
    """ModernBERT-base's config.json as published (legacy thetas and n, BERT's leftover fields), shrunk."""
    published = dict(model_type="modernbert", architectures=["ModernBertForMaskedLM"], hidden_activation="gelu",
                     global_attn_every_n_layers=2, global_rope_theta=160000.0, local_rope_theta=10000.0,
                     local_attention=8, layer_norm_eps=1e-5, norm_eps=1e-5, position_embedding_type="absolute",
                     reference_compile=None, deterministic_flash_attn=False, sparse_prediction=False,
                     sparse_pred_ignore_index=-100, classifier_pooling="mean", num_hidden_layers=5, vocab_size=120,
                     hidden_size=48, num_attention_heads=3, intermediate_size=20, pad_token_id=3,
                     transformers_version="4.47.0.dev0")
    theirs = transformers.ModernBertConfig.from_dict(published)
    ours = ModernBertConfig.from_dict(published)
    assert ours.layer_types == theirs.layer_types
    ropes = theirs.rope_parameters
    assert (ours.global_rope_theta, ours.local_rope_theta) == (ropes["full_attention"]["rope_theta"],
                                                               ropes["sliding_attention"]["rope_theta"])
    assert ours.local_attention // 2 == theirs.sliding_window and ours.classifier_pooling == "mean"


@pytest.mark.parametrize("preset", ["base", "large"])
def test_preset_counts_equal_transformers(preset, capsys):
    from bertkit.cli import main

    sizes = dict(base={}, large=dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16,
                                     intermediate_size=2624))[preset]
    config = ModernBertConfig.preset(preset)
    assert (config.hidden_size, config.num_hidden_layers, config.local_attention, config.vocab_size,
            config.max_position_embeddings) == (sizes.get("hidden_size", 768), sizes.get("num_hidden_layers", 22),
                                                128, 50368, 8192)
    with torch.device("meta"):
        encoder = transformers.ModernBertModel(transformers.ModernBertConfig(**sizes))
        masked_lm = transformers.ModernBertForMaskedLM(transformers.ModernBertConfig(**sizes))
    assert total_parameters(config) == encoder.num_parameters()
    assert total_parameters(config, with_heads=True) == masked_lm.num_parameters()
    assert main(["params", "--arch", "modernbert", "--preset", preset]) == 0
    assert "total (ModernBertModel)" in (out := capsys.readouterr().out) and f"{encoder.num_parameters():,}" in out


@pytest.mark.parametrize("case,mode", [("plain", "repad"), ("biases", "loop")])
def test_unpadded_path_equals_the_padded_one(case, mode):
    model = perturb(ModernBertModel(our_config(case))).eval()
    lengths = [12, 9, 3, 11]  # windowed by blocks (12, 11, 9 > 8 tokens) and by masked scores (3)
    g = torch.Generator().manual_seed(2)
    rows = [torch.randint(3, SHAPE["vocab_size"], (n,), generator=g).tolist() for n in lengths]
    packed = pack(rows)
    with torch.no_grad():
        last, hidden = unpadded_forward(model, packed, output_hidden_states=True, attention=mode)
        for row, start, n in zip(rows, packed.offsets.tolist(), lengths, strict=True):
            padded = torch.tensor([row + [0] * (12 - n)])
            mask = (torch.arange(12) < n).long()[None]
            out = model(padded, mask, output_hidden_states=True)
            for a, b in zip(out.hidden_states, hidden, strict=True):
                assert (a[0, :n] - b[start:start + n]).abs().max() <= 1e-5
            assert (out.last_hidden_state[0, :n] - last[start:start + n]).abs().max() <= 1e-5


def window_oracle(q, k, v, keep, half):
    """softmax(QKᵀ/√d) V in float64 with the band |i − j| ≤ half and padded keys removed, written out."""
    q, k, v = q.double(), k.double(), v.double()
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    i = torch.arange(q.shape[-2])
    allowed = ((i[:, None] - i[None, :]).abs() <= half)[None, None] & keep[:, None, None, :]
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v


@pytest.mark.parametrize("length,half", [(13, 2), (40, 3), (9, 4), (64, 8)])
def test_windowed_attention_equals_the_formula(length, half):
    g = torch.Generator().manual_seed(length)
    q, k, v = (torch.randn(2, 3, length, 8, generator=g) for _ in range(3))
    keep = torch.ones(2, length, dtype=torch.bool)
    keep[1, length - 5:] = False
    expected = window_oracle(q, k, v, keep, half)
    for got in (blocked_window_attention(q, k, v, keep, half), local_global_attention(q, k, v, keep, half)):
        assert (got[0] - expected[0]).abs().max() <= 1e-5
        assert (got[1, :, :length - 5] - expected[1, :, :length - 5]).abs().max() <= 1e-5


def lora_model() -> ModernBertForSequenceClassification:
    """A perturbed ModernBERT classifier (mean pooling), eval mode."""
    torch.manual_seed(0)
    return perturb(ModernBertForSequenceClassification(our_config("biases", classifier_pooling="mean"))).eval()


def add_lora(model: torch.nn.Module) -> list[LoraLinear]:
    """LoRA around every layer's Wqkv, attention Wo and GeGLU Wi, replaced by name."""
    wrapped = []
    for name, module in list(model.named_modules()):
        if name.endswith(("attn.Wqkv", "attn.Wo", "mlp.Wi")):
            wrapped.append(LoraLinear(module, r=4, alpha=8))
            replace_module(model, name, wrapped[-1])
    return wrapped


def test_zero_initialised_lora_equals_the_base_and_merged_equals_unmerged():
    base = lora_model()
    tuned = copy.deepcopy(base)
    wrapped = add_lora(tuned)
    assert len(wrapped) == 3 * SHAPE["num_hidden_layers"]
    x = batch()
    x.pop("labels")
    with torch.no_grad():
        before = base(**x).logits
        assert (tuned(**x).logits - before).abs().max() <= 1e-6
        for module in wrapped:
            module.lora_B.weight.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
        unmerged = tuned(**x).logits
        for module in wrapped:
            module.merge()
        merged = tuned(**x).logits
    assert (unmerged - before).abs().max() > 1e-3  # the LoRA branches are on the path
    assert (merged - unmerged).abs().max() <= 1e-5
    for module in wrapped:
        module.unmerge()
    tuned.train()
    tuned(**x, labels=torch.tensor([0, 1, 1])).loss.backward()
    assert all(m.lora_A.weight.grad is not None and m.lora_A.weight.grad.abs().sum() > 0 for m in wrapped)


@pytest.mark.parametrize("fields,message", [
    (dict(local_attention=5), "local_attention must be an even integer"),
    (dict(local_attention=64), "must be below max_position_embeddings 64"),
    (dict(local_attention=80), "must be below max_position_embeddings 64"),
    (dict(layer_types=["full_attention", "windowed"]), "layer_types must list 3"),
    (dict(rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0}}), "only the default rope"),
    (dict(global_rope_theta=1.0), "global_rope_theta must be a number > 1"),
    (dict(classifier_pooling="max"), "classifier_pooling must be one of"),
    (dict(pad_token_id=99), "pad_token_id=99 is not a token id"),
    (dict(global_attn_every_n_layers=0), "global_attn_every_n_layers must be an integer"),
    (dict(num_attention_heads=32, hidden_size=32), "head size 1 is odd"),
    (dict(scale_embedding=True), "do not compute scale_embedding=True"),
])
def test_bad_configs_are_refused_by_name(fields, message):
    with pytest.raises(ValueError, match=message):
        our_config("plain", **fields)


def test_bad_inputs_and_folders_are_refused(tmp_path):
    from bertkit.config import BertConfig

    with pytest.raises(ValueError, match="needs a ModernBertConfig"):
        ModernBertModel(BertConfig(model_type="modernbert", position_embedding_type="rotary", norm_first=True,
                                   type_vocab_size=0))
    model = ModernBertModel(our_config("plain")).eval()
    with pytest.raises(ValueError, match="has 65 tokens but the model has 64 positions"):
        model(torch.ones(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="no segment embeddings"):
        model(torch.ones(1, 4, dtype=torch.long), token_type_ids=torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"must lie in \[0, 99\)"):
        unpadded_forward(model, pack([[1, 2, 99]]))
    with pytest.raises(ValueError, match="attention must be one of"):
        unpadded_forward(model, pack([[1, 2]]), attention="nested")
    model.save_pretrained(tmp_path)
    values = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(values | {"sparse_prediction": True}))
    with pytest.raises(ValueError, match="sparse_prediction=True"):
        AutoModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(values | {"rotary_dim": 8}))
    with pytest.raises(ValueError, match="do not compute rotary_dim=8"):
        AutoModel.from_pretrained(tmp_path)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = perturb(ModernBertForMaskedLM(our_config("biases"))).train()
    x = batch()
    model(**x).loss.backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model(**x).loss.backward()
    assert all((p.grad - plain[n]).abs().max() <= 1e-6 for n, p in model.named_parameters())


@pytest.mark.parametrize("method", ["lora", "houlsby", "pfeiffer", "bitfit", "head"])
def test_peft_methods_start_from_the_base_and_train_on_modernbert(method):
    """apply_peft finds ModernBERT's layers (Wqkv / Wo / Wi by name; the adapters after each sublayer's last
    projection): at initialisation the output is the base model's, and the method's parameters get gradients."""
    from bertkit.peft.apply import apply_peft
    from bertkit.peft.config import PeftConfig

    base = lora_model()
    tuned = apply_peft(copy.deepcopy(base), PeftConfig(method, **(
        dict(target_modules=["Wqkv", "Wo", "Wi"]) if method == "lora" else {})))
    x = batch()
    x.pop("labels")
    with torch.no_grad():
        assert (tuned(**x).logits - base(**x).logits).abs().max() <= 1e-5
    tuned.train()
    tuned(**x, labels=torch.tensor([0, 1, 1])).loss.backward()
    trained = [n for n, p in tuned.named_parameters() if p.requires_grad]
    assert trained and all(tuned.get_parameter(n).grad is not None for n in trained)
    body = [n for n in trained if not n.startswith(tuple(tuned.head_prefixes))]
    assert bool(body) == (method != "head")  # every method but head trains something inside the encoder


@pytest.mark.parametrize("method", ["prefix", "ptuning_v2", "prompt", "ptuning"])
def test_virtual_token_methods_are_refused_by_name_on_modernbert(method):
    from bertkit.peft.apply import apply_peft
    from bertkit.peft.config import PeftConfig

    with pytest.raises(ValueError, match=f"peft method {method} puts virtual tokens.*modernbert"):
        apply_peft(lora_model(), PeftConfig(method))


def test_bitfit_without_biases_is_refused():
    from bertkit.peft.apply import apply_peft
    from bertkit.peft.config import PeftConfig

    torch.manual_seed(0)
    plain = ModernBertForSequenceClassification(our_config("plain"))
    assert not any(n.endswith(".bias") for n, _ in plain.base_model.named_parameters())
    with pytest.raises(ValueError, match="bitfit trains the encoder's biases"):
        apply_peft(plain, PeftConfig("bitfit"))


def test_lora_with_its_default_targets_adapts_wqkv_and_says_so():
    """peft's default targets (query, value) mean ModernBERT's fused Wqkv; the config kept with the model names it."""
    from bertkit.peft.apply import apply_peft
    from bertkit.peft.config import PeftConfig

    model = apply_peft(lora_model(), PeftConfig("lora"))
    adapted = [name for name, module in model.named_modules() if isinstance(module, LoraLinear)]
    assert adapted and all(name.endswith("attn.Wqkv") for name in adapted)
    assert model.peft_config.target_modules == ["Wqkv"]
