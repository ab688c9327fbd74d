"""What the server computes, in-process: every pooling strategy against transformers' hidden states pooled by hand
the way bert-as-service does it (google-research/bert features, TF graph formulas), plus settings and batching."""

import os
import warnings

import numpy as np
import pytest
import torch
import transformers

from bertkit import SentenceEncoder
from bertkit.serving import ServerSettings
from bertkit.serving.batching import Batcher, deliver
from bertkit.serving.embedding import ServingModel
from bertkit.serving.protocol import ProtocolError, Request, parse_request

TEXTS = ["First do it", "then do it right", "then do it better",
         "A much longer sentence that certainly runs past the sequence limit set for this test, by a good margin.",
         "Is this jackson ville ? ||| no it is not ."]


@pytest.fixture(scope="module")
def reference(minilm_dir):
    model = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    return model, transformers.BertTokenizer.from_pretrained(minilm_dir)


def original_features(tokenizer, items, max_seq_len, mask_cls_sep=False):
    """bert-as-service's convert_lst_to_features, restated with transformers' tokenizer."""
    pairs = []
    for item in items:
        if isinstance(item, list):
            tokens = [t if t in tokenizer.vocab else "[UNK]" for t in item]
            cut = item.index("|||") if "|||" in item else len(item)
            pairs.append((tokens[:cut], tokens[cut + 1:]))
        elif " ||| " in item:
            a, b = item.strip().rsplit(" ||| ", 1)
            pairs.append((tokenizer.tokenize(a), tokenizer.tokenize(b)))
        else:
            pairs.append((tokenizer.tokenize(item.strip()), []))
    if max_seq_len is None:
        max_seq_len = max(len(a) + len(b) for a, b in pairs) + (3 if any(b for _, b in pairs) else 2)
    ids, masks, segments = [], [], []
    for a, b in pairs:
        a, b = list(a), list(b)
        if b:
            while len(a) + len(b) > max_seq_len - 3:
                (a if len(a) > len(b) else b).pop()
        else:
            a = a[: max_seq_len - 2]
        tokens = ["[CLS]", *a, "[SEP]"] + ([*b, "[SEP]"] if b else [])
        special = int(not mask_cls_sep)
        mask = [special] + [1] * len(a) + [special] + ([1] * len(b) + [special] if b else [])
        segment = [0] * (len(a) + 2) + [1] * (len(b) + 1 if b else 0)
        pad = max_seq_len - len(tokens)
        ids.append(tokenizer.convert_tokens_to_ids(tokens) + [0] * pad)
        masks.append(mask + [0] * pad)
        segments.append(segment + [0] * pad)
    return torch.tensor(ids), torch.tensor(masks), torch.tensor(segments)


def original_encode(reference, items, strategy, layers=(-2,), max_seq_len=25, mask_cls_sep=False):
    """The TF graph's pooling, in numpy, over transformers' encoder layer outputs."""
    model, tokenizer = reference
    ids, mask, segments = original_features(tokenizer, items, max_seq_len, mask_cls_sep)
    with torch.no_grad():
        out = model(ids, attention_mask=mask, token_type_ids=segments, output_hidden_states=True)
    if strategy == "CLS_POOLED":
        return out.pooler_output.numpy()
    encoder_layers = out.hidden_states[1:]  # the original's all_encoder_layers: no embedding output
    x = np.concatenate([encoder_layers[i].numpy() for i in layers], axis=-1)
    m = mask.numpy().astype(np.float32)[:, :, None]
    mean = (x * m).sum(1) / (m.sum(1) + 1e-10)
    biggest = (x - (1.0 - m) * 1e30).max(1)
    if strategy == "REDUCE_MEAN":
        return mean
    if strategy == "REDUCE_MAX":
        return biggest
    if strategy == "REDUCE_MEAN_MAX":
        return np.concatenate([mean, biggest], axis=1)
    if strategy == "CLS_TOKEN":
        return x[:, 0]
    if strategy == "SEP_TOKEN":
        return x[np.arange(len(x)), mask.numpy().sum(1) - 1]
    if strategy == "NONE":
        return x * m
    raise AssertionError(strategy)


_loaded = {}


def serving(minilm_dir, **settings) -> ServingModel:
    """A ServingModel with these settings around one MiniLM loaded once (``from_settings`` itself is tested once)."""
    settings = ServerSettings(minilm_dir, **settings).checked()
    if not _loaded:
        _loaded["model"] = ServingModel.from_settings(settings)
    first = _loaded["model"]
    return ServingModel(first.model, first.tokenizer, settings)


@pytest.mark.parametrize("strategy, layers, max_seq_len, mask_cls_sep", [
    ("REDUCE_MEAN", [-2], 25, False),
    ("REDUCE_MEAN", [-2], 25, True),
    ("REDUCE_MAX", [-1, 0], 25, False),
    ("REDUCE_MEAN_MAX", [-4, -1], 40, False),
    ("CLS_TOKEN", [-1], 25, False),
    ("SEP_TOKEN", [-2], 12, False),
    ("CLS_POOLED", [-2], 25, False),
    ("NONE", [-2], 25, False),
    ("REDUCE_MEAN", [3], None, False),
])
def test_strategies_match_the_original_semantics(minilm_dir, reference, strategy, layers, max_seq_len, mask_cls_sep):
    ours, tokens = serving(minilm_dir, pooling_strategy=strategy, pooling_layer=layers, max_seq_len=max_seq_len,
                           mask_cls_sep=mask_cls_sep).encode(TEXTS)
    expected = original_encode(reference, TEXTS, strategy, layers, max_seq_len, mask_cls_sep)
    assert ours.shape == expected.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=2e-5)
    assert tokens[4][:7] == ["[CLS]", "is", "this", "jackson", "ville", "?", "[SEP]"]
    if strategy == "NONE":  # padding rows are exactly zero
        assert not ours[0, len(tokens[0]):].any() and ours[0, : len(tokens[0])].all(axis=1).all()


def test_default_settings_equal_sentence_encoder_on_layer_minus_2(minilm_dir):
    ours, _ = serving(minilm_dir).encode(TEXTS[:4])
    expected = SentenceEncoder.from_pretrained(minilm_dir).encode(TEXTS[:4], pooling="mean", layer=-2, max_length=25)
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_pretokenized_pairs_unknown_tokens_and_empty_text(minilm_dir, reference):
    items = [["hello", "world", "zzzqqq"], ["first", "part", "|||", "second", "part"], "x ||| y ||| z", ""]
    ours, tokens = serving(minilm_dir).encode(items)
    np.testing.assert_allclose(ours, original_encode(reference, items, "REDUCE_MEAN"), atol=2e-5)
    assert tokens[0] == ["[CLS]", "hello", "world", "[UNK]", "[SEP]"]
    assert tokens[1] == ["[CLS]", "first", "part", "[SEP]", "second", "part", "[SEP]"]
    assert tokens[2] == ["[CLS]", "x", "|", "|", "|", "y", "[SEP]", "z", "[SEP]"]  # split at the last " ||| "
    assert tokens[3] == ["[CLS]", "[SEP]"]


def test_cased_tokenization_keeps_the_case(minilm_dir):
    assert serving(minilm_dir).encode(["Hello World"])[1] == [["[CLS]", "hello", "world", "[SEP]"]]
    cased = ServingModel.from_settings(ServerSettings(minilm_dir, cased_tokenization=True).checked())
    assert cased.encode(["Hello World"])[1] == [["[CLS]", "[UNK]", "[UNK]", "[SEP]"]]  # an uncased vocabulary


def test_pairs_truncate_longest_first(minilm_dir, reference):
    items = ["one two three four five six seven eight nine ten ||| alpha beta"]
    ours, tokens = serving(minilm_dir, max_seq_len=10).encode(items)
    assert tokens[0] == ["[CLS]", "one", "two", "three", "four", "five", "[SEP]", "alpha", "beta", "[SEP]"]
    np.testing.assert_allclose(ours, original_encode(reference, items, "REDUCE_MEAN", max_seq_len=10), atol=2e-5)


@pytest.mark.parametrize("change, message", [
    ({"max_seq_len": 513}, "max_seq_len=513 must lie in [3, 512]"),
    ({"max_seq_len": "many"}, "max_seq_len must be an integer or NONE"),
    ({"pooling_strategy": "REDUCE_MEDIAN"}, "unknown pooling_strategy 'REDUCE_MEDIAN'"),
    ({"pooling_layer": [6]}, "pooling_layer [6] must be encoder layers in [-6, 5]"),
    ({"num_worker": 0}, "num_worker must be at least 1"),
    ({"port": 5555, "port_out": 5555}, "must be distinct ports"),
])
def test_bad_settings_are_refused_with_the_reason(minilm_dir, change, message):
    with pytest.raises(ValueError) as error:
        ServerSettings(minilm_dir, **change).checked()
    assert message in str(error.value)


def test_settings_accept_none_and_aliases(minilm_dir, tmp_path):
    settings = ServerSettings(minilm_dir, max_seq_len="NONE", pooling_strategy="first_token").checked()
    assert settings.max_seq_len is None and settings.pooling_strategy == "CLS_TOKEN"
    assert settings.as_reported()["pooling_strategy"] == 4
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        ServerSettings(tmp_path / "missing").checked()


def test_batcher_splits_and_reassembles_in_order():
    batcher = Batcher(max_batch_size=4, wait_s=0.0)
    a = batcher.add(Request(b"a", b"1", items=[f"a{i}" for i in range(6)]), now=0.0)
    b = batcher.add(Request(b"b", b"1", items=["b0", "b1", "b2"]), now=0.0)
    batches = []
    while batcher.seconds_until_ready(1.0) is not None:
        batches.append(batcher.take())
    assert [batch.items for batch in batches] == [["a0", "a1", "a2", "a3"], ["a4", "a5", "b0", "b1"], ["b2"]]
    done = []
    for batch in reversed(batches):  # results may come back in any order
        rows = np.array([[float(item[1:]) + (100 if item[0] == "b" else 0)] for item in batch.items], np.float32)
        done += deliver(batch, rows, None)
    assert done == [b, a]
    assert a.assemble()[0].ravel().tolist() == [0, 1, 2, 3, 4, 5]
    assert b.assemble()[0].ravel().tolist() == [100, 101, 102]


def test_small_requests_go_ahead_of_large_ones():
    batcher = Batcher(max_batch_size=4, wait_s=0.0, priority_size=2)
    batcher.add(Request(b"big", b"1", items=[f"big{i}" for i in range(10)]), now=0.0)
    assert batcher.take().items == ["big0", "big1", "big2", "big3"]
    batcher.add(Request(b"small", b"1", items=["s0"]), now=1.0)
    batcher.add(Request(b"small", b"2", items=["t0", "t1"]), now=2.0)
    assert batcher.take().items == ["s0", "t0", "t1", "big4"]
    assert batcher.take().items == ["big5", "big6", "big7", "big8"]
    assert batcher.take().items == ["big9"] and batcher.seconds_until_ready(3.0) is None and batcher.queued == 0


def test_token_matrices_of_different_lengths_are_padded_when_reassembled():
    """max_seq_len NONE with NONE pooling: each batch has its own length; a split request is zero-padded."""
    batcher = Batcher(max_batch_size=2, wait_s=0.0)
    pending = batcher.add(Request(b"a", b"1", items=["x", "y", "z"]), now=0.0)
    first, second = batcher.take(), batcher.take()
    deliver(second, np.ones((1, 3, 2), np.float32), [["[CLS]", "z", "[SEP]"]])
    assert deliver(first, np.full((2, 5, 2), 2, np.float32), [["t"] * 5, ["t"] * 5]) == [pending]
    vectors, tokens = pending.assemble()
    assert vectors.shape == (3, 5, 2) and tokens[2] == ["[CLS]", "z", "[SEP]"]
    assert (vectors[:2] == 2).all() and (vectors[2, :3] == 1).all() and not vectors[2, 3:].any()


@pytest.mark.parametrize("frames, message", [
    ([b"id", b"[]", b"1"], "expected 4 frames"),
    ([b"id", b"[]", b"1", b"0", b"x"], "expected 4 frames"),
    ([b"id", b"[]", b"one", b"0"], "must be decimal digits"),
    ([b"id", b"{not json", b"1", b"1"], "neither a command nor UTF-8 JSON"),
    ([b"id", b"\xff\xfe", b"1", b"1"], "neither a command nor UTF-8 JSON"),
    ([b"id", b'{"texts": ["a"]}', b"1", b"1"], "must be a JSON list"),
    ([b"id", b"[1, 2]", b"1", b"2"], "entry 0 must be a text or a list of token strings"),
])
def test_malformed_requests_are_named(frames, message):
    with pytest.raises(ProtocolError, match=message):
        parse_request(frames)


def test_batches_hold_at_most_max_batch_tokens_and_one_task():
    """TEI's token budget: long texts make smaller batches; a text over the budget goes alone; tasks never mix."""
    batcher = Batcher(max_batch_size=100, wait_s=0.0, max_batch_tokens=10)
    long = batcher.add(Request(b"a", b"1", items=["l0", "l1", "l2"]), now=0.0, costs=[6, 6, 12])
    short = batcher.add(Request(b"b", b"1", items=["s0", "s1", "s2", "s3"]), now=1.0, costs=[2, 2, 2, 2])
    ids = batcher.add(Request(b"c", b"1", items=[[101, 102]], task="embed"), now=0.5, costs=[2])
    batches = []
    while batcher.seconds_until_ready(9.0) is not None:
        batches.append(batcher.take())
    assert [(b.task, b.items, b.tokens) for b in batches] == [
        ("encode", ["l0"], 6), ("encode", ["l1"], 6), ("encode", ["l2"], 12),  # 6 + 6 > 10; 12 > 10 alone
        ("embed", [[101, 102]], 2),  # then the task waiting longest: embed (0.5) before the rest of encode (1.0)
        ("encode", ["s0", "s1", "s2", "s3"], 8)]
    assert batcher.queued == batcher.queued_tokens == 0
    assert {id(p) for b in batches for p in [s.pending for s in b.slices]} == {id(long), id(short), id(ids)}


def test_token_estimates_thread_count_and_secrets(minilm_dir, monkeypatch):
    from bertkit.serving.server import estimated_tokens

    assert estimated_tokens("a" * 400, 512) == 103 and estimated_tokens("a" * 4000, 25) == 25
    assert estimated_tokens(["tok", "ens"], 25) == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    settings = ServerSettings(minilm_dir, api_key="hunter2").checked()
    assert settings.threads_per_worker() == 3  # OMP_NUM_THREADS, as torch reads it
    assert ServerSettings(minilm_dir, torch_threads=2).checked().threads_per_worker() == 2  # the flag wins
    assert settings.as_reported()["api_key"] == "<set>"  # SHOW_CONFIG answers anyone on the ZMQ port
    with pytest.raises(ValueError, match="api_key is empty"):
        ServerSettings(minilm_dir, api_key=" ").checked()


@pytest.mark.parametrize("payload, task, message", [
    (b'{"task": "embed", "items": [[101, 7592, 102]]}', "embed", None),
    (b'{"task": "classify", "items": [["a", null], ["a", "b"]]}', "classify", None),
    (b'{"task": "embed", "items": [[101, -1]]}', None, "entry 0 of task embed is malformed"),
    (b'{"task": "classify", "items": [["a"]]}', None, "entry 0 of task classify is malformed"),
    (b'{"task": "nope", "items": []}', None, "must be a JSON list"),
])
def test_task_payloads_of_the_http_front(payload, task, message):
    if message is None:
        assert parse_request([b"id", payload, b"1", b"1"]).task == task
    else:
        with pytest.raises(ProtocolError, match=message):
            parse_request([b"id", payload, b"1", b"1"])


def test_workers_times_threads_beyond_the_cores_is_warned_with_a_count_that_fits(minilm_dir, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shared-out default never oversubscribes
        assert ServerSettings(minilm_dir, num_worker=2, cpu=True).checked().threads_per_worker() == 1
        ServerSettings(minilm_dir, num_worker=1, torch_threads=2, cpu=True).checked()
    with pytest.warns(RuntimeWarning, match=r"2 worker\(s\) × 2 torch thread\(s\) = 4 threads on 2 core\(s\).*"
                      r"--num_worker 2 with --torch_threads 1"):
        ServerSettings(minilm_dir, num_worker=2, torch_threads=2, cpu=True).checked()
    with pytest.warns(RuntimeWarning, match=r"3 worker\(s\) × 1 torch thread\(s\).*--num_worker 2 with "
                      r"--torch_threads 1"):
        ServerSettings(minilm_dir, num_worker=3, cpu=True).checked()
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    with pytest.warns(RuntimeWarning, match="unset OMP_NUM_THREADS"):
        ServerSettings(minilm_dir, cpu=True).checked()
