"""Past one machine: the TEI / OpenAI routes served by Ray Serve, the encoder as a deployment of N replicas.

    bertkit serve --ray --replicas 2 --http-port 8000                    # a local Ray cluster
    bertkit serve --ray --address ray://head:10001 --replicas 8 --max-replicas 16 --http-port 8000

``bertkit-encoder`` replicas each load the model and answer ``@serve.batch``-ed calls (a batch groups the calls
of one task); ``bertkit-http`` replicas run the same FastAPI routes as ``bertkit serve`` (TEI, OpenAI, ``/metrics``,
with the API key, limits and access log of guard.py) and call the encoders through a deployment handle. With
``--max-replicas`` above ``--replicas``, Serve autoscales the encoders between the two. The model folder must be at
the same path on every machine of the cluster. bert-as-service's ZMQ protocol and the inspection page stay with the
single-machine server.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from ray import serve

from .client import EncodingFailed
from .front import Front
from .guard import Guard
from .http import install_error_handlers
from .metrics import CONTENT_TYPE, ServerMetrics
from .settings import ServerSettings
from .tei import tei_router

APP_NAME, ENCODER, GATEWAY = "bertkit", "bertkit-encoder", "bertkit-http"


@serve.deployment(name=ENCODER)
class EncoderReplica:
    """One model, answering batches of calls; a batch groups the calls of one task."""

    def __init__(self, settings: ServerSettings):
        import torch

        from .embedding import ServingModel

        torch.set_num_threads(settings.threads_per_worker())
        from ..training.device import resolve_device

        self.model = ServingModel.from_settings(settings, resolve_device(settings.device))

    def info(self) -> dict:
        """What the HTTP front needs to know of the model (and this replica's pid)."""
        from .worker import model_info

        return model_info(self.model)

    async def run(self, task: str, items: list) -> np.ndarray:
        """The rows of one request's items."""
        return await self._batched((task, items))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _batched(self, calls: list[tuple[str, list]]) -> list[np.ndarray]:
        out: list = [None] * len(calls)
        for task in dict.fromkeys(task for task, _ in calls):
            chosen = [i for i, (t, _) in enumerate(calls) if t == task]
            rows, _ = self.model.run(task, [item for i in chosen for item in calls[i][1]])
            start = 0
            for i in chosen:
                out[i], start = rows[start : start + len(calls[i][1])], start + len(calls[i][1])
        return out


class RayEncoderClient:
    """What Front expects of its client, over a deployment handle."""

    def __init__(self, handle):
        self.handle = handle

    async def run(self, task: str, items: list) -> np.ndarray:
        try:
            return await self.handle.run.remote(task, items)
        except Exception as error:  # a replica died mid-call, or the model failed: a clean 424
            raise EncodingFailed(f"{type(error).__name__}: {str(error).splitlines()[0][:300]}") from None

    async def config(self, status: bool = False) -> dict:
        return await self.handle.info.remote()


async def forward(asgi, request: Request) -> Response:
    """Run an ASGI app on the request Serve hands over, and give back its response."""
    status, headers, chunks = 500, [], []

    async def send(message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await asgi(request.scope, request.receive, send)
    kept = {k.decode(): v.decode() for k, v in headers if k.lower() != b"content-length"}
    return Response(b"".join(chunks), status_code=status, headers=kept)


@serve.deployment(name=GATEWAY, ray_actor_options={"num_cpus": 0})
class Gateway:
    """The HTTP routes of ``bertkit serve`` over the encoder replicas."""

    def __init__(self, encoder, settings: ServerSettings):
        self.encoder, self.settings, self.asgi = encoder, settings, None

    async def _app(self):
        """Built on the first request: it needs the encoder's answer, and the constructor may not await."""
        if self.asgi is None:
            info = await self.encoder.info.remote()
            metrics = ServerMetrics()
            front = Front(self.settings, RayEncoderClient(self.encoder), metrics, info)
            app = FastAPI(title="bertkit serve (Ray Serve)", description="TEI and OpenAI-style embeddings.")
            install_error_handlers(app)
            app.include_router(tei_router(front, time.time()))

            @app.get("/metrics")
            async def prometheus() -> Response:
                return Response(metrics.render(), media_type=CONTENT_TYPE)

            self.asgi = Guard(app, self.settings, metrics)
        return self.asgi

    async def __call__(self, request: Request) -> Response:
        return await forward(await self._app(), request)


def deploy(settings: ServerSettings, replicas: int, max_replicas: int | None = None) -> None:
    """Deploy the encoder (``replicas``, autoscaled up to ``max_replicas``) and the HTTP routes on the connected
    Ray cluster, and wait until they answer."""
    options: dict = {"ray_actor_options": {"num_cpus": settings.threads_per_worker()}}
    if max_replicas and max_replicas > replicas:
        options["autoscaling_config"] = {"min_replicas": replicas, "max_replicas": max_replicas,
                                         "target_ongoing_requests": 4}
    else:
        options["num_replicas"] = replicas
    serve.start(http_options={"host": settings.host, "port": settings.http_port})
    encoder = EncoderReplica.options(**options).bind(settings)
    serve.run(Gateway.bind(encoder, settings), name=APP_NAME, route_prefix="/")


def serve_on_ray(settings: ServerSettings, replicas: int, address: str | None = None,
                 max_replicas: int | None = None) -> None:
    """``bertkit serve --ray``: connect (or start a local cluster), deploy, serve until SIGTERM / SIGINT."""
    import ray

    if settings.http_port is None:
        raise ValueError("--ray serves HTTP only: give --http-port")
    if replicas < 1:
        raise ValueError(f"--replicas must be at least 1, got {replicas}")
    if settings.torch_threads is None:  # like -num_worker: the replicas share this machine's cores (or OMP_NUM_THREADS)
        settings = dataclasses.replace(settings, torch_threads=dataclasses.replace(
            settings, num_worker=replicas).threads_per_worker())
    ray.init(address=address, include_dashboard=False, logging_level="warning",
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        deploy(settings, replicas, max_replicas)
        print(f"serving on Ray: http://{settings.host}:{settings.http_port} ({replicas} encoder replica(s))",
              flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
