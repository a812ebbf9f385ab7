"""Prometheus metrics, in a registry owned by one app (so test apps do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.qa.engine import Engine
from service.qa.types import Answer

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric the service exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tanya_http_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "tanya_http_request_duration_seconds", "HTTP request latency", ["route", "method", "status"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.answers = Counter("tanya_answers", "Answers given, by outcome", ["outcome"], registry=self.registry)
        self.encoder = Histogram(
            "tanya_encoder_seconds", "Query encoding time per encoder", ["encoder"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.index_documents = Gauge("tanya_index_documents", "Documents in the loaded index", registry=self.registry)
        self.index_chunks = Gauge("tanya_index_chunks", "Chunks in the loaded index", registry=self.registry)
        self.index_built = Gauge(
            "tanya_index_build_timestamp_seconds", "When the loaded index was built (Unix time)", registry=self.registry
        )
        self.index_ready = Gauge("tanya_index_ready", "1 when an index is loaded", registry=self.registry)
        self.reloads = Counter("tanya_index_reloads", "Index reload attempts", ["result"], registry=self.registry)

    def observe_answer(self, answer: Answer) -> None:
        """Count an answer and record its encoder times."""
        self.answers.labels(outcome="abstained" if answer.abstained else "answered").inc()
        for key, ms in answer.timings_ms.items():
            if key.startswith("encoder:"):
                self.encoder.labels(encoder=key.split(":", 1)[1]).observe(ms / 1000)

    def observe_index(self, engine: Engine | None) -> None:
        """Publish the loaded index's size and build time."""
        if engine is None:
            self.index_ready.set(0)
            return
        import calendar
        import time

        self.index_ready.set(1)
        self.index_documents.set(len(engine.index.documents))
        self.index_chunks.set(engine.index.live_chunks)
        created = engine.index.manifest.get("created_at")
        if created:
            self.index_built.set(calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")))
