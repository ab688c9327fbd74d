"""The HTTP API's gate (an ASGI middleware): API key, payload limit, back-pressure, metrics, access log.

Every request passes here before FastAPI sees it:

* with ``--api-key``, a request without ``Authorization: Bearer <key>`` gets 401 (the key is compared in constant
  time); the liveness routes and the web page's static files stay open;
* a body over ``--payload-limit`` bytes gets 413 without being read further, one sent slower than
  ``BODY_TIMEOUT_S`` gets 408, and a body is read as JSON whatever its content type says;
* an inference request arriving while ``--max-concurrent-requests`` are in flight gets 429 with ``Retry-After``;
* each request is counted and timed (``te_request_*``) and logged as one JSON line (``bertkit.serving.access``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time

from starlette.responses import JSONResponse

from .metrics import ServerMetrics
from .settings import ServerSettings

access_log = logging.getLogger("bertkit.serving.access")
INFERENCE_PATHS = {"/", "/embed", "/embed_all", "/predict", "/rerank", "/similarity", "/v1/embeddings",
                   "/embeddings", "/encode"}
TEI_PATHS = {"/", "/embed", "/embed_all", "/predict", "/rerank", "/decode", "/info", "/health", "/metrics"}
OPEN_PATHS = {"/health", "/healthz"}  # liveness probes carry no key
BODY_TIMEOUT_S = 30.0
RETRY_AFTER_S = 1
KIND_OF_STATUS = {400: "validation", 401: "unauthorized", 404: "not_found", 405: "method", 408: "timeout",
                  413: "validation", 422: "validation", 424: "backend", 429: "overloaded", 503: "unhealthy"}


def error_response(path: str, status: int, message: str, kind: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    """TEI's ``{"error", "error_type"}`` on TEI's routes; elsewhere bertkit's (and OpenAI's) ``{"error": {"message",
    "type", "code"}}`` with ``status``."""
    kind = kind or KIND_OF_STATUS.get(status, "server_error")
    if path in TEI_PATHS:
        body = {"error": message, "error_type": kind}
    else:
        body = {"status": status, "error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class Guard:
    """ASGI middleware around the FastAPI app (see the module's docstring)."""

    def __init__(self, app, settings: ServerSettings, metrics: ServerMetrics):
        self.app, self.settings, self.metrics = app, settings, metrics
        self.expected = f"Bearer {settings.api_key}".encode() if settings.api_key else None
        self.in_flight = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status, size = time.perf_counter(), [0], [0]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, sending, size)
        finally:
            client = scope.get("client") or ("?", 0)
            access_log.info(json.dumps({"client": client[0], "method": scope["method"], "path": scope["path"],
                                        "status": status[0], "bytes": size[0],
                                        "ms": round((time.perf_counter() - started) * 1000, 2)}))

    async def _handle(self, scope, receive, send, size: list[int]) -> None:
        path, method = scope["path"], scope["method"]
        headers = dict(scope["headers"])
        if self.expected is not None and not self._open(path, method):
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                self.metrics.request_failure.labels("unauthorized").inc()
                reason = "wrong API key" if given else "missing API key"
                return await error_response(path, 401, f"{reason}: send the header 'Authorization: Bearer <key>'",
                                            "unauthorized", {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        if method != "POST":
            return await self.app(scope, receive, send)
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.settings.payload_limit:
            return await self._too_large(path, int(declared), scope, receive, send)
        try:
            body = await asyncio.wait_for(self._read(receive), BODY_TIMEOUT_S)
        except asyncio.TimeoutError:
            return await error_response(path, 408, f"the request body did not arrive within {BODY_TIMEOUT_S:.0f} s",
                                        "timeout")(scope, receive, send)
        if body is None:
            return await self._too_large(path, None, scope, receive, send)
        size[0] = len(body)
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            # every body of this API is JSON: curl -d (form-encoded), text/plain or no type at all is read as JSON
            kept = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*kept, (b"content-type", b"application/json")]}
        replay = self._replay(body, receive)
        if path not in INFERENCE_PATHS:
            return await self.app(scope, replay, send)
        if self.in_flight >= self.settings.max_concurrent_requests:
            self.metrics.request_failure.labels("overloaded").inc()
            return await error_response(path, 429, f"Model is overloaded: {self.in_flight} requests in flight "
                                                   f"(--max-concurrent-requests); retry after {RETRY_AFTER_S} s",
                                        "overloaded", {"Retry-After": str(RETRY_AFTER_S)})(scope, replay, send)
        await self._inference(path, scope, replay, send)

    async def _inference(self, path: str, scope, receive, send) -> None:
        metrics, status = self.metrics, [500]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        self.in_flight += 1
        metrics.requests_in_flight.set(self.in_flight)
        metrics.request_count.labels(path).inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.in_flight -= 1
            metrics.requests_in_flight.set(self.in_flight)
            metrics.request_duration.observe(time.perf_counter() - started)
            if status[0] < 400:
                metrics.request_success.labels(path).inc()
            else:
                metrics.request_failure.labels(KIND_OF_STATUS.get(status[0], "backend")).inc()

    def _open(self, path: str, method: str) -> bool:
        return path in OPEN_PATHS or (method == "GET" and (path == "/" or path.startswith("/static/")))

    async def _read(self, receive) -> bytes | None:
        """The whole body, or None once it passes the payload limit (the rest is not read)."""
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.settings.payload_limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive):
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _too_large(self, path: str, declared: int | None, scope, receive, send) -> None:
        self.metrics.request_failure.labels("payload_limit").inc()
        size = f"{declared} bytes" if declared is not None else "the body"
        await error_response(path, 413, f"payload too large: {size} over the {self.settings.payload_limit}-byte "
                                         "limit (--payload-limit)", "validation",
                             {"Connection": "close"})(scope, receive, send)
