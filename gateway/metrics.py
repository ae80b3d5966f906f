"""Prometheus metrics of one gateway process, in its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Counters and histograms the hub and channels update; rendered at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages_in = Counter(
            "gateway_messages_in_total", "Customer messages stored", ["channel"], registry=self.registry
        )
        self.messages_out = Counter(
            "gateway_messages_out_total", "Outbound messages handed to a channel", ["channel"], registry=self.registry
        )
        self.send_failures = Counter(
            "gateway_send_failures_total",
            "Outbound send attempts that failed",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "gateway_dead_letters_total",
            "Inputs kept as dead letters because they could not be understood",
            ["source"],
            registry=self.registry,
        )
        self.open_threads = Gauge("gateway_open_threads", "Threads not closed", registry=self.registry)
        self.ingest_seconds = Histogram(
            "gateway_ingest_seconds",
            "Time to store and route one inbound message",
            ["channel"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
