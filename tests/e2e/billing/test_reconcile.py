"""``imagebot stripe reconcile``: what lost webhooks missed, applied once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import _parser, _stripe
from payments.stripe.reconcile import reconcile
from storage.database import Database
from tests.conftest import make_settings
from tests.e2e.billing.conftest import Billing
from tests.fakes.stripe_server import API_KEY


def _cli_settings(billing: Billing, tmp_path: Path) -> object:
    return make_settings(
        tmp_path,
        billing.db,
        database_schema=billing.db.schema,
        stripe_secret_key=API_KEY,
        stripe_api_url=billing.stripe.base_url,
        stripe_max_network_retries=0,
    )


async def test_reconcile_applies_what_lost_webhooks_missed(
    billing: Billing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivered = await billing.buy("pack_s")  # 20 + 50, webhooks delivered
    # From here on every webhook is lost.
    lost_refund = billing.stripe.refund(delivered["payment_intent"])
    pack = await billing.checkout("pack_m")
    billing.stripe.complete_session(pack["id"])
    plan = await billing.checkout("plan_basic")
    billing.stripe.complete_session(plan["id"])
    sub_id = billing.stripe.sessions[plan["id"]]["subscription"]
    billing.stripe.renew(sub_id)
    assert (await billing.balance()).available == 70

    args = _parser().parse_args(["stripe", "reconcile", "--days", "3"])
    assert await _stripe(_cli_settings(billing, tmp_path), args) == 0  # type: ignore[arg-type]
    printed = capsys.readouterr().out
    assert "applied" in printed
    view = await billing.balance()
    assert view.available == 20 + 50 - 50 + 150 + 200 + 200
    assert view.plan is not None and view.plan.status == "active"

    # Again: nothing more.
    report = await reconcile(billing.gateway, days=3)
    assert (report.events_applied, report.sessions_applied, report.invoices_applied) == (0, 0, 0)
    assert report.events_seen > 0 and report.sessions_seen == 3 and report.invoices_seen == 2
    # The webhooks arrive late after all: answered, nothing changes.
    late = [e for e in billing.stripe.events if e["created"] >= lost_refund["created"]]
    assert set(await billing.deliver(*late)) == {200}
    assert (await billing.balance()).available == 570
    assert await billing.ledger_rows("purchase") == 4


async def test_reconcile_finds_sessions_and_invoices_without_their_events(
    billing: Billing,
) -> None:
    """Events older than Stripe keeps (or missing): the sessions and invoices themselves
    are applied by their own ids, so a late webhook still changes nothing."""
    pack = await billing.checkout("pack_s")
    pack_events = billing.stripe.complete_session(pack["id"])
    plan = await billing.checkout("plan_pro")
    plan_events = billing.stripe.complete_session(plan["id"])
    billing.stripe.events.clear()
    report = await reconcile(billing.gateway, days=1)
    assert (report.sessions_applied, report.invoices_applied) == (2, 1)
    assert (await billing.balance()).available == 20 + 50 + 800
    assert set(await billing.deliver(*pack_events, *plan_events)) == {200}
    assert (await billing.balance()).available == 870


async def test_reconcile_without_stripe_configured_says_so(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["stripe", "reconcile"])
    assert args.days == 7
    assert await _stripe(make_settings(tmp_path, database), args) == 2
    assert "IMAGEBOT_STRIPE_SECRET_KEY is not set" in capsys.readouterr().err
