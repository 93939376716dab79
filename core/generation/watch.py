"""Following the provider: which enabled models it still serves, and until when.

At start-up and then daily (the scheduler), :meth:`ModelWatch.refresh` asks each
provider about the enabled models (``GET /v1/models``, ``GET /v1/models/{model}``),
records the answers in the running :class:`ModelCatalog` (so a model the provider no
longer knows is never offered), warns the operator (log, ``check-config``, the
``imagebot_model_shutdown_timestamp_seconds`` metric, a direct message 14 and 3 days
before a shutdown), and once a model is gone moves users' saved choice to its successor
and tells each of them once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from core.generation.models import ModelCatalog
from core.generation.ports import ModelLookup
from core.i18n import SOURCE_LANGUAGE, Msg, msg, negotiate, render
from core.metrics import Metrics, NoMetrics
from core.notifier import NotifierHub
from core.ports import Clock
from core.repositories import UnitOfWork, UnitOfWorkFactory
from core.types import Announcement, ReplyTarget

log = logging.getLogger("imagebot.models")

NOTICE_DAYS = (14, 3)
"""Operators get a direct message this many days before a shutdown."""


def operator_notice(model: str, shutdown: date, days: int) -> Msg:
    """The direct message to operators ``days`` before ``model`` shuts down."""
    return msg("tg.watch.operator_notice", model=model, date=shutdown, count=days)


def user_moved_notice(old: str, new: str) -> Msg:
    """The one message a user gets when their saved model moved to its successor."""
    return msg("tg.watch.user_moved", old=old, new=new)


@dataclass(frozen=True, slots=True)
class ModelWarning:
    """One thing the operator should know about an enabled model."""

    model: str
    text: str


class ModelWatch:
    """Keeps the running catalog in step with the providers (see the module docstring)."""

    def __init__(
        self,
        *,
        catalog: ModelCatalog,
        lookup: Callable[[], Awaitable[Mapping[str, ModelLookup]]] | None,
        uow: UnitOfWorkFactory | None = None,
        notifier: NotifierHub,
        clock: Clock,
        operators: Iterable[tuple[str, str]] = (),
        metrics: Metrics | None = None,
        language: str = SOURCE_LANGUAGE,
    ) -> None:
        """``lookup`` asks the providers (None: nothing to ask, as with the demo model);
        without ``uow`` (``check-config``) only :meth:`check` may be used."""
        self.catalog = catalog
        self._lookup = lookup
        self._uow = uow
        self.notifier = notifier
        self.clock = clock
        self.operators = tuple(operators)
        self.metrics: Metrics = metrics or NoMetrics()
        self.warnings: tuple[ModelWarning, ...] = ()
        self.language = negotiate(language)
        """The operators' language (``IMAGEBOT_DEFAULT_LANGUAGE``), and users' fallback."""

    async def refresh(self) -> tuple[ModelWarning, ...]:
        """Ask the providers, update the catalog, warn, notify and move saved choices.

        Returns (and keeps in :attr:`warnings`) the operator warnings.
        """
        warnings = await self.check()
        today = self.clock.now().date()
        for model in self.catalog.enabled_names:
            shutdown = self.catalog.shutdown_date(model)
            if shutdown is not None and shutdown > today and not self.catalog.is_gone(model, today):
                await self._notify_operators(model, shutdown, today)
        await self._move_saved_choices(today)
        return warnings

    async def check(self) -> tuple[ModelWarning, ...]:
        """Ask the providers and update the catalog and the metric; the operator warnings
        (logged, and kept in :attr:`warnings`). Sends nothing and moves nothing."""
        found: Mapping[str, ModelLookup] = {}
        if self._lookup is not None:
            try:
                found = await self._lookup()
            except Exception:  # never fatal: the catalog keeps what it knew
                log.exception("model lookup failed")
        for model, lookup in found.items():
            if lookup.known is None:
                continue
            self.catalog.note_provider(
                model, known=lookup.known, shutdown_date=lookup.shutdown_date
            )
        today = self.clock.now().date()
        warnings: list[ModelWarning] = []
        for model in self.catalog.enabled_names:
            answer = found.get(model)
            shutdown = self.catalog.shutdown_date(model)
            self.metrics.model_shutdown(model, _timestamp(shutdown) if shutdown else None)
            if answer is not None and answer.known is None:
                warnings.append(ModelWarning(model, f"could not ask the provider about {model}"))
            if self.catalog.status(model).known is False:
                warnings.append(
                    ModelWarning(
                        model,
                        f"the provider no longer knows the model {model}; it is not offered",
                    )
                )
            elif self.catalog.all_specs().get(model) and self.catalog.all_specs()[model].retired:
                warnings.append(ModelWarning(model, f"the model {model} has been retired"))
            elif shutdown is not None:
                if shutdown <= today:
                    warnings.append(
                        ModelWarning(
                            model,
                            f"the model {model} was shut down on {shutdown.isoformat()}; "
                            "it is not offered",
                        )
                    )
                else:
                    warnings.append(
                        ModelWarning(
                            model,
                            f"the model {model} will be shut down on {shutdown.isoformat()}",
                        )
                    )
        if not self.catalog.offered(today):
            warnings.append(
                ModelWarning("*", "no enabled model is available: users cannot generate")
            )
        for warning in warnings:
            log.warning("model warning: %s", warning.text)
        self.warnings = tuple(warnings)
        return self.warnings

    async def _notify_operators(self, model: str, shutdown: date, today: date) -> None:
        """A direct message to each operator 14 and 3 days before (once each)."""
        days = (shutdown - today).days
        due = [d for d in NOTICE_DAYS if days <= d]
        if not due or not self.operators:
            return
        threshold = min(due)
        key = f"model_notice:{model}:{shutdown.isoformat()}:{threshold}"
        token = secrets.token_hex(8)
        if self._uow is None:
            return
        async with self._uow() as uow:
            stored = await uow.users.installation_value(key, token)
            await uow.commit()
        if stored != token:
            return  # sent before (by this process or another)
        for platform, user_id in self.operators:
            await self.notifier.notify(
                ReplyTarget(platform, user_id, extra={"dm": "1"}),
                Announcement(render(operator_notice(model, shutdown, days), self.language)),
            )
        log.warning("operators told: model %s shuts down in %s days", model, days)

    async def _move_saved_choices(self, today: date) -> None:
        """Move saved choices of gone models to their successors; tell each user once."""
        for model in self.catalog.all_specs():
            if not self.catalog.is_gone(model, today):
                continue
            successor = self.catalog.replacement(model, today)
            if successor is None or self._uow is None:
                continue
            async with self._uow() as uow:
                moved = await uow.users.move_model(model, successor)
                languages = [await self._language_of(uow, *who) for who in moved]
                await uow.commit()
            if not moved:
                continue
            log.warning(
                "model %s is gone: %s saved choices moved to %s", model, len(moved), successor
            )
            for (platform, user_id), lang in zip(moved, languages, strict=True):
                await self.notifier.notify(
                    ReplyTarget(platform, user_id, extra={"dm": "1"}),
                    Announcement(render(user_moved_notice(model, successor), lang)),
                )

    async def _language_of(self, uow: UnitOfWork, platform: str, user_id: str) -> str:
        """A user's language: their /settings choice, else their platform's, else the
        operators'."""
        user = await uow.users.find(platform, user_id)
        if user is None:
            return self.language
        choice = (await uow.users.settings(user.id)).language
        return negotiate(choice or user.locale, self.language)


def _timestamp(day: date) -> float:
    return datetime.combine(day, time(0, 0), tzinfo=UTC).timestamp()
