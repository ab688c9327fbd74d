"""`bertkit pretrain` with `architecture: deberta-v2`: masked LM (DebertaV2ForMaskedLM under the pretraining step,
its loss against transformers') and DeBERTa-v3's recipe, `objective: electra` with `embedding_sharing: gdes`; tiny
runs that learn, saved folders transformers reads with equal outputs, and the settings refused by name."""

import math
import random

import pytest
import torch
import transformers
from family_fixtures import perturb

from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.model.deberta_v2 import DebertaV2ForMaskedLM, DebertaV2ForReplacedTokenDetection
from bertkit.model.deberta_v2_architecture import DebertaV2Config
from bertkit.pretraining import PretrainingConfig, run_pretraining
from bertkit.pretraining.objective import evaluate_pretraining, pretraining_step
from bertkit.pretraining.run import build_model, fresh_config, load_tokenizer
from bertkit.training.metrics import read_metrics

TINY = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
            max_position_embeddings=40, position_buckets=8, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
RUN = dict(model_preset="tiny", max_seq_length=32, batch_size=8, learning_rate=3e-3, warmup_steps=3, max_steps=30,
           eval_steps=10, eval_batches=3, eval_fraction=0.2, logging_steps=5, progress=False, threads=1)


def masked_batch() -> dict[str, torch.Tensor]:
    """A padded batch (rows of 12, 9 and 3 real tokens) with some real tokens masked."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, TINY["vocab_size"], (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = mask[2, 3:] = 0
    ids = ids * mask
    masked = (torch.rand(ids.shape, generator=g) < 0.3) & mask.bool()
    masked[:, 1] = True
    return dict(input_ids=torch.where(masked, 4, ids), attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                labels=torch.where(masked, ids, -100))


def review_corpus(path) -> str:
    """300 Rotten Tomatoes reviews, four to a document (a blank line between documents)."""
    reviews = [text for _, text in rotten_tomatoes_reviews()[:300]]
    path.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, len(reviews), 4)) + "\n")
    return str(path)


def sample_ids(length: int = 30) -> torch.Tensor:
    """A row of ordinary vocabulary ids between [CLS] and [SEP]."""
    rng = random.Random(0)
    return torch.tensor([[101] + [rng.randrange(1000, 29000) for _ in range(length)] + [102]])


def test_the_pretraining_interface_gives_transformers_loss_and_logits(tmp_path):
    torch.manual_seed(0)
    ours = perturb(DebertaV2ForMaskedLM(DebertaV2Config.preset("xsmall", **TINY)), seed=2).eval()
    ours.save_pretrained(tmp_path)
    theirs = transformers.DebertaV2ForMaskedLM.from_pretrained(tmp_path).eval()
    batch = masked_batch()
    masked = batch["labels"] != -100
    with torch.no_grad():
        expected = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          labels=batch["labels"])
        loss, stats = pretraining_step(ours, batch | dict(next_sentence_label=None), pair_task=False)
        only_masked = ours(batch["input_ids"], batch["attention_mask"], labels=batch["labels"],
                           only_masked_logits=True)
    assert abs(loss.item() - expected.loss.item()) <= 1e-5
    reference = expected.logits[masked]
    assert (only_masked.prediction_logits - reference).abs().max() <= 1e-5
    targets = batch["labels"][masked]
    assert stats["mlm_accuracy"] == pytest.approx((reference.argmax(-1) == targets).float().mean().item())
    assert evaluate_pretraining(ours, [batch], pair_task=False)["mlm_loss"] == pytest.approx(
        expected.loss.item(), abs=1e-5)


def test_bertkit_pretrain_trains_a_deberta_mlm_that_transformers_loads(minilm_dir, tmp_path):
    summary = run_pretraining(PretrainingConfig(
        corpus=[review_corpus(tmp_path / "reviews.txt")], tokenizer=str(minilm_dir), architecture="deberta-v2",
        output_dir=str(tmp_path / "out"), **RUN))
    assert summary["config"]["pair_task"] == "none" and summary["config"]["mlm_probability"] == 0.15
    evals = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if r["split"] == "eval"]
    assert evals[-1]["mlm_loss"] < evals[0]["mlm_loss"] - 0.5
    ours = DebertaV2ForMaskedLM.from_pretrained(tmp_path / "out" / "model").eval()
    assert ours.config.position_buckets == 256 and not ours.config.position_biased_input  # v3's attention
    theirs = transformers.DebertaV2ForMaskedLM.from_pretrained(tmp_path / "out" / "model").eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(sample_ids()).logits, theirs(input_ids=sample_ids()).logits, atol=1e-5,
                                   rtol=0)


def test_bertkit_pretrain_runs_deberta_v3s_electra_recipe_with_gdes(minilm_dir, tmp_path):
    summary = run_pretraining(PretrainingConfig(
        corpus=[review_corpus(tmp_path / "reviews.txt")], tokenizer=str(minilm_dir), architecture="deberta-v2",
        objective="electra", embedding_sharing="gdes", output_dir=str(tmp_path / "out"), **RUN))
    assert summary["config"]["generator_size"] == 0.5  # DeBERTa-v3: a generator half as deep
    evals = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if r["split"] == "eval"]
    first, last = evals[0], evals[-1]
    assert last["rtd_loss"] < first["rtd_loss"] and last["mlm_loss"] < first["mlm_loss"] - 0.5
    assert last["replaced_recall"] > first["replaced_recall"]  # it starts by calling every token original
    share = last["replaced_fraction"]  # the loss of knowing only how many tokens are replaced: its entropy
    assert last["rtd_loss"] < -(share * math.log(share) + (1 - share) * math.log(1 - share)) - 0.03
    ours = DebertaV2ForReplacedTokenDetection.from_pretrained(tmp_path / "out" / "model").eval()
    encoder = transformers.DebertaV2Model.from_pretrained(tmp_path / "out" / "model").eval()
    head = ours.discriminator_predictions
    ids = sample_ids()
    with torch.no_grad():  # transformers has no DeBERTa RTD head: ELECTRA's (dense, GELU, one logit) on its states
        hidden = encoder(input_ids=ids).last_hidden_state.double()
        expected = torch.nn.functional.linear(torch.nn.functional.gelu(torch.nn.functional.linear(
            hidden, head.dense.weight.double(), head.dense.bias.double())), head.dense_prediction.weight.double(),
            head.dense_prediction.bias.double()).squeeze(-1)
        assert (ours(ids).logits.double() - expected).abs().max() <= 1e-5
    generator = transformers.DebertaV2ForMaskedLM.from_pretrained(tmp_path / "out" / "generator").eval()
    assert generator.config.num_hidden_layers == 1 and generator.config.hidden_size == 128
    mine = DebertaV2ForMaskedLM.from_pretrained(tmp_path / "out" / "generator").eval()
    with torch.no_grad():
        torch.testing.assert_close(mine(ids).logits, generator(input_ids=ids).logits, atol=1e-5, rtol=0)


def test_fresh_configs_take_v3s_presets_and_bert_shapes_and_the_pair_shares_its_tables(minilm_dir):
    base = dict(corpus=["unused"], tokenizer=str(minilm_dir), architecture="deberta-v2")
    tokenizer = load_tokenizer(PretrainingConfig(**base))
    xsmall = fresh_config(PretrainingConfig(**base, model_preset="xsmall", num_hidden_layers=3), tokenizer)
    assert isinstance(xsmall, DebertaV2Config) and (xsmall.hidden_size, xsmall.num_hidden_layers) == (384, 3)
    assert (xsmall.vocab_size, xsmall.position_buckets, xsmall.relative_attention) == (len(tokenizer), 256, True)
    pair = build_model(PretrainingConfig(**base, model_preset="tiny", objective="electra"), tokenizer)
    assert isinstance(pair.discriminator, DebertaV2ForReplacedTokenDetection)
    assert pair.generator.deberta.embeddings is pair.discriminator.deberta.embeddings  # shared: ELECTRA's default
    assert pair.generator.config.num_hidden_layers == 1 and pair.embedding_delta is None


def test_bad_settings_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="embedding_sharing: gdes .* needs objective: electra, not objective: mlm"):
        PretrainingConfig(architecture="deberta-v2", embedding_sharing="gdes")
    with pytest.raises(ValueError, match=r"not architecture roberta \(no replaced-token recipe"):
        PretrainingConfig(architecture="roberta", objective="electra")
    folder = tmp_path / "modernbert"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "modernbert"}')
    with pytest.raises(ValueError, match="architecture: deberta-v2 but init_from .* holds a modernbert model"):
        PretrainingConfig(architecture="deberta-v2", init_from=str(folder))
    with pytest.raises(ValueError, match="embedding_sharing must be one of"):
        PretrainingConfig(architecture="deberta-v2", objective="electra", embedding_sharing="tied")
