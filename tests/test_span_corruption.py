"""T5's span corruption: the noise statistics of the paper (15 %, mean span 3), sentinels from the top of the
vocabulary, input + target giving back the text, one clear error for sentinels the vocabulary does not have, and a
tiny T5 that learns to fill the spans."""

from __future__ import annotations

import json
import random
import statistics

import pytest
import torch

from bertkit.model import T5ForConditionalGeneration
from bertkit.model.heads import IGNORE_INDEX
from bertkit.pretraining.span_corruption import SpanCorruption
from bertkit.t5_config import T5Config


def runs(mask: list[bool]) -> list[int]:
    """Lengths of the runs of True."""
    lengths, current = [], 0
    for hidden in mask + [False]:
        if hidden:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    return lengths


def restore(source: list[int], target: list[int], corruption: SpanCorruption) -> list[int]:
    """The text back from an (input, target) pair: each sentinel of the input replaced by its span in the target."""
    sentinels = {corruption.sentinel(i): i for i in range(corruption.num_sentinels)}
    spans, current = {}, None
    for token in target:
        if token in sentinels:
            current = sentinels[token]
            spans[current] = []
        else:
            spans[current].append(token)
    return [t for token in source for t in (spans[sentinels[token]] if token in sentinels else [token])]


def test_noise_statistics_match_the_paper():
    corruption = SpanCorruption(vocab_size=32100)
    rng = random.Random(0)
    fractions, lengths = [], []
    for _ in range(2000):
        mask = corruption.noise_mask(512, rng)
        assert not mask[0] and mask[-1]  # a kept span first, spans alternate, a noise span last
        fractions.append(sum(mask) / len(mask))
        lengths += runs(mask)
    assert abs(statistics.mean(fractions) - 0.15) < 0.002  # round(512 × 0.15) = 77 tokens: 15.04 %
    assert abs(statistics.mean(lengths) - 3.0) < 0.05  # 77 tokens in round(77 / 3) = 26 spans: 2.96
    assert min(lengths) >= 1


def test_inputs_and_targets_give_back_the_text():
    corruption = SpanCorruption(vocab_size=32100)
    rng = random.Random(1)
    for length in (2, 3, 10, 57, 300):
        tokens = [rng.randrange(3, 32000) for _ in range(length)]
        source, target = corruption(tokens, rng)
        assert target[0] == 32099 and 32099 in source  # <extra_id_0> is the top id, the first span's sentinel
        spans = sum(t >= 32000 for t in source)
        assert [t for t in source if t >= 32000] == list(range(32099, 32099 - spans, -1))
        assert len(source) + len(target) == length + 2 * spans
        assert restore(source, target, corruption) == tokens
    assert corruption(list(range(3, 40)), random.Random(7)) == corruption(list(range(3, 40)), random.Random(7))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="beyond the vocabulary"):
        SpanCorruption(vocab_size=32000, first_sentinel=32099)
    with pytest.raises(ValueError, match="beyond the vocabulary"):
        SpanCorruption(vocab_size=50, num_sentinels=100)
    with pytest.raises(ValueError, match="noise_density"):
        SpanCorruption(vocab_size=500, noise_density=0.0)
    with pytest.raises(ValueError, match="already holds sentinel ids"):
        SpanCorruption(vocab_size=500)(list(range(395, 410)), random.Random(0))
    with pytest.raises(ValueError, match="more than the 2 sentinels"):
        SpanCorruption(vocab_size=500, num_sentinels=2)(list(range(100)), random.Random(0))


def test_a_tiny_t5_learns_to_fill_the_spans():
    """Counting sequences (each token the previous + 1): the hidden spans follow from their context."""
    torch.manual_seed(0)
    vocab, sentinels = 48, 8
    corruption = SpanCorruption(vocab_size=vocab, num_sentinels=sentinels, noise_density=0.15)
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=vocab, hidden_size=32, attention_head_size=8, num_attention_heads=4, intermediate_size=64,
        num_hidden_layers=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, activation_dropout=0.0,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, initializer_range=0.1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = random.Random(0)

    def batch(size=16):
        pairs = []
        for _ in range(size):
            start = rng.randrange(2, 20)
            source, target = corruption(list(range(start, start + 20)), rng)
            pairs.append((source + [1], target + [1]))  # </s> closes both, as T5's pipeline appends it
        width, length = (max(len(p[i]) for p in pairs) for i in (0, 1))
        ids = torch.zeros(size, width, dtype=torch.long)
        labels = torch.full((size, length), IGNORE_INDEX)
        for row, (source, target) in enumerate(pairs):
            ids[row, :len(source)], labels[row, :len(target)] = torch.tensor(source), torch.tensor(target)
        return ids, (ids != 0).long(), labels

    losses = []
    for _ in range(100):
        ids, mask, labels = batch()
        loss = model(ids, mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert statistics.mean(losses[:5]) > 3.5 and statistics.mean(losses[-10:]) < 1.6  # uniform: ln 48 = 3.87


def test_span_corruption_run_learns(tmp_path, capsys):
    """``bertkit seq2seq objective=span_corruption``: a tiny T5 on English number words beats its untrained self
    on held-out numbers' texts."""
    from bertkit.cli import main

    main(["seq2seq", "objective=span_corruption", "languages=[en]", "max_number=400", "max_steps=120",
          "hidden_size=32", "num_attention_heads=4", "intermediate_size=64", "num_hidden_layers=2",
          "decoder_layers=2", "batch_size=32", "learning_rate=0.01", "warmup_steps=10", "eval_steps=1000",
          "eval_examples=40", "num_beams=2", "dropout=0.0", "progress=false", "max_minutes=null",
          f"output_dir={tmp_path / 'run'}"])
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["trained"]["greedy"]["heldout_loss"] < 0.5 * results["untrained"]["heldout_loss"]
    assert results["trained"]["greedy"]["token_accuracy"] > results["untrained"]["token_accuracy"] + 0.4
    assert "spans restored exactly" in capsys.readouterr().out
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["model_type"] == "t5" and config["architectures"] == ["T5ForConditionalGeneration"]


def test_sentinels_are_the_t5_tokenizers_extra_ids(tmp_path):
    """With a T5 SentencePiece tokenizer, the default sentinels (counting down from its last id) are its
    ``<extra_id_N>``: the corrupted input decodes with them in place of the spans."""
    import sentencepiece
    from sentencepiece_fixtures import training_lines

    from bertkit.tokenization import T5Tokenizer

    (tmp_path / "train.txt").write_text("\n".join(training_lines()[::3]) + "\n", encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(tmp_path / "train.txt"), model_prefix=str(tmp_path / "spiece"), vocab_size=800,
        character_coverage=0.995, num_threads=1, minloglevel=2, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    tokenizer = T5Tokenizer(str(tmp_path / "spiece.model"))
    corruption = SpanCorruption(vocab_size=len(tokenizer.get_vocab()))
    ids = tokenizer("the quick brown fox jumps over the lazy dog again and again")["input_ids"][:-1]  # no </s>
    source, target = corruption(ids, random.Random(0))
    spans = sum(t >= corruption.sentinel(corruption.num_sentinels - 1) for t in source)
    assert tokenizer.convert_ids_to_tokens(target[:1]) == ["<extra_id_0>"]
    assert tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(spans)]) == \
        [t for t in source if t >= corruption.sentinel(corruption.num_sentinels - 1)]
    assert "<extra_id_0>" in tokenizer.decode(source)
