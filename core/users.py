"""Users: first contact, the free allowance, profile refresh, settings, pseudonyms."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from core.errors import InvalidRequest
from core.i18n import LANGUAGE_NAMES, LANGUAGES, SOURCE_LANGUAGE, is_language, msg, negotiate
from core.ports import Clock
from core.repositories import UnitOfWork, UnitOfWorkFactory, UserRecord
from core.types import Actor, GenerateOptions, ResolvedOptions, UserSettingsView

if TYPE_CHECKING:
    from core.billing import CreditLedger

OptionsResolver = Callable[..., ResolvedOptions]
"""Checks options against a model's table (``core.generation.resolve_options``); a
``model`` in the options is checked against the models on offer."""

PSEUDONYM_KEY = "pseudonym_secret"
LANGUAGE_CACHE_SECONDS = 30.0
LANGUAGE_CACHE_SIZE = 10_000


class UserService:
    """Finds or registers the user behind an actor and keeps their settings."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        ledger: CreditLedger,
        clock: Clock,
        *,
        free_credits: int,
        model: str,
        resolve_options: OptionsResolver,
        default_language: str = SOURCE_LANGUAGE,
    ) -> None:
        self._uow = uow
        self.ledger = ledger
        self.clock = clock
        self.free_credits = free_credits
        self.model = model
        self._resolve_options = resolve_options
        self.default_language = negotiate(default_language)
        self._languages: dict[tuple[str, str], tuple[float, str | None]] = {}
        # One lookup at a time per person: commands arriving together share its answer.
        self._asking: dict[tuple[str, str], asyncio.Future[str | None]] = {}
        self._secret: bytes | None = None

    async def ensure(
        self, uow: UnitOfWork, actor: Actor, *, known: UserRecord | None = None
    ) -> tuple[UserRecord, bool]:
        """The stored user for ``actor`` inside ``uow``; a new user gets the free allowance.

        ``known`` is the user when the caller already looked it up (saves a query).
        """
        now = self.clock.now()
        if known is not None:
            user, created = known, False
        else:
            user, created = await uow.users.get_or_create(
                actor.platform, actor.user_id, actor.display_name, actor.locale, now
            )
        if created:
            await uow.ledger.ensure_account(user.id, now)
            # Once per platform account, also across erasures: a keyed hash remembers it.
            welcome = f"{actor.platform}:{actor.user_id}".encode()
            if self.free_credits > 0 and await uow.billing.mark_welcome(
                await self.sign(uow, "welcome", welcome), now
            ):
                await self.ledger.grant(
                    uow,
                    user.id,
                    self.free_credits,
                    # Per registration: SQLite may give an erased user's id to a newcomer,
                    # and the erased user's ledger rows are kept (unlinked) for tax.
                    key=f"welcome:{user.id}:{int(now.timestamp() * 1_000_000)}",
                    note="welcome allowance",
                )
        elif actor.display_name and (
            actor.display_name != user.display_name or actor.locale != user.locale
        ):
            await uow.users.touch(user.id, actor.display_name, actor.locale, now)
        return user, created

    async def register(self, actor: Actor) -> UserRecord:
        """Find or create the user in a unit of work of its own."""
        async with self._uow() as uow:
            user, _ = await self.ensure(uow, actor)
            await uow.commit()
        return user

    async def pseudonym(self, uow: UnitOfWork, user: UserRecord) -> str:
        """A stable keyed hash of the platform identity, for vendors and logs (P21)."""
        return "u_" + (await self.keyed_hash(uow, user.platform, user.platform_user_id))[:32]

    async def sign(self, uow: UnitOfWork, purpose: str, message: bytes) -> str:
        """HMAC-SHA256 of ``message`` under the installation secret, separated by purpose."""
        key = hmac.new(await self._installation_secret(uow), purpose.encode(), hashlib.sha256)
        return hmac.new(key.digest(), message, hashlib.sha256).hexdigest()

    async def _installation_secret(self, uow: UnitOfWork) -> bytes:
        """The installation's secret, made on first use and then kept in memory."""
        if self._secret is None:
            value = await uow.users.installation_value(PSEUDONYM_KEY, secrets.token_hex(32))
            self._secret = bytes.fromhex(value)
        return self._secret

    async def keyed_hash(self, uow: UnitOfWork, platform: str, platform_user_id: str) -> str:
        """HMAC-SHA256 of a platform identity under the installation's secret."""
        message = f"{platform}:{platform_user_id}".encode()
        return hmac.new(await self._installation_secret(uow), message, hashlib.sha256).hexdigest()

    async def settings(self, actor: Actor) -> UserSettingsView:
        """The actor's defaults for new jobs."""
        async with self._uow() as uow:
            user, _ = await self.ensure(uow, actor)
            result = await uow.users.settings(user.id)
            await uow.commit()
        return result

    async def update_settings(self, actor: Actor, **changes: object) -> UserSettingsView:
        """Change some defaults; each value is checked against the model's table.

        A value of ``None`` (or ``"default"``) resets that setting.
        """
        async with self._uow() as uow:
            user, _ = await self.ensure(uow, actor)
            current = await uow.users.settings(user.id)
            merged: dict[str, object] = {
                "size": current.size,
                "quality": current.quality,
                "output_format": current.output_format,
                "background": current.background,
                "n": current.n,
                "model": current.model,
            }
            for key, value in changes.items():
                if key not in merged:
                    raise KeyError(key)
                merged[key] = None if value in (None, "default", "") else value
            # Raises InvalidRequest with the accepted values when anything is off.
            resolved = self._resolve_options(
                GenerateOptions(**merged),  # type: ignore[arg-type]
                model=self.model,
            )
            new = UserSettingsView(
                language=current.language,
                size=resolved.size if merged["size"] is not None else None,
                quality=resolved.quality if merged["quality"] is not None else None,
                output_format=resolved.output_format if merged["output_format"] else None,
                background=resolved.background if merged["background"] else None,
                n=resolved.n if merged["n"] is not None else None,
                model=resolved.model if merged["model"] else None,
            )
            await uow.users.save_settings(user.id, new)
            await uow.commit()
        return new

    # --- language --------------------------------------------------------------------------

    async def language(self, actor: Actor) -> str:
        """The language to answer ``actor`` in: their ``/settings language`` choice, else
        the platform's language when the bot has it, else the operator's default.

        Nothing is stored for someone the bot does not know yet (before the terms).
        """
        key = (actor.platform, actor.user_id)
        cached = self._languages.get(key)
        if cached is not None and cached[0] > time.monotonic():
            choice = cached[1]
        elif key in self._asking:
            pending = self._asking[key]
            try:
                choice = await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                choice = await self._look_up_language(key)  # the one asking was cancelled
        else:
            asking = self._asking[key] = asyncio.get_running_loop().create_future()
            try:
                choice = await self._look_up_language(key)
            except asyncio.CancelledError:
                asking.cancel()
                raise
            except BaseException as exc:
                asking.set_exception(exc)
                asking.exception()  # marked as retrieved: maybe nobody else waits
                raise
            else:
                asking.set_result(choice)
            finally:
                self._asking.pop(key, None)
        if choice:
            return negotiate(choice, self.default_language)
        return self.platform_language(actor)

    async def _look_up_language(self, key: tuple[str, str]) -> str | None:
        async with self._uow() as uow:
            user = await uow.users.find(*key)
            choice = (await uow.users.settings(user.id)).language if user else None
        self._remember_language(key, choice)
        return choice

    def platform_language(self, actor: Actor) -> str:
        """The platform's language of ``actor`` when the bot has it, else the default
        (what :meth:`language` answers for someone without a ``/settings`` choice)."""
        return negotiate(actor.locale, self.default_language)

    def forget(self, actor: Actor) -> None:
        """Drop what is kept in memory about ``actor`` (after their erasure)."""
        self._languages.pop((actor.platform, actor.user_id), None)

    def _remember_language(self, key: tuple[str, str], choice: str | None) -> None:
        # Each update and interaction asks; a choice changes rarely. Kept briefly, so
        # another replica's change shows within LANGUAGE_CACHE_SECONDS.
        if len(self._languages) >= LANGUAGE_CACHE_SIZE:
            self._languages.clear()
        self._languages[key] = (time.monotonic() + LANGUAGE_CACHE_SECONDS, choice)

    async def language_by_id(self, user_id: int) -> str:
        """The language of the stored user ``user_id`` (the web gallery knows only the id):
        their ``/settings language`` choice, else their platform's language as stored,
        else the operator's default."""
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            choice = (await uow.users.settings(user_id)).language if user is not None else None
        if choice:
            return negotiate(choice, self.default_language)
        return negotiate(user.locale if user is not None else None, self.default_language)

    async def set_language(self, actor: Actor, choice: str) -> str | None:
        """Remember ``choice`` (a shipped language) for ``actor``; ``default`` (or ``auto``)
        forgets the choice, so the platform's language applies again. Returns the choice."""
        clean = choice.strip()
        if clean.lower() in ("default", "auto", ""):
            value: str | None = None
        elif is_language(clean):
            value = negotiate(clean)
        else:
            names = ", ".join(f"{lang} ({LANGUAGE_NAMES[lang]})" for lang in LANGUAGES)
            raise InvalidRequest(msg("language.unknown", languages=names))
        async with self._uow() as uow:
            user, _ = await self.ensure(uow, actor)
            current = await uow.users.settings(user.id)
            await uow.users.save_settings(user.id, replace(current, language=value))
            await uow.commit()
        self._remember_language((actor.platform, actor.user_id), value)
        return value
