"""Random checkpoints of every architecture of the family, in bertkit and in transformers, with odd shapes and every
weight perturbed (no LayerNorm at 1 / 0, no zero bias), so that a mapping slip shows in the outputs."""

from __future__ import annotations

import torch
import transformers

# (transformers config class, its kwargs) per case; odd sizes, 3 heads of width 12, 3 segment types
SHAPE = dict(vocab_size=103, hidden_size=36, num_hidden_layers=3, num_attention_heads=3, intermediate_size=37,
             max_position_embeddings=40, type_vocab_size=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
DISTIL = dict(vocab_size=103, dim=36, n_layers=3, n_heads=3, hidden_dim=37, max_position_embeddings=40,
              dropout=0.0, attention_dropout=0.0)
CASES = {
    "bert": ("BertConfig", SHAPE),
    "roberta": ("RobertaConfig", SHAPE | dict(pad_token_id=1, max_position_embeddings=42, type_vocab_size=1,
                                             layer_norm_eps=1e-5)),
    "albert": ("AlbertConfig", SHAPE | dict(embedding_size=20, hidden_act="gelu_new", num_hidden_layers=4,
                                            num_hidden_groups=2, inner_group_num=2, classifier_dropout_prob=0.0)),
    "albert-one-group": ("AlbertConfig", SHAPE | dict(embedding_size=36, hidden_act="gelu_new", num_hidden_groups=1,
                                                      classifier_dropout_prob=0.0)),
    "electra": ("ElectraConfig", SHAPE | dict(embedding_size=20)),
    "electra-unfactorized": ("ElectraConfig", SHAPE | dict(embedding_size=36, hidden_act="relu")),
    "distilbert": ("DistilBertConfig", DISTIL),
    "distilbert-sinusoidal": ("DistilBertConfig", DISTIL | dict(sinusoidal_pos_embds=True, activation="relu")),
    "ernie": ("ErnieConfig", SHAPE | dict(use_task_id=True, task_type_vocab_size=4)),
    "ernie-no-task": ("ErnieConfig", SHAPE | dict(hidden_act="relu")),
}
# model role → transformers class name per model_type (what AutoModel / ForMaskedLM / ForPreTraining give)
HF_CLASSES = {
    "bert": ("BertModel", "BertForMaskedLM", "BertForPreTraining"),
    "roberta": ("RobertaModel", "RobertaForMaskedLM", "RobertaForMaskedLM"),
    "albert": ("AlbertModel", "AlbertForMaskedLM", "AlbertForPreTraining"),
    "electra": ("ElectraModel", "ElectraForMaskedLM", "ElectraForPreTraining"),
    "distilbert": ("DistilBertModel", "DistilBertForMaskedLM", "DistilBertForMaskedLM"),
    "ernie": ("ErnieModel", "ErnieForMaskedLM", "ErnieForPreTraining"),
}
ROLES = ("model", "masked_lm", "pretraining")


def hf_config(case: str) -> transformers.PretrainedConfig:
    name, kwargs = CASES[case]
    return getattr(transformers, name)(**kwargs)


@torch.no_grad()
def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Add noise to every trainable weight (tied ones once): LayerNorms off 1 / 0, biases off 0."""
    g = torch.Generator().manual_seed(seed)
    seen = set()
    for p in model.parameters():
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def hf_model(case: str, role: str, seed: int = 0) -> torch.nn.Module:
    """A perturbed random transformers model of ``case`` in ``role``, eval mode."""
    config = hf_config(case)
    torch.manual_seed(seed)
    kind = HF_CLASSES[config.model_type][ROLES.index(role)]
    return perturb(getattr(transformers, kind)(config), seed).eval()


def batch(case: str, batch_size: int = 3, seq: int = 17) -> dict[str, torch.Tensor]:
    """Token ids (padding = pad id where the mask is 0), a padded mask, and segment ids where the model has them."""
    config = hf_config(case)
    g = torch.Generator().manual_seed(1)
    pad = config.pad_token_id
    ids = torch.randint(3, config.vocab_size, (batch_size, seq), generator=g)
    mask = torch.ones(batch_size, seq, dtype=torch.long)
    mask[1, 11:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = pad
    inputs = dict(input_ids=ids, attention_mask=mask)
    if config.model_type != "distilbert":
        types = torch.zeros(batch_size, seq, dtype=torch.long)
        if getattr(config, "type_vocab_size", 1) > 1:
            types[:, 8:] = 1
        inputs["token_type_ids"] = types
    if getattr(config, "use_task_id", False):  # ERNIE's task types: every row of the table used
        inputs["task_type_ids"] = torch.arange(batch_size * seq).view(batch_size, seq) % config.task_type_vocab_size
    return inputs


def max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Largest absolute difference, over real (unpadded) positions when ``mask`` is given."""
    if mask is not None:
        a, b = a[mask.bool()], b[mask.bool()]
    return (a.float() - b.float()).abs().max().item()
