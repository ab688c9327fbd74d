"""The cloze set (bertkit.pretraining.cloze) and ``bertkit evaluate``: items built from held-out real text are single
vocabulary tokens at the masked place, the scorer's top-1 / top-5 equal transformers' BertForMaskedLM item by item,
bad input is named, and the commands round-trip."""

import json
import re
import shutil
from collections import Counter

import pytest
import torch
import transformers

from bertkit.cli import main
from bertkit.model import AutoModelForMaskedLM
from bertkit.pretraining import PretrainingConfig
from bertkit.pretraining.cloze import (
    STOP_WORDS,
    build_cloze,
    cloze_jsonl,
    held_out_sentences,
    part_of_speech,
    read_cloze,
    score_cloze,
)
from bertkit.pretraining.documents import read_documents
from bertkit.pretraining.run import split_documents
from bertkit.pretraining.sources import write_corpus
from bertkit.tokenization import AutoTokenizer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Rotten Tomatoes reviews (real text) in the corpus format: a sentence a line, blank lines between documents."""
    path = tmp_path_factory.mktemp("cloze") / "corpus.txt"
    write_corpus(["rotten-tomatoes"], path)
    return path


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory, minilm_dir, corpus):
    """A tiny random transformers BertForMaskedLM on MiniLM's vocabulary, the output biases of the cloze set's
    commonest answers raised (by different amounts) so that some answers are guessed, top-1 or top-5, and most not."""
    folder = tmp_path_factory.mktemp("mlm")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=128)
    model = transformers.BertForMaskedLM(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    answers = Counter(item.answer for item in build_cloze(held_out_sentences(corpus), tokenizer, n=120, seed=0))
    with torch.no_grad():
        for rank, (token, _) in enumerate(answers.most_common(12)):
            model.cls.predictions.bias[tokenizer.vocab[token]] += 0.1 * (rank + 1)
    model.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def held_out_by_pretraining(path) -> set[str]:
    """The sentences run_pretraining holds out of this corpus with eval_fraction 0.05 (its own split)."""
    config = PretrainingConfig(corpus=[str(path)], eval_fraction=0.05)
    return {sentence for document in split_documents(config, read_documents(config.corpus))[1] for sentence in document}


def test_items_are_single_tokens_that_the_held_out_text_holds(corpus, minilm_dir):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    theirs = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    items = build_cloze(held_out_sentences(corpus, 0.05), tokenizer, n=80, seed=3)
    assert len(items) == 80
    lines = corpus.read_text(encoding="utf-8").split("\n")
    held_out = held_out_by_pretraining(corpus)
    for item in items:
        sentence = item.text.replace("[MASK]", item.word)
        assert sentence in held_out and sentence in lines[item.line - 1].strip()  # held out, at its line
        assert item.text.count("[MASK]") == 1
        assert item.word.isalpha() and len(item.word) >= 3 and item.word.lower() not in STOP_WORDS
        original, masked = theirs.tokenize(sentence), theirs.tokenize(item.text)
        position = masked.index("[MASK]")
        # the answer is the one token at the masked place; every other token is unchanged
        assert original[position] == item.answer and original[:position] + original[position + 1:] == \
            masked[:position] + masked[position + 1:]
        assert theirs.convert_tokens_to_ids(item.answer) != theirs.unk_token_id
    assert len({item.line for item in items}) == len(items)  # one item per sentence


def test_the_seed_decides_the_items(corpus, minilm_dir):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    sentences = held_out_sentences(corpus, 0.05)
    first, again = (cloze_jsonl(build_cloze(sentences, tokenizer, n=30, seed=1)) for _ in range(2))
    assert first == again != cloze_jsonl(build_cloze(sentences, tokenizer, n=30, seed=2))


@pytest.mark.parametrize(("sentence", "word", "pos"), [
    ("They can conquer the hill.", "conquer", "verb"), ("It was very careless of them.", "careless", "adjective"),
    ("He came to the end.", "end", "noun"), ("The idea of it.", "idea", "noun"),
    ("She sang beautifully here.", "beautifully", "adverb"), ("A bunch of exotic creatures here.", "creatures", "noun"),
    ("Their celebration lasted.", "celebration", "noun"), ("A xyzw fell.", "xyzw", "other"),
])
def test_part_of_speech_guesses(sentence, word, pos):
    start = sentence.index(word)
    before = sentence[:start].split()
    assert part_of_speech(word, before[-1] if before else "", sentence[start + len(word):]) == pos


def transformers_top5(folder, texts):
    """The 5 most probable tokens at each text's mask, by transformers' BertForMaskedLM and its tokenizer."""
    tokenizer = transformers.BertTokenizerFast.from_pretrained(folder)
    model = transformers.BertForMaskedLM.from_pretrained(folder).eval()
    tops = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, return_tensors="pt")
            position = encoded["input_ids"][0].tolist().index(tokenizer.mask_token_id)
            ids = model(**encoded).logits[0, position].topk(5).indices.tolist()
            tops.append(tokenizer.convert_ids_to_tokens(ids))
    return tops


def test_scores_equal_transformers_item_by_item(corpus, mlm_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(mlm_dir)
    cloze = tmp_path / "cloze.jsonl"
    cloze.write_text(cloze_jsonl(build_cloze(held_out_sentences(corpus), tokenizer, n=120, seed=0)), encoding="utf-8")
    items = read_cloze(cloze, tokenizer, 128)
    scores = score_cloze(AutoModelForMaskedLM.from_pretrained(mlm_dir), tokenizer, items)
    tops = transformers_top5(mlm_dir, [item["text"] for item in items])
    top1 = [top[0] == item["answer"] for top, item in zip(tops, items, strict=True)]
    top5 = [item["answer"] in top for top, item in zip(tops, items, strict=True)]
    assert [r["top1"] for r in scores["results"]] == top1 and [r["top5"] for r in scores["results"]] == top5
    assert 0 < sum(top1) < sum(top5) < len(items)  # some right at once, some only in the top 5, some wrong
    assert scores["top1"] == sum(top1) / len(items) and scores["top5"] == sum(top5) / len(items)
    for pos, row in scores["by_pos"].items():
        mine = [i for i, item in enumerate(items) if item["pos"] == pos]
        assert row == {"items": len(mine), "top1": sum(top1[i] for i in mine) / len(mine),
                       "top5": sum(top5[i] for i in mine) / len(mine)}
    assert sum(row["items"] for row in scores["by_pos"].values()) == len(items)


@pytest.mark.parametrize(("line", "message"), [
    ({"text": "the [MASK] was long .", "answer": "xyzzyplugh"},
     "line 2: the answer 'xyzzyplugh' is not one token of the model's vocabulary (it tokenizes as"),
    ({"text": "the film was long .", "answer": "film"}, "line 2: the text must hold exactly one [MASK], it holds 0"),
    ({"text": "the [MASK] was [MASK] .", "answer": "film"},
     "line 2: the text must hold exactly one [MASK], it holds 2"),
    ({"text": "the [MASK] was long .", "answer": "[SEP]"}, "line 2: the answer '[SEP]' is not one token"),
    ({"text": "the [MASK] was long ."}, "line 2: each line needs a JSON object with \"text\" and \"answer\""),
])
def test_bad_lines_are_named(tmp_path, minilm_dir, line, message):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    cloze = tmp_path / "bad.jsonl"
    good = {"text": "the [MASK] was long .", "answer": "film"}
    cloze.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape("bad.jsonl " + message)):
        read_cloze(cloze, tokenizer, 128)


def test_a_text_longer_than_the_model_is_named(tmp_path, minilm_dir):
    cloze = tmp_path / "long.jsonl"
    cloze.write_text(json.dumps({"text": "word " * 200 + "[MASK] .", "answer": "film"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1: the text is 204 tokens, over the model's 128"):
        read_cloze(cloze, AutoTokenizer.from_pretrained(minilm_dir), 128)


def test_a_model_without_an_mlm_head_is_refused(tmp_path, minilm_dir, capsys):
    cloze = tmp_path / "c.jsonl"
    cloze.write_text(json.dumps({"text": "the [MASK] was long .", "answer": "film"}) + "\n", encoding="utf-8")
    assert main(["evaluate", "fill-mask", "--model", str(minilm_dir), "--cloze", str(cloze)]) == 2
    assert f"error: {minilm_dir} has no masked-LM head: its guesses would be random" in capsys.readouterr().err
    assert not (tmp_path / "c.scores.json").exists()


def test_commands_round_trip(corpus, mlm_dir, tmp_path, capsys):
    cloze, scores = tmp_path / "cloze.jsonl", tmp_path / "scores.json"
    assert main(["evaluate", "build-cloze", "--corpus", str(corpus), "--model", str(mlm_dir), "-o", str(cloze),
                 "--n", "60", "--held-out-fraction", "0.05", "--seed", "4"]) == 0
    assert "wrote 60 cloze items" in capsys.readouterr().out
    tokenizer = AutoTokenizer.from_pretrained(mlm_dir)
    assert cloze.read_text(encoding="utf-8") == cloze_jsonl(
        build_cloze(held_out_sentences(corpus, 0.05), tokenizer, n=60, seed=4))
    assert main(["evaluate", "fill-mask", "--model", str(mlm_dir), "--cloze", str(cloze), "-o", str(scores)]) == 0
    printed = capsys.readouterr().out
    written = json.loads(scores.read_text(encoding="utf-8"))
    items = [json.loads(line) for line in cloze.read_text(encoding="utf-8").splitlines()]
    tops = transformers_top5(mlm_dir, [item["text"] for item in items])
    assert written["top1"] == sum(t[0] == i["answer"] for t, i in zip(tops, items, strict=True)) / len(items)
    assert written["top5"] == sum(i["answer"] in t for t, i in zip(tops, items, strict=True)) / len(items)
    assert f"all              60 {written['top1']:>7.1%} {written['top5']:>7.1%}" in printed
    assert f"wrote {scores}" in printed
