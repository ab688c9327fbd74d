"""XLM's translation LM: pairs laid out with languages and restarted positions, masks on both sides, and a tiny
XLMWithLMHeadModel that learns from numbers written in three languages (loss well below its start)."""

import math
import random
from collections import Counter

import pytest
import torch

from bertkit.config import BertConfig
from bertkit.model import XLMWithLMHeadModel
from bertkit.model.heads import IGNORE_INDEX
from bertkit.pretraining.instances import SpecialIds
from bertkit.pretraining.masking import MaskingConfig
from bertkit.pretraining.tlm import collate_tlm, parallel_numbers, tlm_example

SPECIAL = SpecialIds(cls=1, sep=2, pad=0, mask=3)
LANGUAGES = ["en", "fr", "de"]


def test_a_pair_is_laid_out_with_languages_and_restarted_positions():
    config = MaskingConfig(mlm_probability=0.3)
    example = tlm_example([10, 11, 12, 13], [20, 21, 22], 0, 2, SPECIAL, 30, config, random.Random(0))
    assert example.langs == [0] * 6 + [2] * 4
    assert example.position_ids == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    assert [example.input_ids[i] for i in (0, 5, 9)] == [1, 2, 2]  # [CLS], [SEP], [SEP] never masked
    both_sides = [0, 0]
    for seed in range(200):
        example = tlm_example([10, 11, 12, 13], [20, 21, 22], 0, 2, SPECIAL, 30, config, random.Random(seed))
        predicted = [i for i, label in enumerate(example.labels) if label != IGNORE_INDEX]
        assert predicted and not {0, 5, 9} & set(predicted)
        both_sides[0] += any(i < 5 for i in predicted)
        both_sides[1] += any(i > 5 for i in predicted)
    assert min(both_sides) > 50  # masks fall on the source and on the translation
    with pytest.raises(ValueError, match="non-empty sentence on each side"):
        tlm_example([], [20], 0, 1, SPECIAL, 30, config, random.Random(0))
    with pytest.raises(ValueError, match="at least two languages"):
        parallel_numbers([1, 2], ["en", "en"])
    with pytest.raises(ValueError, match="no language 'xx'"):
        parallel_numbers([1, 2], ["en", "xx"])


def test_a_tiny_xlm_learns_translation_lm_on_numbers():
    pairs = parallel_numbers(list(range(0, 200, 3)), LANGUAGES)
    assert len(pairs) == 67 * 6
    vocab = {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[MASK]": 3}
    for _, a, _, b in pairs:
        for piece in a + b:
            vocab.setdefault(piece, len(vocab))
    config = BertConfig(model_type="xlm", vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=32, type_vocab_size=0,
                        n_langs=3, pad_token_id=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = XLMWithLMHeadModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    masking = MaskingConfig(mlm_probability=0.2)
    rng = random.Random(0)
    lang = {name: i for i, name in enumerate(LANGUAGES)}

    def batch():
        chosen = rng.sample(pairs, 16)
        return collate_tlm([tlm_example([vocab[p] for p in a], [vocab[p] for p in b], lang[la], lang[lb], SPECIAL,
                                        len(vocab), masking, rng) for la, a, lb, b in chosen], SPECIAL.pad)

    losses = []
    for _ in range(100):
        loss = model(**batch()).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    counts = Counter(piece for _, a, _, b in pairs for piece in a + b)
    total = sum(counts.values())
    unigram = -sum(n / total * math.log(n / total) for n in counts.values())  # the best guess without context
    end = sum(losses[-10:]) / 10
    assert end < unigram - 0.7, (losses[0], end, unigram)  # it reads the pair, not just piece frequencies


def test_pretrain_objective_tlm_end_to_end_on_a_parallel_file(minilm_dir, tmp_path):
    from bertkit.model import AutoModelForMaskedLM
    from bertkit.pretraining import PretrainingConfig, run_pretraining

    lines = [f"en\tthe {w} is red .\tfr\tle {f} est rouge ." for w, f in
             [("car", "voiture"), ("house", "maison"), ("dog", "chien"), ("book", "livre")] * 6]
    (tmp_path / "pairs.tsv").write_text("\n".join(lines) + "\n")
    summary = run_pretraining(PretrainingConfig(
        objective="tlm", parallel_corpus=[str(tmp_path / "pairs.tsv")], languages=["en", "fr"],
        tokenizer=str(minilm_dir), model_preset="tiny", max_seq_length=32, batch_size=4, max_steps=2, warmup_steps=1,
        eval_fraction=0.2, progress=False, output_dir=str(tmp_path / "out")))
    assert summary["steps"] == 2 and summary["final_eval"]["predictions"] > 0
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "out" / "model")
    assert type(model) is XLMWithLMHeadModel and model.config.n_langs == 2


def test_bad_parallel_data_and_tlm_settings_are_refused(tmp_path):
    from bertkit.pretraining import PretrainingConfig
    from bertkit.pretraining.tlm_run import read_parallel

    (tmp_path / "bad.tsv").write_text("en\tone\tfr\tun\nen\ttwo only\n")
    with pytest.raises(ValueError, match=r"bad.tsv:2: expected lang<TAB>sentence<TAB>lang<TAB>translation"):
        read_parallel([str(tmp_path / "bad.tsv")])
    (tmp_path / "empty.tsv").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no pair"):
        read_parallel([str(tmp_path / "empty.tsv")])
    with pytest.raises(FileNotFoundError, match="parallel_corpus file not found"):
        read_parallel([str(tmp_path / "missing.tsv")])
    for values, message in [
        (dict(objective="tlm", masking="whole_word"), "masking: whole_word"),
        (dict(objective="tlm", pair_task="nsp"), "pair_task: nsp"),
        (dict(objective="tlm", architecture="albert"), "trains an XLM, not architecture albert"),
        (dict(objective="tlm", languages=["en"]), "two or more distinct languages"),
        (dict(architecture="xlm"), "pretrained with objective: tlm"),
        (dict(parallel_corpus=["x.tsv"]), "parallel_corpus is read by objective: tlm"),
    ]:
        with pytest.raises(ValueError, match=message):
            PretrainingConfig(**values)
    assert PretrainingConfig(objective="tlm").architecture == "xlm"
