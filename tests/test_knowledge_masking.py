"""ERNIE's knowledge masking (masking: phrase / entity): units from a list file (or jieba's words) masked whole with
the 80/10/10 rule, never across a word's inside or a document boundary; bad inputs refused by name."""

import random

import pytest

from bertkit.pretraining.config import PretrainingConfig
from bertkit.pretraining.instances import SpecialIds, create_instances
from bertkit.pretraining.masking import MaskingConfig, mask_instance
from bertkit.pretraining.tokenized import tokenize_documents
from bertkit.pretraining.units import load_units
from bertkit.tokenization import BertTokenizer

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "moved", "to", "new", "york", "for", "the", "united",
         "nations", "job", ".", "##ers", "love", "city", "work", "at", "and", "in", "a"]


@pytest.fixture
def tokenizer(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    return BertTokenizer(tmp_path / "vocab.txt")


@pytest.fixture
def units_file(tmp_path):
    path = tmp_path / "entities.txt"
    path.write_text("New York\n\n  United   Nations \n")
    return path


def units_of(sentence, tokenizer):
    """The token runs that form one word: a start and the non-starts after it."""
    runs = []
    for token, starts in zip(tokenizer.convert_ids_to_tokens(sentence.ids), sentence.word_starts, strict=True):
        if starts:
            runs.append([token])
        else:
            runs[-1].append(token)
    return runs


def test_listed_units_become_one_word_only_on_word_boundaries(tokenizer, units_file):
    units = load_units(units_file)
    assert units == ["New York", "United Nations"]
    (document,) = tokenize_documents([["I moved to New York for the United Nations job.", "new yorkers love new york"]],
                                     tokenizer, progress=False, units=units)
    assert units_of(document[0], tokenizer) == [["i"], ["moved"], ["to"], ["new", "york"], ["for"], ["the"],
                                                ["united", "nations"], ["job"], ["."]]
    # "new yorkers": the match would end inside a word, so it is not the unit; the second "new york" is
    assert units_of(document[1], tokenizer) == [["new"], ["york", "##ers"], ["love"], ["new", "york"]]


def test_units_never_span_two_documents(tokenizer, units_file):
    documents = tokenize_documents([["i love new"], ["york and the city"]] * 3, tokenizer, progress=False,
                                   units=load_units(units_file))
    assert all(all(sentence.word_starts[0] for sentence in document) for document in documents)
    special = SpecialIds(cls=2, sep=3, pad=0, mask=4)
    instances = create_instances(documents, 16, special, random.Random(0), "nsp", 0.0)
    for instance in instances:  # "new" (end of one document) and "york" (start of the next) stay two words
        for i in range(len(instance.input_ids) - 1):
            if instance.input_ids[i:i + 2] == [8, 9]:
                pytest.fail("a unit across two documents")


def test_entities_are_masked_whole_with_the_80_10_10_rule(tokenizer, units_file):
    (document,) = tokenize_documents([["i moved to new york for the united nations job ."] * 1], tokenizer,
                                     progress=False, units=load_units(units_file))
    sentence = document[0]
    config = MaskingConfig(strategy="entity", mlm_probability=0.3, max_predictions_per_seq=20)
    rng = random.Random(0)
    kinds, whole = {"mask": 0, "random": 0, "kept": 0}, 0
    for _ in range(3000):
        out = mask_instance(sentence.ids, sentence.word_starts, [True] * len(sentence.ids), 4, len(WORDS), config,
                            rng)
        chosen = set(out.masked_positions)
        for unit in ([3, 4], [7, 8]):  # new york, united nations
            assert chosen.isdisjoint(unit) or chosen.issuperset(unit)
            whole += chosen.issuperset(unit)
        for position in chosen:
            assert out.labels[position] == sentence.ids[position]
            kind = "mask" if out.input_ids[position] == 4 else \
                "kept" if out.input_ids[position] == sentence.ids[position] else "random"
            kinds[kind] += 1
    assert whole > 500
    total = sum(kinds.values())
    assert abs(kinds["mask"] / total - 0.8) < 0.02
    assert abs((kinds["random"] + kinds["kept"]) / total - 0.2) < 0.02


def test_bad_unit_files_and_settings_are_refused(tmp_path, units_file):
    with pytest.raises(FileNotFoundError, match="units_file .*missing.txt does not exist"):
        load_units(tmp_path / "missing.txt")
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(ValueError, match="holds no phrase or entity"):
        load_units(tmp_path / "blank.txt")
    (tmp_path / "latin1.txt").write_bytes("Paris\nZürich\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt:2 is not UTF-8"):
        load_units(tmp_path / "latin1.txt")
    with pytest.raises(ValueError, match="masking: entity needs units_file"):
        PretrainingConfig(masking="entity")
    with pytest.raises(ValueError, match="masking: phrase needs units_file .* word_boundaries: jieba"):
        PretrainingConfig(masking="phrase")
    with pytest.raises(ValueError, match="units_file is read by masking: phrase or entity"):
        PretrainingConfig(masking="whole_word", units_file=str(units_file))
    with pytest.raises(ValueError, match="does not exist"):
        PretrainingConfig(masking="entity", units_file=str(tmp_path / "missing.txt"))
    assert PretrainingConfig(masking="phrase", word_boundaries="jieba").masking_config().strategy == "phrase"
    assert PretrainingConfig(masking="entity", units_file=str(units_file)).units_file == str(units_file)


def test_chinese_phrases_from_a_list_join_jieba_words(chinese_vocab, tmp_path):
    tokenizer = BertTokenizer(chinese_vocab)
    (tmp_path / "phrases.txt").write_text("机器学习\n")  # jieba: 机器 | 学习
    text = "我们在北京大学学习机器学习"
    words = tokenize_documents([[text]], tokenizer, "jieba", progress=False)[0][0]
    assert ["".join(run) for run in units_of(words, tokenizer)] == ["我们", "在", "北京大学", "学习", "机器", "学习"]
    phrases = tokenize_documents([[text]], tokenizer, "jieba", progress=False,
                                 units=load_units(tmp_path / "phrases.txt"))[0][0]
    assert ["".join(run) for run in units_of(phrases, tokenizer)] == ["我们", "在", "北京大学", "学习", "机器学习"]


@pytest.mark.parametrize("architecture", ["ernie", "nezha"])
def test_pretraining_an_ernie_or_nezha_with_entity_masking(minilm_dir, tmp_path, units_file, architecture):
    from bertkit.model import AutoModel
    from bertkit.pretraining import run_pretraining

    sentences = ["i moved to new york for the united nations job .", "the city is loud and the work is long .",
                 "new york never sleeps .", "she works for the united nations in new york ."]
    (tmp_path / "corpus.txt").write_text("\n\n".join("\n".join(sentences[i:] + sentences[:i]) for i in range(4)))
    summary = run_pretraining(PretrainingConfig(
        corpus=[str(tmp_path / "corpus.txt")], tokenizer=str(minilm_dir), architecture=architecture,
        masking="entity", units_file=str(units_file), model_preset="tiny", max_seq_length=32, batch_size=4,
        max_steps=2, warmup_steps=1, eval_fraction=0, progress=False, output_dir=str(tmp_path / "out")))
    assert summary["steps"] == 2
    model = AutoModel.from_pretrained(tmp_path / "out" / "model")
    assert model.config.model_type == architecture and type(model).__name__ == architecture.capitalize() + "Model"


def test_explain_masking_draws_entities_whole(tokenizer, units_file):
    from bertkit.pretraining.explain import explain_masking

    config = MaskingConfig(strategy="entity", mlm_probability=0.4)
    for seed in range(20):
        table = explain_masking("i moved to new york for the united nations job .", tokenizer, config, seed=seed,
                                units=load_units(units_file))
        rows = {line.split()[1]: line for line in table.splitlines()[1:] if line[:1].isdigit()}
        for a, b in (("new", "york"), ("united", "nations")):
            assert ("%" in rows[a]) == ("%" in rows[b])  # chosen together or not at all
    with pytest.raises(ValueError, match="give --units-file"):
        explain_masking("i moved to new york .", tokenizer, config)
