"""Byte-level BPE (GPT-2 / RoBERTa) against its oracles: the `tokenizers` library's ByteLevelBPETokenizer (training,
byte table, word split, tokenizer.json) and transformers' GPT2TokenizerFast / RobertaTokenizerFast (loading the saved
folders). Corpora are small real text: lines of the Python docs."""

import itertools
import json

import pytest
import tokenizers
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizer_json_fixtures import varied_lines

from bertkit.cli import main
from bertkit.corpora import python_docs_lines
from bertkit.tokenization import AutoTokenizer, GPT2Tokenizer, RobertaTokenizer, UnsupportedTokenizer
from bertkit.tokenization.byte_bpe_training import STYLES, train_byte_bpe, train_byte_bpe_from_texts
from bertkit.tokenization.byte_level import alphabet, bytes_to_unicode, split_words, to_byte_chars

TEXTS = [
    "Hello world", " Hello  world  ", "naïve café — Ünïcödé Ångström", "日本語のテキスト 中文 한국어",
    "emoji 😀👍🏽 ok",
    "tabs\tand\nnewlines\n\n  x\r\n", "", " ", "   ", "don't I'll we've THEY'RE", "x\u3000y\u00a0z\u200b\u2028w",
    "\x00\x1c\x1d\x85 control", "1234567 3.14159 ½ Ⅻ", "def f(x):\n    return x ** 2  # comment",
    "a<|endoftext|>b", "<s>hi</s> there <mask>!", "Hello <mask> world", "<pad><unk>", "http://example.com/a_b?c=d",
]
HF_CLASSES = {"gpt2": transformers.GPT2TokenizerFast, "roberta": transformers.RobertaTokenizerFast}


@pytest.fixture(scope="module")
def docs_lines():
    """2,000 lines of the Python docs with their newlines, as a file's lines are trained on."""
    return [line + "\n" for line in itertools.islice(python_docs_lines(), 2000)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, docs_lines):
    """A trained folder for each style and prefix-space setting."""
    out = {}
    for style, prefix in itertools.product(STYLES, (False, True)):
        folder = tmp_path_factory.mktemp(f"{style}-{prefix}")
        train_byte_bpe_from_texts(docs_lines, folder, vocab_size=700, style=style, add_prefix_space=prefix,
                                  progress=False)
        out[style, prefix] = folder
    return out


def _reference_merges(lines, vocab_size, min_frequency, specials, prefix, tmp_path):
    reference = tokenizers.ByteLevelBPETokenizer(add_prefix_space=prefix)
    reference.train_from_iterator(lines, vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(specials), show_progress=False)
    tmp_path.mkdir()
    reference.save_model(str(tmp_path))
    merges = (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()
    return json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8")), merges


# -- the pieces -----------------------------------------------------------------------------------------------


def test_byte_table_and_word_split_are_gpt2s(docs_lines):
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256 and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert set(alphabet()) == set(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    splitter = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    for text in TEXTS + varied_lines(200) + docs_lines[:200]:
        words = split_words(text)
        assert "".join(words) == text
        assert [to_byte_chars(w) for w in words] == [piece for piece, _ in splitter.pre_tokenize_str(text)], text


# -- training: the merges tokenizers learns ---------------------------------------------------------------------


@pytest.mark.parametrize("vocab_size, min_frequency, style, prefix", [
    (900, 2, "roberta", False), (600, 5, "gpt2", False), (700, 2, "roberta", True), (5000, 2, "gpt2", False),
])
def test_merges_equal_the_tokenizers_trainer(tmp_path, docs_lines, vocab_size, min_frequency, style, prefix):
    ours = train_byte_bpe_from_texts(docs_lines, tmp_path / "ours", vocab_size, min_frequency, style, prefix,
                                     progress=False)
    vocab, merges = _reference_merges(docs_lines, vocab_size, min_frequency, STYLES[style], prefix,
                                      tmp_path / "theirs")
    assert (tmp_path / "ours" / "merges.txt").read_text(encoding="utf-8").splitlines() == merges
    assert json.loads((tmp_path / "ours" / "vocab.json").read_text(encoding="utf-8")) == vocab == ours.vocab
    assert len(merges) > 300
    if vocab_size == 5000:  # min_frequency stopped it first: every pair left occurs once
        assert len(vocab) < vocab_size
    else:
        assert len(vocab) == vocab_size


def test_training_on_repetitive_text_makes_existing_tokens_again(tmp_path):
    # "aaaa…" and "abab…" runs make merges whose result is already a token (a+aa after aa+a): the tokenizers
    # trainer's bookkeeping decides what happens then, and it is copied, not approximated.
    lines = [("a" * n + " " + "ab" * (n % 7) + "b" * (n % 5) + "\n") for n in range(1, 60)] * 3
    train_byte_bpe_from_texts(lines, tmp_path / "ours", 400, 2, "gpt2", progress=False)
    vocab, merges = _reference_merges(lines, 400, 2, STYLES["gpt2"], False, tmp_path / "theirs")
    assert (tmp_path / "ours" / "merges.txt").read_text(encoding="utf-8").splitlines() == merges
    assert json.loads((tmp_path / "ours" / "vocab.json").read_text(encoding="utf-8")) == vocab


# -- encoding and decoding: transformers loading the saved folder ---------------------------------------------


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("prefix", [False, True])
def test_ids_equal_transformers_on_the_saved_folder(folders, docs_lines, style, prefix):
    folder = folders[style, prefix]
    ours, theirs = AutoTokenizer.from_pretrained(folder), HF_CLASSES[style].from_pretrained(folder)
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    assert type(ours) is (RobertaTokenizer if style == "roberta" else GPT2Tokenizer)
    assert type(auto).__name__ == type(ours).__name__ and ours.add_prefix_space is prefix
    for text in TEXTS + varied_lines(150) + docs_lines[-150:]:
        ids = ours.encode(text, add_special_tokens=False)
        assert ids == theirs.encode(text, add_special_tokens=False) == auto.encode(text, add_special_tokens=False)
        assert ours.encode(text) == theirs.encode(text), text
        assert ours.decode(ids) == theirs.decode(ids)
        assert ours.tokenize(text) == theirs.convert_ids_to_tokens(ids)
    assert ours.encode("first text", "the second") == theirs.encode("first text", "the second")
    for text in TEXTS + varied_lines(60, seed=1):  # character spans, a byte-split character spanning all of itself
        for pair in (None, " and  ünïcode 😀"):
            spans = ours(text, pair, return_offsets_mapping=True)["offset_mapping"]
            assert spans == [tuple(s) for s in theirs(text, pair, return_offsets_mapping=True)["offset_mapping"]]
    if style == "roberta":
        batch = ["a short one", "and a longer text than that"]
        for kwargs in ({"padding": True}, {"truncation": True, "max_length": 5}, {"padding": "max_length",
                                                                                  "max_length": 24}):
            ours_batch, theirs_batch = ours(batch, batch[::-1], **kwargs), theirs(batch, batch[::-1], **kwargs)
            assert ours_batch["input_ids"] == theirs_batch["input_ids"], kwargs
            assert ours_batch["attention_mask"] == theirs_batch["attention_mask"]
        assert ours(batch, padding=True, return_tensors="pt")["input_ids"].shape == (2, len(ours.encode(batch[1])))
        spelled = " Hi there" if prefix else "Hi there"  # the prefix space is part of the text the ids spell
        assert ours.decode(ours.encode("Hi there"), skip_special_tokens=True) == spelled


def test_gpt2_has_no_pad_token_to_pad_with(folders):
    tokenizer = AutoTokenizer.from_pretrained(folders["gpt2", False])
    assert tokenizer(["a", "b c"])["input_ids"] == [tokenizer.encode("a"), tokenizer.encode("b c")]
    with pytest.raises(ValueError, match="padding needs a pad token, and this GPT2Tokenizer has none"):
        tokenizer(["a", "b c"], padding=True)
    padded = GPT2Tokenizer.from_pretrained(folders["gpt2", False], pad_token="<|endoftext|>")
    assert padded(["a", "b c"], padding=True)["attention_mask"][0][-1] == 0


@pytest.mark.parametrize("style", list(STYLES))
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60))
def test_decode_encode_round_trips_any_text(folders, style, text):
    tokenizer = _tokenizer(folders, style)
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


@settings(max_examples=60, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), max_size=40))
def test_ids_equal_transformers_on_any_text(folders, text):
    ours, theirs = _tokenizer(folders, "roberta"), _hf(folders, "roberta")
    assert ours.encode(text) == theirs.encode(text)


_cache: dict = {}


def _tokenizer(folders, style):
    return _cache.setdefault(("ours", style), AutoTokenizer.from_pretrained(folders[style, False]))


def _hf(folders, style):
    return _cache.setdefault(("hf", style), HF_CLASSES[style].from_pretrained(folders[style, False]))


# -- tokenizer.json and the folders of the tokenizers library ---------------------------------------------------


@pytest.mark.parametrize("roberta", [False, True])
def test_a_byte_level_tokenizer_json_loads_with_its_ids(tmp_path, docs_lines, roberta):
    reference = tokenizers.ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>"] if roberta else ["<|endoftext|>"]
    reference.train_from_iterator(docs_lines, vocab_size=600, special_tokens=specials, show_progress=False)
    if roberta:  # roberta-base's <mask>: added after training, eating the space before it
        reference.add_special_tokens([tokenizers.AddedToken("<mask>", lstrip=True, special=True)])
        reference.post_processor = tokenizers.processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    reference.save(str(tmp_path / "tokenizer.json"))
    ours = AutoTokenizer.from_pretrained(tmp_path)
    assert type(ours) is (RobertaTokenizer if roberta else GPT2Tokenizer)
    # offsets as transformers gives them (its RobertaProcessing trims with the tokenizer's add_prefix_space)
    transformers_json = HF_CLASSES["roberta" if roberta else "gpt2"].from_pretrained(tmp_path)
    for text in TEXTS + ["a  <mask>  b", "x\t<mask>"] + varied_lines(50):
        assert ours.encode(text) == reference.encode(text).ids, text
        assert ours(text, return_offsets_mapping=True)["offset_mapping"] == [
            tuple(span) for span in transformers_json(text, return_offsets_mapping=True)["offset_mapping"]]
    assert ours.encode("a b", "c") == reference.encode("a b", "c").ids
    ours.save_pretrained(tmp_path / "copy")  # vocab.json + merges.txt + the <mask> flags, for transformers too
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path / "copy")
    assert [theirs.encode(t) for t in TEXTS] == [reference.encode(t).ids for t in TEXTS]
    # a hub-style folder: vocab.json + merges.txt beside the tokenizer.json, whose <mask> flags transformers follows
    reference.save_model(str(tmp_path))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": type(ours).__name__}))
    both, theirs = AutoTokenizer.from_pretrained(tmp_path), transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert [both.encode(t) for t in TEXTS] == [theirs.encode(t) for t in TEXTS] == [reference.encode(t).ids
                                                                                    for t in TEXTS]
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t\n", encoding="utf-8")  # stale beside tokenizer.json
    with pytest.raises(ValueError, match="merges.txt and tokenizer.json hold different merges; fix the folder"):
        AutoTokenizer.from_pretrained(tmp_path)


def test_add_prefix_space_comes_from_the_config_as_in_transformers(tmp_path, docs_lines, caplog):
    reference = tokenizers.ByteLevelBPETokenizer(add_prefix_space=True)
    reference.train_from_iterator(docs_lines, vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False)
    reference.save(str(tmp_path / "tokenizer.json"))
    theirs = transformers.GPT2TokenizerFast.from_pretrained(tmp_path)  # rebuilds the pre-tokenizer: no prefix space
    ours = AutoTokenizer.from_pretrained(tmp_path)
    assert not ours.add_prefix_space and "adds a prefix space, but transformers' tokenizers take" in caplog.text
    assert [ours.encode(t) for t in TEXTS] == [theirs.encode(t) for t in TEXTS]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"add_prefix_space": True}))
    ours, theirs = AutoTokenizer.from_pretrained(tmp_path), transformers.GPT2TokenizerFast.from_pretrained(tmp_path)
    assert [ours.encode(t) for t in TEXTS] == [theirs.encode(t) for t in TEXTS] == [reference.encode(t).ids
                                                                                    for t in TEXTS]


def test_auto_tokenizer_picks_the_class_the_folder_names(tmp_path, folders):
    folder = tmp_path / "bare"
    folder.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (folder / name).write_bytes((folders["roberta", False] / name).read_bytes())
    assert type(AutoTokenizer.from_pretrained(folder)) is GPT2Tokenizer  # nothing says otherwise: GPT-2's rules
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    assert type(AutoTokenizer.from_pretrained(folder)) is RobertaTokenizer
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "Qwen2TokenizerFast"}))
    with pytest.raises(UnsupportedTokenizer, match="names tokenizer_class 'Qwen2Tokenizer'; bertkit's byte-level "
                                                   "BPE reproduces GPT2Tokenizer and RobertaTokenizer only"):
        AutoTokenizer.from_pretrained(folder)


# -- the command line -----------------------------------------------------------------------------------------


def test_cli_trains_a_folder_transformers_loads(tmp_path, docs_lines, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(docs_lines), encoding="utf-8")
    out = tmp_path / "tok"
    argv = ["train-tokenizer", str(corpus), "--model-type", "byte-bpe", "--vocab-size", "800", "-o", str(out)]
    assert main(argv) == 0
    assert "vocab.json + merges.txt (800 tokens)" in capsys.readouterr().err
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    theirs = transformers.AutoTokenizer.from_pretrained(out)
    ours = AutoTokenizer.from_pretrained(out)
    assert type(theirs).__name__ == "RobertaTokenizer" and len(theirs) == len(ours) == 800
    assert [ours.encode(t) for t in TEXTS] == [theirs.encode(t) for t in TEXTS]
    reference = tokenizers.ByteLevelBPETokenizer()
    (tmp_path / "ref").mkdir()
    reference.train([str(corpus)], vocab_size=800, special_tokens=list(STYLES["roberta"]), show_progress=False)
    reference.save_model(str(tmp_path / "ref"))  # tokenizers' own file training: one text per line, like ours
    assert (tmp_path / "ref" / "merges.txt").read_text() == (out / "merges.txt").read_text()

    capsys.readouterr()
    assert main(["tokenize", "--model", str(out), "a naïve"]) == 0  # the folder's own tokenizer, not WordPiece's
    printed = capsys.readouterr().out.split("\n")
    assert printed[0].split() == ours.convert_ids_to_tokens(ours.encode("a naïve"))
    assert printed[1].split() == [str(i) for i in ours.encode("a naïve")]
    assert main([*argv[:-2], "--style", "gpt2", "--add-prefix-space", "-o", str(tmp_path / "gpt2")]) == 0
    gpt2 = transformers.AutoTokenizer.from_pretrained(tmp_path / "gpt2")
    assert type(gpt2).__name__ == "GPT2Tokenizer" and gpt2.encode("the") == AutoTokenizer.from_pretrained(
        tmp_path / "gpt2").encode("the") == [gpt2.convert_tokens_to_ids("Ġthe")]
    capsys.readouterr()
    assert main([*argv[:-4], "--vocab-size", "200", "-o", str(tmp_path / "small")]) == 2
    assert "vocab_size=200 is smaller than the 5 special token(s) + the 256 byte characters = 261" in \
        capsys.readouterr().err
    assert main([*argv, "--cased"]) == 2
    assert "--cased does not apply to --model-type byte-bpe" in capsys.readouterr().err
    assert main(["train-tokenizer", str(corpus), "--style", "gpt2", "-o", str(out)]) == 2
    assert "--style does not apply to --model-type wordpiece" in capsys.readouterr().err


# -- bad input ------------------------------------------------------------------------------------------------


def test_training_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=r"the training corpus holds no text \(empty files\?\)"):
        train_byte_bpe([empty], tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="training file not found"):
        train_byte_bpe([tmp_path / "missing.txt"], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=r"vocab_size=256 is smaller than the 1 special token\(s\) \+ the 256 byte"):
        train_byte_bpe_from_texts(["text"], tmp_path / "out", vocab_size=256, style="gpt2")
    with pytest.raises(ValueError, match="style must be one of"):
        train_byte_bpe_from_texts(["text"], tmp_path / "out", style="bert")
    assert not (tmp_path / "out").exists()


def _copy(folder, tmp_path, **replace):
    out = tmp_path / "broken"
    out.mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        if name in replace:
            if replace[name] is not None:
                (out / name).write_text(replace[name], encoding="utf-8")
        else:
            (out / name).write_bytes((folder / name).read_bytes())
    return out


@pytest.mark.parametrize("replace, error, message", [
    ({"merges.txt": None}, FileNotFoundError, r"broken holds vocab.json but no merges.txt: a byte-level BPE "
                                              r"tokenizer \(GPT-2 / RoBERTa\) needs both"),
    ({"vocab.json": "{not json"}, ValueError, r"vocab.json is not valid JSON"),
    ({"vocab.json": "[1, 2]"}, ValueError, r"vocab.json must be a non-empty JSON object mapping tokens to ids"),
    ({"vocab.json": '{"a": 0, "b": "1"}'}, ValueError, r"token 'b' has id '1'; every id must be a non-negative"),
    ({"vocab.json": '{"a": 0, "b": 0}'}, ValueError, r"id 0 is given to more than one token"),
    ({"vocab.json": '{"a": 0, "b": 1}'}, ValueError, r"the vocabulary lacks 254 of the 256 byte characters"),
    ({"merges.txt": "#version: 0.2\nĠ t\nnot-a-merge\n"}, ValueError, r"merges.txt line 3 is not a merge rule"),
    ({"merges.txt": "Ġ t\nĠt zzzz\n"}, ValueError, r"merge rule 1 \('Ġt' \+ 'zzzz'\) uses 'zzzz', which is not in"),
])
def test_broken_folders_are_refused_clearly(tmp_path, folders, replace, error, message):
    folder = _copy(folders["roberta", False], tmp_path, **replace)
    with pytest.raises(error, match=message):
        AutoTokenizer.from_pretrained(folder)


def test_byte_level_bpe_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys, bertkit.tokenization.gpt2, bertkit.tokenization.byte_bpe_training; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("style", list(STYLES))
def test_special_tokens_missing_from_vocab_json_get_new_ids_as_in_transformers(tmp_path, docs_lines, style):
    reference = tokenizers.ByteLevelBPETokenizer()  # trained without special tokens: vocab.json lacks them
    reference.train_from_iterator(docs_lines[:300], vocab_size=400, show_progress=False)
    reference.save_model(str(tmp_path))
    ours = (RobertaTokenizer if style == "roberta" else GPT2Tokenizer).from_pretrained(tmp_path)
    theirs = HF_CLASSES[style].from_pretrained(tmp_path)
    assert ours.get_vocab() == theirs.get_vocab() and len(ours) > 400
    text = "hello <s> world</s><mask> <pad> <|endoftext|>"
    assert ours.encode(text) == theirs.encode(text)
