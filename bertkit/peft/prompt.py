"""Soft prompts: ``n`` trained vectors before the input's token embeddings (prompt tuning, Lester et al. 2021), or
produced by a small MLP from trained inputs (P-tuning, Liu et al. 2021; ``peft``'s MLP encoder).

As ``peft`` does, the vectors take the first ``n`` positions (segment 0, always attended), so the text moves ``n``
positions right and must fit in what is left. The model's inputs are widened by a pre-hook on the task model
(placeholder ids, attention-mask ones, segment zeros, label padding) and the word-embedding output's first ``n``
rows replaced by the prompt; a token-level head's outputs are cut back to the text's positions.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from ..model.heads import IGNORE_INDEX


class PromptEncoder(nn.Module):
    """The prompt vectors (n, width): ``embedding``, through ``mlp_head`` for P-tuning (``peft``'s names)."""

    def __init__(self, num_virtual_tokens: int, width: int, mlp_size: int | None):
        super().__init__()
        self.embedding = nn.Embedding(num_virtual_tokens, width)
        self.mlp_head = None
        if mlp_size:
            self.mlp_head = nn.Sequential(nn.Linear(width, mlp_size), nn.ReLU(), nn.Linear(mlp_size, mlp_size),
                                          nn.ReLU(), nn.Linear(mlp_size, width))

    def table(self) -> torch.Tensor:
        """The n prompt vectors the model reads (what a folder stores)."""
        weight = self.embedding.weight
        return self.mlp_head(weight) if self.mlp_head is not None else weight


class PromptInputs:
    """The pre-hook that widens a task model's inputs by ``n`` prompt positions, and the hooks that put the prompt
    in and take the extra positions out of token-level outputs."""

    def __init__(self, model: nn.Module, encoder: PromptEncoder):
        self.encoder = encoder
        self.n = encoder.embedding.num_embeddings
        config = model.base_model.config
        self.max_tokens = config.max_tokens
        self.placeholder = 0 if config.pad_token_id != 0 else 1  # any id that is not padding (RoBERTa positions)
        self.signature = inspect.signature(model.forward)

    def inputs(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Prepend ``n`` positions to every (batch, seq) input; refuse a text that leaves no room for them."""
        values = self.signature.bind(*args, **kwargs).arguments
        ids = values["input_ids"]
        batch, seq = ids.shape
        if seq + self.n > self.max_tokens:
            raise ValueError(f"a prompt of {self.n} virtual tokens leaves {self.max_tokens - self.n} of the model's "
                             f"{self.max_tokens} positions for the text, which has {seq} tokens: truncate the text "
                             "(max_length) or use fewer num_virtual_tokens")
        values["input_ids"] = torch.cat([ids.new_full((batch, self.n), self.placeholder), ids], dim=1)
        if values.get("attention_mask") is not None:
            values["attention_mask"] = torch.cat([values["attention_mask"].new_ones(batch, self.n),
                                                  values["attention_mask"]], dim=1)
        if values.get("token_type_ids") is not None:
            values["token_type_ids"] = torch.cat([values["token_type_ids"].new_zeros(batch, self.n),
                                                  values["token_type_ids"]], dim=1)
        labels = values.get("labels")
        if labels is not None and labels.dim() == 2 and labels.shape[1] == seq and labels.dtype == torch.long:
            values["labels"] = torch.cat([labels.new_full((batch, self.n), IGNORE_INDEX), labels], dim=1)
        for name in ("start_positions", "end_positions"):
            if values.get(name) is not None:
                values[name] = values[name] + self.n
        return (), values

    def embed(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        """The word embeddings with the prompt in the first ``n`` positions."""
        prompt = self.encoder.table().to(output.dtype)
        return torch.cat([prompt.expand(output.shape[0], -1, -1), output[:, self.n:]], dim=1)

    def outputs(self, module: nn.Module, args: tuple, kwargs: dict, output):
        """Token-level outputs (token classification, QA) back on the text's positions."""
        ids = kwargs.get("input_ids", args[0] if args else None)
        seq = ids.shape[1] if ids is not None else None
        for name in ("start_logits", "end_logits"):
            if getattr(output, name, None) is not None:
                setattr(output, name, getattr(output, name)[:, self.n:])
        logits = getattr(output, "logits", None)
        if logits is not None and logits.dim() == 3 and (seq is None or logits.shape[1] == seq):
            output.logits = logits[:, self.n:]
        return output


def add_prompt(model: nn.Module, num_virtual_tokens: int, mlp_size: int | None) -> PromptEncoder:
    """Give ``model`` a soft prompt (in ``model.peft_prompt``), started from random vocabulary embeddings."""
    word_embeddings = model.base_model.embeddings.word_embeddings
    encoder = PromptEncoder(num_virtual_tokens, word_embeddings.embedding_dim, mlp_size)
    with torch.no_grad():  # real token vectors: the scale the encoder expects (peft's "random vocabulary" init)
        rows = torch.randint(word_embeddings.num_embeddings, (num_virtual_tokens,))
        encoder.embedding.weight.copy_(word_embeddings.weight[rows])
    model.peft_prompt = encoder
    hooks = PromptInputs(model, encoder)
    model.register_forward_pre_hook(hooks.inputs, with_kwargs=True)
    model.register_forward_hook(hooks.outputs, with_kwargs=True)
    word_embeddings.register_forward_hook(hooks.embed)
    return encoder


@torch.no_grad()
def load_prompt_table(encoder: PromptEncoder, table: torch.Tensor) -> None:
    """Use stored prompt vectors as they are (inference): the MLP, if any, is dropped."""
    expected = tuple(encoder.embedding.weight.shape)
    if tuple(table.shape) != expected:
        raise ValueError(f"the stored prompt has shape {tuple(table.shape)}; this model needs {expected} "
                         "(num_virtual_tokens × embedding width)")
    encoder.mlp_head = None
    encoder.embedding.weight.copy_(table)
