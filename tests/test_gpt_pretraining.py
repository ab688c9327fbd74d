"""GPT pretraining (``bertkit pretrain-gpt``): n-gram baselines are proper distributions, a short run on a tiny
corpus learns, writes metrics / plot / samples, and saves a folder both bertkit and transformers load."""

import json
import math

import pytest
import torch
import transformers

import bertkit
from bertkit.pretraining.causal import CausalPretrainingConfig, NgramBaselines, run_causal_pretraining


def test_baselines_are_distributions_and_count_correctly():
    stream = torch.tensor([1, 2, 3, 1, 2, 4, 1, 2, 3])
    baselines = NgramBaselines(stream, vocab_size=6)
    assert math.isclose(sum(baselines.unigram(w) for w in range(6)), 1.0)
    for previous in (1, 2, 5):  # seen contexts and one never seen (falls back to the unigram)
        assert math.isclose(sum(baselines.bigram(previous, w) for w in range(6)), 1.0)
    # after 2: seen 3 times, followed by 3 (twice) and 4 (once), 2 distinct followers (Witten-Bell)
    expected = (2 + 2 * baselines.unigram(3)) / (3 + 2)
    assert math.isclose(baselines.bigram(2, 3), expected)
    assert baselines.unigram(1) == (3 + 1) / (9 + 6)


def test_short_run_learns_and_writes_its_outputs(minilm_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    lines = ["the module provides functions for files .", "install the package with apt - get ."]
    corpus.write_text("\n\n".join("\n".join(lines) for _ in range(40)) + "\n")  # 40 two-sentence documents
    config = CausalPretrainingConfig(
        corpus=[str(corpus)], tokenizer=str(minilm_dir), output_dir=str(tmp_path / "run"), num_hidden_layers=1,
        hidden_size=16, num_attention_heads=2, dropout=0.0, block_size=16, batch_size=4, max_steps=25,
        learning_rate=1e-2, warmup_steps=2, eval_steps=25, eval_batches=2, logging_steps=5, progress=False,
        prompts=["the module"], sample_tokens=4, eval_fraction=0.1)
    summary = run_causal_pretraining(config)
    out = tmp_path / "run"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if r["split"] == "eval"][-1]
    assert final["perplexity"] < final["unigram_perplexity"]  # a repeated corpus: learned beyond frequencies
    assert (out / "metrics.png").stat().st_size > 0
    assert summary["samples_before"][0]["prompt"] == "the module" and summary["samples_after"][0]["greedy"]
    model = bertkit.AutoModelForCausalLM.from_pretrained(out / "model")
    reference = transformers.GPT2LMHeadModel.from_pretrained(out / "model").eval()
    ids = torch.tensor([[2000, 11336, 3640]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, reference(ids).logits, atol=1e-5)
    assert model.config.eos_token_id == 102  # [SEP] ends each document


def test_bad_configs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="eval_fraction must be in"):
        CausalPretrainingConfig(eval_fraction=0.0)
    with pytest.raises(ValueError, match="unknown causal pretraining option"):
        CausalPretrainingConfig.from_dict({"block_sise": 32})
    with pytest.raises(FileNotFoundError, match="no tokenizer folder"):
        run_causal_pretraining(CausalPretrainingConfig(corpus=["x.txt"], tokenizer=str(tmp_path / "none"),
                                                       output_dir=str(tmp_path / "run")))
