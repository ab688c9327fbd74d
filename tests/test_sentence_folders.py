"""sentence-transformers folders read fully: every pooling mode, Dense, Normalize, prompts, max_seq_length.

The folders are built by sentence-transformers itself (encoding_fixtures.py); its outputs are the oracle.
"""

import json

import numpy as np
import pytest
import torch
from encoding_fixtures import build_folder, make_tiny_bert

from bertkit.encoding import Dense, SentenceEncoder

TEXTS = [
    "First do it",
    "then do it right",
    "A considerably longer sentence, so that the batch has padding to mask out of every pooling mode and "
    "so that it runs past the small max_seq_length of some of the folders built here.",
    "Short.",
    "Émigré cafés serve naïve crème brûlée.",
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), minilm_dir)


def st_encode(folder, texts=TEXTS):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(texts, batch_size=3)


def assert_same(ours, theirs):
    assert ours.shape == theirs.shape
    cosines = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosines.min() >= 0.99999, cosines
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-5)


CASES = {
    "cls+dense-tanh, no normalize, max_seq_length 24": dict(pooling="cls", dense=(32, 16, torch.nn.Tanh()),
                                                            max_seq_length=24),
    "max": dict(pooling="max"),
    "weightedmean + normalize": dict(pooling="weightedmean", normalize=True),
    "lasttoken": dict(pooling="lasttoken", max_seq_length=16),
    "mean_sqrt_len_tokens": dict(pooling="mean_sqrt_len_tokens"),
    "cls and mean concatenated + dense-identity": dict(pooling=("mean", "cls"), dense=(64, 24, None)),
    "default prompt left out of mean pooling": dict(pooling="mean", include_prompt=False, normalize=True,
                                                   prompts={"query": "query: ", "passage": "passage: "},
                                                   default_prompt_name="query"),
    "prompt kept, cls after it": dict(pooling="cls", prompts={"query": "search query: "},
                                      default_prompt_name="query"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_defaults_match_sentence_transformers(case, tiny_bert, minilm_dir, tmp_path):
    folder = build_folder(tmp_path / "st", tiny_bert, minilm_dir, **CASES[case])
    encoder = SentenceEncoder.from_pretrained(folder)
    ours = encoder.encode(TEXTS, batch_size=2)
    assert_same(ours, st_encode(folder))
    assert encoder.normalize == CASES[case].get("normalize", False)
    assert encoder.max_seq_length == (CASES[case].get("max_seq_length") or 128)
    pooling = CASES[case]["pooling"]
    assert encoder.pooling == (pooling if isinstance(pooling, str) else "+".join(pooling))
    # saved by bertkit, read back by sentence-transformers and by bertkit: the same vectors
    encoder.save_pretrained(tmp_path / "ours")
    assert_same(st_encode(tmp_path / "ours"), ours)
    assert_same(SentenceEncoder.from_pretrained(tmp_path / "ours").encode(TEXTS), ours)


def test_named_prompts_and_explicit_prompt(tiny_bert, minilm_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = build_folder(tmp_path / "st", tiny_bert, minilm_dir, pooling="mean", include_prompt=False,
                          prompts={"query": "query: ", "passage": "passage: "}, default_prompt_name="query")
    encoder, reference = SentenceEncoder.from_pretrained(folder), SentenceTransformer(str(folder), device="cpu")
    assert_same(encoder.encode(TEXTS, prompt_name="passage"), reference.encode(TEXTS, prompt_name="passage"))
    assert_same(encoder.encode(TEXTS, prompt="Represent this: "), reference.encode(TEXTS, prompt="Represent this: "))
    assert_same(encoder.encode(TEXTS, prompt=""), reference.encode(TEXTS, prompt=""))
    with pytest.raises(ValueError, match=r"no prompt named 'doc'; this model has \['document', 'passage', 'query'\]"):
        encoder.encode(TEXTS, prompt_name="doc")


def test_explicit_arguments_override_the_folder(tiny_bert, minilm_dir, tmp_path):
    import transformers

    folder = build_folder(tmp_path / "st", tiny_bert, minilm_dir, pooling="cls", dense=(32, 16, torch.nn.Tanh()))
    encoder = SentenceEncoder.from_pretrained(folder)
    assert encoder.dimension == 16 and not encoder.normalize
    unit = encoder.encode(TEXTS, normalize=True)
    theirs = st_encode(folder)
    assert_same(unit, theirs / np.linalg.norm(theirs, axis=1, keepdims=True))
    # another pooling is another representation: the Dense, trained on [CLS] vectors, is left out
    tokenizer = transformers.BertTokenizer.from_pretrained(tiny_bert)
    model = transformers.BertModel.from_pretrained(tiny_bert).eval()
    enc = tokenizer(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1)
    mean = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(encoder.encode(TEXTS, pooling="mean"), mean, atol=1e-5)
    encoder.pooling = "max"
    assert encoder.pooling == "max" and encoder.dimension == 16
    with pytest.raises(ValueError, match=r"module 2 \(Dense\) takes 32-d vectors, but the module before it gives "
                                         r"64-d ones"):
        encoder.pooling = "cls+max"


def test_minilm_defaults_are_sentence_transformers(minilm_dir):
    encoder = SentenceEncoder.from_pretrained(minilm_dir)
    assert (encoder.pooling, encoder.normalize, encoder.max_seq_length, encoder.dimension) == ("mean", True, 256, 384)
    ours = encoder.encode(TEXTS)
    assert_same(ours, st_encode(minilm_dir))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_bad_folders(tiny_bert, minilm_dir, tmp_path):
    folder = build_folder(tmp_path / "st", tiny_bert, minilm_dir, pooling="cls", dense=(32, 16, torch.nn.Tanh()))
    modules_file = folder / "modules.json"
    entries = json.loads(modules_file.read_text())

    modules_file.write_text(json.dumps([*entries, {"idx": 3, "name": "3", "path": "3_LayerNorm",
                                                   "type": "sentence_transformers.models.LayerNorm"}]))
    with pytest.raises(ValueError, match="module of type 'sentence_transformers.models.LayerNorm', which bertkit "
                                         "cannot run"):
        SentenceEncoder.from_pretrained(folder)
    modules_file.write_text(json.dumps(entries))

    config = json.loads((folder / "2_Dense" / "config.json").read_text())
    (folder / "2_Dense" / "config.json").write_text(json.dumps(config | {"in_features": 48}))
    with pytest.raises(ValueError, match=r"2_Dense do not match its config.json: linear.weight has shape \(16, 32\), "
                                         r"the config says \(16, 48\)"):
        SentenceEncoder.from_pretrained(folder)

    Dense(48, 16).save(folder / "2_Dense")  # consistent in itself, but the pooling gives 32-d vectors
    with pytest.raises(ValueError, match=r"module 2 \(Dense\) takes 48-d vectors, but the module before it gives "
                                         r"32-d ones"):
        SentenceEncoder.from_pretrained(folder)

    (folder / "2_Dense" / "config.json").write_text(json.dumps(config | {"activation_function": "os.system"}))
    with pytest.raises(ValueError, match="activation_function 'os.system' is not a torch.nn module"):
        SentenceEncoder.from_pretrained(folder)

    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling | {"pooling_mode": "median"}))
    with pytest.raises(ValueError, match="pooling must be one of"):
        SentenceEncoder.from_pretrained(folder)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling | {"embedding_dimension": 64}))
    modules_file.write_text(json.dumps(entries[:2]))
    with pytest.raises(ValueError, match="pooling takes 64-d token vectors, but the model's hidden size is 32"):
        SentenceEncoder.from_pretrained(folder)


def test_encode_command_follows_the_folder(tiny_bert, minilm_dir, tmp_path):
    from bertkit.cli import main

    folder = build_folder(tmp_path / "st", tiny_bert, minilm_dir, pooling="cls", dense=(32, 16, torch.nn.Tanh()),
                          prompts={"query": "query: "})
    assert main(["encode", *TEXTS[:2], "--model", str(folder), "-o", str(tmp_path / "a.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), st_encode(folder, TEXTS[:2]), rtol=1e-4, atol=2e-5)
    assert main(["encode", *TEXTS[:2], "--model", str(folder), "--normalize", "--prompt-name", "query",
                 "-o", str(tmp_path / "b.npy")]) == 0
    want = SentenceEncoder.from_pretrained(folder).encode(TEXTS[:2], prompt="query: ", normalize=True)
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), want, atol=1e-6)


@pytest.mark.parametrize("architecture", ["DistilBert", "Albert", "Electra"])
def test_folders_of_other_architectures_with_only_tokenizer_json(architecture, minilm_dir, tmp_path):
    """sentence-transformers around a DistilBERT / ALBERT / ELECTRA encoder, saved as it saves them today (no
    vocab.txt): bertkit picks the architecture from config.json and the vocabulary from tokenizer.json."""
    import shutil

    import transformers

    shape = dict(vocab_size=30522, max_position_embeddings=128)
    if architecture == "DistilBert":
        shape |= dict(dim=32, n_layers=2, n_heads=2, hidden_dim=48)
    else:
        shape |= dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
                      embedding_size=16)
    torch.manual_seed(0)
    encoder_dir = tmp_path / "encoder"
    getattr(transformers, f"{architecture}Model")(getattr(transformers, f"{architecture}Config")(**shape)
                                                 ).save_pretrained(encoder_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, encoder_dir / name)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules

    st = SentenceTransformer(modules=[modules.Transformer(str(encoder_dir)), modules.Pooling(32, "mean"),
                                      modules.Normalize()], device="cpu")
    st.save(str(tmp_path / "st"))
    assert not (tmp_path / "st" / "vocab.txt").exists()
    ours = SentenceEncoder.from_pretrained(tmp_path / "st")
    assert ours.model.config.model_type == architecture.lower()
    assert_same(ours.encode(TEXTS), st_encode(tmp_path / "st"))
