"""Long documents: a pretrained model's positions extended past 512 by copying the table, and its attention switched
to an efficient kernel; the real MiniLM weights (tests/conftest.py's ``minilm_dir``)."""

import pytest
import torch
import transformers

from bertkit.config import BertConfig
from bertkit.model import AutoModel, RobertaModel
from bertkit.model.efficient import use_attention
from bertkit.model.long_positions import extend_positions


def test_extended_minilm_copies_its_table_and_keeps_short_inputs_exact(minilm_dir, tmp_path):
    reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
    model = extend_positions(AutoModel.from_pretrained(minilm_dir), 1100)
    table = model.embeddings.position_embeddings.weight
    assert table.shape[0] == 1100 and model.config.max_position_embeddings == 1100
    assert torch.equal(table[512:1024], table[:512]) and torch.equal(table[1024:], table[:76])
    ids = torch.randint(1000, 20000, (2, 40))
    with torch.no_grad():
        assert (model(ids).last_hidden_state - reference(ids).last_hidden_state).abs().max() <= 1e-5
        long_ids = torch.randint(1000, 20000, (1, 600))
        before = model(long_ids).last_hidden_state
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert loaded.config.max_position_embeddings == 1100
    with torch.no_grad():
        assert torch.equal(loaded(long_ids).last_hidden_state, before)


def test_roberta_keeps_rows_below_its_first_position():
    config = BertConfig.preset("tiny", model_type="roberta", vocab_size=50, max_position_embeddings=10,
                               pad_token_id=1)
    model = RobertaModel(config)
    old = model.embeddings.position_embeddings.weight.detach().clone()
    extend_positions(model, 26)
    new = model.embeddings.position_embeddings.weight
    assert torch.equal(new[:10], old) and torch.equal(new[10:18], old[2:10]) and torch.equal(new[18:26], old[2:10])
    assert model.config.max_tokens == 24


def test_switched_to_local_attention_minilm_reads_a_long_document_as_full_attention_would(minilm_dir):
    # a window covering the whole input is exact attention: the switch changes the kernel, nothing else
    model = extend_positions(AutoModel.from_pretrained(minilm_dir), 1024)
    ids = torch.randint(1000, 20000, (2, 576))
    mask = torch.ones_like(ids)
    mask[1, 520:] = 0
    with torch.no_grad():
        full = model(ids, mask).last_hidden_state
        use_attention(model, "local", local_window=1024)
        assert model.config.attention == "local"
        local = model(ids, mask).last_hidden_state
        use_attention(model, "local", local_window=64)  # the long-document setting: ±64 tokens and [CLS]
        windowed = model(ids, mask).last_hidden_state
    real = mask.bool()
    assert (local - full).abs()[real].max() <= 1e-4
    assert (windowed - full).abs()[real].max() > 1e-2  # a narrower window does change far-reaching tokens


def test_bad_extensions_are_refused_by_name(minilm_dir):
    model = AutoModel.from_pretrained(minilm_dir)
    with pytest.raises(ValueError, match="input has 600 tokens .* extend the positions"):
        model(torch.randint(1000, 2000, (1, 600)))
    with pytest.raises(ValueError, match="above the current 512"):
        extend_positions(model, 256)
    sinusoidal = AutoModel.from_config(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                  num_attention_heads=2, intermediate_size=32,
                                                  position_embedding_type="sinusoidal"))
    with pytest.raises(ValueError, match="needs learned absolute positions"):
        extend_positions(sinusoidal, 1024)


def test_explain_attention_cost_draws_each_kernels_pattern(minilm_dir, tmp_path):
    from bertkit.cli import main
    from bertkit.commands.attention_cost import attention_patterns

    tokens, patterns = attention_patterns("The dog slept in the warm sun all afternoon long.", minilm_dir)
    n = len(tokens)  # the text's own tokens: the padding the kernels compute on is not drawn
    assert n % 4 != 0 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "[PAD]" not in tokens
    for kind in ("full", "local", "lsh", "performer"):  # each row is a distribution over the real tokens
        weights = patterns[kind]
        assert weights.shape == (n, n) and torch.allclose(weights.sum(-1), torch.ones(n), atol=1e-4), kind
    i = torch.arange(n)
    outside = ((i[:, None] - i[None, :]).abs() > 2) & (i[:, None] > 0) & (i[None, :] > 0)
    assert patterns["local"][outside].abs().max() <= 1e-6 and patterns["local"][0].min() > 0
    output = tmp_path / "patterns.png"
    main(["explain", "attention-cost", "The dog slept.", "--model", str(minilm_dir), "--output", str(output)])
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
