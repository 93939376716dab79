"""Offers priced per rail (issue 12): Stars prices and Discord SKUs in IMAGEBOT_OFFERS, the
defaults, and what ``imagebot check-config`` says per rail."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from core.billing import DEFAULT_OFFERS, offers_on_rail, parse_offers, rail_report
from core.errors import ConfigurationError


def test_defaults_sell_every_pack_and_plan_in_stars() -> None:
    assert {o.id for o in offers_on_rail(DEFAULT_OFFERS, "stars")} == {o.id for o in DEFAULT_OFFERS}
    assert all(o.stars and 1 <= o.stars <= 10_000 for o in DEFAULT_OFFERS)
    assert offers_on_rail(DEFAULT_OFFERS, "discord") == ()


def test_an_offer_without_a_rails_price_is_not_sold_there() -> None:
    offers = parse_offers(
        json.dumps(
            [
                {
                    "id": "a",
                    "kind": "pack",
                    "name": "A",
                    "credits": 10,
                    "price_minor": 100,
                    "stars": 50,
                    "discord_sku_id": "1234567890123",
                },
                {"id": "b", "kind": "pack", "name": "B", "credits": 10, "price_minor": 100},
            ]
        )
    )
    assert [o.id for o in offers_on_rail(offers, "stars")] == ["a"]
    assert [o.id for o in offers_on_rail(offers, "discord")] == ["a"]
    rows = rail_report(offers, telegram="stars", discord="premium", stripe=False)
    text = "\n".join(" ".join(r) for r in rows)
    assert "Telegram Stars: on sale a" in text and 'without "stars"' in text
    assert "Discord premium: on sale a" in text and 'without "discord_sku_id"' in text


@pytest.mark.parametrize(
    "bad",
    [
        {"stars": 0},
        {"stars": 10_001},
        {"stars": "many"},
        {"stars": True},
        {"discord_sku_id": "not-a-snowflake"},
        {"discord_sku_id": "1" * 30},
        {"id": "x:y"},
        {"id": "é" * 40},
    ],
)
def test_hostile_rail_prices_are_refused(bad: dict[str, object]) -> None:
    item = {"id": "a", "kind": "pack", "name": "A", "credits": 10, "price_minor": 100, **bad}
    with pytest.raises(ConfigurationError):
        parse_offers(json.dumps([item]))


def test_one_sku_for_two_offers_is_refused() -> None:
    items = [
        {"id": i, "kind": "pack", "name": i, "credits": 1, "price_minor": 1, "discord_sku_id": "9"}
        for i in ("a", "b")
    ]
    with pytest.raises(ConfigurationError):
        parse_offers(json.dumps(items))


def test_check_config_reports_each_rail(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMAGEBOT_TELEGRAM_PAYMENTS", "both")
    monkeypatch.setenv("IMAGEBOT_DISCORD_PAYMENTS", "premium")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "Telegram Stars: on sale pack_s" in out
    assert "Discord premium: on sale nothing" in out
    assert "Stripe is chosen as a payment rail but not set up" in out
    assert "card links risk" in out
