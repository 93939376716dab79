"""Discord premium (SKUs and entitlements) on the Discord fake.

A mixin of :class:`tests.fakes.discord_server.FakeDiscord`. It serves
``GET /applications/{app}/skus``, ``GET /applications/{app}/entitlements`` (``user_id``,
``sku_ids``, ``guild_id``, ``before``, ``after``, ``limit`` 1-100, ``exclude_ended``,
``exclude_deleted``) and ``POST /applications/{app}/entitlements/{id}/consume`` (204; a
second consume, or consuming a subscription, is refused), and lets a test play Discord's
store: :meth:`PremiumFake.buy` makes an entitlement and dispatches ``ENTITLEMENT_CREATE``,
:meth:`renew` and :meth:`end` dispatch ``ENTITLEMENT_UPDATE``, :meth:`withdraw` dispatches
``ENTITLEMENT_DELETE``. Interactions carry the user's active entitlements, as on Discord.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

SKU_CONSUMABLE = 3
SKU_SUBSCRIPTION = 5
ENTITLEMENT_PURCHASE = 1
ENTITLEMENT_APPLICATION_SUBSCRIPTION = 8
ALREADY_CONSUMED = {"message": "Entitlement already consumed", "code": 40074}
"""What a second consume answers (400)."""
UNKNOWN_ENTITLEMENT = {"message": "Unknown Entitlement", "code": 10029}


def _iso(at: datetime) -> str:
    return at.isoformat()


class PremiumFake:
    """SKUs, entitlements and their gateway events; mixed into FakeDiscord."""

    @property
    def skus(self) -> dict[str, dict[str, Any]]:
        """SKUs by id."""
        return self._premium()["skus"]  # type: ignore[no-any-return]

    @property
    def entitlements(self) -> dict[str, dict[str, Any]]:
        """Entitlements by id, as Discord holds them now."""
        return self._premium()["entitlements"]  # type: ignore[no-any-return]

    @property
    def consumed(self) -> list[str]:
        """Entitlement ids consumed, one entry per successful consume."""
        return self._premium()["consumed"]  # type: ignore[no-any-return]

    def _premium(self) -> dict[str, Any]:
        state = self.__dict__.get("_premium_state")
        if state is None:
            state = {"skus": {}, "entitlements": {}, "consumed": []}
            self.__dict__["_premium_state"] = state
        return state

    # --- the store (what Discord does) --------------------------------------------------------

    def add_sku(self, name: str, *, subscription: bool = False) -> str:
        """A SKU made in the developer portal; returns its id."""
        from tests.fakes.discord_server import snowflake

        sku_id = str(snowflake())
        time.sleep(0.001)  # distinct snowflakes
        self.skus[sku_id] = {
            "id": sku_id,
            "type": SKU_SUBSCRIPTION if subscription else SKU_CONSUMABLE,
            "dependent_sku_id": None,
            "application_id": self.application_id,  # type: ignore[attr-defined]
            "manifest_labels": None,
            "access_type": 1,
            "name": name,
            "features": [],
            "release_date": None,
            "premium": False,
            "slug": name.lower().replace(" ", "-"),
            "flags": 128 if subscription else 4,
            "show_age_gate": False,
        }
        return sku_id

    async def buy(self, user_id: str, sku_id: str, *, dispatch: bool = True) -> dict[str, Any]:
        """The user completes Discord's purchase flow: an entitlement, ``ENTITLEMENT_CREATE``
        (``dispatch=False`` loses the event, as a gateway outage would)."""
        from tests.fakes.discord_server import snowflake

        sku = self.skus[sku_id]
        now = datetime.now(UTC)
        subscription = sku["type"] == SKU_SUBSCRIPTION
        entitlement: dict[str, Any] = {
            "id": str(snowflake()),
            "sku_id": sku_id,
            "application_id": self.application_id,  # type: ignore[attr-defined]
            "user_id": str(user_id),
            "promotion_id": None,
            "type": ENTITLEMENT_APPLICATION_SUBSCRIPTION if subscription else ENTITLEMENT_PURCHASE,
            "deleted": False,
            "gift_code_flags": 0,
            "consumed": False,
            "starts_at": _iso(now) if subscription else None,
            "ends_at": _iso(now + timedelta(days=30)) if subscription else None,
        }
        if subscription:
            entitlement["subscription_id"] = str(snowflake())
        time.sleep(0.001)
        self.entitlements[entitlement["id"]] = entitlement
        if dispatch:
            await self.dispatch("ENTITLEMENT_CREATE", dict(entitlement))  # type: ignore[attr-defined]
        return entitlement

    async def renew(self, entitlement_id: str, *, dispatch: bool = True) -> dict[str, Any]:
        """A month passes and the subscription renews: ``ends_at`` moves, ENTITLEMENT_UPDATE."""
        entitlement = self.entitlements[entitlement_id]
        ends = datetime.fromisoformat(entitlement["ends_at"])
        entitlement["ends_at"] = _iso(ends + timedelta(days=30))
        if dispatch:
            await self.dispatch("ENTITLEMENT_UPDATE", dict(entitlement))  # type: ignore[attr-defined]
        return entitlement

    async def end(self, entitlement_id: str) -> dict[str, Any]:
        """The subscription was cancelled and its period is over: ENTITLEMENT_UPDATE with
        an ``ends_at`` in the past."""
        entitlement = self.entitlements[entitlement_id]
        entitlement["ends_at"] = _iso(datetime.now(UTC) - timedelta(seconds=1))
        await self.dispatch("ENTITLEMENT_UPDATE", dict(entitlement))  # type: ignore[attr-defined]
        return entitlement

    async def withdraw(self, entitlement_id: str) -> dict[str, Any]:
        """Discord refunds or removes the entitlement: ENTITLEMENT_DELETE."""
        entitlement = self.entitlements[entitlement_id]
        entitlement["deleted"] = True
        await self.dispatch("ENTITLEMENT_DELETE", dict(entitlement))  # type: ignore[attr-defined]
        return entitlement

    def _interaction_entitlements(self, user_id: str) -> list[dict[str, Any]]:
        """What an interaction carries: the user's active entitlements for this app."""
        now = datetime.now(UTC)
        return [
            dict(e)
            for e in self.entitlements.values()
            if e.get("user_id") == str(user_id)
            and not e["deleted"]
            and not e.get("consumed")
            and (e["ends_at"] is None or datetime.fromisoformat(e["ends_at"]) > now)
        ]

    # --- REST -------------------------------------------------------------------------------

    def _premium_route(
        self, method: str, parts: list[str], query: Any, payload: Any
    ) -> tuple[int, Any] | None:
        """(status, body) for the premium routes; None for any other path."""
        if len(parts) < 3 or parts[0] != "applications":
            return None
        if parts[1] != self.application_id:  # type: ignore[attr-defined]
            return 404, {"message": "Unknown Application", "code": 10002}
        if method == "GET" and parts[2:] == ["skus"]:
            return 200, list(self.skus.values())
        if method == "GET" and parts[2:] == ["entitlements"]:
            return self._list_entitlements(query)
        if method == "POST" and len(parts) == 5 and parts[2] == "entitlements":
            if parts[4] != "consume":
                return None
            entitlement = self.entitlements.get(parts[3])
            if entitlement is None:
                return 404, UNKNOWN_ENTITLEMENT
            if self.skus[entitlement["sku_id"]]["type"] != SKU_CONSUMABLE:
                return 400, {"message": "Cannot consume this entitlement", "code": 0}
            if entitlement.get("consumed"):
                return 400, ALREADY_CONSUMED
            entitlement["consumed"] = True
            self.consumed.append(entitlement["id"])
            return 204, None
        return None

    def _list_entitlements(self, query: Any) -> tuple[int, Any]:
        known = {
            "user_id",
            "sku_ids",
            "guild_id",
            "before",
            "after",
            "limit",
            "exclude_ended",
            "exclude_deleted",
        }
        unknown = sorted(set(query) - known)
        if unknown:
            return 400, {"message": "Invalid Form Body", "code": 50035, "errors": unknown}
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return 400, {"message": "Invalid Form Body", "code": 50035}
        items = sorted(self.entitlements.values(), key=lambda e: int(e["id"]))
        if "user_id" in query:
            items = [e for e in items if e.get("user_id") == query["user_id"]]
        if query.get("sku_ids"):
            wanted = set(str(query["sku_ids"]).split(","))
            items = [e for e in items if e["sku_id"] in wanted]
        now = datetime.now(UTC)
        if str(query.get("exclude_ended", "false")).lower() == "true":
            items = [
                e
                for e in items
                if e["ends_at"] is None or datetime.fromisoformat(e["ends_at"]) > now
            ]
        if str(query.get("exclude_deleted", "true")).lower() == "true":
            items = [e for e in items if not e["deleted"]]
        if query.get("after"):
            items = [e for e in items if int(e["id"]) > int(query["after"])]
        if query.get("before"):
            items = [e for e in items if int(e["id"]) < int(query["before"])]
            items = items[-limit:]
        return 200, [dict(e) for e in items[:limit]]
