"""Layer 1: the BERT family in PyTorch, on one set of blocks; knows nothing of tokenization.

Blocks: ``embeddings``, ``attention`` (+ ``position_bias``), ``feed_forward``, ``block`` (a layer), ``encoder``
(stacks, shared or not, and the encoder model), ``heads``; speed paths: ``kernels``; positions inside attention:
``relative_positions``, ``rotary``. One short file per architecture (``bert``, ``roberta``, ``albert``,
``electra``, ``distilbert``, ``ernie``, ``nezha``, ``xlm``, ``xlm_roberta``, ``gpt2``, ``t5``, ``xlnet``,
``roformer``, ``modernbert``, ``deberta_v2``); ``architectures`` holds their config fields and transformers'
names; ``auto`` dispatches on ``model_type``.
"""

from .albert import AlbertForMaskedLM, AlbertForPreTraining, AlbertModel
from .auto import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSeq2SeqLM,
)
from .bert import BertForMaskedLM, BertForPreTraining, BertModel
from .causal_lm import BertLMHeadModel
from .deberta_v2 import DebertaV2ForMaskedLM, DebertaV2ForSequenceClassification, DebertaV2Model
from .distilbert import DistilBertForMaskedLM, DistilBertModel
from .electra import ElectraForMaskedLM, ElectraForPreTraining, ElectraModel
from .encoder import BertModelOutput, EncoderModel
from .ernie import ErnieForMaskedLM, ErnieForPreTraining, ErnieModel
from .gpt2 import GPT2LMHeadModel, GPT2Model
from .heads import BertForPreTrainingOutput, MaskedLMOutput, ReplacedTokenOutput
from .modernbert import ModernBertForMaskedLM, ModernBertForSequenceClassification, ModernBertModel
from .nezha import NezhaForMaskedLM, NezhaForPreTraining, NezhaModel
from .roberta import RobertaForMaskedLM, RobertaModel
from .roformer import RoFormerForMaskedLM, RoFormerModel
from .seq2seq import TransformerForConditionalGeneration, TransformerModel
from .t5 import T5ForConditionalGeneration, T5Model
from .xlm import XLMModel, XLMWithLMHeadModel
from .xlm_roberta import XLMRobertaForMaskedLM, XLMRobertaModel
from .xlnet import XLNetLMHeadModel, XLNetModel

__all__ = [
    "AlbertForMaskedLM",
    "AlbertForPreTraining",
    "AlbertModel",
    "AutoModel",
    "AutoModelForCausalLM",
    "AutoModelForMaskedLM",
    "AutoModelForPreTraining",
    "AutoModelForSeq2SeqLM",
    "BertForMaskedLM",
    "BertForPreTraining",
    "BertForPreTrainingOutput",
    "BertLMHeadModel",
    "BertModel",
    "BertModelOutput",
    "DebertaV2ForMaskedLM",
    "DebertaV2ForSequenceClassification",
    "DebertaV2Model",
    "DistilBertForMaskedLM",
    "DistilBertModel",
    "ElectraForMaskedLM",
    "ElectraForPreTraining",
    "ElectraModel",
    "EncoderModel",
    "ErnieForMaskedLM",
    "ErnieForPreTraining",
    "ErnieModel",
    "GPT2LMHeadModel",
    "GPT2Model",
    "MaskedLMOutput",
    "ModernBertForMaskedLM",
    "ModernBertForSequenceClassification",
    "ModernBertModel",
    "NezhaForMaskedLM",
    "NezhaForPreTraining",
    "NezhaModel",
    "ReplacedTokenOutput",
    "RobertaForMaskedLM",
    "RobertaModel",
    "RoFormerForMaskedLM",
    "RoFormerModel",
    "T5ForConditionalGeneration",
    "T5Model",
    "TransformerForConditionalGeneration",
    "TransformerModel",
    "XLMModel",
    "XLMRobertaForMaskedLM",
    "XLMRobertaModel",
    "XLMWithLMHeadModel",
    "XLNetLMHeadModel",
    "XLNetModel",
]
