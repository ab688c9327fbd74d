"""An asyncio client of the ZMQ front, for the HTTP API: its requests are batched with everyone else's."""

from __future__ import annotations

import asyncio
import json
import uuid

import numpy as np
import zmq
import zmq.asyncio

from .protocol import SHOW_CONFIG, SHOW_STATUS


class ServerUnavailable(RuntimeError):
    """The ZMQ front did not answer in time."""


class EncodingFailed(RuntimeError):
    """The workers could not encode a request (a worker error, or a batch lost twice with its worker)."""


class AsyncBertClient:
    """bert-as-service's client protocol over ``zmq.asyncio``; many requests may be in flight at once."""

    def __init__(self, host: str, port: int, port_out: int, timeout_s: float = 120.0):
        self.context = zmq.asyncio.Context()
        self.identity = str(uuid.uuid4()).encode("ascii")
        self.sender = self.context.socket(zmq.PUSH)
        self.sender.setsockopt(zmq.LINGER, 0)
        self.sender.connect(f"tcp://{host}:{port}")
        self.receiver = self.context.socket(zmq.SUB)
        self.receiver.setsockopt(zmq.LINGER, 0)
        self.receiver.setsockopt(zmq.SUBSCRIBE, self.identity)
        self.receiver.connect(f"tcp://{host}:{port_out}")
        self.timeout_s = timeout_s
        self.waiting: dict[int, asyncio.Future] = {}
        self.last_id = 0
        self.reader: asyncio.Task | None = None

    async def _read(self) -> None:
        while True:
            frames = await self.receiver.recv_multipart()
            future = self.waiting.pop(int(frames[-1]), None)
            if future is not None and not future.done():
                future.set_result(frames)

    async def request(self, payload: bytes, count: int) -> list[bytes]:
        """Send one request and wait for its reply frames."""
        if self.reader is None:
            self.reader = asyncio.get_running_loop().create_task(self._read())
        self.last_id += 1
        req_id = self.last_id
        future = asyncio.get_running_loop().create_future()
        self.waiting[req_id] = future
        await self.sender.send_multipart([self.identity, payload, b"%d" % req_id, b"%d" % count])
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except asyncio.TimeoutError:
            raise ServerUnavailable(f"the encoder did not answer within {self.timeout_s:.0f} s") from None
        finally:
            self.waiting.pop(req_id, None)

    async def encode(self, items: list) -> tuple[np.ndarray, list | str]:
        """Vectors (and tokens, when the server shows them) of texts or token lists."""
        frames = await self.request(json.dumps(items, ensure_ascii=False).encode(), len(items))
        meta = json.loads(frames[1])
        return np.frombuffer(frames[2], dtype=meta["dtype"]).reshape(meta["shape"]), meta.get("tokens", "")

    async def run(self, task: str, items: list) -> np.ndarray:
        """The rows of one of the HTTP front's tasks (``embed``, ``tokens``, ``classify``)."""
        payload = json.dumps({"task": task, "items": items}, ensure_ascii=False).encode()
        frames = await self.request(payload, len(items))
        meta = json.loads(frames[1])
        if len(frames) == 3 and "error" in meta:
            raise EncodingFailed(meta["error"])
        return np.frombuffer(frames[2], dtype=meta["dtype"]).reshape(meta["shape"])

    async def config(self, status: bool = False) -> dict:
        """SHOW_CONFIG, or SHOW_STATUS with ``status``."""
        frames = await self.request(SHOW_STATUS if status else SHOW_CONFIG, 0)
        return json.loads(frames[1])

    def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        self.context.destroy(linger=0)
