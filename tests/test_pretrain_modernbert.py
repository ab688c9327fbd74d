"""`bertkit pretrain` with `architecture: modernbert`: ModernBERT's recipe (MLM on 30 % of the tokens, no pair task),
the pretraining step's interface of ModernBertForMaskedLM against transformers' loss and logits, batches without
segments, a tiny run that learns and a saved folder transformers' ModernBertForMaskedLM reads with equal logits."""

import random

import pytest
import torch
import transformers
from family_fixtures import perturb

from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.model.modernbert import ModernBertForMaskedLM
from bertkit.model.modernbert_architecture import ModernBertConfig
from bertkit.pretraining import PretrainingConfig, run_pretraining
from bertkit.pretraining.objective import evaluate_pretraining, pretraining_step
from bertkit.pretraining.run import build_data, build_model, load_tokenizer
from bertkit.training.metrics import read_metrics

SHAPE = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
             max_position_embeddings=64, local_attention=4, pad_token_id=0, bos_token_id=1, eos_token_id=2,
             cls_token_id=1, sep_token_id=2, global_attn_every_n_layers=2)


def masked_batch() -> dict[str, torch.Tensor]:
    """A padded batch (rows of 12, 9 and 3 real tokens) with about a third of the real tokens masked."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, SHAPE["vocab_size"], (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = mask[2, 3:] = 0
    ids = ids * mask
    masked = (torch.rand(ids.shape, generator=g) < 0.3) & mask.bool()
    masked[:, 1] = True
    return dict(input_ids=torch.where(masked, 4, ids), attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                labels=torch.where(masked, ids, -100), next_sentence_label=torch.zeros(3, dtype=torch.long))


def review_corpus(path, count: int = 300):
    """Rotten Tomatoes reviews, four to a document (a blank line between documents)."""
    reviews = [text for _, text in rotten_tomatoes_reviews()[:count]]
    path.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, len(reviews), 4)) + "\n")
    return str(path)


def test_the_pretraining_interface_gives_transformers_loss_and_logits(tmp_path):
    torch.manual_seed(0)
    ours = perturb(ModernBertForMaskedLM(ModernBertConfig(**SHAPE)), seed=2).eval()
    ours.save_pretrained(tmp_path)
    theirs = transformers.ModernBertForMaskedLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    batch = masked_batch()
    masked = batch["labels"] != -100
    with torch.no_grad():
        expected = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          labels=batch["labels"])
        loss, stats = pretraining_step(ours, batch, pair_task=False)
        only_masked = ours(batch["input_ids"], batch["attention_mask"], labels=batch["labels"],
                           only_masked_logits=True)
    assert abs(loss.item() - expected.loss.item()) <= 1e-5
    reference = expected.logits[masked]
    assert (only_masked.prediction_logits - reference).abs().max() <= 1e-5
    targets = batch["labels"][masked]
    assert stats["mlm_accuracy"] == pytest.approx((reference.argmax(-1) == targets).float().mean().item())
    scores = evaluate_pretraining(ours, [batch], pair_task=False)
    assert scores["mlm_loss"] == pytest.approx(expected.loss.item(), abs=1e-5)
    with pytest.raises(ValueError, match="sentence-pair head"):
        ours(batch["input_ids"], batch["attention_mask"], labels=batch["labels"],
             next_sentence_label=batch["next_sentence_label"], return_logits=False)


def test_modernberts_recipe_masks_30_percent_without_a_pair_task_and_batches_carry_no_segments(
        minilm_dir, tmp_path):
    config = PretrainingConfig(corpus=[review_corpus(tmp_path / "c.txt", 120)], tokenizer=str(minilm_dir),
                               architecture="modernbert", model_preset="tiny", max_seq_length=32, batch_size=16,
                               eval_batches=2, progress=False, output_dir=str(tmp_path / "out"))
    assert (config.pair_task, config.mlm_probability, config.max_predictions_per_seq) == ("none", 0.3, 32)
    tokenizer = load_tokenizer(config)
    data = build_data(config, tokenizer)
    held_out = torch.cat([b["labels"] for b in data.eval_batches])
    real = torch.cat([b["attention_mask"] for b in data.eval_batches]).bool()
    share = ((held_out != -100) & real).sum().item() / (real.sum().item() - 2 * len(held_out))  # not [CLS] / [SEP]
    assert 0.25 < share < 0.35  # 30 %, not capped at 20 per sequence (BERT's 15 %: ~0.15)
    assert all(not b["token_type_ids"].any() for b in data.eval_batches)
    model = build_model(config, tokenizer)
    assert isinstance(model, ModernBertForMaskedLM) and model.config.hidden_size == 128
    assert model.config.cls_token_id == tokenizer.convert_tokens_to_ids("[CLS]")
    with pytest.raises(ValueError, match="no sentence-pair head"):
        build_model(PretrainingConfig(**config.to_dict() | dict(pair_task="nsp")), tokenizer)


def test_bertkit_pretrain_trains_a_modernbert_that_transformers_loads(minilm_dir, tmp_path):
    summary = run_pretraining(PretrainingConfig(
        corpus=[review_corpus(tmp_path / "reviews.txt")], tokenizer=str(minilm_dir), architecture="modernbert",
        model_preset="tiny", max_seq_length=48, batch_size=8, max_steps=30, learning_rate=2e-3, warmup_steps=3,
        eval_steps=15, eval_batches=3, logging_steps=5, progress=False, threads=1, output_dir=str(tmp_path / "out")))
    assert summary["config"]["pair_task"] == "none" and summary["config"]["mlm_probability"] == 0.3
    evals = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if r["split"] == "eval"]
    assert evals[-1]["mlm_loss"] < evals[0]["mlm_loss"] - 0.5
    ours = ModernBertForMaskedLM.from_pretrained(tmp_path / "out" / "model").eval()
    theirs = transformers.ModernBertForMaskedLM.from_pretrained(tmp_path / "out" / "model",
                                                                attn_implementation="eager").eval()
    rng = random.Random(0)
    ids = torch.tensor([[101] + [rng.randrange(1000, 29000) for _ in range(40)] + [102]])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(input_ids=ids).logits, atol=1e-5, rtol=0)


def test_bad_settings_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="no replaced-token recipe"):
        PretrainingConfig(architecture="modernbert", objective="electra")
    with pytest.raises(ValueError, match="embedding_sharing: gdes .* needs objective: electra"):
        PretrainingConfig(architecture="modernbert", embedding_sharing="gdes")
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="init_from .* holds a bert model"):
        PretrainingConfig(architecture="modernbert", init_from=str(folder))
