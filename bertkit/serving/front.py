"""What the TEI / OpenAI routes share: inputs → token ids (truncated as asked), and the workers' answers.

These routes use the model folder's own sentence-transformers settings (pooling, normalisation, max_seq_length,
as the workers report them), not bert-as-service's defaults; texts are tokenized here, in the HTTP process, so that
truncation is exact and reported, and the workers get token ids.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np

from ..tokenization import BertTokenizer
from .client import AsyncBertClient, EncodingFailed
from .metrics import ServerMetrics
from .protocol import CLASSIFY, EMBED, TOKENS, adapter_task
from .settings import ServerSettings
from .strategies import FINE_TUNED


class ApiError(Exception):
    """A request the server refuses: HTTP ``status``, a message, and TEI's ``error_type``."""

    def __init__(self, status: int, message: str, kind: str = "validation"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def read_prompts(folder: Path) -> dict[str, str]:
    """The ``prompts`` of a sentence-transformers folder (config_sentence_transformers.json), if any."""
    path = Path(folder) / "config_sentence_transformers.json"
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get("prompts") or {})


class Front:
    """The tokenizer, the folder's settings and the encoder client, for the TEI / OpenAI routes."""

    def __init__(self, settings: ServerSettings, client: AsyncBertClient, metrics: ServerMetrics, info: dict):
        self.settings, self.client, self.metrics = settings, client, metrics
        self.tokenizer = BertTokenizer.from_pretrained(settings.model_dir)  # the folder's own casing
        self.classifier = settings.pooling_strategy in FINE_TUNED
        self.sentence = info.get("sentence") or {"pooling": "mean", "normalize": True, "max_seq_length": 512}
        self.labels: list[str] = info.get("labels") or []
        self.adapters: dict[str, dict] = info.get("adapters") or {}  # name → labels, max_length (multi_adapter.py)
        self.max_length = int(info.get("max_length") or self.sentence["max_seq_length"])
        self.hidden_size = info.get("hidden_size") or info.get("dimension")
        self.prompts = read_prompts(settings.model_dir)
        self.special = [self.tokenizer.convert_tokens_to_ids(t) for t in (self.tokenizer.cls_token,
                                                                          self.tokenizer.sep_token)]

    # -- checks ------------------------------------------------------------------------------------------

    def need_embeddings(self) -> None:
        if self.classifier:
            raise ApiError(400, f"the served model is a fine-tuned classifier (pooling_strategy "
                                f"{self.settings.pooling_strategy}, labels {self.labels}): it has no sentence "
                                "embeddings; ask /predict or /rerank", "validation")

    def need_classifier(self) -> None:
        if not self.classifier:
            raise ApiError(400, "the served model is an embedding model, not a fine-tuned classifier: serve a "
                                "`bertkit finetune` model with -pooling_strategy CLASSIFICATION or REGRESSION",
                           "validation")

    def check_count(self, count: int, name: str = "inputs") -> None:
        if count == 0:
            raise ApiError(422, f"`{name}` cannot be empty", "validation")
        if count > self.settings.max_client_batch_size:
            raise ApiError(413, f"batch size {count} > maximum allowed batch size "
                                f"{self.settings.max_client_batch_size}", "validation")

    # -- inputs → token ids ------------------------------------------------------------------------------

    def as_list(self, inputs: str | list) -> list[str | list[int]]:
        """One input or a batch, as a list of texts and id sequences."""
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            return [inputs]
        return list(inputs)

    async def token_ids(self, inputs: list[str | list[int]], truncate: bool | None, direction: str = "right",
                        prompt_name: str | None = None) -> tuple[list[list[int]], int]:
        """Token ids of every input (texts get ``[CLS]``/``[SEP]``) and how many were truncated."""
        self.check_count(len(inputs))
        prompt = ""
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ApiError(422, f"prompt_name {prompt_name!r} is not one of the model folder's prompts "
                                    f"{sorted(self.prompts)}", "validation")
            prompt = self.prompts[prompt_name]
        truncate = self.settings.auto_truncate if truncate is None else truncate
        started = time.perf_counter()
        out = await asyncio.to_thread(self._ids, inputs, truncate, direction.lower(), prompt)
        self.metrics.tokenization_duration.observe(time.perf_counter() - started)
        for ids, _ in out:
            self.metrics.input_length.observe(len(ids))
        return [ids for ids, _ in out], sum(cut for _, cut in out)

    def _ids(self, inputs: list, truncate: bool, direction: str, prompt: str) -> list[tuple[list[int], bool]]:
        vocab, out = self.tokenizer.vocab_size, []
        for i, item in enumerate(inputs):
            if isinstance(item, str):
                if not item.strip():
                    raise ApiError(422, f"inputs[{i}] is an empty text", "validation")
                ids = [self.special[0], *self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(prompt + item)),
                       self.special[1]]
            else:
                if not item or any(not 0 <= t < vocab for t in item):
                    raise ApiError(422, f"inputs[{i}] must be token ids in [0, {vocab}), got {str(item)[:60]}",
                                   "validation")
                ids = list(item)
            out.append(self.fit(ids, truncate, direction, isinstance(item, str)))
        return out

    def fit(self, ids: list[int], truncate: bool, direction: str, text: bool) -> tuple[list[int], bool]:
        """``ids`` cut to the model's length from ``direction`` (a text keeps its ``[CLS]`` and ``[SEP]``)."""
        limit = self.max_length
        if len(ids) <= limit:
            return ids, False
        if not truncate:
            raise ApiError(413, f"Input validation error: `inputs` must have less than {limit} tokens. Given: "
                                f"{len(ids)} (or send truncate=true)", "validation")
        if text:
            body, keep = ids[1:-1], limit - 2
            body = body[:keep] if direction == "right" else body[len(body) - keep :]
            return [ids[0], *body, ids[-1]], True
        return (ids[:limit] if direction == "right" else ids[len(ids) - limit :]), True

    # -- encoding ----------------------------------------------------------------------------------------

    async def _run(self, task: str, items: list) -> np.ndarray:
        started = time.perf_counter()
        try:
            rows = await self.client.run(task, items)
        except EncodingFailed as failure:
            raise ApiError(424, f"inference failed: {failure}", "backend") from None
        self.metrics.inference_duration.observe(time.perf_counter() - started)
        return rows

    async def embeddings(self, inputs: list, truncate: bool | None = None, direction: str = "right",
                         prompt_name: str | None = None, normalize: bool | None = None,
                         dimensions: int | None = None) -> tuple[np.ndarray, dict]:
        """Sentence embeddings as the folder computes them (Matryoshka-cut to ``dimensions``) and their usage."""
        self.need_embeddings()
        if dimensions is not None and not 1 <= dimensions <= self.hidden_size:
            raise ApiError(422, f"dimensions must lie in [1, {self.hidden_size}], got {dimensions}", "validation")
        ids, truncated = await self.token_ids(inputs, truncate, direction, prompt_name)
        vectors = np.array(await self._run(EMBED, ids), dtype=np.float32)
        if dimensions is not None:
            vectors = vectors[:, :dimensions]
        if self.sentence["normalize"] if normalize is None else normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        used = sum(map(len, ids))
        return vectors, {"prompt_tokens": used, "total_tokens": used, "truncated_inputs": truncated}

    async def token_vectors(self, inputs: list, truncate: bool | None, direction: str,
                            prompt_name: str | None) -> list[np.ndarray]:
        """Last-layer vectors of every token of every input."""
        self.need_embeddings()
        ids, _ = await self.token_ids(inputs, truncate, direction, prompt_name)
        rows = await self._run(TOKENS, ids)
        return [rows[i, : len(seq)] for i, seq in enumerate(ids)]

    def check_adapter(self, adapter: str | None) -> None:
        """A request's ``adapter_id`` must name one of the served adapters."""
        if adapter is not None and adapter not in self.adapters:
            served = f"this server has {', '.join(self.adapters)}" if self.adapters else \
                "this server serves no adapters (bertkit serve --adapter NAME=DIR)"
            raise ApiError(422, f"unknown adapter_id {adapter!r}; {served}", "validation")

    def labels_of(self, adapter: str | None) -> list[str]:
        """The label names of ``adapter``'s classifier (None: the default model's)."""
        return self.labels if adapter is None else self.adapters[adapter]["labels"]

    async def logits(self, entries: list[tuple[str, str | None]], adapter: str | None = None) -> np.ndarray:
        """A fine-tuned classifier's logits of (text, pair or None) entries (prepared as in its training);
        ``adapter``: which served adapter answers (None: the default)."""
        self.need_classifier()
        self.check_adapter(adapter)
        self.check_count(len(entries))
        for i, (text, pair) in enumerate(entries):
            if not text.strip() or (pair is not None and not pair.strip()):
                raise ApiError(422, f"inputs[{i}] has an empty text", "validation")
        return await self._run(adapter_task(CLASSIFY, adapter), [[text, pair] for text, pair in entries])

    def scores(self, logits: np.ndarray, function: str) -> np.ndarray:
        """``softmax`` over the labels, ``sigmoid`` of each, or ``none`` (raw logits)."""
        logits = logits.astype(np.float64)
        if function == "sigmoid":
            return 1 / (1 + np.exp(-logits))
        if function == "softmax":
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            return shifted / shifted.sum(axis=-1, keepdims=True)
        return logits

    def default_function(self, adapter: str | None = None) -> str:
        """TEI's rule: one output is a score (sigmoid), several are classes (softmax)."""
        return "sigmoid" if len(self.labels_of(adapter)) == 1 else "softmax"
