"""Privacy self-service: overview, consents, profile correction, export, erasure, the
requests log and appeals (P03, P07–P12, P25).

Every verb is taken only in a private chat from the account itself (the adapters pass
the conversation; a group gets :class:`PrivateChatRequired`), is logged in the requests
log with its time and outcome, and completes at once.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.billing import CreditLedger
from core.errors import InvalidRequest, NotFound, UserFacingError
from core.files import EXPORT_LINK_SECONDS, DownloadLinks, FileStore
from core.i18n import SOURCE_LANGUAGE, Msg, msg, negotiate, render
from core.ports import Clock
from core.privacy.onboarding import Policy
from core.privacy.ports import ConsentRecord, PrivacyRequestRecord
from core.privacy.retention import RetentionPolicy
from core.repositories import UnitOfWorkFactory, UserRecord
from core.types import Actor, ConfirmationRequest, Conversation, JobState
from core.users import UserService

log = logging.getLogger("imagebot.privacy")

CONSENT_LABELS = {
    "training_opt_in": "Use my images and prompts to improve models",
    "product_updates": "Product-update messages",
    "usage_analytics": "Usage analytics",
}

STORED = (
    "your platform id, display name and language",
    "your prompts, options, reference images and results",
    "your settings and privacy choices",
    "your credit ledger and payment references (no card data)",
    "your privacy requests, feedback and support messages",
)

STORED_MESSAGES = tuple(
    Msg(f"stored.{key}") for key in ("identity", "jobs", "settings", "ledger", "requests")
)
"""``STORED`` as catalog messages."""

EXPORT_NAMES = {
    "users": "profile",
    "user_settings": "settings",
    "consents": "consents",
    "jobs": "jobs",
    "job_images": "images",
    "ledger_entries": "ledger",
    "credit_accounts": "balance",
    "privacy_requests": "privacy_requests",
    "feedback_messages": "feedback_and_support",
    "audit_log": "decisions_about_you",
}

EXPORT_README = """Your imagebot data export
========================

Created: {created}

Every file here is JSON (UTF-8), one document per kind of record, each a list of rows
exactly as stored:

{listing}

images/ holds every stored image: for each job, the reference images you sent
(input-N, mask-0) and the results (output-N), at full resolution.

What we store and for how long is described by /privacy in the bot and in the policy
(version {policy_version}, effective {policy_date}){policy_url}.
To have everything erased, send /delete_my_data to the bot in a private chat.
"""


class PrivateChatRequired(UserFacingError):
    """A privacy command was used outside a private chat."""

    code = "private_chat_required"
    default_key = "error.private_chat_required"


class PrivacyRequestRefused(UserFacingError):
    """A privacy request could not be carried out; says why and how to appeal."""

    code = "privacy_request_refused"

    def __init__(self, reason: str | Msg, request_id: int) -> None:
        self.request_id = request_id
        super().__init__(msg("error.privacy_refused", reason=reason, request_id=request_id))


class ConfirmationExpired(UserFacingError):
    """A confirmation button was pressed on a question asked too long ago (or on a message
    that is not the question): nothing was done, and the person may simply ask again."""

    code = "confirmation_expired"
    default_key = "tg.confirmation_expired"


ERASURE_QUESTION_TTL = timedelta(minutes=15)
"""How long the erasure question can be answered: an old question answered by a stray
press (or a forged one) erases nothing."""


MAX_DECISION_REASON = 500
MAX_REQUEST_ID = 2**31 - 1
"""Request numbers are 32-bit integers in the database; a larger one names nothing (and
PostgreSQL would refuse to compare it)."""

APPEAL_GRANTED = "tg.appeal_granted"
APPEAL_DENIED = "tg.appeal_denied"
"""The catalog keys of an appeal's outcome, told to its owner in their language."""


@dataclass(frozen=True, slots=True)
class AppealDecision:
    """The outcome of an appeal, and the message that tells its owner."""

    request_id: int
    decision: str
    """``granted`` or ``denied``."""
    recipient: tuple[str, str] | None
    """(platform, platform user id) to tell; None when the account no longer exists."""
    text: str
    receipt: ErasureReceipt | None = None


@dataclass(frozen=True, slots=True)
class PrivacyOverview:
    """What /privacy shows."""

    policy: Policy
    consents: ConsentRecord
    retention: tuple[tuple[str, str], ...]
    stored: tuple[str, ...] = STORED
    retention_messages: tuple[tuple[Msg, Msg], ...] = ()
    """``retention`` as catalog messages (category, period), for the reader's language."""
    stored_messages: tuple[Msg, ...] = STORED_MESSAGES
    display_name: str = ""
    locale: str = ""


class _ZipSink(io.RawIOBase):
    """Where the export's ZIP is written: collects what :mod:`zipfile` writes until it is
    taken. Not seekable, so zipfile writes each entry's sizes after its data (a data
    descriptor), as a streaming ZIP does."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        """Always."""
        return True

    def write(self, data: Any) -> int:
        """Keep a copy of ``data`` until :meth:`take`."""
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        """Everything written since the last call."""
        out = b"".join(self._parts)
        self._parts.clear()
        return out


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A finished export: a ZIP under the data folder."""

    path: str
    absolute_path: str
    size_bytes: int
    files: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """Proof of an erasure: when, the request number, and what went."""

    request_id: int
    completed_at: datetime
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0

    @property
    def message(self) -> Msg:
        """The receipt as a catalog message (the reader's language is the adapter's)."""
        return msg(
            "erase.receipt",
            date=self.completed_at.date(),
            time=f"{self.completed_at:%H:%M}",
            files=msg("files", count=self.files),
            request_id=self.request_id,
        )

    @property
    def text(self) -> str:
        """The receipt in English."""
        return render(self.message, SOURCE_LANGUAGE)


class PrivacyService:
    """The verbs behind /privacy, /export, /delete_my_data and /appeal."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        users: UserService,
        files: FileStore,
        clock: Clock,
        *,
        policy: Policy,
        retention: RetentionPolicy,
        compact: Callable[[], Awaitable[None]] | None = None,
        downloads: DownloadLinks | None = None,
        ledger: CreditLedger | None = None,
    ) -> None:
        self._uow = uow
        self.users = users
        self.files = files
        self.clock = clock
        self.policy = policy
        self.retention = retention
        self._compact = compact
        self.downloads = downloads
        self.ledger = ledger or CreditLedger(clock)

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def require_private(conversation: Conversation) -> None:
        """Raise unless the conversation is a private chat with the bot (P12)."""
        if not conversation.is_private:
            raise PrivateChatRequired()

    async def _user(self, actor: Actor) -> UserRecord | None:
        async with self._uow() as uow:
            return await uow.users.find(actor.platform, actor.user_id)

    async def _log(
        self, actor: Actor, kind: str, status: str, reason: str = "", user_id: int | None = None
    ) -> int:
        async with self._uow() as uow:
            subject = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            request_id = await uow.privacy.add_request(
                user_id=user_id,
                subject_hash=subject,
                kind=kind,
                status=status,
                reason=reason,
                now=self.clock.now(),
                completed=True,
            )
            await uow.commit()
        return request_id

    # --- overview and consents ---------------------------------------------------------------

    async def overview(self, actor: Actor, conversation: Conversation) -> PrivacyOverview:
        """What is stored, for how long, the policy, and the switches."""
        self.require_private(conversation)
        user = await self._user(actor)
        consents = ConsentRecord(False, False, False, None)
        if user is not None:
            async with self._uow() as uow:
                consents = await uow.privacy.consents(user.id)
        return PrivacyOverview(
            policy=self.policy,
            consents=consents,
            retention=self.retention.describe(),
            retention_messages=self.retention.describe_messages(),
            display_name=user.display_name if user else "",
            locale=user.locale if user else "",
        )

    async def set_consent(
        self, actor: Actor, conversation: Conversation, name: str, value: bool
    ) -> ConsentRecord:
        """Turn one switch on or off; takes effect at once and is logged (P10)."""
        self.require_private(conversation)
        if name not in CONSENT_LABELS:
            raise InvalidRequest(msg("privacy.unknown_switch", switches=", ".join(CONSENT_LABELS)))
        now = self.clock.now()
        async with self._uow() as uow:
            user, _ = await self.users.ensure(uow, actor)
            await uow.privacy.set_consent(user.id, name, value, now)
            subject = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            await uow.privacy.add_request(
                user_id=user.id,
                subject_hash=subject,
                kind=f"consent:{name}",
                status="completed",
                reason="on" if value else "off",
                now=now,
                completed=True,
            )
            consents = await uow.privacy.consents(user.id)
            await uow.commit()
        log.info("consent changed user=%s name=%s value=%s", user.id, name, value)
        return consents

    async def correct_profile(
        self, actor: Actor, conversation: Conversation, *, clear: bool = False
    ) -> UserRecord:
        """Refresh the stored name and language from the platform, or clear the name (P09)."""
        self.require_private(conversation)
        now = self.clock.now()
        async with self._uow() as uow:
            user, _ = await self.users.ensure(uow, actor)
            name = "" if clear else actor.display_name
            await uow.users.touch(user.id, name, actor.locale, now)
            subject = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            await uow.privacy.add_request(
                user_id=user.id,
                subject_hash=subject,
                kind="correct",
                status="completed",
                reason="name cleared" if clear else "refreshed from the platform",
                now=now,
                completed=True,
            )
            updated = await uow.users.get(user.id)
            await uow.commit()
        assert updated is not None
        return updated

    # --- export --------------------------------------------------------------------------------

    async def export(self, actor: Actor, conversation: Conversation) -> ExportResult:
        """A ZIP with one JSON document per kind of record and every stored image (P07)."""
        self.require_private(conversation)
        user = await self._user(actor)
        if user is None:
            raise InvalidRequest(Msg("privacy.nothing"))
        request_id = await self._log(actor, "export", "completed", user_id=user.id)
        async with self._uow() as uow:
            tables = await uow.privacy.rows_for_user(user.id)
        files = [p for p in await self.files.list_user(user.id) if "/exports/" not in p]
        created = self.clock.now()
        name = f"exports/export-{created:%Y%m%d-%H%M%S}-{request_id}"
        # Made and stored piece by piece: each image is streamed from the store into the
        # ZIP and the ZIP, sealed segment by segment, into the store; neither the images
        # nor the ZIP are ever held whole.
        stored, size = await self.files.write_blob_stream(
            user.id, name + ".zip", self._zip(user, tables, files, created)
        )
        log.info("export made user=%s request=%s bytes=%s", user.id, request_id, size)
        return ExportResult(
            stored, self.files.absolute(stored), size, len(files) + len(tables) + 1, created
        )

    async def _zip(
        self,
        user: UserRecord,
        tables: dict[str, list[dict[str, Any]]],
        files: list[str],
        created: datetime,
    ) -> AsyncIterator[bytes]:
        sink = _ZipSink()
        prefix = f"users/{user.id}/"
        listing = []
        stamp = created.timetuple()[:6]
        zf = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)
        try:
            for table in sorted(tables):
                name = EXPORT_NAMES.get(table, table)
                rows = tables[table]
                text = json.dumps(rows, ensure_ascii=False, indent=2, default=str)
                await asyncio.to_thread(zf.writestr, f"{name}.json", text)
                listing.append(f"  {name}.json  ({len(rows)} rows; stored as '{table}')")
                yield sink.take()
            for path in files:
                rel = path[len(prefix) :] if path.startswith(prefix) else Path(path).name
                info = zipfile.ZipInfo(f"images/{rel}", date_time=stamp)
                info.compress_type = zipfile.ZIP_STORED
                with zf.open(info, "w") as entry:
                    async for chunk in self.files.stream(path):
                        entry.write(chunk)
                        yield sink.take()
                yield sink.take()
            url = f", {self.policy.url}" if self.policy.url else ""
            readme = EXPORT_README.format(
                created=created.isoformat(),
                listing="\n".join(listing),
                policy_version=self.policy.version,
                policy_date=self.policy.effective_date,
                policy_url=url,
            )
            zf.writestr("README.txt", readme)
        finally:
            zf.close()
        yield sink.take()

    async def export_link(
        self, actor: Actor, result: ExportResult, *, ttl_seconds: int = EXPORT_LINK_SECONDS
    ) -> str:
        """A download link for the actor's export (P07), valid for ``ttl_seconds`` (24
        hours): a presigned URL from an object store holding it in plain form, otherwise
        a link to imagebot's HTTP server, signed and bound to this user and this file
        (:class:`core.files.DownloadLinks`, the one signing scheme for downloads).

        Raises :class:`InvalidRequest` for someone else's export, or when imagebot has no
        public address to serve it from."""
        user = await self._user(actor)
        if user is None or not result.path.startswith(f"users/{user.id}/exports/"):
            raise InvalidRequest(msg("tg.export_not_yours"))
        url = None
        if self.downloads is not None:
            url = await self.downloads.link(
                user.id,
                result.path,
                filename=result.path.rsplit("/", 1)[-1],
                ttl_seconds=ttl_seconds,
            )
        if url is None:
            raise InvalidRequest(Msg("export.no_address"))
        return url

    async def training_material(self) -> list[tuple[str, str, list[str]]]:
        """Finished jobs of users who opted in to model improvement (P03), as
        (job id, prompt, output paths); nothing from anyone who did not opt in."""
        items: list[tuple[str, str, list[str]]] = []
        after = 0
        while True:
            async with self._uow() as uow:
                ids = await uow.privacy.users_with_consent("training_opt_in", after, 200)
                for user_id in ids:
                    offset = 0
                    while True:
                        jobs, total = await uow.jobs.page_for_user(user_id, offset, 100)
                        for job in jobs:
                            if job.state != JobState.SUCCEEDED:
                                continue
                            outputs = await uow.jobs.images(job.id, "output")
                            items.append((job.id, job.prompt, [o.path for o in outputs]))
                        offset += len(jobs)
                        if offset >= total or not jobs:
                            break
            if not ids:
                return items
            after = ids[-1]

    # --- erasure -------------------------------------------------------------------------------

    def erasure_confirmation(self, conversation: Conversation) -> ConfirmationRequest:
        """The question asked before erasing (P08)."""
        self.require_private(conversation)
        return ConfirmationRequest(
            text=msg("erase.question"),
            action="erase",
            confirm_label=msg("erase.confirm"),
            cancel_label=msg("erase.cancel"),
        )

    async def erase(
        self, actor: Actor, conversation: Conversation, *, asked_at: datetime | None = None
    ) -> ErasureReceipt:
        """Cancel the user's jobs (returning holds), then erase everything that names them.

        Works with any balance and for banned users (P25). Refused only while a payment
        dispute is open (the records are needed to settle it); the refusal is logged and can
        be appealed. ``asked_at`` is when the question being answered was asked (the
        platform's time of the message the button is on): a question older than
        :data:`ERASURE_QUESTION_TTL`, or one claiming to come from the future, raises
        :class:`ConfirmationExpired` and erases nothing.
        """
        self.require_private(conversation)
        if asked_at is not None:
            age = self.clock.now() - asked_at
            if age > ERASURE_QUESTION_TTL or age < -timedelta(minutes=1):
                log.info("erasure refused: question expired age_s=%d", age.total_seconds())
                raise ConfirmationExpired()
        user = await self._user(actor)
        if user is None:
            request_id = await self._log(actor, "erase", "completed", "nothing was stored")
            return ErasureReceipt(request_id, self.clock.now())
        async with self._uow() as uow:
            account = await uow.ledger.account(user.id)
        if account is not None and account.frozen:
            request_id = await self._log(
                actor, "erase", "refused", "a payment dispute is open", user_id=user.id
            )
            raise PrivacyRequestRefused(msg("erase.refused_dispute"), request_id)
        return await self._erase_user(actor, user)

    async def _erase_user(self, actor: Actor, user: UserRecord) -> ErasureReceipt:
        """The erasure itself: jobs cancelled (holds returned), rows and files deleted,
        kept ledger rows unlinked, the completed request logged."""
        await self._cancel_jobs(user.id)
        now = self.clock.now()
        async with self._uow() as uow:
            subject = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            rows = await uow.privacy.erase_user(user.id, subject)
            request_id = await uow.privacy.add_request(
                user_id=None,
                subject_hash=subject,
                kind="erase",
                status="completed",
                reason="",
                now=now,
                completed=True,
            )
            await uow.commit()
        files = await self.files.delete_user(user.id)
        if self._compact is not None:
            await self._compact()
        log.info("erasure done request=%s files=%s", request_id, files)
        self.users.forget(actor)
        return ErasureReceipt(request_id, now, rows, files)

    async def _cancel_jobs(self, user_id: int) -> None:
        """Cancel queued and running jobs and release their holds, before the erasure."""
        now = self.clock.now()
        async with self._uow() as uow:
            active = await uow.jobs.active_for_user(user_id)
            for job in active:
                moved = await uow.jobs.transition(
                    job.id,
                    (JobState.QUEUED, JobState.RUNNING),
                    JobState.CANCELLED,
                    now,
                    fields={"finished_at": now, "error_code": "erased"},
                )
                if moved:
                    await self.ledger.release(uow, user_id, job.cost, job.id)
            await uow.commit()

    # --- the requests log --------------------------------------------------------------------

    async def requests(
        self, actor: Actor, conversation: Conversation
    ) -> list[PrivacyRequestRecord]:
        """The person's privacy requests, newest first."""
        self.require_private(conversation)
        async with self._uow() as uow:
            subject = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            return await uow.privacy.requests_for(subject)

    async def appeal(
        self, actor: Actor, conversation: Conversation, request_id: int, text: str
    ) -> None:
        """Appeal a refused request to the operators."""
        self.require_private(conversation)
        text = text.strip()
        if not text:
            raise InvalidRequest(Msg("appeal.reason_needed"))
        if not 0 < request_id <= MAX_REQUEST_ID:
            raise InvalidRequest(Msg("appeal.no_such_request"))
        async with self._uow() as uow:
            subject = await self.users.keyed_hash(uow, actor.platform, actor.user_id)
            ok = await uow.privacy.appeal(request_id, subject, text, self.clock.now())
            await uow.commit()
        if not ok:
            raise InvalidRequest(Msg("appeal.no_such_request"))
        log.info("appeal filed request=%s", request_id)

    async def open_appeals(self) -> list[PrivacyRequestRecord]:
        """Appeals waiting for an operator."""
        async with self._uow() as uow:
            return await uow.privacy.open_appeals()

    async def decide_appeal(
        self, request_id: int, *, grant: bool, reason: str, operator: str
    ) -> AppealDecision:
        """An operator's decision on an open appeal, audited in the same transaction.

        Granting an appeal against a refused erasure carries the erasure out (the operator
        takes responsibility for what held it back, such as an open dispute). The returned
        decision says whom to tell and what; the caller sends it. A second decision on the
        same appeal raises :class:`NotFound` and changes nothing.
        """
        reason = " ".join(reason.split())
        if not reason:
            raise InvalidRequest(msg("tg.decision_reason_needed"))
        if len(reason) > MAX_DECISION_REASON:
            raise InvalidRequest(msg("tg.decision_reason_long", max=MAX_DECISION_REASON))
        if not 0 < request_id <= MAX_REQUEST_ID:
            raise NotFound(msg("tg.no_open_appeal"))
        decision = "granted" if grant else "denied"
        async with self._uow() as uow:
            found = await uow.privacy.request(request_id)
            if found is None or found[0].appeal_status != "open":
                raise NotFound(msg("tg.no_open_appeal"))
            record, user_id = found
            language: str | None = None
            if not await uow.privacy.decide_appeal(request_id, decision):
                raise NotFound(msg("tg.no_open_appeal"))
            user = await uow.users.get(user_id) if user_id is not None else None
            if user is not None:
                language = (await uow.users.settings(user.id)).language or user.locale
            await uow.privacy.audit(
                actor=operator,
                action=f"appeal_{'grant' if grant else 'deny'}",
                subject_user_id=user_id,
                subject_hash=None,
                reason=reason,
                details={"request": request_id, "kind": record.kind},
                now=self.clock.now(),
            )
            await uow.commit()
        log.info("appeal decided request=%s decision=%s", request_id, decision)
        receipt = None
        if grant and record.kind == "erase" and user is not None:
            receipt = await self._erase_user(Actor(user.platform, user.platform_user_id), user)
        # Told in the owner's language (their /settings choice, else their platform's).
        lang = negotiate(language)
        told = msg(APPEAL_GRANTED if grant else APPEAL_DENIED, request_id=request_id, reason=reason)
        text = render(told, lang)
        if receipt is not None:
            text = f"{text}\n\n{render(receipt.message, lang)}"
        recipient = None if user is None else (user.platform, user.platform_user_id)
        return AppealDecision(request_id, decision, recipient, text, receipt)
