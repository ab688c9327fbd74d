"""ERNIE (Baidu; Sun et al. 2019, 2020): BERT's blocks pretrained with knowledge masking — whole phrases and
entities masked as units (``masking: phrase`` / ``entity`` in pretraining) — and, from ERNIE 2.0, a task-type
embedding summed with the token, position and segment ones (``use_task_id``, ``task_type_vocab_size``; the forward
takes ``task_type_ids``). Names are transformers' ``ErnieModel`` (BERT's, prefix ``ernie``)."""

from __future__ import annotations

from .encoder import EncoderModel
from .language_models import ForMaskedLM, ForPreTraining


class ErnieModel(EncoderModel):
    """The ERNIE encoder (with BERT's pooler, as transformers' ``ErnieModel``)."""

    model_type = "ernie"


class ErnieForPreTraining(ForPreTraining):
    """ERNIE with the MLM and NSP heads."""

    model_type = "ernie"
    base_class = ErnieModel


class ErnieForMaskedLM(ForMaskedLM):
    """ERNIE with the masked-LM head only."""

    model_type = "ernie"
    base_class = ErnieModel
