"""The ZMQ front of the server: bert-as-service's sockets, batching across clients, workers, shutdown.

One thread owns every socket (ZMQ sockets are not thread-safe) and runs one poll loop:

    clients ──PUSH──▶ PULL :port ──▶ Batcher ──ROUTER──▶ worker processes (DEALER)
    clients ◀──SUB─── XPUB :port_out ◀── replies ◀──────┘

Replies wait for their client's subscription (publisher.py); workers are separate processes (worker.py), fed
one batch at a time, so whatever queues while they are busy goes into the next batch.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import signal
import tempfile
import threading
import time
from datetime import datetime

import numpy as np
import zmq

from .. import __version__
from .batching import Batch, Batcher, Pending, deliver
from .metrics import ServerMetrics
from .protocol import (
    CLASSIFY,
    ENCODE,
    SERVER_VERSION,
    SHOW_STATUS,
    TERMINATION,
    ProtocolError,
    embedding_reply,
    json_reply,
    parse_request,
    split_task,
)
from .publisher import Publisher
from .settings import ServerSettings
from .statistics import ServerStatistic
from .worker import Worker

logger = logging.getLogger("bertkit.serving")

HOLD_REPLY_S = 5.0  # how long a reply waits for its client's subscription before it is sent anyway
STARTUP_TIMEOUT_S = 300.0
MAX_MESSAGE_BYTES = 256 << 20  # a larger request is refused by ZMQ itself (the peer is disconnected)
DRAIN_LIMIT = 2000  # messages read from one socket per loop turn, so no socket starves the others
CHARS_PER_TOKEN = 4  # a text's token count is estimated from its length (English WordPiece: ~4 characters each)


def estimated_tokens(item: str | list[str], limit: int) -> int:
    """Tokens a text (or a pre-tokenised text) will take, for the batch's token budget, at most ``limit``
    (tokenizing here would stall the loop: the worker tokenizes)."""
    count = len(item) + 2 if isinstance(item, list) else len(item) // CHARS_PER_TOKEN + 3
    return min(count, limit)


class WorkerFailed(ValueError):
    """A worker could not load the model: the server cannot serve."""


class BertServer:
    """A bert-as-service 1.10 compatible server: ``BertServer(settings).run()`` serves until terminated."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings.checked()
        self.context = zmq.Context()
        s = self.settings
        self.batcher = Batcher(s.max_batch_size, s.batch_wait_ms / 1000, s.priority_batch_size, s.max_batch_tokens)
        self.statistic = ServerStatistic()
        self.metrics = ServerMetrics()
        self.workers: list[Worker] = []
        self.stopping = threading.Event()
        self.draining = threading.Event()  # SIGTERM: answer what is in flight, then stop
        self.drain_deadline: float | None = None
        self.stop_signal = "SIGTERM"  # the signal that began the drain, as the log names it (Ctrl-C is SIGINT)
        self.serving = False  # a signal before the loop runs stops at once
        self.started_at = datetime.now()
        self.next_job = 0
        self.http = None
        self.http_socket = None
        self._ipc_dir = None

    # -- start -------------------------------------------------------------------------------------------

    def bind(self) -> None:
        """Bind the client-facing and worker sockets; a port in use is a clear error."""
        s = self.settings
        self.frontend = self._bind(zmq.PULL, s.port, "port")
        self.frontend.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        results = self._bind(zmq.XPUB, s.port_out, "port_out")
        results.setsockopt(zmq.SNDHWM, 0)  # never drop a reply because a client reads slowly
        self.publisher = Publisher(results, HOLD_REPLY_S)
        self._ipc_dir = tempfile.mkdtemp(prefix="bertkit-serve-")
        self.backend_address = f"ipc://{self._ipc_dir}/workers"
        self.backend = self.context.socket(zmq.ROUTER)
        self.backend.setsockopt(zmq.LINGER, 0)
        self.backend.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.backend.bind(self.backend_address)
        if s.http_port is not None:
            from .http import bind_http

            self.http_socket = bind_http(s)

    def _bind(self, kind: int, port: int, name: str) -> zmq.Socket:
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, 0)
        try:
            socket.bind(f"tcp://{self.settings.host}:{port}")
        except zmq.ZMQError as error:
            socket.close()
            if error.errno == zmq.EADDRINUSE:
                raise ValueError(f"{name} {port} on {self.settings.host} is already in use (another server?)") from None
            raise ValueError(f"cannot bind {name} {port} on {self.settings.host}: {error}") from None
        return socket

    def start_workers(self) -> None:
        """Spawn ``num_worker`` processes and wait until each has loaded the model."""
        for index in range(self.settings.num_worker):
            self.workers.append(Worker(index))
            self.workers[-1].start(self.settings, self.backend_address)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not all(w.ready for w in self.workers):
            if self.stopping.is_set():
                return
            if time.monotonic() > deadline:
                raise ValueError(f"workers did not load the model within {STARTUP_TIMEOUT_S:.0f} s")
            if self.backend.poll(200):
                self._on_worker_message(self.backend.recv_multipart())
            for worker in self.workers:
                if not worker.process.is_alive() and not worker.ready:
                    raise ValueError(f"worker {worker.index} died while loading the model "
                                     f"(exit code {worker.process.exitcode})")
        info = self.workers[0].info
        logger.info("%d worker(s) ready: %s, %d torch thread(s) each, output dimension %d",
                    len(self.workers), info["device"], info["threads"], info["dimension"])

    def start(self) -> None:
        """Bind, start the workers and (with ``http_port``) the HTTP API."""
        self.bind()
        self.start_workers()
        if self.settings.http_port is not None:
            from .http import HttpThread

            self.http = HttpThread(self.settings, self.http_socket, self.metrics, self.workers[0].info)
            self.http.start()
        s = self.settings
        logger.info("serving %s on tcp://%s:%d (requests) and :%d (results)%s", s.model_dir, s.host, s.port,
                    s.port_out, f", HTTP on :{s.http_port}" if s.http_port else "")

    # -- loop --------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Start, serve until SIGTERM / SIGINT / a TERMINATION request, then shut down cleanly."""
        handled = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            self.start()
            self.serve()
        finally:
            self.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame=None) -> None:
        """The first SIGTERM / SIGINT drains (requests in flight are answered), a second one stops at once."""
        if self.draining.is_set() or not self.serving:
            self.stopping.set()
        if not self.draining.is_set():
            self.stop_signal = signal.Signals(signum).name
        self.draining.set()

    def _drained(self) -> bool:
        """During a drain: whether everything received has been answered (or the grace period is over)."""
        now = time.monotonic()
        if self.drain_deadline is None:
            logger.info("%s: answering the requests in flight (at most %.0f s), then stopping", self.stop_signal,
                        self.settings.graceful_timeout_s)
            self.drain_deadline = now + self.settings.graceful_timeout_s
            if self.http is not None:
                self.http.begin_shutdown()  # stops accepting connections; requests in flight go on
        if now > self.drain_deadline:
            logger.warning("grace period over: stopping with %d text(s) unanswered", self.batcher.queued)
            return True
        http_done = self.http is None or not self.http.thread.is_alive()
        idle = self.batcher.queued == 0 and all(w.job is None for w in self.workers)
        return http_done and idle and self.publisher.seconds_until_due() is None

    def serve(self) -> None:
        """The poll loop."""
        self.serving = True
        poller = zmq.Poller()
        for socket in (self.frontend, self.backend, self.publisher.socket):
            poller.register(socket, zmq.POLLIN)
        last_health_check = time.monotonic()
        while not self.stopping.is_set():
            events = dict(poller.poll(self._poll_timeout_ms()))
            if self.publisher.socket in events:
                self._drain(self.publisher.socket, self.publisher.on_subscription)
            if self.frontend in events:
                self._drain(self.frontend, self._on_client_message)
            if self.backend in events:
                self._drain(self.backend, self._on_worker_message)
            self._dispatch()
            self.publisher.flush()
            if time.monotonic() - last_health_check > 1.0:
                self._check_workers()
                last_health_check = time.monotonic()
            if self.draining.is_set() and self._drained():
                break

    def _poll_timeout_ms(self) -> int:
        now, waits = time.monotonic(), [0.1 if self.draining.is_set() else 0.5]
        if any(w.ready and w.job is None for w in self.workers):
            until = self.batcher.seconds_until_ready(now)
            if until is not None:
                waits.append(until)
        due = self.publisher.seconds_until_due()
        if due is not None:
            waits.append(due)
        return max(0, int(min(waits) * 1000 + 0.999))

    def _drain(self, socket: zmq.Socket, handle) -> None:
        for _ in range(DRAIN_LIMIT):
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                handle(frames)
            except WorkerFailed:
                raise
            except Exception:  # the server survives any message: log it, drop it, go on
                self.statistic.num_dropped += 1
                logger.exception("dropped a message the server could not handle")

    # -- clients -----------------------------------------------------------------------------------------

    def _on_client_message(self, frames: list[bytes]) -> None:
        try:
            request = parse_request(frames)
        except ProtocolError as error:
            self.statistic.num_dropped += 1
            logger.warning("dropped a malformed request: %s", error)
            return
        if request.command is not None:
            self.statistic.system_request(request.identity)
            if request.command == TERMINATION:
                logger.info("TERMINATION request received: shutting down")
                self.stopping.set()
                return
            self.publisher.publish(json_reply(request.identity, self.config(request, request.command == SHOW_STATUS),
                                     request.req_id))
            return
        self.statistic.data_request(request.identity, len(request.items))
        logger.debug("request %s from %s: %d texts", request.req_id.decode(), request.identity[:36], len(request.items))
        pending = self.batcher.add(request, costs=self._costs(request))
        self.metrics.queue_size.set(self.batcher.queued)
        if not pending.size:
            self._answer(pending)

    def _costs(self, request) -> list[int]:
        """Token counts of a request's entries: exact for token ids, estimated for texts."""
        task = split_task(request.task)[0]
        if task not in (ENCODE, CLASSIFY):
            return [len(ids) for ids in request.items]
        info = next((w.info for w in self.workers if w.info), {}) or {}
        limit = info.get("max_length") or self.settings.max_seq_len or 512
        if task == CLASSIFY:  # [text, pair or None]
            return [estimated_tokens(f"{text} {pair or ''}", limit) for text, pair in request.items]
        return [estimated_tokens(item, limit) for item in request.items]

    def config(self, request=None, with_statistic: bool = False) -> dict:
        """What SHOW_CONFIG answers (SHOW_STATUS adds ``statistic``)."""
        info = next((w.info for w in self.workers if w.info), {}) or {}
        data = {
            **self.settings.as_reported(),
            "server_version": SERVER_VERSION,
            "bertkit_version": __version__,
            "torch_version": info.get("torch_version"),
            "python_version": platform.python_version(),
            "pyzmq_version": zmq.pyzmq_version(),
            "zmq_version": zmq.zmq_version(),
            "server_start_time": str(self.started_at),
            "server_current_time": str(datetime.now()),
            "num_process": len(self.workers) + 1,
            "device_map": [w.info.get("device") for w in self.workers if w.info],
            "torch_threads_per_worker": info.get("threads"),
            "output_dimension": info.get("dimension"),
            "ventilator -> worker": [self.backend_address],
            "worker -> sink": self.backend_address,
        }
        if request is not None:
            data["client"] = request.identity.decode("ascii", "replace")
        if with_statistic:
            data["statistic"] = self.statistic.as_dict()
        return data

    def _answer(self, pending: Pending) -> None:
        if pending.size:
            vectors, tokens = pending.assemble()
        else:  # an empty list gets an empty array rather than no answer
            width = next((w.info["dimension"] for w in self.workers if w.info), 0)
            vectors, tokens = np.zeros((0, width), dtype=np.float32), []
        if not self.settings.show_tokens_to_client:
            tokens = None
        request = pending.request
        self.publisher.publish(embedding_reply(request.identity, vectors, tokens, request.req_id))

    # -- workers -----------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        for worker in self.workers:
            if not (worker.ready and worker.job is None):
                continue
            if self.batcher.seconds_until_ready(time.monotonic()) != 0.0:
                return
            batch = self.batcher.take()
            self._record_batch(batch)
            self.next_job += 1
            payload = json.dumps({"task": batch.task, "items": batch.items}, ensure_ascii=False).encode()
            try:
                self.backend.send_multipart([worker.identity, b"JOB", b"%d" % self.next_job, payload])
            except zmq.ZMQError:  # the worker has gone: the health check replaces it
                self.batcher.requeue(batch)
                worker.ready = False
                continue
            worker.job = (self.next_job, batch)

    def _record_batch(self, batch: Batch) -> None:
        metrics = self.metrics
        metrics.batch_next_size.observe(len(batch.items))
        metrics.batch_next_tokens.observe(batch.tokens)
        metrics.queue_size.set(self.batcher.queued)
        for piece in batch.slices:
            metrics.queue_duration.observe(batch.taken_at - piece.pending.received_at)

    def _on_worker_message(self, frames: list[bytes]) -> None:
        identity, kind, rest = frames[0], frames[1], frames[2:]
        worker = self.workers[int(identity.rsplit(b"-", 1)[1])]
        if kind == b"READY":
            worker.ready, worker.info = True, json.loads(rest[0])
            return
        if kind == b"FAILED":
            raise WorkerFailed(f"worker {worker.index} could not start: {rest[0].decode()}")
        job_id, batch = worker.job if worker.job is not None else (None, None)
        if batch is None or int(rest[0]) != job_id:
            logger.warning("worker %d answered job %s, which it was not given", worker.index, rest[0])
            return
        worker.job = None
        if kind == b"ERROR":
            logger.error("worker %d failed on a batch of %d texts: %s", worker.index, len(batch.items),
                         rest[1].decode())
            self._abandon(batch, rest[1].decode())
            return
        self.metrics.batch_inference_duration.observe(time.monotonic() - batch.taken_at)
        self.metrics.batch_inference_success.inc()
        shape = json.loads(rest[1])["shape"]
        vectors = np.frombuffer(rest[2], dtype=np.float32).reshape(shape)
        tokens = json.loads(rest[3])
        for pending in deliver(batch, vectors, tokens):
            self._answer(pending)

    def _abandon(self, batch: Batch, reason: str) -> None:
        """Drop the requests of a batch that could not be encoded (logged). bert-as-service clients get no answer
        (their protocol has no error reply); the HTTP front's task requests get an error it turns into a 424."""
        self.metrics.batch_inference_failure.inc()
        for pending in {id(p.pending): p.pending for p in batch.slices}.values():
            self.batcher.drop(pending)
            self.statistic.num_dropped += 1
            request = pending.request
            if request.task != ENCODE:
                self.publisher.publish(json_reply(request.identity, {"error": reason}, request.req_id))

    def _check_workers(self) -> None:
        """Replace a worker that died; its batch goes back to the queue once."""
        for worker in self.workers:
            if worker.process.is_alive() or self.stopping.is_set():
                continue
            logger.error("worker %d died (exit code %s); starting a new one", worker.index, worker.process.exitcode)
            if worker.job is not None:
                batch = worker.job[1]
                if batch.retries < 1:
                    batch.retries += 1
                    self.batcher.requeue(batch)
                else:
                    self._abandon(batch, f"worker {worker.index} died twice while encoding this batch")
            worker.start(self.settings, self.backend_address)

    # -- stop --------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the HTTP thread and the workers, close the sockets (freeing the ports)."""
        self.stopping.set()
        for worker in self.workers:  # first, so that they wind down while the HTTP thread stops
            if worker.process.is_alive():
                try:
                    self.backend.send_multipart([worker.identity, b"STOP"], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
        if self.http is not None:
            self.http.stop()
        elif self.http_socket is not None:
            self.http_socket.close()
        for worker in self.workers:
            worker.stop()
        self.context.destroy(linger=0)
        if self._ipc_dir is not None:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
        if any(w.ready for w in self.workers):
            logger.info("server stopped")
