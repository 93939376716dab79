"""Billing shows in /metrics: credits sold and webhook events by type and outcome."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import PrometheusMetrics
from tests.e2e.billing.conftest import Billing


def values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_purchases_and_webhook_events_are_counted(billing: Billing) -> None:
    session = await billing.checkout("pack_m")
    events = billing.stripe.complete_session(session["id"])
    await billing.deliver(*events)
    await billing.deliver(*events)  # the same events again: replays
    metrics = billing.core.metrics
    assert isinstance(metrics, PrometheusMetrics)
    text = metrics.render().decode()
    assert values(text, "imagebot_credits_total")[(("kind", "sold"),)] == 150
    webhooks = values(text, "imagebot_webhook_events_total")
    completed = (("outcome", "applied"), ("type", "checkout.session.completed"))
    replayed = (("outcome", "replay"), ("type", "checkout.session.completed"))
    assert webhooks[completed] == 1 and webhooks[replayed] == 1
