"""ALBERT, XLNet, T5, XLM-R, CamemBERT and DeBERTa-v2 tokenizers from a SentencePiece model give transformers' ids.

Each family's folder holds a model SentencePiece's trainer made from installed text (Python docs + Debian handbook
in 26 languages), with that family's special pieces at their ids. Oracles: transformers 5's tokenizer of the same
folder (ids, offsets, pairs, truncation, padding, save/load) and the ``sentencepiece`` library (segmentation).
Where the two oracles differ, bertkit follows sentencepiece, and the tests check both sides:

* equal-score segmentations (runs of ``-``): the Rust Unigram breaks the tie differently; the scores are equal;
* byte fallback: transformers 5 drops it (``<unk>``), sentencepiece and bertkit spell unknown characters in bytes.
"""

from __future__ import annotations

import shutil

import pytest
import sentencepiece
import tokenizers
import transformers
from sentencepiece_fixtures import HARD_TEXT, held_out_lines, training_lines

from bertkit.tokenization import AutoTokenizer
from bertkit.tokenization.sp_families import FAMILIES

# family → (file name, trainer options giving the family's special pieces at their ids)
FOLDERS = {
    "AlbertTokenizer": ("spiece.model", {"pad_id": 0, "unk_id": 1, "bos_id": -1, "eos_id": -1,
                                         "control_symbols": ["[CLS]", "[SEP]", "[MASK]"]}),
    "XLNetTokenizer": ("spiece.model", {"control_symbols": ["<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]}),
    "T5Tokenizer": ("spiece.model", {"pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1}),
    "XLMRobertaTokenizer": ("sentencepiece.bpe.model", {}),
    "CamembertTokenizer": ("sentencepiece.bpe.model", {}),
    "DebertaV2Tokenizer": ("spm.model", {"pad_id": 0, "unk_id": 3, "bos_id": -1, "eos_id": -1,
                                         "control_symbols": ["[CLS]", "[SEP]"], "pad_piece": "[PAD]",
                                         "unk_piece": "[UNK]"}),
}
MODEL_TYPES = {"AlbertTokenizer": "albert", "XLNetTokenizer": "xlnet", "T5Tokenizer": "t5",
               "XLMRobertaTokenizer": "xlm-roberta", "CamembertTokenizer": "camembert",
               "DebertaV2Tokenizer": "deberta-v2"}
SAMPLE = 60


def _train(folder, file_name, options, byte_fallback=False):
    text = folder.parent / "train.txt"
    if not text.exists():
        text.write_text("\n".join(training_lines()[::3]) + "\n", encoding="utf-8")
    folder.mkdir()
    sentencepiece.SentencePieceTrainer.train(input=str(text), model_prefix=str(folder / "m"), vocab_size=800,
                                             character_coverage=0.995, num_threads=1, minloglevel=2,
                                             byte_fallback=byte_fallback, **options)
    (folder / "m.model").rename(folder / file_name)
    (folder / "m.vocab").unlink()
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("families")
    return {name: _train(root / name, *FOLDERS[name]) for name in FOLDERS}


def _tokenizers(folders, name):
    return FAMILIES[name].from_pretrained(folders[name]), getattr(transformers, name).from_pretrained(folders[name])


def _explained(ours, theirs, text, ids, expected) -> bool:
    """A difference is allowed where transformers picked another segmentation with the same score."""
    reverse = {tid: spm for spm, tid in enumerate(ours._spm_ids)}

    def score(sequence):
        return sum(ours.sp.scores[reverse[i]] for i in sequence if i not in ours.all_special_ids)

    same_text = ours.decode(ids, skip_special_tokens=True) == ours.decode(expected, skip_special_tokens=True)
    return same_text and abs(score(ids) - score(expected)) < 1e-3


@pytest.mark.parametrize("name", FOLDERS)
def test_ids_and_offsets_equal_transformers(folders, name):
    _check_against_transformers(*_tokenizers(folders, name), SAMPLE)


@pytest.mark.slow
@pytest.mark.parametrize("name", FOLDERS)
def test_every_held_out_line_equals_transformers(folders, name):
    _check_against_transformers(*_tokenizers(folders, name), 1, max_ties=60)


@pytest.mark.parametrize("name", FOLDERS)
def test_folders_transformers_saved_with_only_a_unigram_tokenizer_json(folders, name, tmp_path):
    theirs = getattr(transformers, name).from_pretrained(folders[name])
    theirs.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.model")) and (tmp_path / "tokenizer.json").is_file()
    ours = AutoTokenizer.from_pretrained(tmp_path)
    assert type(ours) is FAMILIES[name]
    _check_against_transformers(ours, getattr(transformers, name).from_pretrained(tmp_path), 4 * SAMPLE)
    saved = ours.save_pretrained(tmp_path / "again")[0].parent  # tokenizer.json copied, config written
    assert AutoTokenizer.from_pretrained(saved)("a b")["input_ids"] == theirs("a b")["input_ids"]


def test_a_unigram_tokenizer_json_with_an_unknown_part_is_refused(folders, tmp_path):
    import json

    transformers.AlbertTokenizer.from_pretrained(folders["AlbertTokenizer"]).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data["normalizer"]["normalizers"].append({"type": "BertNormalizer"})
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"tokenizer.json: normalizer 'BertNormalizer'"):
        AutoTokenizer.from_pretrained(tmp_path)


def _check_against_transformers(ours, theirs, sample, max_ties=10):
    ties = 0
    for text in list(held_out_lines()[::sample]) + HARD_TEXT:
        got = ours(text, return_offsets_mapping=True)
        expected = theirs(text, return_offsets_mapping=True)
        if got["input_ids"] != expected["input_ids"]:
            assert _explained(ours, theirs, text, got["input_ids"], expected["input_ids"]), text
            ties += 1
            continue
        assert got["offset_mapping"] == [tuple(span) for span in expected["offset_mapping"]], text
        for skip in (False, True):
            assert ours.decode(got["input_ids"], skip) == theirs.decode(expected["input_ids"], skip), text
    assert ties < max_ties


@pytest.mark.parametrize("name", FOLDERS)
def test_pairs_truncation_padding_and_tensors_as_transformers(folders, name):
    ours, theirs = _tokenizers(folders, name)
    firsts = ["The quick brown fox jumps over the lazy dog.", "Ça coûte 12,50 €", "短い", "x"]
    seconds = ["A second sentence, somewhat longer than the first one.", "b", "日本語の文です。", "y z"]
    for options in ({}, {"padding": True}, {"padding": "max_length", "max_length": 96},
                    {"truncation": True, "max_length": 12, "padding": True},
                    {"truncation": "only_second", "max_length": 48, "padding": True},
                    {"return_token_type_ids": True, "return_special_tokens_mask": True, "padding": True}):
        got = ours(firsts, seconds, **options)
        expected = theirs(firsts, seconds, **options)
        assert set(got) == set(expected), options
        for key in expected:
            assert got[key] == expected[key], (options, key)
    got = ours(firsts, padding=True, return_tensors="pt")
    expected = theirs(firsts, padding=True, return_tensors="pt")
    assert all((got[k] == expected[k]).all() for k in expected)


@pytest.mark.parametrize("name", FOLDERS)
def test_saved_folders_load_in_transformers_and_through_auto_tokenizer(folders, name, tmp_path):
    ours, theirs = _tokenizers(folders, name)
    saved = ours.save_pretrained(tmp_path / "saved")[0].parent
    assert (saved / "tokenizer.json").is_file()  # transformers 5 reads it first: it must say what bertkit does
    reloaded = getattr(transformers, name).from_pretrained(saved)
    texts = list(held_out_lines()[::400])
    assert [reloaded(t)["input_ids"] for t in texts] == [theirs(t)["input_ids"] for t in texts]
    _check_against_transformers(ours, reloaded, 4 * SAMPLE)
    pair = ("A first text.", "And a second one, longer.")
    assert reloaded(*pair, return_token_type_ids=True) == theirs(*pair, return_token_type_ids=True)
    assert type(AutoTokenizer.from_pretrained(saved)) is FAMILIES[name]
    plain = tmp_path / "plain"  # no tokenizer_config.json: the model type decides
    plain.mkdir()
    shutil.copy(ours.vocab_file, plain / ours.vocab_file.name)
    (plain / "config.json").write_text(f'{{"model_type": "{MODEL_TYPES[name]}"}}')
    assert type(AutoTokenizer.from_pretrained(plain)) is FAMILIES[name]


def test_special_tokens_written_in_the_text(folders):
    for name, text in (("XLNetTokenizer", "a <mask> b<sep>"), ("XLMRobertaTokenizer", "fill <mask> here </s>"),
                       ("T5Tokenizer", "The <extra_id_0> walks in <extra_id_1> park")):
        ours, theirs = _tokenizers(folders, name)
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], name


def test_byte_fallback_follows_sentencepiece_where_transformers_drops_it(tmp_path):
    folder = _train(tmp_path / "albert-bytes", *FOLDERS["AlbertTokenizer"], byte_fallback=True)
    ours, theirs = FAMILIES["AlbertTokenizer"].from_pretrained(folder), transformers.AlbertTokenizer.from_pretrained(
        folder)
    text = "dna \U0001f9ec here"
    library = sentencepiece.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    assert ours.encode(text, add_special_tokens=False) == library.encode(text)  # ALBERT's preparation is a no-op here
    assert "<0xF0>" in ours.tokenize(text)
    assert ours.decode(ours.encode(text), skip_special_tokens=True) == text
    assert "<unk>" in theirs.convert_ids_to_tokens(theirs(text)["input_ids"])  # transformers 5: no byte fallback
    saved = ours.save_pretrained(folder / "saved")[0].parent  # bertkit's tokenizer.json keeps byte fallback ...
    rust = tokenizers.Tokenizer.from_file(str(saved / "tokenizer.json"))
    assert rust.encode(text).ids == ours(text)["input_ids"]
    reloaded = transformers.AlbertTokenizer.from_pretrained(saved)  # ... which transformers' class rebuilds without
    assert "<unk>" in reloaded.convert_ids_to_tokens(reloaded(text)["input_ids"])


def test_sampling_is_a_data_augmentation_switch(folders):
    ours = FAMILIES["AlbertTokenizer"].from_pretrained(folders["AlbertTokenizer"])
    text = "internationalization of packages"
    best = ours(text)["input_ids"]
    ours.enable_sampling(alpha=0.1, nbest_size=-1, seed=0)
    drawn = {tuple(ours(text)["input_ids"]) for _ in range(30)}
    assert len(drawn) > 5 and all(ids[0] == ours.cls_token_id and ids[-1] == ours.sep_token_id for ids in drawn)
    assert all(ours.decode(list(ids), skip_special_tokens=True) == ours.decode(best, skip_special_tokens=True)
               for ids in drawn)  # another segmentation of the same text
    assert len({tuple(ours.encode(text, sample=True)) for _ in range(30)}) > 5  # one call at a time
    ours.enable_sampling(alpha=0.1, nbest_size=1)
    assert ours(text)["input_ids"] == best
    ours.disable_sampling()
    assert ours(text)["input_ids"] == best
