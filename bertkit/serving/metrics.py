"""Prometheus metrics, under text-embeddings-inference's names so that its dashboards and alerts apply.

Each server has its own registry (``/metrics`` renders it). prometheus_client exposes a counter ``te_request_count``
as ``te_request_count_total``, as Prometheus names counters; histograms and gauges keep TEI's names exactly.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401  (re-exported for /metrics)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

disable_created_metrics()  # no ``*_created`` series: TEI has none, and they double the page

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = tuple(float(2**i) for i in range(13))  # 1 .. 4096 inputs, as TEI
TOKEN_BUCKETS = tuple(float(2**i) for i in range(21))  # 1 .. 2^20 tokens, as TEI


class ServerMetrics:
    """The server's counters, histograms and gauges."""

    def __init__(self):
        self.registry = registry = CollectorRegistry()
        self.request_count = Counter("te_request_count", "HTTP inference requests received", ["method"],
                                     registry=registry)
        self.request_success = Counter("te_request_success", "HTTP inference requests answered", ["method"],
                                       registry=registry)
        self.request_failure = Counter("te_request_failure", "HTTP requests refused or failed, by cause", ["err"],
                                       registry=registry)
        self.request_duration = Histogram("te_request_duration", "Seconds from request to answer",
                                          buckets=DURATION_BUCKETS, registry=registry)
        self.tokenization_duration = Histogram("te_request_tokenization_duration", "Seconds spent tokenizing",
                                               buckets=DURATION_BUCKETS, registry=registry)
        self.queue_duration = Histogram("te_request_queue_duration", "Seconds a request's texts waited for a worker",
                                        buckets=DURATION_BUCKETS, registry=registry)
        self.inference_duration = Histogram("te_request_inference_duration", "Seconds of encoding per request",
                                            buckets=DURATION_BUCKETS, registry=registry)
        self.input_length = Histogram("te_request_input_length", "Tokens per input", buckets=TOKEN_BUCKETS[:14],
                                      registry=registry)
        self.batch_next_size = Histogram("te_batch_next_size", "Inputs per batch sent to a worker",
                                         buckets=SIZE_BUCKETS, registry=registry)
        self.batch_next_tokens = Histogram("te_batch_next_tokens", "Tokens per batch sent to a worker",
                                           buckets=TOKEN_BUCKETS, registry=registry)
        self.batch_inference_duration = Histogram("te_batch_inference_duration", "Seconds a worker took per batch",
                                                  buckets=DURATION_BUCKETS, registry=registry)
        self.batch_inference_success = Counter("te_batch_inference_success", "Batches encoded", registry=registry)
        self.batch_inference_failure = Counter("te_batch_inference_failure", "Batches that failed or were lost",
                                               registry=registry)
        self.queue_size = Gauge("te_queue_size", "Inputs waiting for a worker", registry=registry)
        self.requests_in_flight = Gauge("te_requests_in_flight", "HTTP inference requests being answered",
                                        registry=registry)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
