"""BertModel and the pretraining heads against transformers: the real MiniLM and random checkpoints."""

import pytest
import torch
import transformers

from bertkit import BertConfig, BertForMaskedLM, BertForPreTraining, BertModel, BertTokenizer

SINGLES = ["Hello world!", "A much longer sentence, with several more tokens, to force padding.", "x"]
PAIRS = ["and a second segment", "b", "the third pair is the longest of the three second segments"]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    ours = BertModel.from_pretrained(minilm_dir)
    theirs = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    return ours, theirs, BertTokenizer.from_pretrained(minilm_dir)


def max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    if mask is not None:
        a, b = a[mask], b[mask]
    return (a - b).abs().max().item()


@pytest.mark.parametrize("pairs", [None, PAIRS], ids=["singles", "pairs"])
def test_minilm_matches_transformers(minilm, pairs):
    ours, theirs, tokenizer = minilm
    enc = tokenizer(SINGLES, pairs, padding=True, return_tensors="pt")
    assert ours.loading_report.missing == [] and ours.loading_report.unexpected == []
    with torch.no_grad():
        a = ours(**enc, output_hidden_states=True, output_attentions=True)
        b = theirs(**enc, output_hidden_states=True, output_attentions=True)
    real = enc["attention_mask"].bool()
    assert max_diff(a.last_hidden_state, b.last_hidden_state, real) <= 1e-5
    assert max_diff(a.pooler_output, b.pooler_output) <= 1e-5
    assert len(a.hidden_states) == len(b.hidden_states) == 7
    assert max(max_diff(x, y, real) for x, y in zip(a.hidden_states, b.hidden_states, strict=True)) <= 1e-5
    assert max(max_diff(x, y) for x, y in zip(a.attentions, b.attentions, strict=True)) <= 1e-5
    assert a[0] is a.last_hidden_state and a[1] is a.pooler_output


def test_attention_maps_are_distributions_that_skip_padding(minilm):
    ours, _, tokenizer = minilm
    enc = tokenizer(SINGLES, padding=True, return_tensors="pt")
    with torch.no_grad():
        maps = ours(**enc, output_attentions=True).attentions
    assert maps[0].shape == (3, 12, enc["input_ids"].shape[1], enc["input_ids"].shape[1])
    torch.testing.assert_close(maps[3].sum(-1), torch.ones_like(maps[3].sum(-1)))
    padded_keys = ~enc["attention_mask"].bool()[:, None, None, :].expand_as(maps[3])
    assert maps[3][padded_keys].max() < 1e-6


def random_hf_checkpoint(tmp_path, kind: str, shape: dict, safetensors: bool):
    """A small random transformers model saved in tmp_path; returns (folder, the transformers model)."""
    config = transformers.BertConfig(**shape, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = getattr(transformers, kind)(config).eval()
    with torch.no_grad():  # make the biases and LayerNorms non-trivial, so that a mapping slip shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    folder = tmp_path / f"{kind}-{shape['hidden_size']}-{'st' if safetensors else 'bin'}"
    model.save_pretrained(folder)
    if not safetensors:  # pytorch_model.bin as older checkpoints ship it, read back with weights_only=True
        (folder / "model.safetensors").unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder, model


SHAPES = [
    dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
         max_position_embeddings=64, type_vocab_size=2),
    dict(vocab_size=211, hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96,
         max_position_embeddings=40, type_vocab_size=3),
]


def random_batch(vocab_size: int, batch: int = 3, seq: int = 17):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab_size, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, 11:] = 0
    mask[2, 5:] = 0
    types = torch.zeros(batch, seq, dtype=torch.long)
    types[:, 8:] = 1
    labels = torch.full((batch, seq), -100)
    labels[:, 2:6] = ids[:, 2:6]
    return ids, mask, types, labels


@pytest.mark.parametrize("shape", SHAPES, ids=["h32", "h48"])
@pytest.mark.parametrize("safetensors", [True, False], ids=["safetensors", "bin"])
def test_pretraining_heads_match_transformers(tmp_path, shape, safetensors):
    folder, theirs = random_hf_checkpoint(tmp_path, "BertForPreTraining", shape, safetensors)
    ours = BertForPreTraining.from_pretrained(folder)
    assert ours.loading_report.missing == [] and ours.loading_report.unexpected == []
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    ids, mask, types, labels = random_batch(shape["vocab_size"])
    nsp = torch.tensor([0, 1, 1])
    with torch.no_grad():
        a = ours(ids, mask, types, labels=labels, next_sentence_label=nsp)
        b = theirs(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels, next_sentence_label=nsp)
    real = mask.bool()
    assert max_diff(a.prediction_logits, b.prediction_logits, real) <= 1e-4
    assert max_diff(a.seq_relationship_logits, b.seq_relationship_logits) <= 1e-4
    assert abs(a.loss.item() - b.loss.item()) <= 1e-4


def test_heads_checkpoint_with_unprefixed_encoder_and_tf_names(tmp_path):
    """Encoder keys without `bert.`, LayerNorm as gamma/beta (TF-converted checkpoints), heads under `cls.`."""
    from safetensors.torch import save_file

    folder, theirs = random_hf_checkpoint(tmp_path, "BertForPreTraining", SHAPES[1], safetensors=True)
    renamed = {}
    for name, tensor in theirs.state_dict().items():
        name = name.removeprefix("bert.")
        if "LayerNorm" in name:
            name = name.replace(".weight", ".gamma").replace(".bias", ".beta")
        renamed[name] = tensor.clone()
    save_file(renamed, folder / "model.safetensors")
    ours = BertForPreTraining.from_pretrained(folder)
    assert ours.loading_report.missing == [] and ours.loading_report.unexpected == []
    ids, mask, types, _ = random_batch(SHAPES[1]["vocab_size"])
    with torch.no_grad():
        a, b = ours(ids, mask, types), theirs(input_ids=ids, attention_mask=mask, token_type_ids=types)
    assert max_diff(a.prediction_logits, b.prediction_logits, mask.bool()) <= 1e-4
    assert max_diff(a.seq_relationship_logits, b.seq_relationship_logits) <= 1e-4


@pytest.mark.parametrize("kind", ["BertForMaskedLM", "BertModel"])
def test_checkpoints_without_prefix_or_heads(tmp_path, kind):
    folder, theirs = random_hf_checkpoint(tmp_path, kind, SHAPES[0], safetensors=True)
    ids, mask, types, labels = random_batch(SHAPES[0]["vocab_size"])
    if kind == "BertForMaskedLM":  # bert.-prefixed, MLM head, no pooler, no NSP
        ours = BertForMaskedLM.from_pretrained(folder)
        assert ours.loading_report.missing == []
        with torch.no_grad():
            a, b = ours(ids, mask, types, labels=labels), theirs(input_ids=ids, attention_mask=mask,
                                                                 token_type_ids=types, labels=labels)
        assert max_diff(a.logits, b.logits, mask.bool()) <= 1e-4 and abs(a.loss - b.loss) <= 1e-4
    else:  # no prefix, no heads: the encoder loads, the heads are reported missing and start fresh
        ours = BertForPreTraining.from_pretrained(folder)
        assert ours.loading_report.missing == [
            "cls.predictions.bias", "cls.predictions.transform.LayerNorm.bias",
            "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.dense.bias",
            "cls.predictions.transform.dense.weight", "cls.seq_relationship.bias", "cls.seq_relationship.weight"]
        with torch.no_grad():
            a, b = ours.bert(ids, mask, types), theirs(input_ids=ids, attention_mask=mask, token_type_ids=types)
        assert max_diff(a.last_hidden_state, b.last_hidden_state, mask.bool()) <= 1e-5


def test_saved_folders_load_in_transformers(tmp_path, minilm_dir):
    torch.manual_seed(0)
    config = BertConfig(**SHAPES[1])
    ids, mask, types, _ = random_batch(config.vocab_size)
    for ours, theirs_class in [(BertForPreTraining(config).eval(), transformers.BertForPreTraining),
                               (BertModel(config).eval(), transformers.AutoModel)]:
        folder = ours.save_pretrained(tmp_path / type(ours).__name__)
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
        theirs = theirs_class.from_pretrained(folder).eval()
        again = type(ours).from_pretrained(folder)
        with torch.no_grad():
            a, b, c = ours(ids, mask, types), theirs(input_ids=ids, attention_mask=mask, token_type_ids=types), \
                again(ids, mask, types)
        first = "prediction_logits" if isinstance(ours, BertForPreTraining) else "last_hidden_state"
        assert max_diff(getattr(a, first), getattr(b, first), mask.bool()) <= 1e-5
        assert torch.equal(getattr(a, first), getattr(c, first))
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    folder = BertModel.from_pretrained(minilm_dir).save_pretrained(tmp_path / "with-vocab", tokenizer=tokenizer)
    assert (folder / "vocab.txt").is_file() and (folder / "tokenizer_config.json").is_file()


def test_training_mode_gradients_match_transformers(tmp_path):
    folder, theirs = random_hf_checkpoint(tmp_path, "BertForPreTraining", SHAPES[0], safetensors=True)
    ours = BertForPreTraining.from_pretrained(folder).train()
    theirs.train()
    ids, mask, types, labels = random_batch(SHAPES[0]["vocab_size"])
    nsp = torch.tensor([0, 1, 0])
    ours(ids, mask, types, labels=labels, next_sentence_label=nsp).loss.backward()
    inputs = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    theirs(**inputs, labels=labels, next_sentence_label=nsp).loss.backward()
    for name in ["bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.intermediate.dense.weight",
                 "bert.encoder.layer.0.attention.self.query.weight", "cls.predictions.transform.dense.weight"]:
        g_ours = dict(ours.named_parameters())[name].grad
        g_theirs = dict(theirs.named_parameters())[name].grad
        assert max_diff(g_ours, g_theirs) <= 1e-5, name


def test_bad_input_is_named(tmp_path, minilm):
    ours = minilm[0]
    with pytest.raises(ValueError, match="input has 600 tokens but the model has only 512 positions"):
        ours(torch.ones(1, 600, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 30522\)"):
        ours(torch.tensor([[101, 40000, 102]]))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        ours(torch.tensor([[101, 102]]), attention_mask=torch.ones(1, 3))
    with pytest.raises(ValueError, match="2-D"):
        ours(torch.tensor([101, 102]))
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        BertModel.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text(BertConfig.preset("tiny").to_json_string())
    with pytest.raises(FileNotFoundError, match="holds no weights"):
        BertModel.from_pretrained(tmp_path / "empty")


def test_config_that_does_not_match_the_weights(tmp_path):
    folder = BertModel(BertConfig(**SHAPES[0])).save_pretrained(tmp_path / "m")
    wrong = BertConfig(**{**SHAPES[0], "intermediate_size": 40})
    (folder / "config.json").write_text(wrong.to_json_string())
    shape_error = r"tensor encoder.layer.0.intermediate.dense.bias has shape \(37,\) but .* expects \(40,\)"
    with pytest.raises(ValueError, match=shape_error):
        BertModel.from_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"\x00garbage")
    (folder / "config.json").write_text(BertConfig(**SHAPES[0]).to_json_string())
    with pytest.raises(ValueError, match="cannot read weights"):
        BertModel.from_pretrained(folder)
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        BertConfig(hidden_size=30, num_attention_heads=4)


class _Payload:
    """Unpickling this would run a command: weights_only loading must refuse it."""

    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_untrusted_pickle_is_refused_not_run(tmp_path, monkeypatch):
    folder = BertModel(BertConfig(**SHAPES[0])).save_pretrained(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": _Payload()}, folder / "pytorch_model.bin")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="cannot read weights"):
        BertModel.from_pretrained(folder)
    assert not (tmp_path / "pwned").exists()


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=300)).train()
    ids = torch.randint(5, 300, (4, 24))
    labels = torch.where(torch.rand(4, 24) < 0.2, ids, torch.full_like(ids, -100))
    labels[:, 3] = ids[:, 3]
    batch = dict(input_ids=ids, labels=labels, next_sentence_label=torch.tensor([0, 1, 1, 0]),
                 only_masked_logits=True)

    def loss_and_grads():
        torch.manual_seed(1)  # the same dropout masks in both runs
        loss = model(**batch).loss
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        return loss.item(), grads

    plain_loss, plain = loss_and_grads()
    model.gradient_checkpointing_enable()
    assert model.bert.gradient_checkpointing
    checked_loss, checked = loss_and_grads()
    assert checked_loss == pytest.approx(plain_loss, abs=1e-6)
    for a, b in zip(plain, checked, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
