"""bert-as-service 1.10 on the wire: the frames a client sends and the frames it expects back.

Requests are ``[identity, payload, req_id, msg_len]``; replies are published with the client's identity as the
topic and matched by the client on their last frame (the request id, echoed as sent).

bertkit's own HTTP front sends one more kind of payload, a JSON object ``{"task", "items"}``, for the encodings
the TEI / OpenAI routes need (the real client only ever sends lists): ``embed`` (token ids → the model folder's own
sentence embedding, not normalised), ``tokens`` (token ids → last-layer token vectors) and ``classify``
(``[text, pair or null]`` → a fine-tuned classifier's logits).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .features import Item

SERVER_VERSION = "1.10.0"  # the real client refuses any other version unless built with check_version=False
SHOW_CONFIG, SHOW_STATUS, TERMINATION = b"SHOW_CONFIG", b"SHOW_STATUS", b"TERMINATION"
COMMANDS = (SHOW_CONFIG, SHOW_STATUS, TERMINATION)
ENCODE, EMBED, TOKENS, CLASSIFY = "encode", "embed", "tokens", "classify"
TASKS = (EMBED, TOKENS, CLASSIFY)  # the tasks of ``{"task", "items"}`` payloads (ENCODE is a plain list)


class ProtocolError(ValueError):
    """A message the server cannot answer: it is logged and dropped."""


@dataclass
class Request:
    """A parsed request: a command, or ``items`` to encode."""

    identity: bytes
    req_id: bytes
    command: bytes | None = None
    items: list[Item] | None = None
    task: str = ENCODE


def parse_request(frames: list[bytes]) -> Request:
    """Check and decode one multipart message."""
    if len(frames) != 4:
        raise ProtocolError(f"expected 4 frames [identity, payload, req_id, msg_len], got {len(frames)}")
    identity, payload, req_id, msg_len = frames
    if not (req_id.isdigit() and msg_len.isdigit()):
        raise ProtocolError(f"req_id and msg_len must be decimal digits, got {req_id[:20]!r} and {msg_len[:20]!r}")
    if payload in COMMANDS:
        return Request(identity, req_id, command=payload)
    try:
        items = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError(f"payload is neither a command nor UTF-8 JSON: {error}") from None
    if isinstance(items, dict) and isinstance(items.get("task"), str) and split_task(items["task"])[0] in TASKS:
        return Request(identity, req_id, items=checked_task_items(split_task(items["task"])[0], items.get("items")),
                       task=items["task"])
    return Request(identity, req_id, items=checked_items(items))


def checked_task_items(task: str, items: object) -> list:
    """Token id lists (``embed`` / ``tokens``) or ``[text, pair or null]`` (``classify``)."""
    if not isinstance(items, list):
        raise ProtocolError(f"items of task {task} must be a list, got {type(items).__name__}")
    for i, item in enumerate(items):
        if task == CLASSIFY:
            valid = (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                     and (item[1] is None or isinstance(item[1], str)))
        else:
            valid = isinstance(item, list) and bool(item) and all(type(t) is int and t >= 0 for t in item)
        if not valid:
            raise ProtocolError(f"entry {i} of task {task} is malformed: {str(item)[:60]!r}")
    return items


def checked_items(items: object) -> list[Item]:
    """A list whose entries are texts or lists of token strings."""
    if not isinstance(items, list):
        raise ProtocolError(f"payload must be a JSON list of texts (or of token lists), got {type(items).__name__}")
    for i, item in enumerate(items):
        if isinstance(item, str):
            continue
        if not isinstance(item, list) or not all(isinstance(token, str) for token in item):
            raise ProtocolError(f"entry {i} must be a text or a list of token strings, got {str(item)[:60]!r}")
    return items


def embedding_reply(identity: bytes, vectors: np.ndarray, tokens: list[list[str]] | None, req_id: bytes) -> list:
    """``[identity, {"dtype", "shape", "tokens"}, raw C-order buffer, req_id]``."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    meta = {"dtype": str(vectors.dtype), "shape": list(vectors.shape), "tokens": tokens if tokens is not None else ""}
    return [identity, json.dumps(meta, ensure_ascii=False).encode(), raw_bytes(vectors), req_id]


def raw_bytes(array: np.ndarray) -> np.ndarray:
    """A C-contiguous array as a flat byte buffer ZMQ can send without a copy (also when it is empty)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def json_reply(identity: bytes, data: dict, req_id: bytes) -> list[bytes]:
    """``[identity, json, req_id]``: the reply to SHOW_CONFIG / SHOW_STATUS."""
    return [identity, json.dumps(data, ensure_ascii=False, default=str).encode(), req_id]


def adapter_task(task: str, adapter: str | None) -> str:
    """The batch task of a request for a served adapter (None: the default): ``classify@rt``. Batches hold one
    task, so they never mix adapters."""
    return task if adapter is None else f"{task}@{adapter}"


def split_task(task: str) -> tuple[str, str | None]:
    """``classify@rt`` → (``classify``, ``rt``); a task without an adapter → (task, None)."""
    base, _, adapter = task.partition("@")
    return base, adapter or None
