"""Auto classes: the right architecture for a folder, read from its ``config.json`` ``model_type``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..config import BertConfig
from .albert import AlbertForMaskedLM, AlbertForPreTraining, AlbertModel
from .architectures import SUPPORTED, architecture
from .bert import BertForMaskedLM, BertForPreTraining, BertModel
from .causal_lm import BertLMHeadModel
from .deberta_v2 import DebertaV2ForMaskedLM, DebertaV2Model
from .deberta_v2_architecture import DebertaV2Config
from .distilbert import DistilBertForMaskedLM, DistilBertModel
from .electra import ElectraForMaskedLM, ElectraForPreTraining, ElectraModel
from .ernie import ErnieForMaskedLM, ErnieForPreTraining, ErnieModel
from .gpt2 import GPT2LMHeadModel, GPT2Model
from .modernbert import ModernBertForMaskedLM, ModernBertModel
from .modernbert_architecture import ModernBertConfig
from .nezha import NezhaForMaskedLM, NezhaForPreTraining, NezhaModel
from .pretrained import Pretrained
from .roberta import RobertaForMaskedLM, RobertaModel
from .roformer import RoFormerForMaskedLM, RoFormerModel
from .seq2seq import TransformerForConditionalGeneration, TransformerModel
from .t5 import T5ForConditionalGeneration, T5Model
from .xlm import XLMModel, XLMWithLMHeadModel
from .xlm_roberta import XLMRobertaForMaskedLM, XLMRobertaModel
from .xlnet import XLNetLMHeadModel, XLNetModel
from .xlnet_architecture import XLNetConfig


class _Auto:
    """Dispatch on ``model_type``: ``from_pretrained(folder)`` and ``from_config(config)``."""

    classes: dict[str, type[Pretrained]]

    @classmethod
    def model_class(cls, model_type: str) -> type[Pretrained]:
        """The class for a ``model_type``; an unknown one is a clear error."""
        if model_type not in cls.classes:
            raise ValueError(f"{cls.__name__} has no model for model_type {model_type!r}; bertkit knows "
                             f"{', '.join(SUPPORTED)}")
        return cls.classes[model_type]

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs: Any) -> Pretrained:
        """Load a folder with the class its config.json's ``model_type`` names."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
        model_type = _model_type(folder / "config.json")
        architecture(model_type)  # an unknown model_type: the one message every loader gives
        return cls.model_class(model_type).from_pretrained(folder, **kwargs)  # it reads config.json (pruned or not)

    @classmethod
    def from_config(cls, config: BertConfig, **kwargs: Any) -> Pretrained:
        """A freshly initialised model of the config's architecture."""
        return cls.model_class(config.model_type)(config, **kwargs)


CONFIG_CLASSES = {"xlnet": XLNetConfig, "deberta-v2": DebertaV2Config, "modernbert": ModernBertConfig}


def config_class(model_type: str | None) -> type[BertConfig]:
    """The config class a ``model_type``'s config.json is read with (fields of its own); BertConfig for the rest."""
    return CONFIG_CLASSES.get(model_type or "bert", BertConfig)


def folder_config(folder: str | os.PathLike) -> BertConfig:
    """A model folder's config.json, read with its architecture's config class."""
    path = Path(folder) / "config.json"
    return config_class(_model_type(path)).from_json_file(path)


def folder_model_type(folder: str | os.PathLike) -> str:
    """The ``model_type`` a folder's config.json names ("bert" where it names none or cannot be read)."""
    return _model_type(Path(folder) / "config.json")


def _model_type(path: Path) -> str:
    """The ``model_type`` a config.json names (old BERT configs name none); the file's errors are read later."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "bert"
    return (values.get("model_type") if isinstance(values, dict) else None) or "bert"


class AutoModel(_Auto):
    """The bare encoder of any supported architecture."""

    classes = {"bert": BertModel, "roberta": RobertaModel, "albert": AlbertModel, "electra": ElectraModel,
               "distilbert": DistilBertModel, "gpt2": GPT2Model, "transformer": TransformerModel,
               "bart": TransformerModel, "marian": TransformerModel, "ernie": ErnieModel, "nezha": NezhaModel,
               "xlm": XLMModel, "t5": T5Model, "xlnet": XLNetModel, "roformer": RoFormerModel,
               "xlm-roberta": XLMRobertaModel, "modernbert": ModernBertModel,
               "deberta-v2": DebertaV2Model}


class AutoModelForMaskedLM(_Auto):
    """Encoder + masked-LM head."""

    classes = {"bert": BertForMaskedLM, "roberta": RobertaForMaskedLM, "albert": AlbertForMaskedLM,
               "electra": ElectraForMaskedLM, "distilbert": DistilBertForMaskedLM, "ernie": ErnieForMaskedLM,
               "nezha": NezhaForMaskedLM, "xlm": XLMWithLMHeadModel, "roformer": RoFormerForMaskedLM,
               "xlm-roberta": XLMRobertaForMaskedLM, "modernbert": ModernBertForMaskedLM,
               "deberta-v2": DebertaV2ForMaskedLM}


class AutoModelForPreTraining(_Auto):
    """The model each architecture is pretrained as (as transformers maps them): BERT MLM + NSP, ALBERT MLM + SOP,
    ELECTRA's discriminator, RoBERTa's and DistilBERT's MLM."""

    classes = {"bert": BertForPreTraining, "roberta": RobertaForMaskedLM, "albert": AlbertForPreTraining,
               "electra": ElectraForPreTraining, "distilbert": DistilBertForMaskedLM, "ernie": ErnieForPreTraining,
               "nezha": NezhaForPreTraining, "xlm": XLMWithLMHeadModel, "xlnet": XLNetLMHeadModel,
               "roformer": RoFormerForMaskedLM, "xlm-roberta": XLMRobertaForMaskedLM,
               "modernbert": ModernBertForMaskedLM, "deberta-v2": DebertaV2ForMaskedLM}


class AutoModelForSeq2SeqLM(_Auto):
    """An encoder-decoder with its output projection: bertkit's Transformer, BART, Marian, T5."""

    classes = {"transformer": TransformerForConditionalGeneration, "bart": TransformerForConditionalGeneration,
               "marian": TransformerForConditionalGeneration, "t5": T5ForConditionalGeneration}


class AutoModelForCausalLM(_Auto):
    """Decoder + next-token head, with ``generate``: GPT-2, and BERT with ``is_decoder`` (``BertLMHeadModel``)."""

    classes = {"gpt2": GPT2LMHeadModel, "bert": BertLMHeadModel}
