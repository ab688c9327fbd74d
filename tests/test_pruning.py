"""Attention-head pruning: the pruned model computes what transformers' model computes with those heads silenced,
head importance is the gradient it claims to be, pruned folders load back (and, re-expanded, in transformers)."""

import json

import pytest
import torch

from bertkit.config import BertConfig
from bertkit.model import BertModel
from bertkit.model.pruning import (
    head_gates,
    head_importance,
    heads_per_layer,
    least_important,
    load_pruned,
    prune_heads,
    pruned_heads,
    save_pruned,
    unpruned_copy,
)

HEADS = 4
SIZE = 8  # head size


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A random transformers BERT (2 layers, 4 heads of 8), saved: the oracle and bertkit load the same weights."""
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=HEADS * SIZE, num_hidden_layers=2,
                                     num_attention_heads=HEADS, intermediate_size=64, max_position_embeddings=32)
    folder = tmp_path_factory.mktemp("hf") / "bert"
    model = transformers.BertModel(config)
    with torch.no_grad():  # biases too, so that a wrongly sliced bias shows
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(std=0.1)
    model.save_pretrained(folder)
    return folder


def inputs():
    torch.manual_seed(1)
    ids = torch.randint(1, 50, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    return ids, mask


def silenced_oracle(folder, heads):
    """transformers' output with each listed head's value projection zeroed: its context is then exactly zero, which
    is what removing the head computes (transformers 5 no longer has prune_heads itself)."""
    import transformers

    model = transformers.BertModel.from_pretrained(folder).eval()
    with torch.no_grad():
        for layer, chosen in heads.items():
            value = model.encoder.layer[layer].attention.self.value
            for h in chosen:
                value.weight[h * SIZE:(h + 1) * SIZE] = 0
                value.bias[h * SIZE:(h + 1) * SIZE] = 0
    ids, mask = inputs()
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state


def run(model):
    ids, mask = inputs()
    with torch.no_grad():
        return model(ids, mask).last_hidden_state


def test_pruned_model_equals_transformers_with_the_heads_silenced(hf_folder):
    heads = {0: [0, 2], 1: [3]}
    model = prune_heads(BertModel.from_pretrained(hf_folder), heads)
    assert heads_per_layer(model) == [2, 3] and pruned_heads(model) == heads
    attention = model.encoder.layer[0].attention
    assert attention.self.query.weight.shape == (2 * SIZE, HEADS * SIZE)
    assert attention.output.dense.weight.shape == (HEADS * SIZE, 2 * SIZE)
    assert (run(model) - silenced_oracle(hf_folder, heads)).abs().max() < 1e-5
    assert (run(model) - run(BertModel.from_pretrained(hf_folder))).abs().max() > 1e-3  # pruning changed something


def test_pruning_in_steps_uses_the_original_head_numbers(hf_folder):
    once = prune_heads(BertModel.from_pretrained(hf_folder), {0: [1, 3]})
    steps = prune_heads(prune_heads(BertModel.from_pretrained(hf_folder), {0: [3]}), {0: [1, 3]})  # 3 again: no-op
    assert pruned_heads(steps) == {0: [1, 3]} and heads_per_layer(steps) == [2, HEADS]
    assert torch.equal(run(once), run(steps))
    assert (run(once) - silenced_oracle(hf_folder, {0: [1, 3]})).abs().max() < 1e-5


def test_gates_of_zero_equal_pruning(hf_folder):
    model = BertModel.from_pretrained(hf_folder)
    gates = torch.ones(2, HEADS)
    gates[0, 2] = gates[1, 0] = 0.0
    with head_gates(model, gates):
        gated = run(model)
    assert torch.allclose(gated, run(prune_heads(BertModel.from_pretrained(hf_folder), {0: [2], 1: [0]})),
                          atol=1e-5)
    assert not model.encoder.layer[0].attention.self._forward_hooks  # the hooks are gone after the block


def test_importance_is_the_gradient_of_the_loss_by_finite_differences(hf_folder):
    model = BertModel.from_pretrained(hf_folder).double()
    ids, mask = inputs()
    torch.manual_seed(2)
    weights = torch.randn(2, 7, HEADS * SIZE, dtype=torch.float64)

    def loss_fn(m, batch):
        return (m(batch["input_ids"], batch["attention_mask"]).last_hidden_state * weights).sum()

    batch = {"input_ids": ids, "attention_mask": mask}
    importance = head_importance(model, [batch, batch], loss_fn, normalize=False)
    assert importance.shape == (2, HEADS)
    eps = 1e-4
    for layer, head in [(0, 1), (1, 3)]:
        values = []
        for sign in (1, -1):
            gates = torch.ones(2, HEADS, dtype=torch.float64)
            gates[layer, head] += sign * eps
            with head_gates(model, gates), torch.no_grad():
                values.append(loss_fn(model, batch).item())
        numeric = abs(values[0] - values[1]) / (2 * eps)
        assert importance[layer, head].item() == pytest.approx(2 * numeric, rel=1e-4)  # two batches summed
    normalized = head_importance(model, [batch], loss_fn)
    assert torch.allclose(normalized.norm(dim=1), torch.ones(2, dtype=torch.float64))
    pruned = prune_heads(model, {1: [2]})  # numbered as in the unpruned model, the pruned head a NaN
    after = head_importance(pruned, [batch], loss_fn, normalize=False)
    assert after.shape == (2, HEADS) and torch.isnan(after[1, 2]) and not torch.isnan(after[1, 3])


def test_least_important_heads_never_empty_a_layer(hf_folder):
    model = prune_heads(BertModel.from_pretrained(hf_folder), {1: [0]})
    importance = torch.tensor([[0.1, 0.2, 0.05, 0.9], [float("nan"), 0.01, 0.02, 0.03]])
    chosen = least_important(importance, 5, model)
    assert chosen == {1: [1, 2], 0: [2, 0, 1]}  # ascending; layer 1 keeps head 3, layer 0 head 3
    assert least_important(importance, 1, model) == {1: [1]}


def test_pruned_folders_load_back_and_in_transformers_reexpanded(hf_folder, tmp_path):
    import transformers

    heads = {0: [1], 1: [0, 2]}
    model = prune_heads(BertModel.from_pretrained(hf_folder), heads)
    save_pruned(model, tmp_path / "pruned")
    config = json.loads((tmp_path / "pruned" / "config.json").read_text())
    assert config["pruned_heads"] == {"0": [1], "1": [0, 2]}
    back = load_pruned(BertModel, tmp_path / "pruned")  # the older call, the class first
    assert pruned_heads(back) == heads and torch.equal(run(back), run(model))
    with pytest.raises(ValueError, match="pruned_heads .*from_pretrained"):
        BertConfig.from_json_file(tmp_path / "pruned" / "config.json")  # a bare config cannot say the shapes
    full = unpruned_copy(model)
    assert heads_per_layer(full) == [HEADS, HEADS]
    full.save_pretrained(tmp_path / "full")
    theirs = transformers.BertModel.from_pretrained(tmp_path / "full").eval()
    ids, mask = inputs()
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
    assert (expected - run(model)).abs().max() < 1e-5


def test_every_loader_reads_a_pruned_folder(hf_folder, tmp_path):
    from bertkit import AutoModel, SentenceEncoder
    from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig
    from bertkit.tokenization import BertTokenizer

    heads = {0: [1, 3], 1: [2]}
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                                                                 [f"w{i}" for i in range(45)])})
    folder = prune_heads(BertModel.from_pretrained(hf_folder), heads).save_pretrained(tmp_path / "p", tokenizer)
    assert json.loads((folder / "config.json").read_text())["pruned_heads"] == {"0": [1, 3], "1": [2]}
    expected = silenced_oracle(hf_folder, heads)  # transformers with those heads silenced
    loaded = [BertModel.from_pretrained(folder), AutoModel.from_pretrained(folder), load_pruned(folder),
              SentenceEncoder.from_pretrained(folder, device="cpu").model]
    for model in loaded:
        assert pruned_heads(model) == heads and heads_per_layer(model) == [2, 3]
        assert (run(model) - expected).abs().max() < 1e-5
    # fine-tuning from a pruned encoder: the task model is pruned too, and its own folder keeps the heads
    config = TaskConfig(**BertConfig.from_json_file(hf_folder / "config.json").fields(), id2label={0: "a", 1: "b"})
    task = BertForSequenceClassification.from_pretrained(folder, config=config)
    assert (run(task.bert) - expected).abs().max() < 1e-5
    again = BertForSequenceClassification.from_pretrained(task.save_pretrained(tmp_path / "task"))
    assert pruned_heads(again) == heads and (run(again.bert) - expected).abs().max() < 1e-5


def test_bad_pruning_requests_are_named(hf_folder):
    model = BertModel.from_pretrained(hf_folder)
    with pytest.raises(ValueError, match=r"layer 2 is out of range: the model has layers 0 … 1"):
        prune_heads(model, {2: [0]})
    with pytest.raises(ValueError, match=r"layer 0 has heads 0 … 3; cannot prune \[4\]"):
        prune_heads(model, {0: [4]})
    with pytest.raises(ValueError, match="would leave layer 1 without any head"):
        prune_heads(model, {1: [0, 1, 2, 3]})
    assert heads_per_layer(model) == [HEADS, HEADS]  # a refused request changes nothing
