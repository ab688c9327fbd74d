"""The numbers ↔ words task and ``bertkit explain masks``: held-out numbers stay out of training, the character
vocabulary round-trips, a missing num2words is a clear error, a tiny run writes its files, the masks PNG."""

import builtins
import json

import pytest
import torch

from bertkit.cli import main
from bertkit.seq2seq.config import NumbersConfig
from bertkit.seq2seq.explain import mask_batch, masks_of
from bertkit.seq2seq.numbers import PieceVocab, number_pairs, split_numbers, split_text
from bertkit.seq2seq.run import collate, run_numbers


def test_heldout_numbers_never_reach_training():
    train, heldout = split_numbers(200, 0.1, seed=3)
    assert len(heldout) == 20 and not set(train) & set(heldout) and sorted(train + heldout) == list(range(200))
    pairs = number_pairs(train, ["en", "fr"])
    assert len(pairs) == 180 * 2 * 2
    assert {p.number for p in pairs}.isdisjoint(heldout)
    french = next(p for p in pairs if p.number == 71 and p.language == "fr" and p.direction == "words")
    assert french.source == "71" and french.target == "soixante et onze"


def test_pieces_give_the_text_back_and_cover_unseen_numbers():
    assert split_text("neunhundertdreiundsiebzig", "de") == ["neun", "hundert", "drei", "und", "siebzig"]
    assert split_text("nine hundred and seventy-three", "en") == ["nine", " hundred", " and", " seventy", "-",
                                                                  "three"]
    assert split_text("973", "en") == ["9", "7", "3"]
    train, heldout = split_numbers(1000, 0.1, seed=0)  # the split of configs/seq2seq-numbers.yaml
    languages = ["en", "fr", "de", "es"]
    vocab = PieceVocab.build(number_pairs(train, languages), languages)
    for pair in number_pairs(heldout, languages):
        ids = vocab.encode(pair.target, pair.language)
        assert len(ids) == len(split_text(pair.target, pair.language))  # no piece spelled out: all seen
        assert vocab.decode(ids) == pair.target
    chars = PieceVocab.build(number_pairs(train, ["fr"]), ["fr"], level="chars")
    assert chars.decode(chars.encode("quatre-vingts")) == "quatre-vingts" and len(chars.encode("cent")) == 4


def test_vocabulary_and_batches():
    pairs = number_pairs([7, 21, 105], ["de"])
    vocab = PieceVocab.build(pairs, ["de"])
    batch = collate(vocab, pairs)
    assert batch["input_ids"][0, :2].tolist() == [vocab.ids["<de>"], vocab.ids["<words>"]]
    row = batch["labels"][-1]
    assert vocab.decode(row[row != -100].tolist()) == pairs[-1].target  # "105"
    assert vocab.decode(vocab.encode("sieben") + [vocab.eos, 5]) == "sieben"


def test_missing_num2words_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def without(name, *args, **kwargs):
        if name == "num2words":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    with pytest.raises(ValueError, match="pip install"):
        number_pairs([1], ["en"])


def test_unknown_language_is_named():
    with pytest.raises(ValueError, match="no language 'xx'"):
        number_pairs([1], ["xx"])


def test_tiny_run_writes_results(tmp_path):
    config = NumbersConfig(languages=["en"], max_number=40, heldout_fraction=0.1, num_hidden_layers=1,
                           decoder_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                           batch_size=8, max_steps=3, warmup_steps=1, eval_steps=3, logging_steps=1,
                           eval_examples=4, test_examples=4, num_beams=2, max_new_tokens=20,
                           output_dir=str(tmp_path / "run"), progress=False)
    results = run_numbers(config)
    assert results["steps"] == 3 and set(results["exact_match"]) == {"greedy", "beam2"}
    for name in ("metrics.jsonl", "metrics.png", "results.json", "model/config.json", "model/vocab.json"):
        assert (tmp_path / "run" / name).is_file(), name
    assert json.loads((tmp_path / "run" / "results.json").read_text())["heldout_pairs"] == 4


def test_masks_are_the_models_own():
    batch = mask_batch([(["a", "b", "c"], ["[BOS]", "x", "y"]), (["a"], ["[BOS]", "x"])])
    masks = masks_of(batch, row=1, target_row=1)
    assert masks["encoder"].tolist() == [[True, False, False]] * 3
    assert masks["cross"].tolist() == [[True, False, False]] * 3
    assert masks["decoder"].tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert torch.equal(batch["source_mask"], torch.tensor([[1, 1, 1], [1, 0, 0]]))


def test_explain_masks_writes_a_png(tmp_path, minilm_dir):
    out = tmp_path / "masks.png"
    assert main(["explain", "masks", "12 => twelve", "vingt et un => 21", "--model", str(minilm_dir),
                 "--output", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["explain", "masks", " ", "--model", str(minilm_dir), "--output", str(out)]) == 2
