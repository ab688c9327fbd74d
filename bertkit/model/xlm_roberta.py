"""XLM-RoBERTa (Conneau et al. 2020): RoBERTa's architecture trained on 100 languages of CommonCrawl with a
250k-piece SentencePiece vocabulary. The model is RoBERTa's, block for block and name for name (weights under
``roberta.``, head ``lm_head``); only the ``model_type`` differs ("xlm-roberta"), and with it the folders a class
reads — so these are RoBERTa's classes under XLM-R's name, not copies."""

from __future__ import annotations

from .roberta import RobertaForMaskedLM, RobertaModel


class XLMRobertaModel(RobertaModel):
    """The XLM-R encoder: RoBERTa's (positions counted after the padding index, BERT's pooler)."""

    model_type = "xlm-roberta"


class XLMRobertaForMaskedLM(RobertaForMaskedLM):
    """XLM-R with RoBERTa's masked-LM head (``lm_head``, exact GELU)."""

    model_type = "xlm-roberta"
    base_class = XLMRobertaModel
