"""Knowledge distillation: the losses against hand computation and torch's own KL, students built from teacher
layers, a tiny student that learns its teacher, student folders that transformers / sentence-transformers load."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from finetuning_fixtures import sentiment_examples, tiny_tokenizer
from test_distillation_embedding import tiny_sentence_encoder

from bertkit.config import BertConfig
from bertkit.distillation import (
    DistillationLoss,
    DistillConfig,
    attention_mse,
    copied_student,
    every_other_layer,
    hidden_mse,
    narrow_student,
    search_layers,
    similarity_kl,
    slim_feed_forward,
    soft_target_loss,
    student_from_layers,
)
from bertkit.distillation.losses import uniform_layer_map
from bertkit.distillation.student import check_same_vocabulary
from bertkit.distillation.task import Distiller, classifier_outputs, step_function
from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig
from bertkit.model import BertModel


def tiny_classifier(layers: int = 4, hidden: int = 32, heads: int = 4, seed: int = 0, pooling: str = "mean"):
    torch.manual_seed(seed)
    config = TaskConfig(vocab_size=tiny_tokenizer().vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=64,
                        id2label={0: "neg", 1: "pos"}, pooling=pooling,
                        finetuning={"task": "classification", "max_length": 32})
    return BertForSequenceClassification(config).eval()


def batch_of(texts, labels=None):
    tok = tiny_tokenizer()
    ids = [tok.encode(t) for t in texts]
    width = max(map(len, ids))
    batch = {"input_ids": torch.tensor([x + [0] * (width - len(x)) for x in ids]),
             "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])}
    batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    if labels is not None:
        batch["labels"] = torch.tensor(labels)
    return batch


def test_soft_target_loss_is_t_squared_kl_by_hand_and_by_torch():
    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    teacher = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    t = 2.5
    by_hand = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        zs = sum(math.exp(v / t) for v in s_row)
        zt = sum(math.exp(v / t) for v in t_row)
        for sv, tv in zip(s_row, t_row, strict=True):
            p, q = math.exp(tv / t) / zt, math.exp(sv / t) / zs
            by_hand += p * math.log(p / q)
    by_hand = by_hand / 2 * t * t
    assert soft_target_loss(student, teacher, t).item() == pytest.approx(by_hand, rel=1e-5)
    reference = F.kl_div(F.log_softmax(student / t, -1), F.softmax(teacher / t, -1), reduction="batchmean") * t * t
    assert soft_target_loss(student, teacher, t).item() == pytest.approx(reference.item(), rel=1e-6)
    assert soft_target_loss(teacher, teacher, t).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_temperature_must_be_positive(bad):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        soft_target_loss(torch.zeros(1, 2), torch.zeros(1, 2), bad)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DistillConfig(teacher="x", temperature=bad)


def test_hidden_and_attention_losses_follow_the_layer_map_by_hand():
    torch.manual_seed(0)
    batch, seq, width = 2, 5, 8
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    teacher = {"hidden_states": [torch.randn(batch, seq, width) for _ in range(5)],
               "attentions": [torch.softmax(torch.randn(batch, 2, seq, seq), -1) for _ in range(4)]}
    student = {"hidden_states": [torch.randn(batch, seq, width) for _ in range(3)],
               "attentions": [torch.softmax(torch.randn(batch, 2, seq, seq), -1) for _ in range(2)]}
    loss = DistillationLoss(width, width, 2, 4, alpha=0, beta=0, hidden_weight=1.0, attention_weight=1.0,
                            layer_map=[1, 4])
    total, parts = loss(student, teacher, attention_mask=mask)

    def masked_mse(a, b):  # over real tokens only, every feature counted
        rows = [(a[i, j] - b[i, j]) ** 2 for i in range(batch) for j in range(seq) if mask[i, j]]
        return torch.stack(rows).mean().item()

    pairs = [(0, 0), (1, 1), (2, 4)]  # embeddings, then student layer m → teacher layer layer_map[m]
    hidden = sum(masked_mse(student["hidden_states"][s], teacher["hidden_states"][t]) for s, t in pairs) / 3
    maps = [(0, 0), (1, 3)]
    attention = sum(masked_mse(student["attentions"][s].transpose(1, 2), teacher["attentions"][t].transpose(1, 2))
                    for s, t in maps) / 2
    assert parts["loss_hidden"] == pytest.approx(hidden, rel=1e-5)
    assert parts["loss_attention"] == pytest.approx(attention, rel=1e-5)
    assert total.item() == pytest.approx(hidden + attention, rel=1e-5)
    # a narrower student goes through W_h: the same loss as projecting by hand
    narrow = DistillationLoss(4, width, 2, 4, alpha=0, beta=0, hidden_weight=1.0, layer_map=[2, 4])
    small = {"hidden_states": [torch.randn(batch, seq, 4) for _ in range(3)]}
    _, parts = narrow(small, teacher, attention_mask=mask)
    projected = [narrow.projection(h) for h in small["hidden_states"]]
    expected = sum(hidden_mse(projected[s], teacher["hidden_states"][t], mask) for s, t in [(0, 0), (1, 2), (2, 4)])
    assert parts["loss_hidden"] == pytest.approx(expected.item() / 3, rel=1e-5)


def test_similarity_kl_is_the_kl_of_each_rows_neighbour_ranking_by_hand():
    torch.manual_seed(0)
    student, teacher, tau = torch.randn(4, 5), torch.randn(4, 5), 0.1
    expected = 0.0
    for i in range(4):
        others = [j for j in range(4) if j != i]
        s = torch.stack([F.cosine_similarity(student[i], student[j], dim=0) for j in others]) / tau
        t = torch.stack([F.cosine_similarity(teacher[i], teacher[j], dim=0) for j in others]) / tau
        p, q = t.softmax(0), s.softmax(0)
        expected += float((p * (p.log() - q.log())).sum()) / 4
    assert similarity_kl(student, teacher, tau).item() == pytest.approx(expected, rel=1e-5)
    assert similarity_kl(teacher * 3.0, teacher, tau).item() == pytest.approx(0.0, abs=1e-6)  # scale-free
    assert similarity_kl(student[:1], teacher[:1]).item() == 0.0  # one row: no neighbours
    with pytest.raises(ValueError, match="temperature must be > 0"):
        similarity_kl(student, teacher, 0.0)


def test_embedding_loss_adds_the_weighted_terms():
    from bertkit.distillation.embedding import vector_loss
    from bertkit.distillation.losses import hidden_cosine

    torch.manual_seed(1)
    student, teacher = torch.randn(6, 8), torch.randn(6, 8)
    config = DistillConfig(mode="embedding", cosine_weight=0.5, similarity_weight=2.0, similarity_temperature=0.2)
    total, parts = vector_loss(student, teacher, config)
    expected = (F.mse_loss(student, teacher) + 0.5 * hidden_cosine(student, teacher)
                + 2.0 * similarity_kl(student, teacher, 0.2))
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"loss_mse", "loss_cosine", "loss_similarity"}
    assert set(vector_loss(student, teacher, DistillConfig(mode="embedding"))[1]) == {"loss_mse"}


def test_attention_mse_averages_heads_when_counts_differ():
    s = torch.softmax(torch.randn(1, 2, 3, 3), -1)
    t = torch.softmax(torch.randn(1, 4, 3, 3), -1)
    expected = ((s.mean(1) - t.mean(1)) ** 2).mean()
    assert attention_mse(s, t).item() == pytest.approx(expected.item(), rel=1e-6)


def test_layer_map_defaults_and_bad_maps():
    assert uniform_layer_map(3, 6) == [2, 4, 6] and uniform_layer_map(4, 12) == [3, 6, 9, 12]
    with pytest.raises(ValueError, match=r"teacher layers 1 … 4 .*out of range: \[5\]"):
        DistillationLoss(8, 8, 2, 4, layer_map=[2, 5])
    with pytest.raises(ValueError, match=r"out of range: \[0\]"):
        DistillationLoss(8, 8, 2, 4, layer_map=[0, 4])
    with pytest.raises(ValueError, match="layer_map has 3 entries but the student has 2 layers"):
        DistillationLoss(8, 8, 2, 4, layer_map=[1, 2, 3])
    with pytest.raises(ValueError, match="cosine loss compares states of equal width"):
        DistillationLoss(4, 8, 2, 4, cosine_weight=1.0)


def test_every_other_layer_student_holds_the_chosen_teacher_layers():
    assert every_other_layer(6, 3) == [0, 2, 4] and every_other_layer(12, 6) == [0, 2, 4, 6, 8, 10]
    assert every_other_layer(6, 2) == [0, 5] and every_other_layer(4, 1) == [0]
    teacher = tiny_classifier(layers=4)
    student = student_from_layers(teacher, [0, 3])
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for name, tensor in s_state.items():
        source = name.replace("encoder.layer.1.", "encoder.layer.3.")
        assert torch.equal(tensor, t_state[source]), name
    assert s_state["classifier.weight"].data_ptr() != t_state["classifier.weight"].data_ptr()  # copies
    with pytest.raises(ValueError, match=r"teacher layers 0 … 3; out of range: \[4\]"):
        student_from_layers(teacher, [0, 4])
    with pytest.raises(ValueError, match="distinct and increasing"):
        student_from_layers(teacher, [2, 1])


def source_layers(student, teacher) -> list[int]:
    """Which teacher layer each student layer is a copy of (by the query weights)."""
    teacher_q = [layer.attention.self.query.weight for layer in teacher.bert.encoder.layer]
    return [next(i for i, w in enumerate(teacher_q) if torch.equal(w, layer.attention.self.query.weight))
            for layer in student.bert.encoder.layer]


def test_layer_search_keeps_the_last_layer_and_adds_the_best_one_at_a_time(capsys):
    teacher = tiny_classifier(layers=6)
    worth = {0: 5.0, 1: 1.0, 2: 3.0, 3: 0.0, 4: 2.0, 5: 0.0}
    trials = []

    def score(student):  # additive, so greedy and exhaustive search agree: 0 and 2 beside the kept last layer
        trials.append(source_layers(student, teacher))
        return sum(worth[i] for i in trials[-1])

    assert search_layers(teacher, 3, score) == [0, 2, 5]
    assert trials[:5] == [[0, 5], [1, 5], [2, 5], [3, 5], [4, 5]] and len(trials) == 5 + 4
    assert all(5 in t for t in trials) and "→ [0, 2, 5]" in capsys.readouterr().err
    assert search_layers(teacher, 1, score) == [5] and len(trials) == 9  # nothing to try
    with pytest.raises(ValueError, match="1 … 6 layers"):
        search_layers(teacher, 7, score)


def test_embedding_layer_search_picks_the_best_dev_student_as_copied():
    from bertkit.distillation.embedding import score, searched_layers, student_encoder
    from bertkit.encoding.pairs import Pair

    teacher = tiny_sentence_encoder()
    texts = [e["text"] for e in sentiment_examples(12, seed=3)]
    dev = [Pair(a, b, "p") for a, b in zip(texts[:6], texts[6:], strict=True)]
    config = DistillConfig(mode="embedding", student_num_layers=2, layer_search=True)
    chosen = searched_layers(teacher, config, dev)
    mrr = {i: score(student_encoder(teacher, config, [i, 3]).eval(), dev, 8)["mrr@10"] for i in range(3)}
    assert chosen[1] == 3 and mrr[chosen[0]] == max(mrr.values())  # brute force over every pair with the last


def test_a_slim_feed_forward_is_the_model_without_its_least_important_neurons():
    model = tiny_classifier(layers=2, hidden=32, seed=8)
    ffn = model.bert.encoder.layer[1]
    with torch.no_grad():
        ffn.output.dense.weight[:, 5] = 0.0  # neuron 5 of layer 1 passes nothing on: the first to go
    slim = slim_feed_forward(model, 48).eval()
    assert slim.config.intermediate_size == 48 and model.config.intermediate_size == 64
    dropped = {}
    for i, layer in enumerate(model.bert.encoder.layer):
        importance = layer.intermediate.dense.weight.norm(dim=1) * layer.output.dense.weight.norm(dim=0)
        dropped[i] = importance.argsort()[:16]
    assert 5 in dropped[1].tolist()
    # the oracle: the full model with the dropped neurons' activations zeroed by a hook
    hooks = [layer.intermediate.register_forward_hook(
        lambda module, args, out, i=i: out.index_fill(-1, dropped[i], 0.0))
        for i, layer in enumerate(model.bert.encoder.layer)]
    batch = batch_of(["good film", "the plot was dull and weak"])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        masked = model(**inputs).logits
        for hook in hooks:
            hook.remove()
        full = model(**inputs).logits
        torch.testing.assert_close(slim(**inputs).logits, masked, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(full, masked, atol=1e-4)  # the cut changes the function
    torch.testing.assert_close(slim_feed_forward(model, 64).eval()(**inputs).logits, full)
    with pytest.raises(ValueError, match=r"student_intermediate_size must be 1 … 64 \(the teacher's feed-forward"):
        slim_feed_forward(model, 65)


def test_a_tiny_student_learns_to_match_its_teacher():
    teacher = tiny_classifier(layers=4, hidden=32, seed=1).requires_grad_(False)
    with torch.no_grad():  # sharper attention maps than a random init's near-uniform ones: something to learn
        for layer in teacher.bert.encoder.layer:
            layer.attention.self.query.weight.mul_(20.0)
            layer.attention.self.key.weight.mul_(20.0)
    student = narrow_student(teacher, num_layers=2, hidden_size=16, num_heads=2, seed=2)
    loss = DistillationLoss(16, 32, 2, 4, alpha=1.0, beta=0.0, temperature=2.0, hidden_weight=1.0,
                            attention_weight=100.0)
    distiller = Distiller(student, loss).train()
    examples = sentiment_examples(8, seed=3)
    batch = batch_of([e["text"] for e in examples], [int(e["label"] == "pos") for e in examples])
    compute = step_function(teacher, loss)
    optimizer = torch.optim.AdamW(distiller.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        total, parts = compute(distiller, batch)
        first = first or parts
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert set(first) == {"tokens", "loss_kl", "loss_hidden", "loss_attention"}
    last = compute(distiller, batch)[1]
    assert last["loss_kl"] < 0.5 * first["loss_kl"] and last["loss_hidden"] < 0.5 * first["loss_hidden"]
    assert last["loss_attention"] < 0.8 * first["loss_attention"]  # maps follow the student's own states: slower
    assert loss.projection.weight.grad is not None  # W_h is trained with the student


def test_classifier_outputs_equal_the_models_own_logits():
    model = tiny_classifier(pooling="mean")
    batch = batch_of(["good film", "the plot was dull and weak"])
    out = classifier_outputs(model, batch, hidden_states=True, attentions=True)
    assert torch.allclose(out["logits"], model(**batch).logits, atol=1e-6)
    assert len(out["hidden_states"]) == 5 and len(out["attentions"]) == 4


@pytest.mark.parametrize("intermediate_size", [None, 40])
def test_a_student_folder_loads_in_transformers_with_equal_outputs(tmp_path, intermediate_size):
    from transformers import AutoModel, AutoModelForSequenceClassification

    student = copied_student(tiny_classifier(layers=4, seed=5, pooling="cls"), 2, [1, 3], intermediate_size)
    student.save_pretrained(tmp_path / "student", tokenizer=tiny_tokenizer())
    theirs = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student").eval()
    assert theirs.config.num_hidden_layers == 2 and theirs.config.intermediate_size == (intermediate_size or 64)
    batch = batch_of(["good film", "the plot was dull and weak"])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(tmp_path / "student")(**inputs).last_hidden_state
        ours = student.bert(batch["input_ids"], batch["attention_mask"]).last_hidden_state
    assert torch.allclose(hidden, ours, atol=1e-5)


@pytest.mark.slow  # a whole (tiny) run through the Trainer: ~10 s on a quiet machine
def test_task_distillation_run_keeps_and_scores_its_best_student(tmp_path):
    from bertkit.distillation import distill

    tok = tiny_tokenizer()
    tiny_classifier(layers=4, seed=4).save_pretrained(tmp_path / "teacher", tokenizer=tok)
    for name, n, seed in (("train", 64, 0), ("dev", 16, 1), ("test", 16, 2)):
        rows = sentiment_examples(n, seed=seed)
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = DistillConfig(teacher=str(tmp_path / "teacher"), train_file=str(tmp_path / "train.jsonl"),
                           dev_file=str(tmp_path / "dev.jsonl"), test_file=str(tmp_path / "test.jsonl"),
                           student_num_layers=2, max_steps=4, batch_size=16, output_dir=str(tmp_path / "out"),
                           hidden_weight=1.0, progress=False, speed_rounds=1, augment_copies=1, layer_search=True)
    result = distill(config)
    assert result["student"]["layers"] == 2 and result["teacher"]["layers"] == 4 and result["steps"] == 4
    assert len(result["student_layers"]) == 2 and result["student_layers"][1] == 3  # searched, the last kept
    assert 64 < result["train_features"] <= 128  # the 64 labelled reviews and up to one new sentence each
    assert 0 <= result["student"]["accuracy"] <= 1 and result["speedup"] > 0
    assert (tmp_path / "out" / "metrics.png").is_file()
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["student"]["accuracy"] == result["student"]["accuracy"]
    best = BertForSequenceClassification.from_pretrained(tmp_path / "out" / "best")
    assert best.config.num_hidden_layers == 2 and best.config.id2label == {0: "neg", 1: "pos"}


def test_different_vocabularies_are_refused(tmp_path):
    from bertkit.tokenization import BertTokenizer

    tok = tiny_tokenizer()
    tiny_classifier().save_pretrained(tmp_path / "a", tokenizer=tok)
    vocab = dict(tok.vocab)
    vocab["zzz"] = len(vocab)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32)
    BertModel(config).save_pretrained(tmp_path / "b", tokenizer=BertTokenizer(vocab=vocab))
    check_same_vocabulary(tmp_path / "a", tmp_path / "a")
    with pytest.raises(ValueError, match=r"different vocabularies \(57 vs 58 tokens, first difference at id 57\)"):
        check_same_vocabulary(tmp_path / "a", tmp_path / "b")
    from bertkit.distillation.task import build_student

    config = DistillConfig(teacher=str(tmp_path / "a"), student_model=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="a student must use the teacher's tokenizer"):
        build_student(tiny_classifier(), config)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="task distillation needs teacher"):
        DistillConfig()
    with pytest.raises(ValueError, match="give one of them"):
        DistillConfig(teacher="x", student_layers=[0, 2], student_hidden_size=128)
    with pytest.raises(ValueError, match="mode must be one of"):
        DistillConfig(mode="words")
    with pytest.raises(ValueError, match="applies to mode: embedding only"):
        DistillConfig(teacher="x", similarity_weight=1.0)
    with pytest.raises(ValueError, match="layer_search chooses the teacher layers"):
        DistillConfig(mode="embedding", student_layers=[0, 5], layer_search=True)
    with pytest.raises(ValueError, match="unknown distillation option"):
        DistillConfig.from_dict({"teacher": "x", "temprature": 2})
    with pytest.raises(ValueError, match="limit_train, augment_copies apply to mode: task only"):
        DistillConfig(mode="embedding", augment_copies=2, limit_train=100)
    with pytest.raises(ValueError, match="alpha applies to mode: task only"):
        DistillConfig(mode="embedding", alpha=0.9)
    with pytest.raises(ValueError, match="max_texts applies to mode: embedding only"):
        DistillConfig(teacher="x", max_texts=500)
    assert DistillConfig(mode="embedding", max_texts=500, cosine_weight=1.0).max_texts == 500


def test_the_command_names_a_bad_option_before_any_work(tmp_path, capsys):
    from bertkit.cli import main

    config = tmp_path / "d.yaml"
    config.write_text("mode: task\nteacher: nowhere\n")
    assert main(["distill", "--config", str(config), "temperature=0"]) == 2
    assert "temperature must be > 0, got 0" in capsys.readouterr().err
    assert main(["distill", "--config", str(config), f"output_dir={tmp_path / 'out'}"]) == 2
    assert "no fine-tuned model in nowhere" in capsys.readouterr().err


def test_both_distillations_train_with_the_same_settings():
    """Task and embedding distillation build their Trainer settings in one place (DistillConfig)."""
    config = DistillConfig(teacher="t", epochs=3, evals_per_epoch=4, warmup_ratio=0.1, output_dir="out/x")
    args = config.training_arguments(10, "accuracy", ("loss", "accuracy"))
    assert (args.max_steps, args.eval_steps, args.logging_steps, args.warmup_steps) == (30, 3, 1, 3)
    assert (args.metric_for_best, args.plot_keys, args.output_dir) == ("accuracy", ("loss", "accuracy"), "out/x")
    assert DistillConfig(teacher="t", max_steps=7).training_arguments(10, "mrr@10", ()).max_steps == 7


@pytest.mark.parametrize("strategy", ["key_sentences", "hierarchical"])
def test_a_teacher_that_reads_long_texts_its_own_way_is_refused(tmp_path, strategy):
    """Task distillation cuts texts head-first for teacher and student alike; a teacher fine-tuned to pick key
    sentences or read chunks would be scored on inputs it never saw, so it is refused by name."""
    from bertkit.distillation.task import load_teacher

    tiny_classifier().save_pretrained(tmp_path / "teacher", tokenizer=tiny_tokenizer())
    path = tmp_path / "teacher" / "config.json"
    saved = json.loads(path.read_text())
    saved["finetuning"]["long_text"] = strategy
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=f"long_text: {strategy}; task distillation"):
        load_teacher(tmp_path / "teacher")
    saved["finetuning"]["long_text"] = "head+tail"
    path.write_text(json.dumps(saved))
    assert load_teacher(tmp_path / "teacher").config.finetuning.long_text == "head+tail"
