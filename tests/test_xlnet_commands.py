"""XLNet through bertkit's commands: ``bertkit params --arch xlnet`` against transformers' counts, and
``bertkit pretrain objective=plm`` — it trains, evaluates against the unigram baseline, resumes exactly, and its
saved model loads in transformers' XLNetLMHeadModel with equal logits."""

import json

import pytest
import torch
import transformers

import bertkit
from bertkit.cli import main
from bertkit.model.parameters import total_parameters


def hf_xlnet_counts(preset: str) -> tuple[int, int]:
    """transformers' XLNetModel and XLNetLMHeadModel parameters for xlnet-{preset}-cased's sizes, on meta."""
    sizes = {"base": dict(d_model=768, n_layer=12, n_head=12, d_inner=3072),
             "large": dict(d_model=1024, n_layer=24, n_head=16, d_inner=4096)}[preset]
    config = transformers.XLNetConfig(**sizes)
    with torch.device("meta"):
        models = transformers.XLNetModel(config), transformers.XLNetLMHeadModel(config)
    # the LM head's decoder is tied to the word embeddings: count each tensor once
    return tuple(sum(p.numel() for p in m.parameters()) for m in models)


@pytest.mark.parametrize("preset", ["base", "large"])
def test_params_of_the_xlnet_presets_equal_transformers(preset, capsys):
    encoder, with_head = hf_xlnet_counts(preset)
    config = bertkit.XLNetConfig.preset(preset)
    assert (total_parameters(config), total_parameters(config, with_heads=True)) == (encoder, with_head)
    assert main(["params", "--arch", "xlnet", "--preset", preset, "--heads"]) == 0
    out = capsys.readouterr().out
    assert f"{encoder:,}" in out and f"{with_head:,}" in out and "total (XLNetLMHeadModel)" in out
    assert main(["params", "--arch", "xlnet", "--preset", "xlarge"]) == 2
    assert "unknown XLNet preset 'xlarge'" in capsys.readouterr().err


def test_params_of_an_xlnet_folder_read_its_own_config(tmp_path, capsys):
    config = transformers.XLNetConfig(vocab_size=500, d_model=64, n_layer=3, n_head=4, d_inner=96, mem_len=16)
    transformers.XLNetLMHeadModel(config).save_pretrained(tmp_path)
    expected = sum(p.numel() for p in transformers.XLNetModel(config).parameters())
    assert main(["params", "--model", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "total (XLNetModel)" in out and f"{expected:,}" in out
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "xlnet"


@pytest.fixture(scope="module")
def review_corpus(tmp_path_factory):
    """Real English text, 5 reviews (one a line) per document."""
    from bertkit.corpora import rotten_tomatoes_reviews

    reviews = [text for _, text in rotten_tomatoes_reviews()[:600]]
    path = tmp_path_factory.mktemp("corpus") / "reviews.txt"
    path.write_text("\n\n".join("\n".join(reviews[i:i + 5]) for i in range(0, len(reviews), 5)) + "\n")
    return path


def plm_args(corpus, tokenizer, out, *extra):
    return ["pretrain", "objective=plm", f"corpus=[{corpus}]", f"tokenizer={tokenizer}", "model_preset=tiny",
            "max_seq_length=32", "batch_size=8", "warmup_steps=2", "logging_steps=1", "progress=false",
            "eval_batches=2", "learning_rate=0.002", "threads=1", f"output_dir={out}", *extra]


def test_pretrain_objective_plm_learns_and_its_model_loads_in_transformers(
        review_corpus, minilm_dir, tmp_path):
    from bertkit.training.metrics import read_metrics

    out = tmp_path / "plm"
    assert main(plm_args(review_corpus, minilm_dir, out, "max_steps=60", "eval_steps=30", "mem_len=24")) == 0
    records = read_metrics(out / "metrics.jsonl")
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    assert len(train) == 60 and all(k in train[0] for k in ("plm_loss", "plm_accuracy", "tokens_per_second"))
    assert [r["step"] for r in evals] == [30, 60]
    start, end = train[0]["plm_loss"], sum(r["plm_loss"] for r in train[-10:]) / 10
    assert end < start - 1.5 and evals[1]["plm_loss"] < evals[0]["plm_loss"], (start, end, evals)
    assert evals[-1]["unigram_baseline_loss"] > 0 and evals[-1]["predictions"] > 0  # the baseline beside it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["architecture"] == "xlnet" and summary["config"]["pair_task"] == "none"
    saved = json.loads((out / "model" / "config.json").read_text())
    assert saved["model_type"] == "xlnet" and saved["mem_len"] == 24
    ours = bertkit.XLNetLMHeadModel.from_pretrained(out / "model").eval()
    theirs = transformers.XLNetLMHeadModel.from_pretrained(out / "model").eval()
    ids = torch.randint(1000, 20000, (2, 12), generator=torch.Generator().manual_seed(0))
    perm = torch.triu(torch.ones(12, 12), diagonal=0).expand(2, 12, 12)  # a left-to-right order
    with torch.no_grad():
        mine, hf = ours(ids, perm_mask=perm, use_mems=True), theirs(ids, perm_mask=perm, use_mems=True)
        assert (mine.logits - hf.logits).abs().max() <= 1e-4
        after = ids.flip(1)
        assert (ours(after, mems=mine.mems).logits - theirs(after, mems=hf.mems).logits).abs().max() <= 1e-4


def test_an_interrupted_plm_run_resumes_to_the_same_weights(review_corpus, minilm_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file

    from bertkit.training.metrics import read_metrics

    common = ("max_steps=6", "save_steps=3", "eval_steps=2", "eval_fraction=0.1")
    assert main(plm_args(review_corpus, minilm_dir, tmp_path / "full", *common)) == 0
    killed = tmp_path / "killed"  # the full run as a kill after step 3 would have left it
    shutil.copytree(tmp_path / "full", killed)
    for name in ("model", "checkpoints/step-0000006"):
        shutil.rmtree(killed / name)
    (killed / "checkpoints" / "latest").write_text("step-0000003\n")
    state = torch.load(killed / "checkpoints" / "step-0000003" / "trainer_state.pt", weights_only=True)
    assert len(state["data"][0]["mems"]) == 2  # the memory after step 3 is in the checkpoint, one per layer
    assert main(plm_args(review_corpus, minilm_dir, killed, *common, "--resume")) == 0
    runs = [[{k: r[k] for k in ("step", "loss", "plm_loss", "plm_accuracy") if k in r}
             for r in read_metrics(tmp_path / name / "metrics.jsonl")] for name in ("full", "killed")]
    assert len(runs[0]) == 9 and runs[0] == runs[1]  # 6 train + 3 eval records, bit for bit
    full, resumed = (load_file(tmp_path / name / "model" / "model.safetensors") for name in ("full", "killed"))
    assert all(torch.equal(full[k], resumed[k]) for k in full)


@pytest.mark.parametrize("values, message", [
    (dict(objective="plm", pair_task="nsp"), "pair_task: nsp"),
    (dict(objective="plm", masking="whole_word"), "masking: whole_word"),
    (dict(objective="plm", init_from="somewhere"), "init_from: somewhere"),
    (dict(objective="plm", parallel_corpus=["x.tsv"]), "parallel_corpus"),
    (dict(objective="plm", architecture="albert"), "trains an XLNet, not architecture albert"),
    (dict(architecture="xlnet"), "pretrained with objective: plm"),
    (dict(mem_len=64), "mem_len is read by objective: plm"),
    (dict(objective="plm", plm_k=0), "plm_k must be an integer ≥ 1"),
    (dict(objective="plm", mem_len=-1), "mem_len must be an integer ≥ 0"),
])
def test_plm_settings_that_do_not_apply_are_refused(values, message):
    from bertkit.pretraining import PretrainingConfig

    with pytest.raises(ValueError, match=message):
        PretrainingConfig(**values)


def test_plm_defaults_train_an_xlnet_with_a_segment_of_memory():
    from bertkit.pretraining import PretrainingConfig

    config = PretrainingConfig(objective="plm", max_seq_length=64)
    assert (config.architecture, config.pair_task, config.mem_len, config.plm_k) == ("xlnet", "none", 64, 6)


def test_a_plm_pretrained_xlnet_fine_tunes_through_the_cli_with_its_sequence_summary(
        review_corpus, minilm_dir, tmp_path):
    from bertkit.finetuning.predict import load_predictor

    out = tmp_path / "plm"
    assert main(plm_args(review_corpus, minilm_dir, out, "max_steps=3")) == 0
    rows = [{"text": text, "label": label} for text, label in
            [("a fine warm film", "pos"), ("dull and far too long", "neg")] * 8]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tuned = tmp_path / "tuned"
    assert main(["finetune", f"model={out / 'model'}", f"train_file={data}", f"dev_file={data}", "epochs=1",
                 "max_length=16", "batch_size=8", "threads=1", "progress=false", f"output_dir={tuned}"]) == 0
    saved = json.loads((tuned / "best" / "config.json").read_text())
    assert saved["architectures"] == ["XLNetForSequenceClassification"] and saved["pooling"] == "pooled"
    predictor = load_predictor(tuned / "best")
    texts = ["a fine warm film", "dull and far too long"]
    ours = predictor.predict_logits(texts)
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tuned / "best").eval()
    for text, row in zip(texts, ours, strict=True):  # one at a time: transformers summarises position -1, which
        batch = predictor.tokenizer([text], return_tensors="pt")  # a right-padded batch fills with padding
        with torch.no_grad():
            logits = theirs(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids")).logits
        assert abs(logits[0].numpy() - row).max() <= 1e-4


def test_fine_tuning_a_model_type_without_task_heads_is_refused_by_name(minilm_dir, tmp_path):
    folder = tmp_path / "roformer"
    config = transformers.RoFormerConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=37, embedding_size=32)
    transformers.RoFormerModel(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (minilm_dir / name).is_file():
            (folder / name).write_bytes((minilm_dir / name).read_bytes())
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"text": "a film", "label": "pos"}) + "\n")
    assert main(["finetune", f"model={folder}", f"train_file={data}", "epochs=1", f"output_dir={tmp_path / 'o'}",
                 "progress=false"]) == 2
