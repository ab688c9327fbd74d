"""Unpadded batches (bertkit.model.unpadded, SentenceEncoder(unpadded=...)): the same vectors as the padded path on
mixed-length batches, for BERT-, RoBERTa- and DistilBERT-shaped folders carrying all-MiniLM-L6-v2's weights, in
every attention mode and pooling mode; and against transformers run on each sentence alone (no padding at all)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import transformers

from bertkit import SentenceEncoder
from bertkit.assets import default_model_dir
from bertkit.config import BertConfig
from bertkit.encoding.batching import pad_batch
from bertkit.model import AutoModel
from bertkit.model.unpadded import ATTENTION_MODES, pack, unpadded_forward

TEXTS = ["Hi.", "A much longer sentence, with many words in it, so that the short ones beside it need much padding.",
         "A sentence of middling length.", "ok", "The committee will meet again next week to discuss the budget.",
         "Water boils at 100 degrees."]
TOLERANCE = 1e-5


def minilm_state() -> tuple[dict[str, torch.Tensor], transformers.BertConfig]:
    """all-MiniLM-L6-v2's transformers weights and config."""
    model = transformers.BertModel.from_pretrained(default_model_dir())
    return model.state_dict(), model.config


def copy_tokenizer(folder) -> None:  # noqa: ANN001
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (default_model_dir() / name).exists():
            shutil.copy(default_model_dir() / name, folder / name)


def roberta_folder(folder):  # noqa: ANN001, ANN201
    """MiniLM's weights in a transformers RoBERTa (positions counted after padding index 0)."""
    state, config = minilm_state()
    roberta = transformers.RobertaModel(transformers.RobertaConfig(
        vocab_size=config.vocab_size, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
        intermediate_size=1536, max_position_embeddings=514, pad_token_id=0, type_vocab_size=1))
    positions = state.pop("embeddings.position_embeddings.weight")
    state["embeddings.token_type_embeddings.weight"] = state["embeddings.token_type_embeddings.weight"][:1]
    roberta.load_state_dict(state, strict=False)
    with torch.no_grad():
        roberta.embeddings.position_embeddings.weight[1:513] = positions
    roberta.save_pretrained(folder)
    copy_tokenizer(folder)
    return folder


def distilbert_folder(folder):  # noqa: ANN001, ANN201
    """MiniLM's weights in a transformers DistilBERT (transformers' names for the same blocks)."""
    state, config = minilm_state()
    distil = transformers.DistilBertModel(transformers.DistilBertConfig(
        vocab_size=config.vocab_size, dim=384, n_layers=6, n_heads=12, hidden_dim=1536, pad_token_id=0))
    names = {"attention.self.query": "attention.q_lin", "attention.self.key": "attention.k_lin",
             "attention.self.value": "attention.v_lin", "attention.output.dense": "attention.out_lin",
             "attention.output.LayerNorm": "sa_layer_norm", "intermediate.dense": "ffn.lin1",
             "output.dense": "ffn.lin2", "output.LayerNorm": "output_layer_norm"}
    mapped = {}
    for key, value in state.items():
        if key.startswith("encoder.layer."):
            _, _, index, rest = key.split(".", 3)
            module, _, leaf = rest.rpartition(".")
            mapped[f"transformer.layer.{index}.{names[module]}.{leaf}"] = value
        elif not key.startswith(("pooler", "embeddings.token_type")):
            mapped[key] = value
    distil.load_state_dict(mapped, strict=False)
    distil.save_pretrained(folder)
    copy_tokenizer(folder)
    return folder


@pytest.fixture(scope="module", params=["bert", "roberta", "distilbert"])
def folder(request, tmp_path_factory):  # noqa: ANN001, ANN201
    if request.param == "bert":
        return default_model_dir()
    build = {"roberta": roberta_folder, "distilbert": distilbert_folder}[request.param]
    return build(tmp_path_factory.mktemp(request.param))


@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "mean_sqrt_len_tokens+weightedmean+lasttoken"])
def test_unpadded_vectors_equal_padded(folder, pooling):
    """A mixed-length batch: every attention mode gives the padded path's vectors to 1e-5."""
    encoder = SentenceEncoder.from_pretrained(folder)
    padded = encoder.encode(TEXTS, pooling=pooling, batch_size=len(TEXTS))
    for mode in ATTENTION_MODES:
        encoder.use_unpadded(mode)
        unpadded = encoder.encode(TEXTS, pooling=pooling, batch_size=len(TEXTS))
        assert np.abs(unpadded - padded).max() <= TOLERANCE, mode
    assert np.abs(padded).max() > 0.05  # real vectors, not a degenerate pipeline


def test_packed_hidden_states_equal_transformers_alone():
    """Each packed sequence's hidden states are transformers' for that sentence run alone (nothing padded)."""
    encoder = SentenceEncoder.from_pretrained()
    reference = transformers.BertModel.from_pretrained(default_model_dir()).eval()
    ids, _ = encoder.tokenize(TEXTS)
    packed = pack(ids)
    with torch.inference_mode():
        hidden, states = unpadded_forward(encoder.model, packed, output_hidden_states=True)
        for sequence, start in zip(ids, packed.offsets.tolist(), strict=True):
            alone = reference(torch.tensor([sequence]), output_hidden_states=True)
            rows = slice(start, start + len(sequence))
            assert (hidden[rows] - alone.last_hidden_state[0]).abs().max() <= TOLERANCE
            assert (states[3][rows] - alone.hidden_states[3][0]).abs().max() <= TOLERANCE
    assert len(states) == encoder.model.config.num_hidden_layers + 1


def test_unpadded_mean_pooling_matches_a_float64_formula():
    """Mean pooling from packed rows is the float64 average of each sentence's own token vectors."""
    encoder = SentenceEncoder.from_pretrained(unpadded=True)
    encoder.normalize = False
    ids, _ = encoder.tokenize(TEXTS)
    vectors = encoder.encode(TEXTS, batch_size=4)
    reference = transformers.BertModel.from_pretrained(default_model_dir()).eval().double()
    with torch.inference_mode():
        expected = [reference(torch.tensor([x])).last_hidden_state[0].mean(0).numpy() for x in ids]
    assert np.abs(vectors - np.stack(expected)).max() <= TOLERANCE


def test_unpadded_options_layers_prompt_and_pooler():
    """Hidden-layer choice, an excluded prompt and BERT's pooler read the packed rows as the padded path does."""
    encoder = SentenceEncoder.from_pretrained()
    encoder.pool.include_prompt = False
    calls = [dict(layer=[2, -1]), dict(prompt="query: ", pooling="cls+mean+lasttoken+max"), dict(pooling="pooled")]
    padded = [encoder.encode(TEXTS, **call) for call in calls]
    encoder.use_unpadded(True)
    for call, expected in zip(calls, padded, strict=True):
        assert np.abs(encoder.encode(TEXTS, **call) - expected).max() <= TOLERANCE, call


def test_unpadded_with_int8_projections():
    """Quantized projections run their own forward in the packed path. Dynamic int8 scales each batch's activations
    by their range, padding rows included, so the two paths differ by quantization noise: both stay as close to
    fp32 as int8 does (min cosine ≥ 0.99)."""
    reference = SentenceEncoder.from_pretrained().encode(TEXTS, batch_size=len(TEXTS))
    encoder = SentenceEncoder.from_pretrained(precision="int8")
    if encoder.precision != "int8":
        pytest.skip("no quantized engine in this torch build")
    padded = encoder.encode(TEXTS, batch_size=len(TEXTS))
    encoder.use_unpadded(True)
    unpadded = encoder.encode(TEXTS, batch_size=len(TEXTS))
    assert (unpadded * reference).sum(axis=1).min() >= 0.99
    assert (padded * reference).sum(axis=1).min() >= 0.99
    assert np.abs(unpadded - padded).max() > 0  # the int8 projections did run (fp32 would agree to 1e-7)


def test_unpadded_refuses_what_it_cannot_run():
    """A bad mode, a model with relative positions, a decoder and an empty sequence are clear errors."""
    encoder = SentenceEncoder.from_pretrained()
    with pytest.raises(ValueError, match="unpadded must be"):
        encoder.use_unpadded("padded-please")
    relative = AutoModel.from_config(BertConfig.preset("tiny", vocab_size=50, position_embedding_type="relative_key"))
    with pytest.raises(ValueError, match="relative_key"):
        unpadded_forward(relative, pack([[1, 2, 3]]))
    decoder = AutoModel.from_config(BertConfig.preset("tiny", vocab_size=50, is_decoder=True))
    with pytest.raises(ValueError, match="decoder"):
        unpadded_forward(decoder, pack([[1, 2, 3]]))
    with pytest.raises(ValueError, match="at least one token"):
        pack([[1, 2], []])
    with pytest.raises(ValueError, match="token ids must lie"):
        unpadded_forward(encoder.model, pack([[1, 10 ** 6]]))


def test_packed_attention_modes_agree_with_padded_attention_mask():
    """The three attention modes against the padded model with its attention mask, row by row."""
    encoder = SentenceEncoder.from_pretrained()
    ids, _ = encoder.tokenize(TEXTS)
    input_ids, attention_mask = pad_batch(ids, encoder.tokenizer.pad_token_id)
    with torch.inference_mode():
        expected = encoder.model(input_ids, attention_mask=attention_mask).last_hidden_state[attention_mask.bool()]
        for mode in ATTENTION_MODES:
            hidden, _ = unpadded_forward(encoder.model, pack(ids), attention=mode)
            assert (hidden - expected).abs().max() <= TOLERANCE, mode


def test_bertkit_encode_unpadded_writes_the_padded_vectors(tmp_path):
    from bertkit.cli import main

    texts = ["a short one", "a much longer sentence about a film that ran on and on and on", "mid length text here"]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n")
    assert main(["encode", "--file", str(source), "--batch-size", "3", "-o", str(tmp_path / "padded.npy")]) == 0
    assert main(["encode", "--file", str(source), "--batch-size", "3", "--unpadded", "-o",
                 str(tmp_path / "packed.npy")]) == 0
    assert main(["encode", "--file", str(source), "--unpadded", "loop", "-o", str(tmp_path / "loop.npy")]) == 0
    padded = np.load(tmp_path / "padded.npy")
    for name in ("packed", "loop"):
        assert np.abs(np.load(tmp_path / f"{name}.npy") - padded).max() <= 1e-5
    with pytest.raises(SystemExit):
        main(["encode", "x", "--unpadded", "sideways"])
