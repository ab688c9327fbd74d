"""Layer 2: fine-tuning — task data, heads on BertModel, long text, training on the shared loop, evaluation,
prediction, and hyper-parameter search (Ray Tune)."""

from .config import FinetuneConfig
from .data import LabelMap, load_examples, normalize_text
from .models import BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification, TaskConfig
from .predict import QuestionAnswerer, SequenceClassifier, TokenClassifier, load_predictor
from .train import FinetuneResult, finetune

__all__ = [
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "FinetuneConfig",
    "FinetuneResult",
    "LabelMap",
    "QuestionAnswerer",
    "SequenceClassifier",
    "TaskConfig",
    "TokenClassifier",
    "finetune",
    "load_examples",
    "load_predictor",
    "normalize_text",
]
