"""DeBERTa-v3's gradient-disentangled embedding sharing (GDES) in ELECTRA pretraining: the discriminator reads the
generator's tables plus its own Δ (zero at the start), its loss never reaches the generator's tables, and checkpoints
hold Δ and a discriminator transformers reads as E_G + Δ; DeBERTa-v3's pair (a DeBERTa discriminator) alike."""

import pytest
import torch
import transformers

from bertkit import checkpoint
from bertkit.config import BertConfig
from bertkit.model.deberta_v2_architecture import DebertaV2Config
from bertkit.pretraining.electra import DELTA_FILE, ElectraPretrainingModel

SHAPE = dict(model_type="electra", vocab_size=97, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=96, max_position_embeddings=40, embedding_size=32, hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0)


def gdes_pair(seed: int = 0) -> ElectraPretrainingModel:
    """A tiny generator + discriminator sharing embeddings by GDES."""
    torch.manual_seed(seed)
    return ElectraPretrainingModel(BertConfig(**SHAPE), generator_size=1 / 3, embedding_sharing="gdes")


def masked_batch() -> dict[str, torch.Tensor]:
    """A padded batch with some real tokens masked (labels hold their originals)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 97, (3, 16), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 11:] = mask[2, 6:] = 0
    ids = ids * mask
    masked = (torch.rand(ids.shape, generator=g) < 0.3) & mask.bool()
    masked[:, 1] = True
    return dict(input_ids=torch.where(masked, 3, ids), attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                labels=torch.where(masked, ids, -100))


def perturb_delta(model: ElectraPretrainingModel, seed: int = 2) -> None:
    """Δ away from zero, as after some training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for delta in model.embedding_delta.values():
            delta.add_(torch.randn(delta.shape, generator=g) * 0.1)


def test_the_discriminators_loss_moves_only_delta_and_the_generators_loss_only_the_generator():
    model = gdes_pair().train()
    generator_tables = model.generator.electra.embeddings
    assert set(model.embedding_delta) == {"word_embeddings", "position_embeddings"}
    assert all(not d.any() for d in model.embedding_delta.values())  # Δ starts at zero
    model(**masked_batch()).rtd_loss.backward()
    assert generator_tables.word_embeddings.weight.grad is None
    assert generator_tables.position_embeddings.weight.grad is None
    assert all(d.grad.abs().sum() > 0 for d in model.embedding_delta.values())
    assert model.discriminator.electra.embeddings.word_embeddings.weight.grad is None  # frozen: Δ is trained
    model.zero_grad(set_to_none=True)
    model(**masked_batch()).mlm_loss.backward()
    assert generator_tables.word_embeddings.weight.grad.abs().sum() > 0
    assert all(d.grad is None for d in model.embedding_delta.values())


def test_transformers_reads_the_saved_discriminator_as_generator_tables_plus_delta(tmp_path):
    model = gdes_pair().eval()
    perturb_delta(model)
    batch = masked_batch()
    with torch.no_grad():
        out = model(**batch)
    model.save_pretrained(tmp_path)
    theirs, info = transformers.ElectraForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"]
    with torch.no_grad():
        logits = theirs.eval()(out.corrupted_ids, batch["attention_mask"], batch["token_type_ids"]).logits
    assert (logits - out.rtd_logits).abs().max() <= 1e-5
    expected = model.generator.electra.embeddings.word_embeddings.weight + model.embedding_delta["word_embeddings"]
    assert torch.allclose(theirs.electra.embeddings.word_embeddings.weight, expected, atol=1e-7)


def test_delta_is_saved_and_read_back_exactly(tmp_path):
    model = gdes_pair(seed=0)
    perturb_delta(model)
    model.save_pretrained(tmp_path)
    assert (tmp_path / DELTA_FILE).is_file()
    again = gdes_pair(seed=5)
    checkpoint.load_weights(again, tmp_path)
    for name, delta in model.embedding_delta.items():
        assert torch.equal(again.embedding_delta[name], delta)
    for name, p in model.generator.state_dict().items():
        assert torch.equal(again.generator.state_dict()[name], p)
    with torch.no_grad():
        a, b = model.eval()(**masked_batch(), sampler=torch.Generator().manual_seed(0)), \
            again.eval()(**masked_batch(), sampler=torch.Generator().manual_seed(0))
    assert torch.equal(a.rtd_logits, b.rtd_logits)


def test_the_discriminator_saved_alone_is_synced(tmp_path):
    model = gdes_pair()
    perturb_delta(model, seed=7)  # Δ changed after the last sync (as an optimizer step does)
    model.discriminator.save_pretrained(tmp_path)  # how a run saves its final model
    theirs = transformers.ElectraForPreTraining.from_pretrained(tmp_path)
    expected = model.generator.electra.embeddings.position_embeddings.weight + \
        model.embedding_delta["position_embeddings"]
    assert torch.allclose(theirs.electra.embeddings.position_embeddings.weight, expected, atol=1e-7)


def test_bad_sharing_and_a_checkpoint_without_delta_are_refused(tmp_path):
    with pytest.raises(ValueError, match="embedding_sharing must be one of"):
        ElectraPretrainingModel(BertConfig(**SHAPE), embedding_sharing="tied")
    torch.manual_seed(0)
    ElectraPretrainingModel(BertConfig(**SHAPE), generator_size=1 / 3).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=f"no {DELTA_FILE}"):
        checkpoint.load_weights(gdes_pair(), tmp_path)


def deberta_pair(seed: int = 0) -> ElectraPretrainingModel:
    """DeBERTa-v3's pretraining pair at a tiny size: v3's attention layout, a generator half as deep."""
    torch.manual_seed(seed)
    config = DebertaV2Config(vocab_size=97, hidden_size=36, num_hidden_layers=4, num_attention_heads=3,
                             intermediate_size=37, max_position_embeddings=40, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0, relative_attention=True, position_buckets=8,
                             pos_att_type="p2c|c2p", norm_rel_ebd="layer_norm", share_att_key=True,
                             position_biased_input=False)
    return ElectraPretrainingModel(config, generator_size=0.5, embedding_sharing="gdes")


def test_deberta_v3_pair_trains_delta_only_from_the_discriminator_and_transformers_reads_its_encoder(tmp_path):
    model = deberta_pair().train()
    generator = model.generator.config
    assert (generator.num_hidden_layers, generator.hidden_size) == (2, 36)  # half as deep, as wide
    assert set(model.embedding_delta) == {"word_embeddings"}  # v3 adds no absolute positions to the input
    batch = masked_batch()
    model(**batch).rtd_loss.backward()
    assert model.generator.deberta.embeddings.word_embeddings.weight.grad is None
    assert model.embedding_delta["word_embeddings"].grad.abs().sum() > 0
    perturb_delta(model)
    model.eval()
    with torch.no_grad():
        out = model(**batch)
    model.save_pretrained(tmp_path)
    encoder = transformers.DebertaV2Model.from_pretrained(tmp_path).eval()
    head = model.discriminator.discriminator_predictions
    with torch.no_grad():  # ELECTRA's head on transformers' hidden states: dense, GELU, one logit
        hidden = encoder(out.corrupted_ids, batch["attention_mask"]).last_hidden_state
        logits = head.dense_prediction(torch.nn.functional.gelu(head.dense(hidden))).squeeze(-1)
    real = batch["attention_mask"].bool()
    assert (logits[real] - out.rtd_logits[real]).abs().max() <= 1e-5
