"""Prometheus metrics, in a registry owned by the app (no global default registry)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_MEDIA_GAUGES = {
    "calls": "Live video calls on this node",
    "viewers": "Viewers of the live calls",
    "packets_received": "RTP packets received from the live calls' citizens",
    "packets_lost": "RTP packets missing from the live calls' citizens' streams",
    "video_frames": "Video frames reassembled from the live calls' citizens",
    "audio_frames": "Audio frames received from the live calls' citizens",
    "frames_recorded": "Video frames the live calls' recorders wrote",
    "recorder_dropped": "Frames the live calls' recorders dropped",
    "viewer_frames_dropped": "Frames the live calls' viewers' queues dropped",
    "packets_sent_to_viewers": "RTP packets sent to the live calls' viewers",
}


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        # Built here rather than as field defaults so they register with *this* registry.
        object.__setattr__(
            self,
            "http_requests",
            Counter(
                "micro110_http_requests_total",
                "HTTP requests handled",
                ["method", "route", "status"],
                registry=self.registry,
            ),
        )
        object.__setattr__(
            self,
            "http_latency",
            Histogram(
                "micro110_http_request_seconds",
                "HTTP request latency",
                ["method", "route"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=self.registry,
            ),
        )
        object.__setattr__(
            self,
            "ready",
            Gauge(
                "micro110_dependency_up",
                "1 when the dependency answered the last readiness check",
                ["dependency"],
                registry=self.registry,
            ),
        )

        object.__setattr__(
            self,
            "precinct_import",
            Gauge(
                "micro110_precinct_import",
                "The precinct import this node serves",
                ["node"],
                registry=self.registry,
            ),
        )
        object.__setattr__(
            self,
            "precinct_import_loaded",
            Gauge(
                "micro110_precinct_import_loaded_timestamp_seconds",
                "When this node began serving its precinct import (Unix time)",
                ["node"],
                registry=self.registry,
            ),
        )

        # Where the live video calls' media goes (set at each scrape from MediaStats).
        object.__setattr__(
            self,
            "media",
            {
                name: Gauge(f"micro110_media_{name}", help_, registry=self.registry)
                for name, help_ in _MEDIA_GAUGES.items()
            },
        )

    http_requests: Counter = field(init=False)
    http_latency: Histogram = field(init=False)
    ready: Gauge = field(init=False)
    precinct_import: Gauge = field(init=False)
    precinct_import_loaded: Gauge = field(init=False)
    media: dict[str, Gauge] = field(init=False)
