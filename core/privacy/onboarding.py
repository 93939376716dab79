"""First use: the terms, the policy version and the age confirmation (P15, P22).

Nothing is stored about a person before they accept; someone who says they are under 13
is refused, any data already stored about them is erased, and only a keyed hash of their
platform id is kept so they are not asked again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from core.errors import AgeRefused
from core.files import FileStore
from core.ports import Clock
from core.repositories import UnitOfWork, UnitOfWorkFactory, UserRecord
from core.types import Actor
from core.users import UserService

log = logging.getLogger("imagebot.onboarding")


@dataclass(frozen=True, slots=True)
class Policy:
    """The operator's published policy."""

    version: str
    effective_date: str
    url: str


@dataclass(frozen=True, slots=True)
class OnboardingStatus:
    """Where a person stands: never asked, accepted, asked again after a change, refused."""

    state: Literal["new", "accepted", "policy_changed", "refused"]
    policy: Policy
    accepted_version: str | None = None

    @property
    def may_generate(self) -> bool:
        """True when nothing stands between this person and a generation."""
        return self.state == "accepted"


class OnboardingService:
    """The verbs ``onboarding.status``, ``onboarding.accept`` and ``onboarding.refuse``."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        users: UserService,
        files: FileStore,
        clock: Clock,
        *,
        policy: Policy,
        required: bool = True,
    ) -> None:
        self._uow = uow
        self.users = users
        self.files = files
        self.clock = clock
        self.policy = policy
        self.required = required

    async def status(self, actor: Actor) -> OnboardingStatus:
        """Where ``actor`` stands; creates nothing."""
        async with self._uow() as uow:
            return await self.status_in(uow, actor)

    async def status_in(
        self, uow: UnitOfWork, actor: Actor, *, known: UserRecord | None = None
    ) -> OnboardingStatus:
        """The same inside a caller's unit of work; ``known`` is the already-found user.

        A stored user was never refused (a refusal erases the user), so the refusal
        marker is looked up only for people not stored.
        """
        user = known or await uow.users.find(actor.platform, actor.user_id)
        if user is None:
            marker = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            if await uow.users.has_refusal_marker(marker):
                return OnboardingStatus("refused", self.policy)
        if not self.required:
            return OnboardingStatus("accepted", self.policy, user.terms_version if user else None)
        if user is None or user.terms_version is None:
            return OnboardingStatus("new", self.policy)
        if user.terms_version != self.policy.version:
            return OnboardingStatus("policy_changed", self.policy, user.terms_version)
        return OnboardingStatus("accepted", self.policy, user.terms_version)

    async def accept(self, actor: Actor) -> OnboardingStatus:
        """The person accepted the current terms and confirmed they are 13 or older.

        Creates the user on first acceptance (with the free allowance). A refused identity
        stays refused: only an operator can lift that.
        """
        now = self.clock.now()
        async with self._uow() as uow:
            marker = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            if await uow.users.has_refusal_marker(marker):
                raise AgeRefused()
            user, _ = await self.users.ensure(uow, actor)
            await uow.users.accept_terms(user.id, self.policy.version, now)
            await uow.commit()
        log.info("terms accepted user=%s version=%s", user.id, self.policy.version)
        return OnboardingStatus("accepted", self.policy, self.policy.version)

    async def refuse(self, actor: Actor) -> None:
        """The person said they are under 13: erase whatever exists, keep only the marker."""
        now = self.clock.now()
        async with self._uow() as uow:
            marker = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            user = await uow.users.find(actor.platform, actor.user_id)
            await uow.users.add_refusal_marker(marker, now)
            if user is not None:
                await uow.users.delete(user.id)
            await uow.commit()
        if user is not None:
            await self.files.delete_user(user.id)
        log.info("age refused marker=%s", marker[:12])
