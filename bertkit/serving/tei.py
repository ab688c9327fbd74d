"""text-embeddings-inference (v1.x) and OpenAI-compatible routes: same request and response JSON as TEI.

``/embed``, ``/embed_all``, ``/predict``, ``/rerank``, ``/similarity``, ``/tokenize``, ``/decode``, ``/health``,
``/info``, ``/v1/embeddings`` (and ``/embeddings``), ``/v1/models``, and ``POST /``, which dispatches by payload
as ``huggingface_hub.InferenceClient(model=URL)`` posts there: ``{"inputs": {"source_sentence", "sentences"}}`` is
sentence similarity, ``{"inputs": text}`` is an embedding (or, when a classifier is served, a classification in the
Inference API's ``[[{label, score}]]`` shape). ``/tokenize`` and ``/similarity`` also keep bertkit's older bodies
(``{"text"}``, ``{"texts"}``): a body with ``inputs`` is TEI's.
"""

from __future__ import annotations

import base64
import json

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from .. import __version__
from .front import ApiError, Front
from .inspection import model_name
from .protocol import SERVER_VERSION
from .tei_types import (
    ClassificationParameters,
    DecodeRequest,
    EmbedAllRequest,
    EmbedRequest,
    OpenAIEmbeddingsRequest,
    PredictRequest,
    RerankRequest,
    SimilarityParameters,
    SimilarityRequest,
    TokenizeRequest,
)


def json_response(data, headers: dict | None = None) -> Response:
    """JSON without FastAPI's per-element encoder (a 2,048 × 384 reply would take seconds through it)."""
    return Response(json.dumps(data, separators=(",", ":")), media_type="application/json", headers=headers)


def ranked(scores: np.ndarray, labels: list[str]) -> list[dict]:
    """``[{"score", "label"}]`` from the highest score down."""
    order = np.argsort(-scores, kind="stable")
    return [{"score": float(scores[i]), "label": labels[i]} for i in order]


def predict_inputs(inputs: str | list) -> tuple[list[tuple[str, str | None]], bool]:
    """TEI's ``/predict`` inputs → (text, pair) entries, and whether it was a batch."""
    if isinstance(inputs, str):
        return [(inputs, None)], False
    if inputs and isinstance(inputs[0], str):  # one [text] or [text, pair]
        inputs, batch = [inputs], False
    else:
        batch = True
    entries = []
    for i, item in enumerate(inputs):
        if len(item) not in (1, 2):
            raise ApiError(422, f"inputs[{i}] must be [text] or [text, pair], got {len(item)} strings", "validation")
        entries.append((item[0], item[1] if len(item) == 2 else None))
    return entries, batch


async def tei_embed(front: Front, body: EmbedRequest) -> Response:
    """``/embed``: one embedding per input."""
    vectors, _ = await front.embeddings(front.as_list(body.inputs), body.truncate, body.truncation_direction,
                                        body.prompt_name, body.normalize, body.dimensions)
    return json_response(vectors.tolist())


async def tei_similarity(front: Front, body: SimilarityRequest) -> Response:
    """``/similarity``: the cosine of ``source_sentence`` with each of ``sentences``."""
    parameters = body.parameters or SimilarityParameters()
    texts = [body.inputs.source_sentence, *body.inputs.sentences]
    front.check_count(len(body.inputs.sentences), "sentences")
    vectors, _ = await front.embeddings(texts, parameters.truncate, parameters.truncation_direction,
                                        parameters.prompt_name, normalize=True)
    return json_response((vectors[1:] @ vectors[0]).astype(float).tolist())


async def classify(front: Front, texts: list[tuple[str, str | None]], function: str | None,
                   top_k: int | None = None, adapter: str | None = None) -> list[list[dict]]:
    """Ranked labels per entry, scored by ``function`` (default: TEI's rule), by the served ``adapter``."""
    scores = front.scores(await front.logits(texts, adapter), function or front.default_function(adapter))
    return [ranked(row, front.labels_of(adapter))[:top_k] for row in scores]


def tei_router(front: Front, started_at: float) -> APIRouter:
    """The routes, answering through ``front``."""
    router = APIRouter()
    settings = front.settings
    served_name = model_name(settings.model_dir)

    @router.post("/embed")
    async def embed(body: EmbedRequest) -> Response:
        """Sentence embeddings: ``{"inputs", "normalize", "truncate", "truncation_direction", "dimensions"}``."""
        return await tei_embed(front, body)

    @router.post("/embed_all")
    async def embed_all(body: EmbedAllRequest) -> Response:
        """Last-layer vectors of every token (special tokens included), per input."""
        rows = await front.token_vectors(front.as_list(body.inputs), body.truncate, body.truncation_direction,
                                         body.prompt_name)
        return json_response([row.tolist() for row in rows])

    @router.post("/predict")
    async def predict(body: PredictRequest) -> Response:
        """A fine-tuned classifier's labels and scores, highest first; batches give one list per input."""
        entries, batch = predict_inputs(body.inputs)
        results = await classify(front, entries, "none" if body.raw_scores else None, adapter=body.adapter_id)
        return json_response(results if batch else results[0])

    @router.post("/rerank")
    async def rerank(body: RerankRequest) -> Response:
        """Texts ranked by a fine-tuned pair model's score against ``query`` (sigmoid of one output, or the
        probability of the last label)."""
        front.check_count(len(body.texts), "texts")
        logits = await front.logits([(body.query, text) for text in body.texts])
        if body.raw_scores:
            scores = logits[:, -1].astype(float)
        else:
            scores = front.scores(logits, front.default_function())[:, -1]
        order = np.argsort(-scores, kind="stable")
        return json_response([{"index": int(i), "score": float(scores[i]),
                               **({"text": body.texts[i]} if body.return_text else {})} for i in order])

    @router.post("/decode")
    async def decode(body: DecodeRequest) -> Response:
        """Token ids → texts."""
        batch = [body.ids] if body.ids and isinstance(body.ids[0], int) else body.ids
        front.check_count(len(batch), "ids")
        vocab = front.tokenizer.vocab_size
        if any(not 0 <= t < vocab for ids in batch for t in ids):
            raise ApiError(422, f"ids must lie in [0, {vocab})", "validation")
        return json_response([front.tokenizer.decode(ids, skip_special_tokens=body.skip_special_tokens)
                              for ids in batch])

    @router.get("/health")
    async def health() -> Response:
        """200 when the encoder answers, else 503."""
        try:
            await front.client.config()
        except Exception:
            raise ApiError(503, "unhealthy", "unhealthy") from None
        return Response(status_code=200)

    @router.get("/info")
    async def info() -> dict:
        """The served model and the server's limits, as TEI's ``/info``."""
        if front.classifier:
            id2label = {str(i): label for i, label in enumerate(front.labels)}
            kind = "reranker" if len(front.labels) == 1 else "classifier"
            model_type = {kind: {"id2label": id2label, "label2id": {v: int(k) for k, v in id2label.items()}}}
        else:
            model_type = {"embedding": {"pooling": front.sentence["pooling"]}}
        return {"model_id": served_name, "model_sha": None, "model_dtype": "float32", "model_type": model_type,
                "max_concurrent_requests": settings.max_concurrent_requests, "max_input_length": front.max_length,
                "max_batch_tokens": settings.max_batch_tokens, "max_batch_requests": settings.max_batch_size,
                "max_client_batch_size": settings.max_client_batch_size, "auto_truncate": settings.auto_truncate,
                "tokenization_workers": 1, "version": __version__, "sha": None, "docker_label": None,
                "bert_as_service_version": SERVER_VERSION, "normalize": front.sentence["normalize"]}

    @router.post("/v1/embeddings")
    @router.post("/embeddings", include_in_schema=False)
    async def openai_embeddings(body: OpenAIEmbeddingsRequest) -> Response:
        """OpenAI-style embeddings with the folder's settings; ``usage`` counts the tokens encoded and the
        inputs truncated to the model's length. A ``model`` this server does not serve is a 404, as OpenAI answers
        (a client that names another model would otherwise get this one's vectors unawares)."""
        if body.model and body.model not in (served_name, str(settings.model_dir)):
            raise ApiError(404, f"the model {body.model!r} is not served here: this server serves {served_name!r} "
                                "(GET /v1/models lists it; or leave model out)", "not_found")
        vectors, usage = await front.embeddings(front.as_list(body.input), dimensions=body.dimensions)
        data = []
        for index, vector in enumerate(vectors):
            value = base64.b64encode(vector.astype("<f4").tobytes()).decode() \
                if body.encoding_format == "base64" else vector.tolist()
            data.append({"object": "embedding", "embedding": value, "index": index})
        return json_response({"object": "list", "data": data, "model": body.model or served_name, "usage": usage})

    @router.get("/v1/models")
    async def models() -> dict:
        """The one served model, as OpenAI lists models."""
        return {"object": "list", "data": [{"id": served_name, "object": "model", "created": int(started_at),
                                            "owned_by": "bertkit"}]}

    @router.post("/", include_in_schema=False)
    async def dispatch(request: Request) -> Response:
        """What ``InferenceClient(model=URL)`` posts: similarity, classification or embeddings, by payload."""
        try:
            payload = json.loads(await request.body())
        except (UnicodeDecodeError, ValueError) as problem:
            raise ApiError(400, f"invalid JSON body: {problem}", "validation") from None
        if not isinstance(payload, dict) or "inputs" not in payload:
            raise ApiError(422, 'the body must be a JSON object with "inputs"', "validation")
        try:
            if isinstance(payload["inputs"], dict):
                return await tei_similarity(front, SimilarityRequest.model_validate(payload))
            if front.classifier:
                parameters = ClassificationParameters.model_validate(payload.get("parameters") or {})
                body = PredictRequest.model_validate({"inputs": payload["inputs"]})
                entries, _ = predict_inputs(body.inputs)
                return json_response(await classify(front, entries, parameters.function_to_apply, parameters.top_k))
            return await tei_embed(front, EmbedRequest.model_validate(payload))
        except ValidationError as problem:
            raise ApiError(422, f"invalid request: {problem.errors()[0]['msg']} at "
                                f"{'.'.join(map(str, problem.errors()[0]['loc']))}", "validation") from None

    return router


def tei_tokens(front: Front, body: TokenizeRequest) -> list[list[dict]]:
    """TEI's ``/tokenize``: per input, ``{"id", "text", "special", "start", "stop"}`` (character offsets)."""
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    front.check_count(len(texts))
    prompt = front.prompts.get(body.prompt_name, "") if body.prompt_name else ""
    out = []
    for text in texts:
        text = prompt + text
        enc = front.tokenizer(text, add_special_tokens=body.add_special_tokens, return_offsets_mapping=True,
                              return_special_tokens_mask=True)
        tokens = front.tokenizer.convert_ids_to_tokens(enc["input_ids"])
        out.append([{"id": i, "text": token, "special": True, "start": None, "stop": None} if special else
                    {"id": i, "text": text[a:b], "special": False, "start": a, "stop": b}
                    for i, token, special, (a, b) in zip(enc["input_ids"], tokens, enc["special_tokens_mask"],
                                                         enc["offset_mapping"], strict=True)])
    return out
