"""Fine-tuning models: a ``BertModel`` plus a head, saved in the Hugging Face layout with their label map.

``TaskConfig`` is a ``BertConfig`` with the fields transformers' task models read (``id2label``, ``label2id``,
``problem_type``, ``classifier_dropout``) and bertkit's own (head kind, pooling, and how inputs were prepared:
``finetuning``, an ``InputSettings`` with max_length and the long-text strategy, so ``predict`` prepares inputs the
same way).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig
from ..encoding.pooling import POOLING_MODES, pool
from ..model import AutoModel, EncoderModel
from ..model.auto import config_class
from ..model.deberta_v2_architecture import DebertaV2Config
from ..model.heads import IGNORE_INDEX
from ..model.modernbert import ModernBertPretrained
from ..model.modernbert_architecture import ModernBertConfig
from ..model.pretrained import Pretrained
from ..model.pruning import config_of_pruned, stored_pruned_heads
from ..model.xlnet_architecture import XLNetConfig
from . import remote
from .heads import SequenceSummary, classifier_head
from .input_settings import InputSettings
from .own_heads import FIRST_TOKEN_HEADS, SEQUENCE_TASKS, own_head_logits, own_head_modules, uses_own_head

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
POOLINGS = ("pooled", *POOLING_MODES)  # BERT's pooler, or any single sentence-transformers mode
# the task of a folder that names none (written by transformers or peft): its problem type's
TASK_OF_PROBLEM = {"regression": "regression", "multi_label_classification": "multi_label"}


@dataclass
class TaskConfig(BertConfig):
    """BERT's shape plus the task's labels and head."""

    id2label: dict[int, str] = field(default_factory=dict)
    label2id: dict[str, int] = field(default_factory=dict)
    problem_type: str | None = None
    classifier_dropout: float | None = None
    classifier_head: str = "linear"
    classifier_inner_size: int = 256
    pooling: str = "pooled"
    finetuning: InputSettings | None = None  # config.json's "finetuning" object; None: a task's defaults

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.finetuning, InputSettings):  # read from config.json, or a folder without it
            task = TASK_OF_PROBLEM.get(self.problem_type or "", "classification")
            self.finetuning = InputSettings.from_dict({"task": task} | (self.finetuning or {}))
        self.id2label = {int(k): str(v) for k, v in self.id2label.items()}  # JSON keys are strings
        if not self.id2label:  # transformers counts a head's outputs from id2label: an empty one builds none
            if self.problem_type == "regression":
                self.id2label = {0: "score"}
            elif self.finetuning.task == "question_answering":
                self.id2label = {0: "start", 1: "end"}
        self.label2id = {str(k): int(v) for k, v in self.label2id.items()} or {v: k for k, v in self.id2label.items()}
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {self.problem_type!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")

    @classmethod
    def over(cls, base: BertConfig, **task: Any) -> TaskConfig:
        """``base``'s shape under the task's labels and head: every BertConfig field, and an XLNet's own fields
        (memory, positions) in an ``XLNetTaskConfig``, a DeBERTa's or ModernBERT's in theirs."""
        kind = TASK_CONFIGS.get(base.model_type)
        if kind is not None:
            own = config_class(base.model_type)
            if not isinstance(base, own):  # a BERT shape renamed (architecture: …): read with the type's fields
                base = own.from_dict(base.to_dict())
            return kind(**{f.name: getattr(base, f.name) for f in dataclasses.fields(own)} | task)
        return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(BertConfig)}, **task)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TaskConfig:
        """A fine-tuned folder's config.json; an XLNet's (DeBERTa's, ModernBERT's) is read with its own fields."""
        if cls is TaskConfig and values.get("model_type") in TASK_CONFIGS:
            return TASK_CONFIGS[values["model_type"]].from_dict(values)
        return super().from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        """config.json's fields, the input settings as a JSON object."""
        return super().to_dict() | {"finetuning": self.finetuning.to_dict()}

    @property
    def num_labels(self) -> int:
        return 1 if self.problem_type == "regression" else max(1, len(self.id2label))

    @property
    def head_dropout(self) -> float:
        return self.hidden_dropout_prob if self.classifier_dropout is None else self.classifier_dropout


@dataclass
class XLNetTaskConfig(XLNetConfig, TaskConfig):
    """An XLNet under a task head: XLNet's fields and the task's. Its sentence vector is transformers' sequence
    summary of the last token (``pooling: pooled``, XLNet's pooler), its classifier ``logits_proj`` (``linear``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.finetuning.task in ("classification", "multi_label", "regression") and (
                self.pooling != "pooled" or self.classifier_head != "linear"):
            raise ValueError(f"XLNet classifies as transformers' XLNetForSequenceClassification: pooling: pooled (its "
                             f"sequence summary of the last token) and classifier_head: linear (logits_proj); got "
                             f"pooling: {self.pooling}, classifier_head: {self.classifier_head}")


@dataclass
class DebertaV2TaskConfig(DebertaV2Config, TaskConfig):
    """A DeBERTa-v2 / v3 under a task head: its fields (ContextPooler's among them) and the task's; a run's
    classifier_dropout is the classifier's ``cls_dropout``."""

    def __post_init__(self) -> None:
        if self.cls_dropout is None:
            self.cls_dropout = self.classifier_dropout
        super().__post_init__()


@dataclass
class ModernBertTaskConfig(ModernBertConfig, TaskConfig):
    """A ModernBERT under a task head: its sequence classifier pools as ``pooling`` says (cls or mean, written as
    transformers' ``classifier_pooling``; ``pooled``, a folder that names no pooling: its ``classifier_pooling``)."""

    def __post_init__(self) -> None:
        if self.classifier_dropout is None:  # a run that names none: ModernBERT's default
            self.classifier_dropout = 0.0
        super().__post_init__()
        if self.finetuning.task not in SEQUENCE_TASKS:
            raise ValueError(f"modernbert fine-tunes {', '.join(SEQUENCE_TASKS)} here, not {self.finetuning.task} "
                             "(transformers' token / span heads for it are not built)")
        if self.pooling == "pooled":
            self.pooling = self.classifier_pooling
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"modernbert's classifier pools cls or mean (classifier_pooling), got {self.pooling}")
        self.classifier_pooling = self.pooling


TASK_CONFIGS = {"xlnet": XLNetTaskConfig, "deberta-v2": DebertaV2TaskConfig, "modernbert": ModernBertTaskConfig}


@dataclass
class TaskOutput:
    """Loss (when labels are given) and logits; QA fills ``start_logits`` / ``end_logits`` instead."""

    loss: torch.Tensor | None
    logits: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None


CLASS_PREFIXES = {"bert": "Bert", "roberta": "Roberta", "albert": "Albert", "electra": "Electra",
                  "distilbert": "DistilBert", "xlnet": "XLNet", "roformer": "RoFormer", "xlm-roberta": "XLMRoberta",
                  "deberta-v2": "DebertaV2", "modernbert": "ModernBert"}
# where transformers' class for a head is not the prefix + bertkit's name (its XLNetForQuestionAnswering is the
# beam-search head; the single start / end layer is the "Simple" one)
TRANSFORMERS_CLASSES = {"XLNetForQuestionAnswering": "XLNetForQuestionAnsweringSimple"}
SUMMARY_ARCHITECTURES = ("xlnet",)  # their pooled vector is a sequence summary (heads.py), under transformers' names


def has_pooler(model_type: str) -> bool:
    """Whether the architecture's encoder builds BERT's pooler by default (its class's ``add_pooling_layer``)."""
    return inspect.signature(AutoModel.model_class(model_type).__init__).parameters["add_pooling_layer"].default


def default_pooling(model_type: str) -> str:
    """The sentence vector of a head built over a bare config (no folder to ask, see pooling_choice.py): BERT's
    pooler where the architecture has one (XLNet: its sequence summary), else [CLS] (ELECTRA, DistilBERT, XLM,
    GPT-2)."""
    return "pooled" if model_type in (*SUMMARY_ARCHITECTURES, *FIRST_TOKEN_HEADS) or has_pooler(model_type) else "cls"


def encoder_config(folder: str | os.PathLike) -> BertConfig:
    """The config of a model folder's encoder, read with its architecture's config class (an XLNet's with its
    memory and position fields, which a BertConfig refuses rather than drops)."""
    path = Path(folder) / "config.json"
    try:
        model_type = json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None  # BertConfig.from_json_file names what is wrong with the file
    return config_class(model_type).from_json_file(path)


def task_encoder(config: TaskConfig, add_pooling_layer: bool) -> EncoderModel:
    """The encoder of the config's architecture under a task head."""
    if add_pooling_layer and config.model_type in ("electra", "distilbert"):
        raise ValueError(f"{config.model_type} has no pooler: fine-tune it with pooling: cls or mean")
    return AutoModel.model_class(config.model_type)(config, add_pooling_layer=add_pooling_layer)


class TaskModel(Pretrained):
    """A task model of any architecture (its encoder at ``model.bert``, ``model.roberta``, …): loads its
    ``TaskConfig`` (labels, head) from the folder's config.json."""

    config: TaskConfig
    model_type = None  # any: the config says which encoder
    head_prefixes: tuple[str, ...] = ()

    @property
    def architecture_name(self) -> str:
        """The class name written to config.json: ``RobertaForSequenceClassification`` for a RoBERTa encoder."""
        name = type(self).__name__.replace("Bert", CLASS_PREFIXES[self.config.model_type], 1)
        return TRANSFORMERS_CLASSES.get(name, name)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, config: TaskConfig | None = None, **kwargs: Any):
        """Load a fine-tuned folder (or an encoder folder, given the task ``config``): see ``Pretrained``."""
        if config is None:  # a pruned folder's heads are read (and removed) by Pretrained.from_pretrained
            config = config_of_pruned(TaskConfig, folder) if stored_pruned_heads(folder) else \
                TaskConfig.from_json_file(Path(folder) / "config.json")
        return super().from_pretrained(folder, config=config, **kwargs)


class BertForSequenceClassification(TaskModel):
    """Sentence / pair classification (cross-entropy), multi-label (BCE) or regression (MSE: BertSim)."""

    head_prefixes = ("classifier.",)

    def __init__(self, config: TaskConfig):
        super().__init__()
        self.config = config
        summary, own = config.model_type in SUMMARY_ARCHITECTURES, uses_own_head(config)
        setattr(self, self.base_model_prefix, task_encoder(config, add_pooling_layer=config.pooling == "pooled"
                                                           and not summary and not own))
        if own:  # the architecture's own classifier, under transformers' names (own_heads.py)
            for name, module in own_head_modules(config).items():
                setattr(self, name, module)
            self.head_prefixes = tuple(f"{name}." for name, module in self.named_children()
                                       if name != self.base_model_prefix and list(module.parameters()))
            # ModernBERT's norms have no bias: its own initialisation
            (ModernBertPretrained.init_weights if config.model_type == "modernbert" else Pretrained.init_weights)(self)
            return
        head = classifier_head(config.classifier_head, config.hidden_size, config.num_labels,
                               config.classifier_inner_size, config.head_dropout)
        if summary:  # XLNet: summary → tanh → dropout → logits_proj, as transformers names them
            self.sequence_summary = SequenceSummary(config.hidden_size, config.head_dropout)
            self.dropout, self.logits_proj = nn.Identity(), head
            self.head_prefixes = ("sequence_summary.", "logits_proj.")
        else:
            self.dropout, self.classifier = nn.Dropout(config.head_dropout), head
        self.init_weights()

    def sentence_vector(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        """The vector the classifier reads (the hierarchical reader groups them); own heads pool inside."""
        if uses_own_head(self.config):
            raise ValueError(f"{self.config.model_type}'s own classifier pools inside its head: it has no separate "
                             "sentence vector for long_text: hierarchical; use another long_text strategy")
        out = self.base_model(input_ids, attention_mask, token_type_ids)
        if self.config.pooling == "pooled" and self.config.model_type in SUMMARY_ARCHITECTURES:
            return self.sequence_summary(out.last_hidden_state, attention_mask)
        if self.config.pooling == "pooled":
            return out.pooler_output
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        return pool((self.config.pooling,), out.last_hidden_state, mask)

    def save_pretrained(self, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
        """The Hugging Face folder; a head transformers lacks ships its code (``remote.py``: trust_remote_code)."""
        folder = super().save_pretrained(folder, tokenizer)
        if remote.needs_remote_code(self.config):
            remote.ship(folder, self.config.model_type)
        return folder

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> TaskOutput:
        """Logits (batch, num_labels); the loss of the config's ``problem_type`` when labels are given."""
        if uses_own_head(self.config):
            hidden = self.base_model(input_ids, attention_mask, token_type_ids).last_hidden_state
            logits = own_head_logits(self, hidden, attention_mask)
        else:
            classifier = self.logits_proj if self.config.model_type in SUMMARY_ARCHITECTURES else self.classifier
            logits = classifier(self.dropout(self.sentence_vector(input_ids, attention_mask, token_type_ids)))
        loss = None
        if labels is not None:
            kind = self.config.problem_type or "single_label_classification"
            if kind == "regression":
                loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
            elif kind == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
            else:
                loss = F.cross_entropy(logits, labels)
        return TaskOutput(loss, logits)


class BertForTokenClassification(TaskModel):
    """A label per token (NER); positions labelled -100 (later WordPieces, special tokens, padding) are ignored."""

    head_prefixes = ("classifier.",)

    def __init__(self, config: TaskConfig):
        super().__init__()
        self.config = config
        setattr(self, self.base_model_prefix, task_encoder(config, add_pooling_layer=False))
        self.dropout = nn.Dropout(config.head_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None) -> TaskOutput:
        """Logits (batch, seq, num_labels); cross-entropy over labelled positions when labels are given."""
        hidden = self.base_model(input_ids, attention_mask, token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)
        return TaskOutput(loss, logits)


class BertForQuestionAnswering(TaskModel):
    """Extractive QA: start and end logits over the tokens; loss = mean of the two cross-entropies."""

    head_prefixes = ("qa_outputs.",)

    def __init__(self, config: TaskConfig):
        super().__init__()
        self.config = config
        setattr(self, self.base_model_prefix, task_encoder(config, add_pooling_layer=False))
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, start_positions=None,
                end_positions=None) -> TaskOutput:
        """Start / end logits (batch, seq); the loss when gold positions are given (0 = ``[CLS]``: no answer)."""
        hidden = self.base_model(input_ids, attention_mask, token_type_ids).last_hidden_state
        start, end = self.qa_outputs(hidden).unbind(dim=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start, start_positions) + F.cross_entropy(end, end_positions)) / 2
        return TaskOutput(loss, start_logits=start, end_logits=end)


MODEL_CLASSES = {
    "classification": BertForSequenceClassification,
    "multi_label": BertForSequenceClassification,
    "regression": BertForSequenceClassification,
    "token_classification": BertForTokenClassification,
    "question_answering": BertForQuestionAnswering,
}
