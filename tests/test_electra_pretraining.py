"""ELECTRA pretraining (objective: electra): losses against transformers' heads on the same batch and replacements,
sampling, shared embeddings, no gradient through the sampling, the CLI run, exact resumption, bad input."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bertkit.cli import main
from bertkit.config import BertConfig
from bertkit.corpora import rotten_tomatoes_reviews
from bertkit.pretraining import PretrainingConfig, run_pretraining
from bertkit.pretraining.electra import ElectraPretrainingModel, generator_config, sample_replacements
from bertkit.training.metrics import read_metrics

TINY = dict(objective="electra", pair_task="none", model_preset="tiny", max_seq_length=32, batch_size=8,
            warmup_steps=1, logging_steps=1, progress=False, learning_rate=1e-3)


@pytest.fixture(scope="module")
def review_corpus(tmp_path_factory) -> Path:
    reviews = [text for _, text in rotten_tomatoes_reviews()[:400]]
    path = tmp_path_factory.mktemp("corpus") / "reviews.txt"
    path.write_text("\n\n".join("\n".join(reviews[i:i + 4]) for i in range(0, len(reviews), 4)) + "\n")
    return path


def tiny_pair(seed: int = 0, **shape) -> ElectraPretrainingModel:
    torch.manual_seed(seed)
    config = BertConfig(model_type="electra", vocab_size=97, hidden_size=48, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=96, max_position_embeddings=40,
                        embedding_size=32, **shape)
    return ElectraPretrainingModel(config, generator_size=1 / 3)


def masked_batch(seed: int = 1) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A padded batch with ~15 % of the real tokens masked; returns it and the original ids."""
    g = torch.Generator().manual_seed(seed)
    original = torch.randint(5, 97, (3, 16), generator=g)
    attention_mask = torch.ones_like(original)
    attention_mask[1, 11:] = attention_mask[2, 6:] = 0
    original = original * attention_mask  # padding is id 0
    chosen = (torch.rand(original.shape, generator=g) < 0.2) & attention_mask.bool()
    chosen[:, 1] = True  # every row has one
    labels = torch.where(chosen, original, -100)
    input_ids = torch.where(chosen, torch.full_like(original, 4), original)  # 4 plays [MASK]
    token_type_ids = (torch.arange(16) >= 8).long().expand(3, 16) * attention_mask
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                labels=labels), original


def test_losses_match_transformers_heads_on_the_same_batch_and_replacements(tmp_path):
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    ours = tiny_pair().eval()
    ours.discriminator.save_pretrained(tmp_path / "discriminator")
    ours.generator.save_pretrained(tmp_path / "generator")
    hf_discriminator = ElectraForPreTraining.from_pretrained(tmp_path / "discriminator").eval()
    hf_generator = ElectraForMaskedLM.from_pretrained(tmp_path / "generator").eval()
    assert hf_generator.config.hidden_size == 16 and hf_generator.config.embedding_size == 32
    batch, original = masked_batch()
    masked = batch["labels"] != -100
    for replacements in (None, original[masked].roll(1)):  # sampled, then given (mostly real replacements)
        torch.manual_seed(3)
        with torch.no_grad():
            out = ours(**batch, replacements=replacements)
            hf_mlm = hf_generator(**batch).loss
            # the discriminator's labels and input, rebuilt here from the original ids and the replacements
            drawn = out.corrupted_ids[masked] if replacements is None else replacements
            corrupted = original.clone()
            corrupted[masked] = drawn
            replaced = (corrupted != original).long()
            hf_rtd = hf_discriminator(corrupted, batch["attention_mask"], batch["token_type_ids"], labels=replaced).loss
        assert torch.equal(out.corrupted_ids, corrupted) and torch.equal(out.replaced, replaced)
        assert 0 < int(replaced.sum()) <= int(masked.sum())
        assert out.mlm_loss.item() == pytest.approx(hf_mlm.item(), abs=1e-5)
        assert out.rtd_loss.item() == pytest.approx(hf_rtd.item(), abs=1e-5)
        assert out.loss.item() == pytest.approx(hf_mlm.item() + 50 * hf_rtd.item(), abs=1e-5)
        predictions = hf_generator(**batch).logits.argmax(-1)[masked]
        assert torch.equal(out.mlm_predictions, predictions)


def test_a_replacement_equal_to_the_original_is_labelled_original():
    """The paper's rule: where the generator guesses the original token, the discriminator's label is "original"."""
    model = tiny_pair().eval()
    batch, original = masked_batch()
    masked = batch["labels"] != -100
    guessed = original[masked]
    with torch.no_grad():
        out = model(**batch, replacements=guessed)
    assert torch.equal(out.corrupted_ids, original) and int(out.replaced.sum()) == 0
    mixed = guessed.clone()
    mixed[::2] = (guessed[::2] - 5 + 1) % 92 + 5  # every other one a different real token
    with torch.no_grad():
        out = model(**batch, replacements=mixed)
    expected = torch.zeros_like(original)
    expected[masked] = (mixed != guessed).long()
    assert torch.equal(out.replaced, expected) and 0 < int(expected.sum()) < int(masked.sum())


def test_replacements_follow_the_generators_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]]).expand(40000, 5)
    drawn = sample_replacements(logits, torch.Generator().manual_seed(0))
    frequencies = torch.bincount(drawn, minlength=5).double() / len(drawn)
    assert torch.allclose(frequencies, torch.softmax(logits[0].double(), -1), atol=0.01)
    assert frequencies[4] == 0
    again = sample_replacements(logits, torch.Generator().manual_seed(0))
    assert torch.equal(drawn, again)  # a seeded generator reproduces the draws


def test_embeddings_are_one_tensor_and_no_gradient_flows_through_sampling():
    model = tiny_pair().train()
    shared = model.discriminator.electra.embeddings
    assert model.generator.electra.embeddings is shared
    assert model.generator.cls.predictions.decoder.weight is shared.word_embeddings.weight
    names = [n for n, _ in model.named_parameters()]
    assert sum(n.endswith("word_embeddings.weight") for n in names) == 1  # one parameter for the optimizer
    # the generator projects the shared 32-wide embeddings to its own width
    assert model.generator.electra.embeddings_project.weight.shape == (16, 32)
    batch, _ = masked_batch()
    out = model(**batch)
    out.rtd_loss.backward()  # the discriminator's loss alone
    generator_own = [p for n, p in model.generator.named_parameters() if not n.startswith("electra.embeddings.")]
    assert generator_own and all(p.grad is None for p in generator_own)  # the sampling passes no gradient
    assert shared.word_embeddings.weight.grad.abs().sum() > 0  # the shared embeddings learn from both
    assert all(p.grad is not None for p in model.discriminator.parameters())
    model.zero_grad()
    out = model(**batch)
    out.mlm_loss.backward()
    assert all(p.grad is None for p in model.discriminator.discriminator_predictions.parameters())
    assert model.generator.electra.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_generator_shape_follows_generator_size():
    mini = BertConfig.preset("mini", model_type="electra", vocab_size=100)
    quarter = generator_config(mini, 0.25)
    assert (quarter.hidden_size, quarter.num_attention_heads, quarter.intermediate_size, quarter.embedding_size,
            quarter.num_hidden_layers) == (64, 1, 256, 256, 4)
    third = generator_config(BertConfig.preset("base", model_type="electra"), 1 / 3)
    assert (third.hidden_size, third.num_attention_heads, third.intermediate_size) == (256, 4, 1024)


def cli_args(corpus, tokenizer, out, *extra):
    options = TINY | dict(corpus=str(corpus), tokenizer=str(tokenizer), output_dir=str(out))
    del options["pair_task"]  # objective=electra alone: no pair task by default
    return ["pretrain", *(f"{k}={v}" for k, v in options.items()), *extra]


def test_cli_electra_run_writes_a_discriminator_and_a_generator_transformers_load(review_corpus, minilm_dir,
                                                                                  tmp_path, capsys):
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    out = tmp_path / "run"
    assert main(cli_args(review_corpus, minilm_dir, out, "max_steps=4", "eval_steps=2", "eval_batches=2")) == 0
    records = read_metrics(out / "metrics.jsonl")
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    assert [r["step"] for r in train] == [1, 2, 3, 4] and [r["step"] for r in evals] == [2, 4]
    for record in train:
        assert record["loss"] == pytest.approx(record["mlm_loss"] + 50 * record["rtd_loss"], rel=1e-5)
        assert 0 < record["replaced_fraction"] < 0.3 and 0 <= record["rtd_accuracy"] <= 1
    assert {"rtd_accuracy", "replaced_recall", "mlm_accuracy", "perplexity"} <= set(evals[-1])
    assert (out / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["objective"] == "electra" and summary["config"]["architecture"] == "electra"
    assert summary["config"]["pair_task"] == "none"
    discriminator = ElectraForPreTraining.from_pretrained(out / "model", output_loading_info=True)
    generator = ElectraForMaskedLM.from_pretrained(out / "generator", output_loading_info=True)
    for _, info in (discriminator, generator):
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert generator[0].config.hidden_size == 32 and discriminator[0].config.hidden_size == 128
    shared = ("electra.embeddings.word_embeddings.weight", "electra.embeddings.position_embeddings.weight")
    saved = load_file(out / "model" / "model.safetensors"), load_file(out / "generator" / "model.safetensors")
    assert all(torch.equal(saved[0][name], saved[1][name]) for name in shared)
    capsys.readouterr()
    assert main(["fill-mask", "--model", str(out / "generator"), "the movie is [MASK] .", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  [MASK] 1:") and len(lines[1].split()) == 8
    assert main(["fill-mask", "--model", str(out / "model"), "the movie is [MASK] ."]) == 2
    refused = capsys.readouterr().err
    assert "is an ELECTRA discriminator" in refused
    assert f"its generator fills masks: give --model {out / 'generator'}" in refused


def test_resume_from_a_checkpoint_continues_identically(review_corpus, minilm_dir, tmp_path):
    options = TINY | dict(corpus=[str(review_corpus)], tokenizer=str(minilm_dir), max_steps=6, save_steps=3,
                          eval_steps=2, eval_batches=1)
    run_pretraining(PretrainingConfig(**options, output_dir=str(tmp_path / "full")))
    killed = tmp_path / "killed"  # the full run as a kill after step 3 would have left it
    shutil.copytree(tmp_path / "full", killed)
    for name in ("model", "generator", "checkpoints/step-0000006"):
        shutil.rmtree(killed / name)
    (killed / "checkpoints" / "latest").write_text("step-0000003\n")
    assert (killed / "checkpoints" / "step-0000003" / "generator" / "model.safetensors").is_file()
    run_pretraining(PretrainingConfig(**options, output_dir=str(killed)), resume=True)
    keys = ("loss", "mlm_loss", "rtd_loss", "rtd_accuracy", "mlm_accuracy", "perplexity")
    runs = [[{k: r[k] for k in keys if k in r} | {"step": r["step"]} for r in read_metrics(tmp_path / name /
            "metrics.jsonl")] for name in ("full", "killed")]
    assert len(runs[0]) == 9 and runs[0] == runs[1]  # 6 train + 3 eval records, bit for bit
    for part in ("model", "generator"):
        full, resumed = (load_file(tmp_path / name / part / "model.safetensors") for name in ("full", "killed"))
        assert all(torch.equal(full[k], resumed[k]) for k in full)


@pytest.mark.parametrize("overrides, message", [
    (["generator_size=1.5"], "generator wider than the discriminator"),
    (["pair_task=nsp"], "set pair_task: none"),
    (["objective=gan"], "objective must be one of ('mlm', 'electra', 'tlm', 'plm'), got 'gan'"),
    (["architecture=roberta"], "set architecture: electra"),
    (["rtd_weight=0"], "rtd_weight must be positive"),
])
def test_bad_input_is_a_clear_error(overrides, message, review_corpus, minilm_dir, tmp_path, capsys):
    assert main(cli_args(review_corpus, minilm_dir, tmp_path / "out", "max_steps=1", *overrides)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_torchrun_two_ranks_keep_both_models_equal(review_corpus, minilm_dir, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29600 + os.getpid() % 1000), "-m", "bertkit", *cli_args(review_corpus, minilm_dir, out,
                                                                            "max_steps=3", "eval_fraction=0")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    first, second = summary["rank_checksums"]
    assert summary["ranks"] == 2 and summary["steps"] == 3 and first == second
