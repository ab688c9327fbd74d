"""CLASSIFICATION and REGRESSION: serving a model fine-tuned by ``bertkit finetune`` (its ``best/`` folder), or a
PEFT run's adapter folder on its base model (a LoRA adapter merged into the weights).

As in bert-as-service 1.10 (``-tuned_model_dir``), a request's texts come back as rows of class probabilities
(softmax over the model's labels, in ``id2label`` order) or as a one-column score. Inputs are prepared as the model
was trained (its ``max_length`` and long-text strategy), so ``max_seq_len`` does not apply; ``"A ||| B"`` is a pair.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..encoding.precision import apply_precision
from ..finetuning.adapter_folders import load_task_adapter
from ..finetuning.predict import SequenceClassifier, task_kind
from ..peft import merge_lora
from ..peft.folders import TASK_CONFIG, is_adapter_folder
from ..tokenization import AutoTokenizer
from .features import Item, text_and_pair
from .protocol import CLASSIFY, ENCODE
from .settings import ServerSettings

PROBLEM_OF_STRATEGY = {"CLASSIFICATION": "single_label_classification", "REGRESSION": "regression"}


class FineTunedServingModel:
    """A fine-tuned sequence classifier or regressor answering encode requests."""

    def __init__(self, predictor: SequenceClassifier, settings: ServerSettings):
        self.predictor, self.settings = predictor, settings
        self.tokenizer = predictor.tokenizer

    @classmethod
    def from_settings(cls, settings: ServerSettings, device: str | torch.device = "cpu"
                      ) -> FineTunedServingModel:
        """Load ``model_dir``, refusing a folder that is not a fine-tuned model of the strategy's kind."""
        return cls.load(Path(settings.model_dir), settings, device)

    @classmethod
    def load(cls, folder: Path, settings: ServerSettings, device: str = "cpu", base_model: Path | None = None,
             merge: bool = True) -> FineTunedServingModel:
        """A fine-tuned folder, or an adapter folder on its base model (``base_model``: instead of the one its
        adapter_config.json names); a single LoRA adapter is merged into the weights (``merge``)."""
        adapter = is_adapter_folder(folder)  # a PEFT run's best/: the base model it names, with the adapter
        config = json.loads((folder / (TASK_CONFIG if adapter else "config.json")).read_text(encoding="utf-8"))
        wanted = PROBLEM_OF_STRATEGY[settings.pooling_strategy]
        found = config.get("problem_type") or ("single_label_classification" if config.get("id2label") else None)
        # any encoder's sequence classifier, and the ``BertkitFor…`` class of a head or pooling of bertkit's own
        if task_kind(config.get("architectures") or []) != "sequence" or found != wanted:
            raise ValueError(f"pooling_strategy {settings.pooling_strategy} needs a model fine-tuned for {wanted} "
                             f"(bertkit finetune ... then serve its best/ folder); {folder} is "
                             f"{', '.join(config.get('architectures', ['?']))} with problem_type {found}")
        if adapter and base_model is not None:
            tokens = folder if (folder / "vocab.txt").is_file() or (folder / "tokenizer.json").is_file() else None
            predictor = SequenceClassifier(load_task_adapter(folder, base_model),
                                           AutoTokenizer.from_pretrained(tokens or base_model))
        else:
            predictor = SequenceClassifier.from_pretrained(folder)
        if adapter and merge and predictor.model.peft_config.method == "lora":
            merge_lora(predictor.model)  # one adapter served: folded into the weights, no inference cost
        predictor.model.to(device)
        apply_precision(predictor.model, settings.precision, predictor.tokenizer)
        return cls(predictor, settings)

    @property
    def dimension(self) -> int:
        """Columns of a reply: one per label, or one score."""
        return 1 if self.settings.pooling_strategy == "REGRESSION" else len(self.predictor.labels.labels)

    @property
    def labels(self) -> list[str]:
        """Label names in ``id2label`` order (one column each; a regressor has one)."""
        return list(self.predictor.labels.labels)

    @property
    def max_length(self) -> int:
        """The tokens per input the model was trained with."""
        return int(self.predictor.settings.max_length)

    def run(self, task: str, items: list) -> tuple[np.ndarray, list | None]:
        """One batch: bert-as-service ``encode`` (probabilities / scores), or the TEI routes' ``classify``."""
        if task == ENCODE:
            return self.encode(items)
        if task == CLASSIFY:
            return self.logits([(text, pair) for text, pair in items]), None
        raise ValueError(f"the served model is a fine-tuned classifier: it has no sentence embeddings ({task!r})")

    def encode(self, items: list[Item]) -> tuple[np.ndarray, list[list[str]]]:
        """Probabilities (or scores) of ``items``, rows in request order, and each item's tokens."""
        entries = [text_and_pair(item) for item in items]
        out = self._outputs(self.logits(entries)) if entries else np.zeros((0, self.dimension), dtype=np.float32)
        tokens = [self._tokens(text, pair) for text, pair in entries]
        return out, tokens

    def logits(self, entries: list[tuple[str, str | None]]) -> np.ndarray:
        """Raw logits of (text, pair or None) entries, rows in order."""
        out = np.zeros((len(entries), self.dimension), dtype=np.float32)
        for has_pair in (False, True):  # the predictor takes all-singles or all-pairs
            rows = [i for i, (_, pair) in enumerate(entries) if (pair is not None) == has_pair]
            if rows:
                texts = [entries[i][0] for i in rows]
                pairs = [entries[i][1] for i in rows] if has_pair else None
                out[rows] = self.predictor.predict_logits(texts, pairs)[:, : self.dimension]
        return out

    def _outputs(self, logits: np.ndarray) -> np.ndarray:
        if self.settings.pooling_strategy == "REGRESSION":
            return logits
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def _tokens(self, text: str, pair: str | None) -> list[str]:
        tokens = [self.tokenizer.cls_token, *self.tokenizer.tokenize(text), self.tokenizer.sep_token]
        return tokens + ([*self.tokenizer.tokenize(pair), self.tokenizer.sep_token] if pair is not None else [])
