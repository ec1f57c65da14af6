"""The service's Prometheus metrics: requests and latency by route template, rows answered,
unknown ids. With several worker processes (`serve(workers > 1)` sets
$PROMETHEUS_MULTIPROC_DIR), /metrics adds up every worker's counts."""

from __future__ import annotations

import os

from sketchrec._optional import require


class ServiceMetrics:
    """One app's counters, in a registry of its own (two apps in one process never mix)."""

    def __init__(self):
        prometheus = require("prometheus_client", "the service's /metrics")
        self.registry = registry = prometheus.CollectorRegistry()
        self.requests = prometheus.Counter("sketchrec_requests_total", "Requests by route template and status",
                                           ["endpoint", "status"], registry=registry)
        self.latency = prometheus.Histogram("sketchrec_request_seconds", "Request latency by route template",
                                            ["endpoint"], registry=registry,
                                            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
        self.scored = prometheus.Counter("sketchrec_sessions_scored_total", "Sessions (or items / texts) answered",
                                         ["endpoint"], registry=registry)
        self.unknown_ids = prometheus.Counter("sketchrec_unknown_items_total", "Unknown item ids in requests",
                                              registry=registry)

    def observe(self, label: str, status: int, seconds: float) -> None:
        """One request answered (called by the guard, for every request)."""
        self.latency.labels(label).observe(seconds)
        self.requests.labels(label, str(status)).inc()

    def exposed(self):
        """This process's metrics, or every worker's when prometheus_client runs in multiprocess
        mode (`serve(workers > 1)` sets $PROMETHEUS_MULTIPROC_DIR; the values are then in files there)."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return self.registry
        from prometheus_client import CollectorRegistry, multiprocess
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged

    def text(self) -> str:
        """The Prometheus text format of `exposed()`."""
        from prometheus_client import generate_latest
        return generate_latest(self.exposed()).decode()
