"""A worker process: loads the model once, then encodes the batches the server sends it.

Workers talk to the server over a DEALER socket (the server's end is a ROUTER, so it can address each one):
``READY meta`` once loaded, then ``DONE job meta vectors tokens`` or ``ERROR job message`` per batch. A worker
exits on ``STOP``, and on its own when its parent has gone, so none outlives the server.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass

import zmq

from .protocol import raw_bytes
from .settings import ServerSettings

logger = logging.getLogger(__name__)
PARENT_CHECK_MS = 500


@dataclass
class Worker:
    """The server's handle on one worker process: its identity, state and the job it is encoding."""

    index: int
    process: multiprocessing.process.BaseProcess | None = None
    job: tuple | None = None  # (job id, batch)
    ready: bool = False
    info: dict | None = None  # what the worker reported when ready: pid, device, threads, dimension

    @property
    def identity(self) -> bytes:
        return b"worker-%d" % self.index

    def start(self, settings: ServerSettings, address: str) -> None:
        """Spawn the process (a fresh interpreter: a fork would copy torch's thread pools into the child)."""
        spawn = multiprocessing.get_context("spawn")
        self.process = spawn.Process(target=run_worker, daemon=True, name=f"bertkit-worker-{self.index}",
                                     args=(self.index, settings, address, os.getpid()))
        self.process.start()
        self.job, self.ready = None, False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Wait for the process to end after STOP; kill it if it does not."""
        if self.process is None:
            return
        self.process.join(timeout=timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=timeout_s)


def model_info(model) -> dict:
    """What a loaded serving model tells the server and the HTTP front: shapes, settings, labels."""
    import torch

    return {"pid": os.getpid(), "threads": torch.get_num_threads(), "torch_version": torch.__version__,
            "dimension": model.dimension,
            "hidden_size": model.model.config.hidden_size if hasattr(model, "model") else None,
            "sentence": getattr(model, "sentence", None), "labels": getattr(model, "labels", None),
            "max_length": getattr(model, "max_length", None), "adapters": getattr(model, "adapters", None)}


def worker_device(spec: str, index: int):
    """Worker ``index``'s device: ``cuda:N`` and ``cpu`` as given; ``auto`` and ``cuda`` spread the workers over the
    GPUs, worker i on GPU i mod count (bert-as-service's device map)."""
    import torch

    from ..training.device import resolve_device

    device = resolve_device(spec)
    if device.type == "cuda" and ":" not in spec:
        device = torch.device("cuda", index % torch.cuda.device_count())
    return device


def run_worker(index: int, settings: ServerSettings, address: str, parent_pid: int) -> None:
    """Process entry point (spawned): serve batches until STOP or the parent's death."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops the workers in order
    import torch

    from .embedding import ServingModel

    torch.set_num_threads(settings.threads_per_worker())
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.IDENTITY, Worker(index).identity)
    socket.connect(address)
    try:
        device = worker_device(settings.device, index)
        model = ServingModel.from_settings(settings, device)
        model.encode(["warm up the kernels"])
    except Exception as error:  # the server reports it and exits: one clear line
        socket.send_multipart([b"FAILED", f"{type(error).__name__}: {error}".encode()])
        socket.close()
        context.term()
        return
    meta = {"device": str(device), **model_info(model)}
    socket.send_multipart([b"READY", json.dumps(meta).encode()])
    with_tokens = settings.show_tokens_to_client
    try:
        while True:
            if not socket.poll(PARENT_CHECK_MS):
                if os.getppid() != parent_pid:
                    break
                continue
            frames = socket.recv_multipart()
            if frames[0] == b"STOP":
                break
            job_id, job = frames[1], json.loads(frames[2])
            try:
                vectors, tokens = model.run(job["task"], job["items"])
            except Exception as error:
                logger.exception("worker %d failed on a batch", index)
                socket.send_multipart([b"ERROR", job_id, f"{type(error).__name__}: {error}".encode()])
                continue
            meta = json.dumps({"shape": list(vectors.shape)}).encode()
            tokens_frame = json.dumps(tokens if with_tokens else None, ensure_ascii=False).encode()
            socket.send_multipart([b"DONE", job_id, meta, raw_bytes(vectors), tokens_frame])
    finally:
        socket.close()
        context.term()
