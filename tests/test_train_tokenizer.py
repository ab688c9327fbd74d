"""Vocabulary training: merge order on hand-checked corpora, the vocabulary's shape, loading by bertkit and HF."""

import itertools
import json
import subprocess
import sys

import pytest
import transformers

from bertkit.cli import main
from bertkit.corpora import python_docs_lines
from bertkit.tokenization import BasicTokenizer, BertTokenizer
from bertkit.tokenization.merges import learn_merges
from bertkit.tokenization.training import SPECIAL_TOKENS, build_vocab, count_words, train_tokenizer

# The Hugging Face course's corpus. Words start as h ##u ##g, p ##u ##g, p ##u ##n, b ##u ##n, h ##u ##g ##s;
# symbol counts h 15, p 17, b 4, ##u 36, ##g 20, ##n 16, ##s 5.
HUGS = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}


def test_wordpiece_merges_the_best_score_bpe_the_most_frequent_pair():
    # BPE: (##u ##g) occurs 20 times, the most; then (##u ##n) 16; then (h ##ug) 15 beats (p ##un) 12.
    assert learn_merges(HUGS, 4, "bpe", 1, progress=False) == [("##ug", 20), ("##un", 16), ("hug", 15), ("pun", 12)]
    # WordPiece: (##g ##s) scores 5 / (20 × 5) = 1/20; every other pair scores exactly 1/36 (e.g. 20 / (36 × 20)).
    # After it, ##g counts 15, all pairs tie at 1/36, and the tie goes to the most frequent: (p ##u), 17 times.
    assert learn_merges(HUGS, 2, "wordpiece", 1, progress=False) == [("##gs", 5), ("pu", 17)]


def test_min_frequency_stops_rare_merges():
    assert [t for t, _ in learn_merges(HUGS, 10, "bpe", 13, progress=False)] == ["##ug", "##un", "hug"]
    assert learn_merges(HUGS, 10, "bpe", 37, progress=False) == []
    assert all(count >= 5 for _, count in learn_merges(HUGS, 10, "wordpiece", 5, progress=False))


def test_vocabulary_layout_specials_then_alphabet_then_merges():
    tokens = build_vocab(HUGS, 5 + 11 + 3, "bpe", 1, progress=False)
    assert tokens[:5] == list(SPECIAL_TOKENS) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert tokens[5:16] == ["b", "g", "h", "n", "p", "s", "u", "##g", "##n", "##s", "##u"]  # no ##b ##h ##p
    assert tokens[16:] == ["##ug", "##un", "hug"]


def test_limit_alphabet_keeps_the_most_frequent_characters():
    counts = {"aaab": 10, "ac": 3, "zz": 1}  # characters: a 33, b 10, c 3, z 2
    tokens = build_vocab(counts, 100, "wordpiece", 1, limit_alphabet=2, progress=False)
    alphabet = [t.removeprefix("##") for t in tokens[5:] if len(t.removeprefix("##")) == 1]
    assert set(alphabet) == {"a", "b"}
    assert not any(set(t) & set("cz") for t in tokens[5:])  # words with dropped characters are not trained on


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"vocab_size=10 is smaller than the 5 special tokens \+ 11 alphabet"):
        build_vocab(HUGS, 10, progress=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="holds no words"):
        train_tokenizer([empty], tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="training file not found: .*missing.txt"):
        train_tokenizer([empty, tmp_path / "missing.txt"], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="model_type must be one of"):
        build_vocab(HUGS, 100, "unigram", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def docs_sample():
    """3,000 non-blank lines of the Python docs (real English with code)."""
    return [line for line in itertools.islice(python_docs_lines(), 12000) if line.strip()][:3000]


@pytest.mark.parametrize("model_type", ["wordpiece", "bpe"])
@pytest.mark.parametrize("cased", [False, True])
def test_trained_vocab_loads_in_bertkit_and_transformers_alike(tmp_path, docs_sample, model_type, cased):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(docs_sample) + "\nNaïve Café ÉCOLE\n", encoding="utf-8")
    out = tmp_path / "tok"
    train_tokenizer([corpus], out, vocab_size=1500, model_type=model_type, min_frequency=2, limit_alphabet=None,
                    lower_case=not cased, progress=False)
    lines = (out / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert lines[:5] == list(SPECIAL_TOKENS) and len(lines) == len(set(lines)) == 1500
    assert json.loads((out / "tokenizer_config.json").read_text())["do_lower_case"] is (not cased)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    ours = BertTokenizer.from_pretrained(out)
    theirs = transformers.BertTokenizer.from_pretrained(out)
    for text in docs_sample[:500] + ["Naïve Café ÉCOLE", "unseen words: zyxwvu"]:
        assert ours.encode(text) == theirs.encode(text), text
    # every training word is covered: no [UNK] on the training text
    assert all(ours.unk_token_id not in ours.encode(text) for text in docs_sample)
    tokens = ours.tokenize("Naïve ÉCOLE")  # case and accents as configured, and the alphabet holds what it needs
    assert ours.convert_tokens_to_string(tokens) == ("Naïve ÉCOLE" if cased else "naive ecole")


def test_every_training_word_tokenizes_without_unk(docs_sample):
    words = count_words(docs_sample, BasicTokenizer(), progress=False)
    tokens = build_vocab(words, 800, "wordpiece", 3, limit_alphabet=None, progress=False)
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})
    assert [w for w in words if len(w) <= 100 and "[UNK]" in tokenizer.tokenize(w)] == []


def test_cli_trains_a_vocabulary(tmp_path, docs_sample, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(docs_sample[:1000]), encoding="utf-8")
    out = tmp_path / "tok"
    argv = ["train-tokenizer", str(corpus), "--vocab-size", "600", "--model-type", "bpe", "--min-frequency", "2",
            "--limit-alphabet", "80", "-o", str(out)]
    assert main(argv) == 0
    tokenizer = BertTokenizer.from_pretrained(out)
    assert len(tokenizer) == 600 and tokenizer.basic.do_lower_case is True
    assert "vocab.txt" in capsys.readouterr().err
    assert main([*argv[:-2], "--vocab-size", "20", "-o", str(tmp_path / "small")]) == 2
    assert "vocab_size=20 is smaller than" in capsys.readouterr().err
    assert main(["train-tokenizer", str(tmp_path / "nope.txt"), "-o", str(out)]) == 2
    assert "training file not found" in capsys.readouterr().err


def test_cli_refuses_an_output_folder_with_a_tokenizer_unless_overwrite(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 20, encoding="utf-8")
    out = tmp_path / "tok"
    argv = ["train-tokenizer", str(corpus), "--vocab-size", "60", "--min-frequency", "2", "-o", str(out)]
    assert main(argv) == 0
    before = (out / "vocab.txt").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main([*argv[:-2], "--vocab-size", "70", "-o", str(out)]) == 2
    assert "already holds vocab.txt, tokenizer_config.json: replace them with --overwrite" in capsys.readouterr().err
    assert (out / "vocab.txt").read_text(encoding="utf-8") == before
    # --overwrite replaces every tokenizer file: no vocab.txt is left beside the new vocab.json + merges.txt
    (out / "notes.md").write_text("mine")
    assert main(["train-tokenizer", str(corpus), "--model-type", "byte-bpe", "--vocab-size", "270", "-o", str(out),
                 "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["merges.txt", "notes.md", "tokenizer_config.json", "vocab.json"]


def test_vocabulary_training_needs_no_torch():
    code = ("import sys, bertkit.tokenization.training, bertkit.tokenization.chinese; "
            "assert 'torch' not in sys.modules and 'jieba' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
