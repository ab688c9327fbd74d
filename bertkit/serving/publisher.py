"""Replies go out on an XPUB socket, each held until its client has subscribed.

A PUB socket drops a message for a topic nobody has subscribed to yet, and a client's subscription travels
asynchronously after it connects (ZMQ's "slow joiner"), while the real client sends SHOW_CONFIG straight from its
constructor. The original sleeps 0.1 s before every config reply, stalling every other client; an XPUB instead
tells the server which topics are subscribed, so a reply waits exactly as long as its client needs (at most
``hold_s``, after which it is sent anyway and lost if nobody listens).
"""

from __future__ import annotations

import time
from collections import deque

import zmq


class Publisher:
    """The result socket and the replies waiting for their subscriber."""

    def __init__(self, socket: zmq.Socket, hold_s: float = 5.0):
        self.socket = socket
        self.hold_s = hold_s
        self.subscribed: set[bytes] = set()
        self.held: deque[tuple[float, list]] = deque()  # (deadline, frames)

    def is_subscribed(self, identity: bytes) -> bool:
        """Whether some client listens to this identity (a subscription is a topic prefix)."""
        return identity in self.subscribed or any(identity.startswith(topic) for topic in self.subscribed
                                                  if len(topic) < len(identity))

    def publish(self, frames: list) -> None:
        """Send now if the client listens, else hold the reply."""
        if self.is_subscribed(frames[0]):
            self.socket.send_multipart(frames, copy=False)
        else:
            self.held.append((time.monotonic() + self.hold_s, frames))

    def on_subscription(self, frames: list[bytes]) -> None:
        """XPUB delivers ``\\x01topic`` for a new subscription and ``\\x00topic`` when the last one leaves."""
        message = frames[0]
        if message[:1] == b"\x01":
            self.subscribed.add(message[1:])
        elif message[:1] == b"\x00":
            self.subscribed.discard(message[1:])

    def flush(self) -> None:
        """Send the held replies whose client has subscribed or whose time is up."""
        if not self.held:
            return
        now, keep = time.monotonic(), deque()
        for deadline, frames in self.held:
            if now >= deadline or self.is_subscribed(frames[0]):
                self.socket.send_multipart(frames, copy=False)
            else:
                keep.append((deadline, frames))
        self.held = keep

    def seconds_until_due(self) -> float | None:
        """When the oldest held reply must go, if any is held."""
        return max(0.0, self.held[0][0] - time.monotonic()) if self.held else None
