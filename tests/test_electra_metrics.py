"""ELECTRA pretraining's numbers: the training step's statistics and the held-out evaluation, each recomputed here
position by position from the model's outputs (plain Python sums), the loss weight, the checkpoint's two folders."""

import math
import shutil

import pytest
import torch
from finetuning_fixtures import tiny_tokenizer
from safetensors.torch import load_file, save_file
from test_electra_pretraining import masked_batch, tiny_pair

from bertkit.checkpoint import load_weights
from bertkit.config import BertConfig
from bertkit.pretraining.electra import (
    GENERATOR_FOLDER,
    ElectraPretrainingModel,
    electra_step,
    evaluate_electra,
    generator_config,
)


def counted(out, batch, baseline: int = -1) -> dict[str, float]:
    """The statistics of one forward pass, counted one position at a time (``baseline``: a token to guess)."""
    labels, real = batch["labels"].tolist(), batch["attention_mask"].tolist()
    targets = [label for row in labels for label in row if label != -100]
    logits, replaced = out.rtd_logits.tolist(), out.replaced.tolist()
    tokens = [(i, j) for i, row in enumerate(real) for j, r in enumerate(row) if r]
    said = {(i, j): int(logits[i][j] > 0) for i, j in tokens}
    return {"targets": len(targets), "tokens": len(tokens),
            "correct": sum(int(p == t) for p, t in zip(out.mlm_predictions.tolist(), targets, strict=True)),
            "baseline": sum(int(t == baseline) for t in targets),
            "rtd_correct": sum(int(said[p] == replaced[p[0]][p[1]]) for p in tokens),
            "replaced": sum(replaced[i][j] for i, j in tokens),
            "found": sum(said[(i, j)] * replaced[i][j] for i, j in tokens)}


def test_the_training_step_reports_losses_accuracies_and_tokens():
    model = tiny_pair().train()
    batch, _ = masked_batch()
    torch.manual_seed(4)
    loss, stats = electra_step(model, batch)
    torch.manual_seed(4)  # the same dropout and the same sampled replacements
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], batch["labels"])
    c = counted(out, batch)
    assert loss.item() == pytest.approx(out.mlm_loss.item() + 50 * out.rtd_loss.item(), rel=1e-6)
    assert stats == pytest.approx({"mlm_loss": out.mlm_loss.item(), "rtd_loss": out.rtd_loss.item(),
                                   "mlm_accuracy": c["correct"] / c["targets"],
                                   "rtd_accuracy": c["rtd_correct"] / c["tokens"],
                                   "replaced_fraction": c["replaced"] / c["tokens"], "tokens": float(c["tokens"])},
                                  rel=1e-6)
    assert c["tokens"] == 16 + 11 + 6 and 0 < c["replaced"] < c["targets"] + 1


def test_evaluation_sums_over_batches_with_its_own_seeded_sampler():
    model = tiny_pair().train()
    batches = [masked_batch(seed)[0] for seed in (1, 2)]
    common = int(batches[0]["labels"][0, 1])  # a token some masked position holds
    before = torch.get_rng_state()
    metrics = evaluate_electra(model, batches, baseline_token=common, seed=5)
    assert model.training and torch.equal(torch.get_rng_state(), before)  # mode restored, training RNG untouched
    model.eval()
    sampler = torch.Generator().manual_seed(5)
    totals = dict.fromkeys(("targets", "tokens", "correct", "baseline", "rtd_correct", "replaced", "found"), 0)
    mlm_sum = rtd_sum = 0.0
    with torch.no_grad():
        for batch in batches:
            out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], batch["labels"],
                        sampler=sampler)
            c = counted(out, batch, common)
            totals = {k: totals[k] + c[k] for k in totals}
            mlm_sum += out.mlm_loss.item() * c["targets"]
            rtd_sum += out.rtd_loss.item() * c["tokens"]
    mlm_loss = mlm_sum / totals["targets"]
    assert totals["baseline"] > 0 and 0 < totals["found"] < totals["replaced"]  # every sum does something
    assert metrics == pytest.approx({
        "mlm_accuracy": totals["correct"] / totals["targets"], "mlm_loss": mlm_loss, "perplexity": math.exp(mlm_loss),
        "predictions": totals["targets"], "rtd_loss": rtd_sum / totals["tokens"],
        "rtd_accuracy": totals["rtd_correct"] / totals["tokens"], "replaced_fraction": totals["replaced"] / totals[
            "tokens"], "replaced_recall": totals["found"] / totals["replaced"],
        "unigram_baseline_accuracy": totals["baseline"] / totals["targets"]}, rel=1e-6)
    assert evaluate_electra(model.eval(), batches, seed=5) == pytest.approx(
        {k: v for k, v in metrics.items() if k != "unigram_baseline_accuracy"}, rel=1e-6)
    assert not model.training  # an evaluating model stays so


def test_evaluation_caps_the_perplexity_and_refuses_a_set_without_masks():
    model = tiny_pair()
    with torch.no_grad():
        model.generator.cls.predictions.bias[0] = 1e3  # every prediction a confident wrong token: loss ≈ 1000
    batch, _ = masked_batch()
    metrics = evaluate_electra(model, [batch])
    assert metrics["mlm_loss"] > 500 and metrics["perplexity"] == math.exp(50.0)
    unmasked = {**batch, "labels": torch.full_like(batch["labels"], -100)}
    with pytest.raises(ValueError, match="no masked positions"):
        evaluate_electra(model, [unmasked])


def test_the_weight_of_the_detection_loss():
    batch, _ = masked_batch()
    config = tiny_pair().discriminator.config
    torch.manual_seed(0)
    model = ElectraPretrainingModel(config, generator_size=1 / 3, rtd_weight=7.0).eval()
    with torch.no_grad():
        out = model(**batch)
    assert out.loss.item() == pytest.approx(out.mlm_loss.item() + 7.0 * out.rtd_loss.item(), rel=1e-6)
    assert model.config is model.discriminator.config and ElectraPretrainingModel(config).rtd_weight == 50.0
    with pytest.raises(ValueError, match="needs an electra config"):
        ElectraPretrainingModel(BertConfig.preset("tiny", vocab_size=97))


def test_a_checkpoint_holds_both_models_and_loads_back(tmp_path):
    saved, fresh = tiny_pair(seed=0), tiny_pair(seed=1)
    saved.save_pretrained(tmp_path / "step")
    assert (tmp_path / "step" / GENERATOR_FOLDER / "config.json").is_file()
    report = load_weights(fresh, tmp_path / "step")
    assert not report.missing and not report.unexpected
    for (name, a), b in zip(saved.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    saved.discriminator.save_pretrained(tmp_path / "alone")
    with pytest.raises(ValueError, match="holds no generator/ folder"):
        load_weights(fresh, tmp_path / "alone")


def test_gradient_checkpointing_reaches_both_models():
    model = tiny_pair()
    model.gradient_checkpointing_enable()
    flags = [m.gradient_checkpointing for part in (model.discriminator, model.generator) for m in part.modules()
             if hasattr(m, "gradient_checkpointing")]
    assert len(flags) >= 2 and all(flags)
    assert any(hasattr(m, "gradient_checkpointing") for m in model.generator.modules())


def test_loading_reports_what_either_folder_lacks_or_holds_beyond_the_model(tmp_path):
    saved = tiny_pair()
    saved.save_pretrained(tmp_path / "step")
    shutil.rmtree(tmp_path / "step" / GENERATOR_FOLDER)
    saved.generator.base_model.save_pretrained(tmp_path / "step" / GENERATOR_FOLDER)  # the generator without its head
    weights = tmp_path / "step" / "model.safetensors"
    save_file({**load_file(weights), "extra.weight": torch.zeros(2)}, weights)  # the discriminator with a stray tensor
    report = load_weights(tiny_pair(seed=1), tmp_path / "step")
    head = {n for n in saved.generator.state_dict() if n.startswith("cls.")} - {"cls.predictions.decoder.weight"}
    assert head <= set(report.missing) and all(n.startswith("cls.") for n in report.missing)
    assert report.unexpected == ["extra.weight"]


def test_a_checkpoint_keeps_the_tokenizer_beside_both_models(tmp_path):
    tiny_pair().save_pretrained(tmp_path / "step", tokenizer=tiny_tokenizer())
    for folder in (tmp_path / "step", tmp_path / "step" / GENERATOR_FOLDER):
        assert (folder / "vocab.txt").is_file() and (folder / "config.json").is_file()


def test_given_replacements_of_another_integer_dtype_corrupt_alike():
    model = tiny_pair().eval()
    batch, original = masked_batch()
    chosen = original[batch["labels"] != -100].roll(1)
    with torch.no_grad():
        wide, narrow = model(**batch, replacements=chosen), model(**batch, replacements=chosen.int())
    assert torch.equal(narrow.corrupted_ids, wide.corrupted_ids) and narrow.corrupted_ids.dtype == original.dtype


def test_the_generator_size_must_be_in_zero_to_one():
    config = tiny_pair().discriminator.config
    assert generator_config(config, 1.0).hidden_size == config.hidden_size  # as wide as the discriminator: allowed
    for size in (0.0, 1.5, -0.25):
        with pytest.raises(ValueError, match=r"generator_size must be in \(0, 1\]"):
            generator_config(config, size)
