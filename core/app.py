"""The ``Core`` object each adapter receives: every verb, built once by bot/wiring.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from core.admin import AdminService
from core.billing import BillingService, CreditsService
from core.files import DownloadLinks, FileStore
from core.generation import (
    GalleryAccess,
    GalleryService,
    GenerationService,
    HistoryService,
    ImageModel,
    Worker,
)
from core.metrics import Metrics
from core.notifier import NotifierHub
from core.ports import Clock
from core.privacy import MessageService, OnboardingService, PrivacyService, RetentionService
from core.safety import SafetyService
from core.settings import Settings
from core.users import UserService


class ProcessLocks(Protocol):
    """Coordination between processes sharing a database."""

    async def hold_worker_slot(self) -> None:
        """Raise ConfigurationError when no further worker process may run (SQLite)."""
        ...

    async def try_lead(self) -> bool:
        """True when this process is (now) the one that runs the scheduler."""
        ...

    async def release(self) -> None:
        """Give up what this process holds."""
        ...


@dataclass
class Core:
    """The domain services of one process, sharing one database and one file store."""

    settings: Settings
    generation: GenerationService
    credits: CreditsService
    history: HistoryService
    gallery: GalleryService
    gallery_access: GalleryAccess
    users: UserService
    onboarding: OnboardingService
    billing: BillingService
    privacy: PrivacyService
    messages: MessageService
    retention: RetentionService
    safety: SafetyService
    admin: AdminService
    metrics: Metrics
    worker: Worker
    notifier: NotifierHub
    model: ImageModel
    files: FileStore
    clock: Clock
    exclusive_worker: bool
    """True on SQLite: one worker process, so leftovers at start-up are recovered at once."""
    locks: ProcessLocks | None = None
    readiness: dict[str, Callable[[], Awaitable[str | None]]] = field(default_factory=dict)
    """Named checks for /readyz: each returns None when fine, else the problem in words.
    The database registers one; each adapter registers whether it is connected."""
    downloads: DownloadLinks | None = None
    """Short-lived download links to stored files (presigned, or served by bot/web)."""
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` when the core closes (last registered, first run)."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Stop the worker and release every resource."""
        # Jobs finishing their last step (marking themselves delivered) complete first.
        await self.worker.stop(grace=self.settings.shutdown_grace_seconds)
        for closer in reversed(self._closers):
            await closer()
        self._closers.clear()
