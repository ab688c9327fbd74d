"""Looking inside the served BERT for the HTTP API and the web page: tokens, attention maps, masked-word guesses."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from ..checkpoint import has_mlm_head
from ..finetuning.adapter_folders import load_task_adapter
from ..model import AutoModel, AutoModelForMaskedLM
from ..peft import merge_lora
from ..peft.folders import is_adapter_folder
from .embedding import load_tokenizer


def model_name(folder: Path) -> str:
    """A short name for a model folder (a package's ``.../name/model`` is called ``name``)."""
    folder = Path(folder)
    return folder.parent.name if folder.name == "model" else folder.name


class Inspector:
    """The model and tokenizer the HTTP API inspects; model calls are serialised by a lock."""

    def __init__(self, folder: Path, cased: bool = False, max_tokens: int | None = None):
        self.tokenizer = load_tokenizer(folder, cased)
        if is_adapter_folder(folder):  # an adapter served alone: the encoder its workers serve, on its base model
            task = load_task_adapter(folder)
            if task.peft_config.method == "lora":
                merge_lora(task)  # as the workers do
            self.mlm, self.bert = None, task.base_model
        else:
            self.mlm = AutoModelForMaskedLM.from_pretrained(folder) if has_mlm_head(folder) else None
            self.bert = self.mlm.base_model if self.mlm is not None else AutoModel.from_pretrained(folder)
        positions = self.bert.config.max_tokens
        self.max_tokens = min(max_tokens or positions, positions)
        self.folder = folder
        self.lock = threading.Lock()

    @property
    def config(self):
        return self.bert.config

    def tokenize(self, text: str, text_pair: str | None = None) -> dict:
        """Tokens, ids, segment ids and character offsets, truncated to ``max_tokens``."""
        enc = self.tokenizer(text, text_pair, truncation=True, max_length=self.max_tokens,
                             return_offsets_mapping=True)
        return {"tokens": self.tokenizer.convert_ids_to_tokens(enc["input_ids"]), "ids": enc["input_ids"],
                "segment_ids": enc["token_type_ids"], "offsets": [list(span) for span in enc["offset_mapping"]],
                **self.cut(text, text_pair)}

    def cut(self, text: str, text_pair: str | None) -> dict:
        """``{"max_tokens", "total_tokens"}``: how many tokens the text has and how many of them are looked at, so
        that a caller can say when the rest was cut."""
        total = len(self.tokenizer(text, text_pair)["input_ids"])
        return {"max_tokens": self.max_tokens, "total_tokens": total}

    def _inputs(self, text: str, text_pair: str | None) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(text, text_pair, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        return self.tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist()), enc["input_ids"], \
            enc["token_type_ids"]

    @torch.inference_mode()
    def attention(self, text: str, text_pair: str | None = None, layer: int | None = None,
                  head: int | None = None) -> dict:
        """Attention probabilities ``[layer][head][query][key]`` (one layer / head when given)."""
        depth, heads = self.config.num_hidden_layers, self.config.num_attention_heads
        if layer is not None and not -depth <= layer < depth:
            raise ValueError(f"layer must lie in [{-depth}, {depth - 1}] (the model has {depth} layers), got {layer}")
        if head is not None and not 0 <= head < heads:
            raise ValueError(f"head must lie in [0, {heads - 1}] (the model has {heads} heads), got {head}")
        tokens, input_ids, segment_ids = self._inputs(text, text_pair)
        with self.lock:
            maps = self.bert(input_ids, token_type_ids=segment_ids, output_attentions=True).attentions
        chosen = [maps[layer]] if layer is not None else list(maps)
        stacked = torch.stack([m[0] for m in chosen])  # (layers, heads, T, T)
        if head is not None:
            stacked = stacked[:, head : head + 1]
        return {"tokens": tokens, "num_layers": depth, "num_heads": heads, **self.cut(text, text_pair),
                "layer": layer, "head": head, "attention": stacked.round(decimals=5).tolist()}

    @torch.inference_mode()
    def fill_mask(self, text: str, top_k: int = 5) -> dict:
        """The ``top_k`` most likely tokens at each ``[MASK]`` of ``text``, with their probabilities."""
        if self.mlm is None:
            name = model_name(self.folder)
            raise LookupError(f"the served model ({name}) has no masked-LM head (cls.predictions.*), so it cannot "
                              "fill masks; serve a checkpoint with one (BertForMaskedLM, BertForPreTraining, …)")
        mask = self.tokenizer.mask_token
        if mask not in text:
            raise ValueError(f"text must contain {mask} where a word should be guessed")
        if not 1 <= top_k <= 100:
            raise ValueError(f"top_k must lie in [1, 100], got {top_k}")
        tokens, input_ids, segment_ids = self._inputs(text, None)
        positions = (input_ids[0] == self.tokenizer.mask_token_id).nonzero().flatten().tolist()
        if not positions:
            raise ValueError(f"every {mask} of the text lies beyond the {self.max_tokens}-token limit")
        with self.lock:
            logits = self.mlm(input_ids, token_type_ids=segment_ids).logits[0]
        probabilities = logits[positions].float().softmax(dim=-1)
        top = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
        masks = []
        for position, scores, ids in zip(positions, top.values.tolist(), top.indices.tolist(), strict=True):
            candidates = [{"token": self.tokenizer.convert_ids_to_tokens(i), "id": i, "score": s}
                          for i, s in zip(ids, scores, strict=True)]
            masks.append({"position": position, "candidates": candidates})
        return {"tokens": tokens, "masks": masks}
