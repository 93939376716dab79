"""Boundary types shared by core, storage and the adapters (frozen dataclasses)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from core.i18n import Msg


@dataclass(frozen=True, slots=True)
class Actor:
    """The person behind a command: platform identity plus the minimal profile (P01)."""

    platform: str
    user_id: str
    display_name: str = ""
    locale: str = ""


@dataclass(frozen=True, slots=True)
class Conversation:
    """Where a command was typed."""

    platform: str
    chat_id: str
    thread_id: str | None = None
    is_private: bool = True
    group_id: str | None = None
    """The server (Discord guild) or group the chat belongs to; None in private chats."""


@dataclass(frozen=True, slots=True)
class InputImage:
    """An image handed to core: raw bytes with their (claimed or checked) type."""

    data: bytes
    content_type: str
    filename: str = "image"
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """Settings of one generation; ``None`` means the user's default, then the model's."""

    size: str | None = None
    quality: str | None = None
    output_format: str | None = None
    background: str | None = None
    n: int | None = None
    model: str | None = None
    """The model asked for (``--model``); ``None``: the user's saved one, else the default."""


@dataclass(frozen=True, slots=True)
class ResolvedOptions:
    """Options after defaults and the model's table were applied: what is sent and priced."""

    model: str
    size: str
    quality: str
    output_format: str
    background: str
    n: int

    def as_dict(self) -> dict[str, str | int]:
        """Plain dict, as stored on the job."""
        return {
            "model": self.model,
            "size": self.size,
            "quality": self.quality,
            "output_format": self.output_format,
            "background": self.background,
            "n": self.n,
        }


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where a job's replies go, stored on the job so delivery survives restarts.

    ``token`` is a platform's short-lived reply handle (Discord's interaction token),
    ``message_id`` the status message to edit; both may be stale by delivery time, and
    adapters then fall back to a plain message in ``chat_id``.
    """

    platform: str
    chat_id: str
    thread_id: str | None = None
    message_id: str | None = None
    reply_to_message_id: str | None = None
    token: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """Serialisable form for the job row."""
        return {
            "platform": self.platform,
            "chat_id": self.chat_id,
            "thread_id": self.thread_id,
            "message_id": self.message_id,
            "reply_to_message_id": self.reply_to_message_id,
            "token": self.token,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ReplyTarget:
        """Inverse of :meth:`to_json`."""
        extra = data.get("extra") or {}
        return cls(
            platform=str(data["platform"]),
            chat_id=str(data["chat_id"]),
            thread_id=_opt_str(data.get("thread_id")),
            message_id=_opt_str(data.get("message_id")),
            reply_to_message_id=_opt_str(data.get("reply_to_message_id")),
            token=_opt_str(data.get("token")),
            extra={str(k): str(v) for k, v in dict(extra).items()},  # type: ignore[call-overload]
        )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """One `/imagine` or `/edit`: with ``inputs`` it is an edit of those images.

    ``idempotency_key`` is the platform's interaction or update id: a redelivered event
    finds the job made the first time instead of making a second one.
    """

    actor: Actor
    conversation: Conversation
    prompt: str
    options: GenerateOptions
    idempotency_key: str
    reply_target: ReplyTarget
    inputs: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    parent_job_id: str | None = None


class JobState(enum.StrEnum):
    """The states of a generation (DESIGN.md, contract)."""

    RECEIVED = "received"
    SCREENED = "screened"
    RESERVED = "reserved"
    QUEUED = "queued"
    RUNNING = "running"
    DELIVERING = "delivering"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for states a job never leaves."""
        return self in _FINAL


_FINAL = {JobState.SUCCEEDED, JobState.REJECTED, JobState.FAILED, JobState.CANCELLED}


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image kept in the file store: a path relative to the data folder."""

    path: str
    content_type: str
    width: int
    height: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the user sees it (history, status)."""

    id: str
    state: JobState
    prompt: str
    options: dict[str, str | int]
    cost: int
    created_at: datetime
    kind: Literal["generate", "edit"]
    outputs: tuple[StoredImage, ...] = ()
    inputs: tuple[StoredImage, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    queue_position: int | None = None
    eta_seconds: float | None = None
    """Seconds until it is expected to be done, from the measured rate (None: unknown)."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """The answer to a submit: the job and whether it was newly made."""

    job: JobView
    created: bool
    balance: int


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One row of a user's credit ledger."""

    kind: str
    amount: int
    created_at: datetime
    reference: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class PlanView:
    """A user's monthly plan (P05): its name, credits per period and payment state."""

    offer_id: str
    name: str
    credits_per_period: int
    status: str
    """The processor's word: ``active``, ``trialing``, ``past_due``, ``unpaid``, ``paused``…"""
    renews_at: datetime | None = None
    """End of the paid period: the next renewal, or the end when ``cancel_at_period_end``."""
    cancel_at_period_end: bool = False


@dataclass(frozen=True, slots=True)
class BalanceView:
    """Credits available, held by running jobs, the latest ledger lines, and the plan."""

    available: int
    held: int
    recent: tuple[LedgerLine, ...] = ()
    spending_blocked: bool = False
    plan: PlanView | None = None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a user's past jobs, newest first."""

    items: tuple[JobView, ...]
    page: int
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class UserSettingsView:
    """A user's defaults for new jobs."""

    size: str | None = None
    quality: str | None = None
    output_format: str | None = None
    background: str | None = None
    n: int | None = None
    model: str | None = None
    """The model chosen in /settings; ``None``: the operator's default."""
    language: str | None = None
    """The language chosen with ``/settings language`` (None: the platform's)."""


# --- Progress and replies -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queued:
    """The job was accepted: its place in the queue and its price."""

    job_id: str
    position: int
    cost: int
    balance: int


@dataclass(frozen=True, slots=True)
class Started:
    """A worker began calling the model."""

    job_id: str


@dataclass(frozen=True, slots=True)
class PartialImage:
    """A preview streamed by the model while it draws."""

    job_id: str
    index: int
    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Delivered:
    """The finished images, stored; ``absolute_paths`` point into the data folder."""

    job_id: str
    prompt: str
    outputs: tuple[StoredImage, ...]
    absolute_paths: tuple[str, ...]
    cost: int
    balance: int
    notice: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    """The job ended without images; ``refunded`` credits went back to the user."""

    job_id: str
    code: str
    message: str
    refunded: int
    text: Msg | str | None = None
    """The catalog message behind ``message`` (English), for the reader's language."""


@dataclass(frozen=True, slots=True)
class Announcement:
    """A message to one user outside any job (credits arrived, a plan renewed, a refund).

    Sent to ``ReplyTarget(platform, chat_id=<the user's platform id>, extra={"dm": "1"})``:
    adapters deliver it as a direct message to that user.
    """

    text: str
    job_id: str = ""


JobEvent = Queued | Started | PartialImage | Delivered | Failed | Announcement


@dataclass(frozen=True, slots=True)
class TextReply:
    """Plain text for the user."""

    text: str


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error with a code and a message meant for people."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class PaymentLinkReply:
    """A checkout or billing-portal link."""

    text: str
    url: str


CONFIRM = Msg("word.confirm")
CANCEL = Msg("word.cancel")


@dataclass(frozen=True, slots=True)
class ConfirmationRequest:
    """A question with confirm/cancel choices; ``action`` names what confirm does."""

    text: Msg | str
    action: str
    confirm_label: Msg | str = CONFIRM
    cancel_label: Msg | str = CANCEL


Reply = TextReply | ErrorReply | PaymentLinkReply | ConfirmationRequest
