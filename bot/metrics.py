"""Prometheus metrics (``/metrics``), one registry per process."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_TIME_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class PrometheusMetrics:
    """The core's Metrics port on prometheus-client."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._jobs = Counter(
            "imagebot_jobs", "Jobs reaching a state", ["platform", "state"], registry=r
        )
        self._depth = Gauge("imagebot_jobs_current", "Jobs per state now", ["state"], registry=r)
        self._queue = Histogram(
            "imagebot_queue_seconds",
            "Time a job waited in the queue",
            buckets=_TIME_BUCKETS,
            registry=r,
        )
        self._deliver = Histogram(
            "imagebot_delivery_seconds",
            "Time from command to delivered result",
            buckets=_TIME_BUCKETS,
            registry=r,
        )
        self._provider = Counter(
            "imagebot_provider_errors", "Model service failures by kind", ["kind"], registry=r
        )
        self._moderation = Counter(
            "imagebot_moderation_refusals", "Screening refusals", ["stage"], registry=r
        )
        self._shutdown = Gauge(
            "imagebot_model_shutdown_timestamp_seconds",
            "When an enabled image model is (or was) shut down by its provider",
            ["model"],
            registry=r,
        )
        self._credits = Counter("imagebot_credits", "Credits sold and spent", ["kind"], registry=r)
        self._webhooks = Counter(
            "imagebot_webhook_events", "Payment webhook events", ["type", "outcome"], registry=r
        )

    def job_state(self, platform: str, state: str) -> None:
        """Count a state change."""
        self._jobs.labels(platform, state).inc()

    def queue_time(self, seconds: float) -> None:
        """Observe a queue wait."""
        self._queue.observe(max(0.0, seconds))

    def delivery_time(self, seconds: float) -> None:
        """Observe a time to delivery."""
        self._deliver.observe(max(0.0, seconds))

    def provider_error(self, kind: str) -> None:
        """Count a provider failure."""
        self._provider.labels(kind).inc()

    def moderation_refusal(self, stage: str) -> None:
        """Count a refusal."""
        self._moderation.labels(stage).inc()

    def credits(self, kind: str, amount: int) -> None:
        """Count credits sold or spent."""
        if amount > 0:
            self._credits.labels(kind).inc(amount)

    def webhook_event(self, event_type: str, outcome: str) -> None:
        """Count a webhook event."""
        self._webhooks.labels(event_type, outcome).inc()

    def queue_depth(self, states: dict[str, int]) -> None:
        """Set the per-state gauge."""
        for state in ("queued", "running", "delivering"):
            self._depth.labels(state).set(states.get(state, 0))

    def model_shutdown(self, model: str, timestamp: float | None) -> None:
        """Set (or clear) the model's shutdown timestamp."""
        if timestamp is None:
            with contextlib.suppress(KeyError):
                self._shutdown.remove(model)
        else:
            self._shutdown.labels(model).set(timestamp)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
