"""Prompt-based fine-tuning (``method: prompt``, PET / LM-BFF: bertkit/finetuning/prompt.py) against its oracles:
transformers' BertForMaskedLM / RobertaForMaskedLM with the same tiny random weights (the logits at the mask
position this test finds itself), PET's loss written here in float64, a few-shot run on a synthetic task, and the
saved folder read back by bertkit predict and by transformers."""

import csv
import json

import pytest
import tokenizers
import torch
import transformers
from finetuning_fixtures import save_tiny_model, sentiment_examples, tiny_tokenizer

from bertkit.cli import main
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import LabelMap
from bertkit.finetuning.predict import PromptClassifier, load_predictor
from bertkit.finetuning.prompt import encode_prompt, verbalizer_ids
from bertkit.finetuning.prompt_train import PromptTask, build_prompt_model, prompt_labels
from bertkit.finetuning.train import finetune, load_splits
from bertkit.tokenization import AutoTokenizer
from bertkit.tokenization.unigram_training import train_unigram_folder

PATTERN = "{text} It was [MASK]."
VERBALIZER = {"pos": "great", "neg": "awful"}


def save_bert_mlm(folder, noise: float = 0.0, kind: str = "bert"):
    """A random 2-layer transformers BertForMaskedLM (hidden 32; ``kind="electra"``: ELECTRA's generator, embeddings
    of 16) over the tiny WordPiece vocabulary; ``noise`` moves every weight (biases and LayerNorms too, which start
    at 0 and 1) so that no part of the head is invisible."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    sizes = {"vocab_size": tokenizer.vocab_size, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 64}
    model = transformers.ElectraForMaskedLM(transformers.ElectraConfig(embedding_size=16, **sizes)) \
        if kind == "electra" else transformers.BertForMaskedLM(transformers.BertConfig(**sizes))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter += noise * torch.randn_like(parameter)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    return save_bert_mlm(tmp_path_factory.mktemp("bert-mlm"), noise=0.1)


@pytest.fixture(scope="module")
def albert_folder(tmp_path_factory):
    """A random transformers AlbertForMaskedLM over a SentencePiece Unigram tokenizer trained here by bertkit."""
    folder = tmp_path_factory.mktemp("albert-mlm")
    text = folder / "text.txt"
    text.write_text("\n".join(e["text"] + ". It was great." for e in sentiment_examples(300)) + "\nit was awful" * 30,
                    encoding="utf-8")
    tokenizer = train_unigram_folder([str(text)], folder, 120, "albert", character_coverage=1.0)
    torch.manual_seed(0)
    model = transformers.AlbertForMaskedLM(transformers.AlbertConfig(
        vocab_size=len(tokenizer), embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter += 0.1 * torch.randn_like(parameter)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def electra_folder(tmp_path_factory):
    return save_bert_mlm(tmp_path_factory.mktemp("electra-generator"), noise=0.1, kind="electra")


@pytest.fixture(scope="module")
def learner_folder(tmp_path_factory):
    return save_bert_mlm(tmp_path_factory.mktemp("bert-mlm-init"))


@pytest.fixture(scope="module")
def roberta_folder(tmp_path_factory):
    """A random transformers RobertaForMaskedLM over a byte-level BPE trained here (roberta-base's <mask> rule)."""
    folder = tmp_path_factory.mktemp("roberta-mlm")
    lines = [e["text"] + ". It was great." for e in sentiment_examples(200)] + ["it was awful"] * 50
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(lines, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                            show_progress=False)
    bpe.add_special_tokens([tokenizers.AddedToken("<mask>", lstrip=True, special=True)])
    bpe.post_processor = tokenizers.processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    bpe.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    model = transformers.RobertaForMaskedLM(transformers.RobertaConfig(
        vocab_size=bpe.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=66, pad_token_id=1))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter += 0.1 * torch.randn_like(parameter)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """train / dev / test CSV files of the synthetic sentiment task (a sentiment word among filler words)."""
    folder = tmp_path_factory.mktemp("prompt-data")
    for name, n, seed in (("train", 200, 0), ("dev", 60, 1), ("test", 60, 2)):
        with open(folder / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, ["text", "label"])
            writer.writeheader()
            writer.writerows(sentiment_examples(n, seed))
    return folder


def prompt_config(**options) -> FinetuneConfig:
    return FinetuneConfig(**{"method": "prompt", "pattern": PATTERN, "verbalizer": VERBALIZER, "max_length": 48,
                             "progress": False, "threads": 1} | options)


def oracle_scores(hf_model, hf_tokenizer, input_ids, attention_mask, words) -> torch.Tensor:
    """transformers' logits at each row's mask (found here), at the words' ids, in float64."""
    with torch.no_grad():
        logits = hf_model(input_ids=input_ids, attention_mask=attention_mask).logits.double()
    rows = torch.arange(len(input_ids))
    positions = torch.tensor([row.tolist().index(hf_tokenizer.mask_token_id) for row in input_ids])
    return logits[rows, positions][:, hf_tokenizer.convert_tokens_to_ids(words)]


@pytest.mark.parametrize("case", ["bert", "roberta", "albert", "electra"])
def test_scores_are_transformers_mlm_logits_at_the_mask(request, case):
    folder = request.getfixturevalue(f"{case}_folder")
    ours, theirs = AutoTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    hf_model = transformers.AutoModelForMaskedLM.from_pretrained(folder).eval()
    config, labels = prompt_config(), LabelMap(list(VERBALIZER))
    model, task = build_prompt_model(config, folder, ours, labels).eval(), PromptTask(config, ours, labels)
    examples = sentiment_examples(7, seed=3)
    # the input is the filled pattern as transformers' tokenizer reads it, [MASK] as the tokenizer's own mask
    filled = [f"{e['text']} It was {theirs.mask_token}." for e in examples]
    assert [f["input_ids"] for f in task.features(examples)] == [theirs(t)["input_ids"] for t in filled]
    # the verbaliser word as the model predicts it after a space: RoBERTa's Ġ form (ALBERT's ▁), not the bare word
    words = [{"roberta": "Ġ", "albert": "▁"}.get(case, "") + VERBALIZER[label] for label in labels.labels]
    assert verbalizer_ids(ours, PATTERN, VERBALIZER, labels.labels) == theirs.convert_tokens_to_ids(words)
    if case == "roberta":
        assert theirs.convert_tokens_to_ids("great") != theirs.convert_tokens_to_ids("Ġgreat")
    padded = theirs(filled, padding=True, return_tensors="pt")
    expected = oracle_scores(hf_model, theirs, padded["input_ids"], padded["attention_mask"], words)
    scores = torch.as_tensor(task.predict(model, examples), dtype=torch.float64)
    assert (scores - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("weight", [0.0, 0.25])
def test_the_loss_is_pets(bert_folder, weight):
    """(1 − α) · cross-entropy over the verbaliser scores + α · the MLM loss of the masked copy, by hand."""
    tokenizer, theirs = AutoTokenizer.from_pretrained(bert_folder), transformers.AutoTokenizer.from_pretrained(
        bert_folder)
    hf_model = transformers.BertForMaskedLM.from_pretrained(bert_folder).eval()
    config, labels = prompt_config(prompt_mlm_weight=weight), LabelMap(list(VERBALIZER))
    model, task = build_prompt_model(config, bert_folder, tokenizer, labels).eval(), PromptTask(config, tokenizer,
                                                                                                  labels)
    batch = task.collate(task.features(sentiment_examples(8, seed=4)))
    loss = model(**batch).loss
    scores = oracle_scores(hf_model, theirs, batch["input_ids"], batch["attention_mask"], list(VERBALIZER.values()))
    cross_entropy = (scores.logsumexp(1) - scores.gather(1, batch["labels"][:, None])[:, 0]).mean()
    expected = cross_entropy
    if weight:
        targets = batch["mlm_labels"]
        chosen = targets != -100
        assert chosen.any() and not chosen[batch["input_ids"] == tokenizer.mask_token_id].any()  # never the cloze
        assert not chosen[:, 0].any() and not chosen[batch["input_ids"] == tokenizer.sep_token_id].any()
        with torch.no_grad():
            logits = hf_model(input_ids=batch["mlm_input_ids"], attention_mask=batch["attention_mask"]).logits
        picked = logits.double()[chosen]
        mlm = (picked.logsumexp(1) - picked.gather(1, targets[chosen][:, None])[:, 0]).mean()
        expected = (1 - weight) * cross_entropy + weight * mlm
    else:
        assert "mlm_input_ids" not in batch
    assert abs(loss.item() - expected.item()) <= 1e-5


def test_a_few_shot_run_learns_and_its_folder_predicts_the_same_labels(learner_folder, data_dir, tmp_path,
                                                                       capsys):
    files = [f"model={learner_folder}", f"train_file={data_dir / 'train.csv'}", f"dev_file={data_dir / 'dev.csv'}",
             f"test_file={data_dir / 'test.csv'}", "max_length=32", "threads=1"]
    verbalizer = json.dumps(VERBALIZER)
    # zero-shot through the command line: epochs=0 scores the untrained MLM head and saves it
    assert main(["finetune", "method=prompt", f"verbalizer={verbalizer}", "epochs=0", f"output_dir={tmp_path / 'zero'}",
                 *files, "--pattern", PATTERN, "--progress", "false"]) == 0
    zero = json.loads(capsys.readouterr().out)
    assert (tmp_path / "zero" / "best" / "prompt.json").is_file()
    run = finetune(prompt_config(
        model=str(learner_folder), train_file=str(data_dir / "train.csv"), dev_file=str(data_dir / "dev.csv"),
        test_file=str(data_dir / "test.csv"), max_length=32, epochs=20, learning_rate=1e-3, batch_size=8,
        train_examples_per_class=32, prompt_mlm_weight=0.0, output_dir=str(tmp_path / "run")))
    assert json.loads((tmp_path / "run" / "results.json").read_text())["sizes"]["train"] == 64
    losses = [r["loss"] for r in run.history if r["split"] == "train"]
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3])
    assert run.test["accuracy"] >= zero["test"]["accuracy"] + 0.15
    # the saved folder: bertkit predict's labels are transformers' argmax over the verbaliser at the mask
    best = tmp_path / "run" / "best"
    predictor = load_predictor(best)
    assert isinstance(predictor, PromptClassifier)
    examples = sentiment_examples(60, seed=2)
    predicted = [p["label"] for p in predictor.predict([e["text"] for e in examples])]
    theirs = transformers.AutoTokenizer.from_pretrained(best)
    padded = theirs([f"{e['text']} It was {theirs.mask_token}." for e in examples], padding=True, return_tensors="pt")
    scores = oracle_scores(transformers.BertForMaskedLM.from_pretrained(best).eval(), theirs, padded["input_ids"],
                           padded["attention_mask"], list(VERBALIZER.values()))
    assert predicted == [list(VERBALIZER)[i] for i in scores.argmax(1).tolist()]
    correct = sum(p == e["label"] for p, e in zip(predicted, examples, strict=True))
    assert correct / len(examples) == pytest.approx(run.test["accuracy"])
    # and through the command line
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(e["text"] + "\n" for e in examples[:5]), encoding="utf-8")
    assert main(["predict", str(texts), "--model", str(best)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["label"] for line in lines] == predicted[:5]


def test_few_shot_samples_are_seeded_and_shared_by_both_methods(data_dir):
    def train(**options) -> list[dict]:
        files = {"train_file": str(data_dir / "train.csv"), "dev_file": str(data_dir / "dev.csv")}
        return load_splits(FinetuneConfig(**files, progress=False, **options))["train"]

    plain, prompted = train(train_examples_per_class=16, seed=1), train(train_examples_per_class=16, seed=1,
                                                                        method="prompt", pattern=PATTERN,
                                                                        verbalizer=VERBALIZER)
    assert plain == prompted
    assert sorted(e["label"] for e in plain) == ["neg"] * 16 + ["pos"] * 16
    everything = train()
    assert all(e in everything for e in plain) and train(train_examples_per_class=16, seed=2) != plain
    assert len(train(train_examples_per_class=500)) == len(everything)  # fewer than asked: all of them


def test_a_long_text_loses_its_end_never_the_pattern(bert_folder):
    tokenizer, theirs = AutoTokenizer.from_pretrained(bert_folder), transformers.AutoTokenizer.from_pretrained(
        bert_folder)
    text = " ".join(["the film was good and fun"] * 10)
    ids, at = encode_prompt(tokenizer, PATTERN, text, None, 20)
    tail = theirs(f"It was {theirs.mask_token}.", add_special_tokens=False)["input_ids"]
    kept = len(ids) - 2 - len(tail)
    assert len(ids) == 20 and ids[at] == tokenizer.mask_token_id and ids[-len(tail) - 1:-1] == tail
    assert ids[1:1 + kept] == theirs(text, add_special_tokens=False)["input_ids"][:kept]
    ids, _ = encode_prompt(tokenizer, PATTERN, f"good {tokenizer.mask_token} fun", None, 20)  # one mask only
    assert ids.count(tokenizer.mask_token_id) == 1


@pytest.mark.parametrize("options,message", [
    ({"pattern": "{text} It was good."}, r"exactly one \[MASK\].*got 0"),
    ({"pattern": "{text} [MASK] and [MASK]."}, r"exactly one \[MASK\].*got 2"),
    ({"pattern": "It was [MASK]."}, r"\{text\} exactly once"),
    ({"pattern": "{sentence} It was [MASK]."}, r"unknown field\(s\) \['\{sentence\}'\]"),
    ({"verbalizer": {"pos": "great"}}, "at least two labels"),
    ({"verbalizer": {"pos": "great", "neg": "great"}}, r"the word\(s\) \['great'\] to several labels"),
    ({"task": "regression"}, "method: prompt classifies"),
    ({"prompt_mlm_weight": 1.0}, r"prompt_mlm_weight must be in \[0, 1\)"),
    ({"peft": "lora"}, "drop peft"),
    ({"method": "cloze"}, "method must be one of"),
    ({"method": "classifier", "epochs": 0}, "got 0 .zero-shot scoring, epochs: 0, needs method: prompt"),
    ({"epochs": 0, "max_steps": 10}, "drop max_steps"),
])
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        prompt_config(**options)


def test_a_verbaliser_word_of_several_tokens_is_refused_naming_its_pieces(bert_folder, roberta_folder):
    bert, roberta = AutoTokenizer.from_pretrained(bert_folder), AutoTokenizer.from_pretrained(roberta_folder)
    with pytest.raises(ValueError, match=r"word 'goods' \(label 'pos'\) is 2 tokens of this vocabulary "
                                         r"\['good', '##s'\]"):
        verbalizer_ids(bert, PATTERN, {"pos": "goods", "neg": "awful"}, ["pos", "neg"])
    pieces = roberta.convert_ids_to_tokens(roberta.text_to_ids(" superbly"))
    assert len(pieces) > 1
    with pytest.raises(ValueError, match=rf"word 'superbly' \(label 'pos'\) is {len(pieces)} tokens"):
        verbalizer_ids(roberta, PATTERN, {"pos": "superbly", "neg": "awful"}, ["pos", "neg"])
    with pytest.raises(ValueError, match=r"'zebra' \(label 'neg'\) is not in the vocabulary"):
        verbalizer_ids(bert, PATTERN, {"pos": "great", "neg": "zebra"}, ["pos", "neg"])


def test_data_the_pattern_cannot_read_is_refused(bert_folder):
    tokenizer, labels = AutoTokenizer.from_pretrained(bert_folder), LabelMap(list(VERBALIZER))
    with pytest.raises(ValueError, match=r"label\(s\) \['meh'\] of the data have no verbalizer word"):
        prompt_labels(prompt_config(), {"train": [{"text": "ok", "label": "meh"}], "dev": []})
    pairs = PromptTask(prompt_config(pattern="{text} ? [MASK] , {text_b}"), tokenizer, labels)
    with pytest.raises(ValueError, match=r"example 1 lacks a text_pair but the pattern .* holds \{text_b\}"):
        pairs.features([{"text": "good", "label": "pos"}])
    with pytest.raises(ValueError, match="alone is .* tokens, more than max_length=4"):
        encode_prompt(tokenizer, "{text} the film was really quite [MASK] .", "good", None, 4)


def test_an_encoder_without_an_mlm_head_gets_a_fresh_one_trained_as_a_head(bert_folder, tmp_path, capsys):
    """A sentence-encoder folder (no cls.predictions.*): the run says so, and the fresh head learns head_lr_scale
    times faster, as a fresh classifier does; a pretrained MLM head learns at the encoder's rate."""
    encoder = save_tiny_model(tmp_path / "encoder")
    tokenizer, labels = AutoTokenizer.from_pretrained(encoder), LabelMap(list(VERBALIZER))
    fresh = build_prompt_model(prompt_config(), encoder, tokenizer, labels)
    assert "has no trained masked-LM head (5 tensors start fresh)" in capsys.readouterr().err
    assert fresh.head_prefixes == ("mlm.cls.",)
    assert build_prompt_model(prompt_config(), bert_folder, tokenizer, labels).head_prefixes == ()
