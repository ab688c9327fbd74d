"""ALBERT-, XLNet-, T5- and XLM-R-shaped folders — random weights written by transformers' classes, a tokenizer
trained by bertkit (``train_unigram_folder``, what ``bertkit train-tokenizer --model-type unigram`` runs) — load
through bertkit's Auto classes and give transformers' ids and outputs.

Oracle: transformers (``AutoTokenizer`` on the same folder, and its model classes for the outputs). bertkit picks the
family from the folder alone (tokenizer_config.json, config.json's model_type).
"""

from __future__ import annotations

import re

import pytest
import torch
import transformers
from sentencepiece_fixtures import HARD_TEXT, held_out_lines, training_lines

from bertkit import AutoModel, AutoModelForSeq2SeqLM
from bertkit.tokenization import AutoTokenizer
from bertkit.tokenization.unigram_training import train_unigram_folder

FAMILIES = {"albert": "AlbertTokenizer", "xlnet": "XLNetTokenizer", "t5": "T5Tokenizer",
            "xlm-roberta": "XLMRobertaTokenizer"}


def _config(family: str, vocab_size: int):
    """A tiny random transformers config of the family (its model_type is what bertkit dispatches on)."""
    if family == "albert":
        return transformers.AlbertConfig(vocab_size=vocab_size, embedding_size=16, hidden_size=32,
                                         num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    if family == "xlnet":
        return transformers.XLNetConfig(vocab_size=vocab_size, d_model=32, n_layer=2, n_head=4, d_inner=64,
                                        dropout=0.0)
    if family == "t5":
        return transformers.T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                     relative_attention_num_buckets=8, dropout_rate=0.0, decoder_start_token_id=0)
    return transformers.XLMRobertaConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=4, intermediate_size=64)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("sp-folders")
    text = root / "text.txt"
    text.write_text("\n".join(training_lines()[:600]) + "\n", encoding="utf-8")
    made = {}
    for family in FAMILIES:
        folder = root / family
        tokenizer = train_unigram_folder([str(text)], folder, 300, family, character_coverage=0.995)
        _config(family, len(tokenizer)).save_pretrained(folder)
        made[family] = folder
    return made


def _batch() -> tuple[list[str], list[str]]:
    """Held-out lines and their reversals; runs like ``----`` are left out (equal-score segmentations, which the Rust
    Unigram breaks otherwise than SentencePiece: tests/test_sentencepiece_families.py)."""
    lines = [line for line in held_out_lines()[::400] if line.strip() and not re.search(r"(.)\1{3}", line)][:6]
    return lines, [line[::-1] for line in lines]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_folder_gives_transformers_ids(folders, family):
    ours, theirs = AutoTokenizer.from_pretrained(folders[family]), transformers.AutoTokenizer.from_pretrained(
        folders[family])
    assert type(ours).__name__ == FAMILIES[family]
    first, second = _batch()
    kwargs = dict(padding=True, truncation=True, max_length=40)
    got, expected = ours(first, second, **kwargs), theirs(first, second, **kwargs)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key in expected:
            assert got[key] == expected[key], key
    assert ours(first)["input_ids"] == theirs(first)["input_ids"]


@pytest.mark.parametrize("family", FAMILIES)
def test_ids_without_offsets_equal_the_ids_with_offsets(folders, family):
    tokenizer = AutoTokenizer.from_pretrained(folders[family])
    texts = HARD_TEXT + ["``Quoted'' Café ÀÉÎ", "[MASK] <mask> <extra_id_7> <sep><cls> x", *held_out_lines()[::900]]
    for text in texts:  # the ids-only path skips spans (SentencePiece's encode_ids, ASCII preparation by str.lower)
        assert tokenizer(text)["input_ids"] == tokenizer(text, return_offsets_mapping=True)["input_ids"], text
    pair = (texts[:8], texts[8:16])
    assert tokenizer(*pair, truncation=True, max_length=12)["input_ids"] == tokenizer(
        *pair, truncation=True, max_length=12, return_offsets_mapping=True)["input_ids"]


@pytest.mark.slow  # four random models: ~20 s
@pytest.mark.parametrize("family", ["xlnet", "t5"])  # ALBERT: tests/test_sentencepiece_training.py
def test_random_weight_folders_run_as_in_transformers(folders, family, tmp_path):
    folder = folders[family]
    torch.manual_seed(0)
    config = transformers.AutoConfig.from_pretrained(folder)
    kind = transformers.T5ForConditionalGeneration if family == "t5" else transformers.AutoModel
    model = kind._from_config(config, attn_implementation="eager") if family == "t5" else kind.from_config(config)
    model.eval().save_pretrained(tmp_path)
    for name in ("tokenizer_config.json", "tokenizer.json", AutoTokenizer.from_pretrained(folder).vocab_file.name):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    first, _ = _batch()
    ours = AutoTokenizer.from_pretrained(tmp_path)(first, padding=True, return_tensors="pt")
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path)(first, padding=True, return_tensors="pt")
    assert ours["input_ids"].tolist() == theirs["input_ids"].tolist()
    with torch.no_grad():
        if family == "t5":
            labels = ours["input_ids"][:, :5].contiguous()
            got = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()(ours["input_ids"], ours["attention_mask"],
                                                                          labels=labels).logits
            expected = kind.from_pretrained(tmp_path, attn_implementation="eager").eval()(**theirs,
                                                                                          labels=labels).logits
        else:
            got = AutoModel.from_pretrained(tmp_path).eval()(
                input_ids=ours["input_ids"], attention_mask=ours["attention_mask"],
                token_type_ids=ours.get("token_type_ids")).last_hidden_state
            expected = kind.from_pretrained(tmp_path).eval()(**theirs).last_hidden_state
    assert torch.allclose(got, expected, atol=1e-5)
