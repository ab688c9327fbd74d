"""RoFormer (rotary positions on the shared blocks) against transformers' RoFormerModel / RoFormerForMaskedLM:
every trainable weight perturbed, padded batches, folders both ways, parameter counts, LoRA and the other PEFT
methods on it."""

import copy

import pytest
import torch
import transformers
from family_fixtures import perturb

from bertkit.config import BertConfig
from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig
from bertkit.model.auto import AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining
from bertkit.model.parameters import total_parameters
from bertkit.model.roformer import RoFormerForMaskedLM, RoFormerModel
from bertkit.peft import PeftConfig, apply_peft, merge_lora
from bertkit.peft.lora import LoraLinear

# odd sizes: 3 heads of width 12, 3 segment types, a factorized embedding (20 → 36) unless a case says otherwise
SHAPE = dict(vocab_size=103, hidden_size=36, num_hidden_layers=3, num_attention_heads=3, intermediate_size=37,
             max_position_embeddings=40, type_vocab_size=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
             embedding_size=20)
CASES = {"factorized": {}, "factorized-rotary-value": dict(rotary_value=True),
         "unfactorized": dict(embedding_size=36, hidden_act="relu"),
         "unfactorized-rotary-value": dict(embedding_size=36, rotary_value=True)}


def hf_model(case: str, masked_lm: bool, seed: int = 0) -> torch.nn.Module:
    """A perturbed random transformers RoFormer of ``case``, eval mode."""
    config = transformers.RoFormerConfig(**SHAPE | CASES[case])
    torch.manual_seed(seed)
    kind = transformers.RoFormerForMaskedLM if masked_lm else transformers.RoFormerModel
    return perturb(kind(config), seed).eval()


def batch(seq: int = 17) -> dict[str, torch.Tensor]:
    """Ids (padding where the mask is 0), a padded mask, segment ids, MLM labels on the real tokens."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, SHAPE["vocab_size"], (3, seq), generator=g)
    mask = torch.ones(3, seq, dtype=torch.long)
    mask[1, 11:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    types = torch.randint(0, SHAPE["type_vocab_size"], (3, seq), generator=g)
    labels = torch.where(mask.bool(), torch.randint(0, SHAPE["vocab_size"], (3, seq), generator=g), -100)
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)


def real(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The rows of real tokens (padded positions' outputs are not defined the same way)."""
    return t[mask.bool()]


@pytest.mark.parametrize("case", list(CASES))
def test_masked_lm_equals_transformers_from_its_folder(case, tmp_path):
    hf = hf_model(case, masked_lm=True)
    hf.save_pretrained(tmp_path)
    ours = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert isinstance(ours, RoFormerForMaskedLM) and not ours.loading_report.missing
    x = batch()
    with torch.no_grad():
        theirs, mine = hf(**x, output_hidden_states=True), ours(**x, output_hidden_states=True)
    mask = x["attention_mask"]
    assert len(mine.hidden_states) == len(theirs.hidden_states) == SHAPE["num_hidden_layers"] + 1
    for a, b in zip(theirs.hidden_states[1:], mine.hidden_states[1:], strict=True):
        assert (real(a, mask) - real(b, mask)).abs().max() <= 1e-5
    assert (real(theirs.logits, mask) - real(mine.logits, mask)).abs().max() <= 1e-5
    assert abs(theirs.loss.item() - mine.loss.item()) <= 1e-5


@pytest.mark.parametrize("case", ["factorized", "unfactorized-rotary-value"])
def test_bare_model_equals_transformers_and_has_its_names(case, tmp_path):
    hf = hf_model(case, masked_lm=False)
    hf.save_pretrained(tmp_path)
    ours = AutoModel.from_pretrained(tmp_path)
    assert isinstance(ours, RoFormerModel) and ours.pooler is None
    assert set(ours.hf_names().values()) == set(hf.state_dict())
    x = batch()
    x.pop("labels")
    with torch.no_grad():
        a, b = hf(**x).last_hidden_state, ours(**x).last_hidden_state
    assert (real(a, x["attention_mask"]) - real(b, x["attention_mask"])).abs().max() <= 1e-5


@pytest.mark.parametrize("case", ["factorized-rotary-value", "unfactorized"])
def test_bertkit_folder_loads_in_transformers_with_equal_logits(case, tmp_path):
    fields = {k: v for k, v in (SHAPE | CASES[case]).items()}
    torch.manual_seed(3)
    ours = perturb(RoFormerForMaskedLM(BertConfig(model_type="roformer", position_embedding_type="rotary",
                                                  **fields)), seed=3).eval()
    ours.save_pretrained(tmp_path)
    theirs, info = transformers.RoFormerForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    x = batch()
    with torch.no_grad():
        a, b = theirs.eval()(**x), ours(**x)
    mask = x["attention_mask"]
    assert (real(a.logits, mask) - real(b.logits, mask)).abs().max() <= 1e-5
    assert abs(a.loss.item() - b.loss.item()) <= 1e-5
    assert AutoModelForPreTraining.from_pretrained(tmp_path).config == ours.config  # the folder reads back whole


def test_the_rotary_table_is_read_so_a_changed_table_changes_both_alike(tmp_path):
    hf = hf_model("factorized", masked_lm=True)
    with torch.no_grad():  # the table is fixed, not trained: perturbed here only to see that it is the one used
        table = hf.roformer.encoder.embed_positions.weight
        table.add_(torch.randn(table.shape, generator=torch.Generator().manual_seed(5)) * 0.3)
    hf.save_pretrained(tmp_path)
    ours = AutoModelForMaskedLM.from_pretrained(tmp_path)
    x = batch()
    with torch.no_grad():
        a, b = hf(**x).logits, ours(**x).logits
    assert (real(a, x["attention_mask"]) - real(b, x["attention_mask"])).abs().max() <= 1e-5
    ours.base_model.encoder.embed_positions.init_fixed_weights()  # the formula's table again: other outputs
    with torch.no_grad():
        assert (real(ours(**x).logits, x["attention_mask"]) - real(a, x["attention_mask"])).abs().max() > 1e-3


def test_base_preset_counts_equal_transformers(capsys):
    from bertkit.cli import main

    config = BertConfig.preset("base", model_type="roformer")
    with torch.device("meta"):
        encoder = transformers.RoFormerModel(transformers.RoFormerConfig())
        masked_lm = transformers.RoFormerForMaskedLM(transformers.RoFormerConfig())
    assert total_parameters(config) == encoder.num_parameters()
    assert total_parameters(config, with_heads=True) == masked_lm.num_parameters()
    assert main(["params", "--arch", "roformer", "--preset", "base"]) == 0
    assert "total (RoFormerModel)" in (out := capsys.readouterr().out) and f"{encoder.num_parameters():,}" in out


def test_an_input_past_the_rotary_table_is_refused():
    model = RoFormerModel(BertConfig(model_type="roformer", position_embedding_type="rotary", **SHAPE))
    with pytest.raises(ValueError, match="rotary table has 40 positions"):
        model(torch.ones(1, 41, dtype=torch.long))


def test_roformer_needs_rotary_positions_and_has_no_pooler():
    with pytest.raises(ValueError, match="needs position_embedding_type 'rotary'"):
        BertConfig(model_type="roformer", **SHAPE)
    with pytest.raises(ValueError, match="no pooler"):
        RoFormerModel(BertConfig(model_type="roformer", position_embedding_type="rotary", **SHAPE),
                      add_pooling_layer=True)


def lora_model() -> torch.nn.Module:
    """A perturbed RoFormer masked LM with rotated values, as loaded from transformers' weights."""
    config = BertConfig(model_type="roformer", position_embedding_type="rotary", rotary_value=True, **SHAPE)
    torch.manual_seed(0)
    return perturb(RoFormerForMaskedLM(config)).eval()


def test_zero_initialised_lora_equals_the_base_model():
    base = lora_model()
    tuned = apply_peft(copy.deepcopy(base), PeftConfig(method="lora", r=4, target_modules=["query", "key", "value"]))
    assert sum(isinstance(m, LoraLinear) for m in tuned.modules()) == 3 * SHAPE["num_hidden_layers"]
    x = batch()
    with torch.no_grad():
        assert (base(**x).logits - tuned(**x).logits).abs().max() <= 1e-6


def test_merged_lora_equals_unmerged_on_roformer():
    tuned = apply_peft(lora_model(), PeftConfig(method="lora", r=4, lora_alpha=8,
                                                target_modules=["query", "key", "value", "dense"]))
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
    assert (unmerged - base).abs().max() > 1e-3  # the LoRA branches are on the path


@pytest.mark.parametrize("method", ["lora", "houlsby", "pfeiffer", "prefix", "ptuning_v2", "prompt", "ptuning",
                                    "bitfit"])
def test_every_peft_method_on_a_roformer_classifier_keeps_rows_independent_of_padding_and_trains(method):
    fields = SHAPE | dict(num_hidden_layers=2)
    config = TaskConfig(model_type="roformer", position_embedding_type="rotary", rotary_value=True, pooling="cls",
                        id2label={0: "a", 1: "b", 2: "c"}, **fields)
    torch.manual_seed(0)
    model = apply_peft(perturb(BertForSequenceClassification(config)).eval(),
                       PeftConfig(method=method, r=2, adapter_size=3, num_virtual_tokens=3, encoder_hidden_size=6))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the methods start as the identity: noise shows a wrong wiring
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.2)
    x = batch(seq=11)
    x.pop("labels")
    with torch.no_grad():
        batched = model(**x).logits
        for row, length in ((0, 11), (1, 11), (2, 5)):
            alone = model(**{k: v[row:row + 1, :length] for k, v in x.items()}).logits
            assert (alone - batched[row]).abs().max() <= 1e-5
    model.train()
    model(**x, labels=torch.tensor([0, 1, 2])).loss.backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)


def test_bertkit_pretrain_trains_a_roformer_that_transformers_loads(minilm_dir, tmp_path):
    """`architecture: roformer` in `bertkit pretrain` (MLM on full sentences, rotary positions): the held-out loss
    falls and the saved folder gives transformers' RoFormerForMaskedLM the same logits."""
    from bertkit.corpora import rotten_tomatoes_reviews
    from bertkit.pretraining import PretrainingConfig, run_pretraining
    from bertkit.training.metrics import read_metrics

    reviews = [text for _, text in rotten_tomatoes_reviews()[:300]]
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, len(reviews), 4)) + "\n")
    summary = run_pretraining(PretrainingConfig(
        corpus=[str(corpus)], tokenizer=str(minilm_dir), architecture="roformer", model_preset="tiny",
        max_seq_length=48, batch_size=8, max_steps=30, learning_rate=2e-3, warmup_steps=3, eval_steps=15,
        eval_batches=3, logging_steps=5, progress=False, threads=1, output_dir=str(tmp_path / "out")))
    assert summary["config"]["pair_task"] == "none"
    evals = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if r["split"] == "eval"]
    assert evals[-1]["mlm_loss"] < evals[0]["mlm_loss"]
    ids = torch.tensor([[101, 2023, 3185, 2001, 103, 1012, 102]])
    ours = RoFormerForMaskedLM.from_pretrained(tmp_path / "out" / "model").eval()
    theirs = transformers.RoFormerForMaskedLM.from_pretrained(tmp_path / "out" / "model").eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-5, rtol=0)
