"""Shared by the sentence-embedding tests: sentence-transformers folders around a small random BERT.

The BERT (2 layers, hidden 32) has MiniLM's vocabulary. sentence-transformers 6 saves tokenizer.json only, so the
folders get MiniLM's vocab.txt copied beside it (bertkit's tokenizer reads vocab.txt).
"""

import shutil

import torch

ADJECTIVES = ["quick", "lazy", "bright", "quiet", "noisy", "small", "large", "old", "new", "cold"]
NOUNS = ["dog", "river", "server", "garden", "library", "train", "city", "parser", "module", "kitchen"]
VERBS = ["runs", "sleeps", "waits", "breaks", "grows", "opens", "closes", "starts"]


def sentences(n: int) -> list[str]:
    """``n`` distinct short sentences (up to 800)."""
    out = [f"the {a} {b} {v} today" for v in VERBS for a in ADJECTIVES for b in NOUNS]
    return out[:: max(1, len(out) // n)][:n]


def make_tiny_bert(folder, minilm_dir):
    """A random 2-layer BERT (hidden 32) saved by transformers into ``folder``, with MiniLM's tokenizer files."""
    import transformers

    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def build_folder(folder, tiny_bert, minilm_dir, pooling, dense=None, normalize=False, max_seq_length=None,
                 include_prompt=True, prompts=None, default_prompt_name=None):
    """Save a SentenceTransformer made of the given modules with sentence-transformers, keeping vocab.txt."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules

    torch.manual_seed(1)
    transformer = modules.Transformer(str(tiny_bert), max_seq_length=max_seq_length)
    parts = [transformer, modules.Pooling(32, pooling_mode=pooling, include_prompt=include_prompt)]
    if dense:
        in_features, out_features, activation = dense
        parts.append(modules.Dense(in_features, out_features, activation_function=activation))
    if normalize:
        parts.append(modules.Normalize())
    model = SentenceTransformer(modules=parts, prompts=prompts, default_prompt_name=default_prompt_name,
                                device="cpu")
    model.save(str(folder))
    shutil.copy(minilm_dir / "vocab.txt", folder / "vocab.txt")
    return folder


