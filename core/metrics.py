"""The metrics port: what core counts and times (exported by bot/metrics.py)."""

from __future__ import annotations

from typing import Protocol


class Metrics(Protocol):
    """Counters and histograms of the domain; every method is cheap and never raises."""

    def job_state(self, platform: str, state: str) -> None:
        """A job reached ``state``."""
        ...

    def queue_time(self, seconds: float) -> None:
        """How long a job waited before a worker took it."""
        ...

    def delivery_time(self, seconds: float) -> None:
        """How long from the command to the delivered result."""
        ...

    def provider_error(self, kind: str) -> None:
        """The model service failed or refused (``kind`` is the error code)."""
        ...

    def moderation_refusal(self, stage: str) -> None:
        """Screening refused an input or withheld an output."""
        ...

    def credits(self, kind: str, amount: int) -> None:
        """Credits ``sold`` (purchases, plans) or ``spent`` (captured by jobs)."""
        ...

    def webhook_event(self, event_type: str, outcome: str) -> None:
        """A payment webhook was handled (``applied``, ``replay``, ``ignored``,
        ``refused``, ``malformed``, ``error``)."""
        ...

    def queue_depth(self, states: dict[str, int]) -> None:
        """Jobs per state right now."""
        ...

    def model_shutdown(self, model: str, timestamp: float | None) -> None:
        """When ``model`` is (or was) shut down, in Unix seconds; None: no date known."""
        ...


class NoMetrics:
    """Metrics that go nowhere (the console, tests that do not look)."""

    def job_state(self, platform: str, state: str) -> None:
        """Ignore."""

    def queue_time(self, seconds: float) -> None:
        """Ignore."""

    def delivery_time(self, seconds: float) -> None:
        """Ignore."""

    def provider_error(self, kind: str) -> None:
        """Ignore."""

    def moderation_refusal(self, stage: str) -> None:
        """Ignore."""

    def credits(self, kind: str, amount: int) -> None:
        """Ignore."""

    def webhook_event(self, event_type: str, outcome: str) -> None:
        """Ignore."""

    def queue_depth(self, states: dict[str, int]) -> None:
        """Ignore."""

    def model_shutdown(self, model: str, timestamp: float | None) -> None:
        """Ignore."""
