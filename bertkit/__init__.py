"""bertkit: BERT from raw text to a served model.

Names are resolved lazily, so that ``import bertkit.tokenization`` stays free of torch.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BertConfig": "bertkit.config",
    "BertTokenizer": "bertkit.tokenization",
    "AutoTokenizer": "bertkit.tokenization",
    **{name: "bertkit.tokenization" for name in ("GPT2Tokenizer", "RobertaTokenizer")},  # byte-level BPE
    "BertModel": "bertkit.model",
    "BertForPreTraining": "bertkit.model",
    "BertForMaskedLM": "bertkit.model",
    **{name: "bertkit.model" for name in (
        "AutoModel", "AutoModelForMaskedLM", "AutoModelForPreTraining", "RobertaModel", "RobertaForMaskedLM",
        "AlbertModel", "AlbertForPreTraining", "AlbertForMaskedLM", "ElectraModel", "ElectraForPreTraining",
        "ElectraForMaskedLM", "DistilBertModel", "DistilBertForMaskedLM", "AutoModelForCausalLM", "GPT2Model",
        "GPT2LMHeadModel", "BertLMHeadModel")},
    "SentenceEncoder": "bertkit.encoding",
    # the encoder-decoder
    **{name: "bertkit.model.seq2seq" for name in ("TransformerModel", "TransformerForConditionalGeneration")},
    "AutoModelForSeq2SeqLM": "bertkit.model.auto",
    "Seq2SeqConfig": "bertkit.config",
    "T5Config": "bertkit.t5_config",
    **{name: "bertkit.model.t5" for name in ("T5Model", "T5ForConditionalGeneration")},
    "XLNetConfig": "bertkit.model.xlnet_architecture",
    **{name: "bertkit.model" for name in ("XLNetModel", "XLNetLMHeadModel", "RoFormerModel", "RoFormerForMaskedLM",
                                          "XLMRobertaModel", "XLMRobertaForMaskedLM")},
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bertkit' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
