"""Request counters for SHOW_STATUS and ``/status``, named as bert-as-service names them."""

from __future__ import annotations

import time
from collections import Counter


class ServerStatistic:
    """Counts of data and system requests, per client and per second."""

    def __init__(self):
        self.started = time.monotonic()
        self.requests_per_client: Counter[bytes] = Counter()
        self.num_data_request = 0
        self.num_sys_request = 0
        self.num_total_seq = 0
        self.num_dropped = 0
        self.min_size = self.max_size = 0

    def data_request(self, identity: bytes, size: int) -> None:
        """An encode request of ``size`` texts."""
        self.requests_per_client[identity] += 1
        self.num_data_request += 1
        self.num_total_seq += size
        self.min_size = size if self.num_data_request == 1 else min(self.min_size, size)
        self.max_size = max(self.max_size, size)

    def system_request(self, identity: bytes) -> None:
        """A SHOW_CONFIG / SHOW_STATUS / TERMINATION request."""
        self.requests_per_client[identity] += 1
        self.num_sys_request += 1

    def as_dict(self) -> dict:
        """The figures, JSON-ready."""
        per_client = list(self.requests_per_client.values()) or [0]
        elapsed = max(time.monotonic() - self.started, 1e-9)
        total = self.num_data_request + self.num_sys_request
        return {
            "num_data_request": self.num_data_request,
            "num_total_seq": self.num_total_seq,
            "num_sys_request": self.num_sys_request,
            "num_dropped_request": self.num_dropped,
            "num_total_request": total,
            "num_total_client": len(self.requests_per_client),
            "num_max_request_per_client": max(per_client),
            "num_min_request_per_client": min(per_client),
            "avg_request_per_client": total / max(len(self.requests_per_client), 1),
            "max_size_per_request": self.max_size,
            "min_size_per_request": self.min_size,
            "avg_size_per_request": self.num_total_seq / max(self.num_data_request, 1),
            "avg_request_per_second": total / elapsed,
            "uptime_seconds": elapsed,
        }
