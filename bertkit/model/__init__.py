"""Layer 1: BERT in PyTorch; knows nothing of tokenization."""

from .bert import BertModel, BertModelOutput
from .heads import BertForMaskedLM, BertForPreTraining, BertForPreTrainingOutput, MaskedLMOutput
from .linear import Linear

__all__ = [
    "BertForMaskedLM",
    "BertForPreTraining",
    "BertForPreTrainingOutput",
    "BertModel",
    "BertModelOutput",
    "Linear",
    "MaskedLMOutput",
]
