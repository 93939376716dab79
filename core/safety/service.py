"""Abuse prevention (P17): bans, strikes, rate limits, chat controls, the review queue.

Every automatic or manual decision is written to the audit log with its reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.errors import Banned, ChatDisabled, InvalidRequest, RateLimited
from core.i18n import LANGUAGES, is_language, msg, negotiate
from core.ports import Clock
from core.repositories import UnitOfWork, UnitOfWorkFactory, UserRecord
from core.safety.ports import ChatControlRecord, Standing
from core.types import Conversation

log = logging.getLogger("imagebot.safety")


@dataclass(frozen=True)
class SafetyConfig:
    """Thresholds, from the settings."""

    user_per_minute: float = 6.0
    user_burst: int = 5
    chat_per_minute: float = 30.0
    chat_burst: int = 20
    chat_platforms: frozenset[str] = frozenset()
    """Platforms whose groups get the ``chat_*`` request cap; by default none: a busy
    server is served, and only sending to it is paced (see :meth:`SafetyService.send_slot`)."""
    group_sends_per_minute: float = 20.0
    strikes_temp_ban: int = 3
    strikes_permanent_ban: int = 6
    temp_ban_hours: float = 24.0


async def audit(
    uow: UnitOfWork,
    now: datetime,
    *,
    actor: str,
    action: str,
    user_id: int | None,
    reason: str,
    **details: Any,
) -> None:
    """Write one decision to the audit log (inside the caller's transaction)."""
    await uow.privacy.audit(
        actor=actor,
        action=action,
        subject_user_id=user_id,
        subject_hash=None,
        reason=reason,
        details=details,
        now=now,
    )


RESERVE_SECONDS = 1.0
"""How long tokens taken ahead from a loose bucket may wait in this process (see
:meth:`SafetyService.take`)."""
RESERVE_MAX = 100


class SafetyService:
    """Checks before a job is accepted, and the consequences of refusals."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, config: SafetyConfig) -> None:
        self._uow = uow
        self.clock = clock
        self.config = config
        # bucket key -> (tokens taken from the database ahead, monotonic expiry)
        self._reserved: dict[str, tuple[int, float]] = {}
        self.reserve_seconds = RESERVE_SECONDS

    async def take(
        self, uow: UnitOfWork, key: str, capacity: float, per_second: float, now: datetime
    ) -> float:
        """Take a token from the bucket ``key``: 0 when taken, else seconds to wait.

        A bucket configured loose (room for many requests a second) is not asked on every
        request: one statement takes a batch of tokens, at most one second of its refill,
        and this process spends them over the next second. The tokens are the database's
        (every process still shares the one bucket), a batch left unused is gone, and a
        request that finds none asks the database again, so no window ever admits more than
        the limit plus one second of its refill. A tight bucket (the shipped per-user
        limit: 5, then one every 10 s) is asked every time."""
        batch = int(min(capacity / RESERVE_MAX, per_second * self.reserve_seconds, RESERVE_MAX))
        if batch < 2:
            return await uow.safety.take_token(key, capacity, per_second, now)
        tick = time.monotonic()
        left, until = self._reserved.get(key, (0, 0.0))
        if left > 0 and until > tick:
            self._reserved[key] = (left - 1, until)
            return 0.0
        if len(self._reserved) > 10_000:
            self._reserved = {k: v for k, v in self._reserved.items() if v[1] > tick}
        if await uow.safety.take_token(key, capacity, per_second, now, count=batch) == 0:
            self._reserved[key] = (batch - 1, tick + self.reserve_seconds)
            return 0.0
        self._reserved.pop(key, None)
        return await uow.safety.take_token(key, capacity, per_second, now)

    async def admit(self, uow: UnitOfWork, user: UserRecord, conversation: Conversation) -> None:
        """Raise unless ``user`` may start a job in ``conversation`` now: not banned, the
        chat allows it, under the chat's daily cap, and within the rate limits."""
        now = self.clock.now()
        standing = await uow.safety.standing(user.id)
        if standing.banned_at(now):
            until = (
                None if standing.banned_forever else f"{standing.banned_until:%Y-%m-%d %H:%M} UTC"
            )
            raise Banned(until)
        group = None
        if not conversation.is_private:
            group = conversation.group_id or conversation.chat_id
            control = await uow.safety.chat_control(conversation.platform, group)
            if not control.enabled:
                raise ChatDisabled()
            if control.allowed_channels and conversation.chat_id not in control.allowed_channels:
                raise ChatDisabled(msg("tg.safety.other_channels"))
            if control.daily_cap_per_member is not None:
                midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
                used = await uow.safety.jobs_today(user.id, conversation.platform, group, midnight)
                if used >= control.daily_cap_per_member:
                    raise ChatDisabled(
                        msg("tg.safety.daily_cap", count=control.daily_cap_per_member)
                    )
        cfg = self.config
        wait = await self.take(
            uow, f"user:{user.id}", cfg.user_burst, cfg.user_per_minute / 60, now
        )
        if wait:
            raise RateLimited(wait)
        if group is not None:
            # A request cap on a whole chat only where chosen: by the chat's admins
            # (/server rate) or by the operator for a platform. Per-user limits hold anyway.
            capacity: float | None = None
            per_minute: float | None = None
            if control.requests_per_minute is not None:
                capacity = per_minute = control.requests_per_minute
            elif conversation.platform in cfg.chat_platforms:
                capacity, per_minute = cfg.chat_burst, cfg.chat_per_minute
            if capacity is not None and per_minute is not None:
                wait = await self.take(
                    uow, f"chat:{conversation.platform}:{group}", capacity, per_minute / 60, now
                )
                if wait:
                    raise RateLimited(wait, scope="chat")

    async def send_slot(
        self, platform: str, chat_id: str, *, limit: float, window: float = 60.0
    ) -> float:
        """Take one slot to send (or edit) a message in a group whose platform limits the
        bot's messages there (Telegram: about 20 a minute); 0 when taken, else seconds to
        wait. Kept in the database, so every process that sends shares the one budget.

        The bucket holds a tenth of the window's budget and refills the rest evenly, less
        one message of margin for requests that overtake each other on the way, so no
        sliding ``window`` ever carries more than ``limit`` messages."""
        burst = max(1.0, float(int(limit // 10)))
        refill = max(limit - burst - 1, 1.0) / window
        async with self._uow() as uow:
            wait = await uow.safety.take_token(
                f"send:{platform}:{chat_id}", burst, refill, self.clock.now()
            )
            await uow.commit()
        return wait

    async def first_delivery(self, platform: str, update_id: int | str) -> bool:
        """True the first time any process sees this platform update; False for a
        redelivery or a copy handled by another replica (then do nothing)."""
        async with self._uow() as uow:
            fresh = await uow.updates.first_time(f"{platform}:{update_id}", self.clock.now())
            await uow.commit()
        return fresh

    async def strike(self, user_id: int, *, reason: str, job_id: str) -> Standing:
        """Count a refused request; enough strikes ban temporarily, then permanently."""
        now = self.clock.now()
        cfg = self.config
        async with self._uow() as uow:
            current = await uow.safety.standing(user_id)
            strikes = current.strikes + 1
            new = Standing(
                strikes, current.banned_until, current.banned_forever, current.ban_reason
            )
            action = "strike"
            if strikes >= cfg.strikes_permanent_ban and not current.banned_forever:
                new = Standing(strikes, None, True, f"{strikes} refused requests")
                action = "ban_permanent"
            elif (
                strikes >= cfg.strikes_temp_ban
                and not current.banned_at(now)
                and (strikes == cfg.strikes_temp_ban)
            ):
                until = now + timedelta(hours=cfg.temp_ban_hours)
                new = Standing(strikes, until, False, f"{strikes} refused requests")
                action = "ban_temporary"
            await uow.safety.save_standing(user_id, new, now)
            await audit(
                uow,
                now,
                actor="system:safety",
                action=action,
                user_id=user_id,
                reason=reason,
                job_id=job_id,
                strikes=strikes,
            )
            await uow.commit()
        log.info("strike user=%s strikes=%s action=%s job=%s", user_id, strikes, action, job_id)
        return new

    async def set_ban(
        self, user_id: int, *, by: str, reason: str, hours: float | None, lift: bool = False
    ) -> Standing:
        """An operator bans (for ``hours``, or for good when None) or lifts a ban."""
        now = self.clock.now()
        if not reason.strip():
            raise InvalidRequest(msg("tg.safety.give_reason"))
        async with self._uow() as uow:
            current = await uow.safety.standing(user_id)
            if lift:
                new = Standing(0, None, False, "")
                action = "unban"
            elif hours is None:
                new = Standing(current.strikes, None, True, reason)
                action = "ban_permanent"
            else:
                new = Standing(current.strikes, now + timedelta(hours=hours), False, reason)
                action = "ban_temporary"
            await uow.safety.save_standing(user_id, new, now)
            await audit(
                uow, now, actor=by, action=action, user_id=user_id, reason=reason, hours=hours
            )
            await uow.commit()
        return new

    async def chat_control(self, platform: str, group_id: str) -> ChatControlRecord:
        """A chat's switches as its admins set them (the defaults when never set)."""
        async with self._uow() as uow:
            return await uow.safety.chat_control(platform, group_id)

    async def set_chat_control(
        self, platform: str, group_id: str, *, by: str, **changes: Any
    ) -> ChatControlRecord:
        """A chat's admin switches the bot on or off, limits channels, or caps members.

        The adapter checks that ``by`` is an admin of that chat (Manage Server on Discord,
        a group administrator on Telegram) before calling.
        """
        now = self.clock.now()
        known = {
            "enabled",
            "allowed_channels",
            "daily_cap_per_member",
            "requests_per_minute",
            "language",
        }
        unknown = set(changes) - known
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        async with self._uow() as uow:
            current = await uow.safety.chat_control(platform, group_id)
            cap = changes.get("daily_cap_per_member", current.daily_cap_per_member)
            if cap is not None and int(cap) < 0:
                raise InvalidRequest(msg("server.cap_invalid"))
            rate = changes.get("requests_per_minute", current.requests_per_minute)
            if rate is not None and not 1 <= int(rate) <= 10_000:
                raise InvalidRequest(msg("tg.safety.rate_invalid"))
            language = changes.get("language", current.language)
            if language is not None and not is_language(str(language)):
                raise InvalidRequest(msg("language.unknown", languages=", ".join(LANGUAGES)))
            new = ChatControlRecord(
                bool(changes.get("enabled", current.enabled)),
                tuple(str(c) for c in changes.get("allowed_channels", current.allowed_channels)),
                None if cap is None else int(cap),
                None if rate is None else int(rate),
                None if language is None else negotiate(str(language)),
            )
            await uow.safety.save_chat_control(platform, group_id, new, now)
            await audit(
                uow,
                now,
                actor=by,
                action="chat_control",
                user_id=None,
                reason="set by the chat's admin",
                platform=platform,
                chat=group_id,
                enabled=new.enabled,
                channels=list(new.allowed_channels),
                daily_cap=new.daily_cap_per_member,
                requests_per_minute=new.requests_per_minute,
                language=new.language,
            )
            await uow.commit()
        return new
