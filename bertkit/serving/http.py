"""The HTTP API (FastAPI): bert-as-service's ``/encode``, the TEI and OpenAI routes (tei.py), inspection,
``/metrics``, and the web page.

Encoding goes through the ZMQ front like any client, so HTTP requests are batched with ZMQ ones; the inspection
endpoints (tokens, attention, fill-mask) use a model of their own in this process. Every error is JSON with a 4xx
(or 503) status: TEI's ``{"error", "error_type"}`` on TEI's routes, ``{"status", "error": {"message", "type",
"code"}}`` elsewhere. guard.py checks API keys, sizes and load before a route runs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .client import AsyncBertClient, ServerUnavailable
from .front import ApiError, Front
from .guard import Guard, error_response
from .inspection import Inspector, model_name
from .metrics import CONTENT_TYPE, ServerMetrics
from .settings import ServerSettings
from .tei import tei_router, tei_similarity, tei_tokens
from .tei_types import SimilarityRequest as TeiSimilarityRequest
from .tei_types import TokenizeRequest as TeiTokenizeRequest

logger = logging.getLogger("bertkit.serving.http")
STATIC_DIR = Path(__file__).parent / "static"
MAX_SIMILARITY_TEXTS = 256


class EncodeRequest(BaseModel):
    id: int | str | None = None
    texts: list[str] | list[list[str]] = Field(min_length=1)
    is_tokenized: bool = False


class TextRequest(BaseModel):
    text: str = Field(min_length=1)
    text_pair: str | None = None


class AttentionRequest(TextRequest):
    layer: int | None = None
    head: int | None = None


class FillMaskRequest(BaseModel):
    text: str = Field(min_length=1)
    top_k: int = 5


class SimilarityRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=MAX_SIMILARITY_TEXTS)


def error(request: Request, status: int, message: str, kind: str | None = None) -> JSONResponse:
    """The error shape of the route asked (OpenAI clients read ``error.message``, TEI's ``error``)."""
    return error_response(request.url.path, status, message, kind)


def front_address(settings: ServerSettings) -> str:
    """Where this process reaches its own ZMQ front (a wildcard bind is reached on the loopback)."""
    return "127.0.0.1" if settings.host in ("0.0.0.0", "*", "") else settings.host


def install_error_handlers(app: FastAPI) -> None:
    """Every error as JSON in the shape of the route asked (see the module's docstring)."""

    @app.exception_handler(ApiError)
    async def on_refused(request: Request, exc: ApiError) -> JSONResponse:
        path = request.url.path
        tei = path in ("/tokenize", "/similarity")  # raised there only for TEI's bodies
        return error_response("/embed" if tei else path, exc.status, exc.message, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return error(request, 400, f"invalid JSON body: {problems}")
        return error(request, 422, f"invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(ValueError)
    async def on_bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return error(request, 400, str(exc))

    @app.exception_handler(LookupError)
    async def on_missing_feature(request: Request, exc: LookupError) -> JSONResponse:
        return error(request, 404 if isinstance(exc, KeyError) else 422, str(exc).strip("'\""), "unsupported_model")

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("HTTP %s %s failed", request.method, request.url.path)
        return error(request, 500, f"internal error: {type(exc).__name__}: {exc}", "server_error")

    @app.exception_handler(ServerUnavailable)
    async def on_unavailable(request: Request, exc: ServerUnavailable) -> JSONResponse:
        return error(request, 503, str(exc), "unhealthy")


def create_app(settings: ServerSettings, metrics: ServerMetrics | None = None, info: dict | None = None) -> FastAPI:
    """The FastAPI application of a running server; ``info`` is what its workers reported when ready."""
    state: dict = {}
    metrics = metrics or ServerMetrics()
    front = Front(settings, None, metrics, info or {})
    started_at = time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["client"] = front.client = AsyncBertClient(front_address(settings), settings.port, settings.port_out)
        # -max_seq_len (25 by default) keeps every layer's and head's map small enough to send; answers say the cut
        state["inspector"] = await asyncio.to_thread(Inspector, settings.model_dir, settings.cased_tokenization,
                                                     front.max_length if front.classifier else settings.max_seq_len)
        yield
        state["client"].close()

    app = FastAPI(title="bertkit serve", version="1.10.0-compatible", lifespan=lifespan,
                  description="bert-as-service compatible encoding, text-embeddings-inference and OpenAI-style "
                              "embeddings, Prometheus metrics, and a look inside BERT.")
    served_name = model_name(settings.model_dir)

    install_error_handlers(app)

    async def encode(items: list) -> tuple[np.ndarray, list | str]:
        return await state["client"].encode(items)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict:
        """Liveness: the HTTP process answers and the ZMQ front answers SHOW_CONFIG."""
        config = await state["client"].config()
        return {"status": "ok", "server_version": config["server_version"], "num_worker": config["num_worker"]}

    @app.get("/status")
    async def status() -> dict:
        """SHOW_STATUS: the server's configuration and request statistics."""
        return await state["client"].config(status=True)

    @app.get("/status/server", include_in_schema=False)
    async def status_server() -> dict:
        return await state["client"].config(status=True)

    @app.post("/encode")
    async def encode_texts(body: EncodeRequest) -> dict:
        """bert-as-service's HTTP encode: ``{"id", "texts", "is_tokenized"}`` → ``{"id", "result", "status"}``."""
        texts = body.texts
        front.check_count(len(texts), "texts")
        tokenized = bool(texts) and isinstance(texts[0], list)
        if tokenized != body.is_tokenized:
            raise ValueError("is_tokenized=true needs texts as lists of tokens, and is_tokenized=false plain texts")
        vectors, _ = await encode(list(texts))
        return {"id": body.id, "result": vectors.tolist(), "status": 200}

    @app.post("/tokenize", response_model=None)
    async def tokenize(body: TeiTokenizeRequest | TextRequest) -> dict | list:
        """TEI's ``{"inputs"}`` → tokens with offsets per input; bertkit's ``{"text", "text_pair"}`` → WordPiece
        tokens, ids, segment ids and character offsets."""
        if isinstance(body, TeiTokenizeRequest):
            return tei_tokens(front, body)
        return state["inspector"].tokenize(body.text, body.text_pair)

    @app.post("/similarity", response_model=None)
    async def similarity(body: TeiSimilarityRequest | SimilarityRequest) -> dict | Response:
        """TEI's ``{"inputs": {"source_sentence", "sentences"}}`` → cosines; bertkit's ``{"texts"}`` → their cosine
        matrix. Both shapes embed as the folder does (its pooling, layer and length, as ``bertkit encode`` and
        ``demo``), so one route gives one number for one pair of sentences."""
        if isinstance(body, TeiSimilarityRequest):
            return await tei_similarity(front, body)
        front.check_count(len(body.texts), "texts")
        vectors, usage = await front.embeddings(list(body.texts), normalize=True)
        unit = vectors.astype(np.float64)
        return {"texts": body.texts, "matrix": (unit @ unit.T).round(6).tolist(),
                "pooling": front.sentence["pooling"], "max_seq_length": front.max_length,
                "truncated_inputs": usage["truncated_inputs"]}

    @app.post("/attention")
    async def attention(body: AttentionRequest) -> dict:
        """Attention probabilities per layer and head: ``attention[layer][head][query][key]``."""
        return await asyncio.to_thread(state["inspector"].attention, body.text, body.text_pair, body.layer, body.head)

    @app.post("/fill-mask")
    async def fill_mask(body: FillMaskRequest) -> dict:
        """Top-k guesses for each ``[MASK]`` (models with a masked-LM head only)."""
        return await asyncio.to_thread(state["inspector"].fill_mask, body.text, body.top_k)

    @app.get("/model")
    async def model_info() -> dict:
        """Shape of the served model, for the web page."""
        inspector = state["inspector"]
        config = inspector.config
        return {"name": served_name, "num_layers": config.num_hidden_layers, "num_heads": config.num_attention_heads,
                "hidden_size": config.hidden_size, "max_tokens": inspector.max_tokens,
                "has_mlm_head": inspector.mlm is not None, "mask_token": inspector.tokenizer.mask_token,
                "pooling_strategy": settings.pooling_strategy, "labels": front.labels or None,
                "sentence_transformers": None if front.classifier else front.sentence}

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus metrics (TEI's names)."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.include_router(tei_router(front, started_at))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def bind_http(settings: ServerSettings) -> socket.socket:
    """Bind the HTTP port now, so that a port in use is a start-up error, not a log line in a thread."""
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.http_port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"http_port {settings.http_port} on {settings.host} is not available: {exc.strerror}") \
            from None
    return sock


class HttpThread:
    """uvicorn serving the app from a thread of the server process (signals stay with the main thread)."""

    def __init__(self, settings: ServerSettings, sock: socket.socket, metrics: ServerMetrics | None = None,
                 info: dict | None = None):
        metrics = metrics or ServerMetrics()
        app = Guard(create_app(settings, metrics, info), settings, metrics)
        config = uvicorn.Config(app, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=settings.graceful_timeout_s)
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="bertkit-http",
                                       daemon=True)

    def start(self, timeout_s: float = 120.0) -> None:
        """Start serving and wait until the app is up."""
        self.thread.start()
        for _ in range(int(timeout_s * 20)):
            if self.server.started or not self.thread.is_alive():
                break
            threading.Event().wait(0.05)
        if not self.server.started:
            raise ValueError("the HTTP API did not start (see the log above)")

    def begin_shutdown(self) -> None:
        """Stop accepting connections; requests in flight are answered (the thread ends when they are)."""
        self.server.should_exit = True

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
