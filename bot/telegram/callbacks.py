"""Callback data of inline buttons: short strings naming an action, its owner and a job.

Telegram allows 1–64 bytes of ``callback_data`` per button. Only references travel in it
(an action code, the Telegram id of the person allowed to press, a job id, an image index,
one short argument); the state itself stays server-side, in the job rows, so buttons keep
working after a restart and a deleted job answers "no longer available".

Format: ``<action>:<owner>:<job>:<index>:<arg>`` (empty fields allowed).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BYTES = 64

# Onboarding
TERMS_ACCEPT = "ta"
TERMS_REFUSE = "tr"
# A result
REROLL = "rr"
VARIATION = "va"
EDIT = "ed"
FULL_RES = "fr"
DELETE_ASK = "dl"
DELETE_YES = "dy"
DELETE_NO = "dn"
CANCEL = "cx"
# /history
HISTORY_PAGE = "hp"
HISTORY_OPEN = "ho"
HISTORY_FILE = "hf"
HISTORY_DELETE_ASK = "hd"
HISTORY_DELETE_YES = "hy"
HISTORY_KEEP = "hk"
# /settings
SETTINGS_OPEN = "so"
SETTINGS_SET = "ss"
SETTINGS_BACK = "sb"
# /buy, /subscribe
BUY = "by"
BUY_STARS = "bs"
STARS_CANCEL = "bx"
# /privacy, /delete_my_data
CONSENT = "pc"
PROFILE = "pp"
ERASE_YES = "ey"
ERASE_NO = "en"
# /admin (the owner is the operator who asked)
REVIEW_APPROVE = "ra"
REVIEW_DISMISS = "rd"
# /gallery: a new one-time sign-in link (under /history and under results)
GALLERY = "gl"

ACTIONS = frozenset(
    {
        TERMS_ACCEPT,
        TERMS_REFUSE,
        GALLERY,
        REROLL,
        VARIATION,
        EDIT,
        FULL_RES,
        DELETE_ASK,
        DELETE_YES,
        DELETE_NO,
        CANCEL,
        HISTORY_PAGE,
        HISTORY_OPEN,
        HISTORY_FILE,
        HISTORY_DELETE_ASK,
        HISTORY_DELETE_YES,
        HISTORY_KEEP,
        SETTINGS_OPEN,
        SETTINGS_SET,
        SETTINGS_BACK,
        BUY,
        BUY_STARS,
        STARS_CANCEL,
        CONSENT,
        PROFILE,
        ERASE_YES,
        ERASE_NO,
        REVIEW_APPROVE,
        REVIEW_DISMISS,
    }
)


@dataclass(frozen=True, slots=True)
class Callback:
    """What a button does, and for whom."""

    action: str
    owner: int
    job_id: str = ""
    index: int = 0
    arg: str = ""

    def encode(self) -> str:
        """The ``callback_data`` string; ValueError when it would not fit 64 bytes."""
        data = f"{self.action}:{self.owner}:{self.job_id}:{self.index}:{self.arg}"
        if len(data.encode()) > MAX_BYTES:
            raise ValueError("callback data over 64 bytes")
        return data


def decode(data: str | None) -> Callback | None:
    """Parse ``callback_data``; None for anything this version did not make."""
    if not data:
        return None
    parts = data.split(":", 4)
    if len(parts) != 5 or parts[0] not in ACTIONS:
        return None
    action, owner, job_id, index, arg = parts
    if not owner.lstrip("-").isdigit() or not index.isdigit():
        return None
    return Callback(action, int(owner), job_id, int(index), arg)
