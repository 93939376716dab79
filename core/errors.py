"""The one error tree of imagebot.

Every error a person may see is a :class:`UserFacingError`: it carries a stable ``code``
(adapters and tests branch on it) and a ``user_message`` written for people. Everything
else is an :class:`InternalError` (or any other exception): it is logged with the job id
and answered with a generic apology. An exception's own text never reaches a user.

Tree::

    ImagebotError
    ├── UserFacingError                 code + user_message
    │   ├── InvalidRequest              bad options, empty or too long prompt
    │   ├── InvalidImage                broken, huge, lying or unsupported image
    │   ├── InsufficientCredits         balance below the price
    │   ├── SpendingBlocked             negative balance, dispute, ban
    │   ├── ContentRefused              safety screening said no (costs nothing)
    │   ├── TermsRequired               terms not yet accepted, or a new policy version
    │   ├── AgeRefused                  under 13: refused, nothing kept but a marker
    │   ├── RateLimited                 too many requests; try again in N seconds
    │   ├── Banned                      a temporary or permanent ban
    │   ├── ChatDisabled                switched off or limited by the chat's admins
    │   ├── NotFound                    no such job, or not yours (same answer)
    │   ├── ProviderUnavailable         the model service failed; credits returned
    │   └── ProviderRejected            the model service refused the request as invalid
    ├── ConfigurationError              settings missing or malformed (operator-facing)
    └── InternalError                   a bug or an unexpected state
"""

from __future__ import annotations

from core.i18n import SOURCE_LANGUAGE, Msg, msg, render

GENERIC_SORRY_MSG = Msg("error.generic")
GENERIC_SORRY = render(GENERIC_SORRY_MSG, SOURCE_LANGUAGE)
"""The generic apology in English (logs-free fallbacks, the CLI); chats render the Msg."""


class ImagebotError(Exception):
    """Root of every error imagebot raises on purpose."""


class UserFacingError(ImagebotError):
    """An error with a stable code and a message meant for the person in the chat.

    The message is a catalog :class:`~core.i18n.Msg` (``msg``), rendered by each adapter
    in the reader's language; ``user_message`` is its English text. A plain ``str`` is
    still accepted (and ``default_message`` on a subclass) for sentences not yet moved
    into the catalog: those are shown as written, in every language.
    """

    code: str = "error"
    default_key: str = "error.generic"
    default_message: str = ""

    def __init__(self, user_message: str | Msg | None = None, *, code: str | None = None) -> None:
        message: Msg | str
        if isinstance(user_message, Msg) or user_message:
            message = user_message
        elif self.default_message:
            message = self.default_message
        else:
            message = Msg(self.default_key)
        self.msg: Msg | str = message
        self.user_message = render(message, SOURCE_LANGUAGE)
        if code is not None:
            self.code = code
        super().__init__(f"{self.code}: {self.user_message}")


class InvalidRequest(UserFacingError):
    """The command or its options cannot be carried out as given."""

    code = "invalid_request"
    default_key = "error.invalid_request"


class InvalidImage(UserFacingError):
    """A reference image was refused: wrong type, too large, broken or lying."""

    code = "invalid_image"
    default_key = "error.invalid_image"


class InsufficientCredits(UserFacingError):
    """The account's balance does not cover the price of the job."""

    code = "insufficient_credits"

    def __init__(self, *, price: int, balance: int) -> None:
        self.price = price
        self.balance = balance
        super().__init__(
            msg("error.insufficient_credits", price=msg("credits", count=price), balance=balance)
        )


class SpendingBlocked(UserFacingError):
    """The account may not spend right now (negative balance, open dispute, ban)."""

    code = "spending_blocked"
    default_key = "error.spending_blocked"


class ContentRefused(UserFacingError):
    """Safety screening refused the prompt, a reference image or an output."""

    code = "content_refused"

    def __init__(
        self,
        reason: str = "",
        *,
        stage: str = "input",
        reviewed: bool = False,
        shown: Msg | None = None,
    ) -> None:
        self.reason = reason
        """The reason in plain English words, as recorded (strikes, the review queue)."""
        self.stage = stage
        why: Msg | str = shown if shown is not None else reason
        if stage == "output":
            first = msg("error.withheld_because", reason=why) if why else msg("error.withheld")
            then = msg("error.withheld_reviewed" if reviewed else "error.withheld_returned")
        else:
            first = msg("error.refused_because", reason=why) if why else msg("error.refused")
            then = msg("error.refused_rephrase")
        super().__init__(msg("error.two_sentences", first=first, second=then))


class TermsRequired(UserFacingError):
    """The user has not accepted the current terms (first use, or a new policy version)."""

    code = "terms_required"

    def __init__(self, *, policy_changed: bool = False) -> None:
        self.policy_changed = policy_changed
        super().__init__(msg("error.policy_changed" if policy_changed else "error.terms_required"))


class AgeRefused(UserFacingError):
    """The person said they are under 13; the service is not for them (P15)."""

    code = "age_refused"
    default_key = "error.age_refused"


class RateLimited(UserFacingError):
    """Too many requests in a short time; says when to try again."""

    code = "rate_limited"

    def __init__(self, retry_after: float, *, scope: str = "you") -> None:
        self.retry_after = retry_after
        seconds = max(1, round(retry_after))
        key = "error.rate_limited_chat" if scope == "chat" else "error.rate_limited_you"
        super().__init__(msg(key, count=seconds))


class Banned(UserFacingError):
    """The account may not generate (a temporary or permanent ban)."""

    code = "banned"

    def __init__(self, until: str | None) -> None:
        self.until = until
        super().__init__(
            msg("error.banned_until", until=until) if until else msg("error.banned_forever")
        )


class ChatDisabled(UserFacingError):
    """The bot is switched off (or limited) in this server or group by its admins."""

    code = "chat_disabled"
    default_key = "error.chat_disabled"


class NotFound(UserFacingError):
    """No such item for this user; also the answer for another user's ids."""

    code = "not_found"
    default_key = "error.not_found"


class ProviderUnavailable(UserFacingError):
    """The model service failed after retries; the job's credits are returned."""

    code = "provider_unavailable"
    default_key = "error.provider_unavailable"


class ProviderRejected(UserFacingError):
    """The model service refused the request as invalid (a precise reason is given)."""

    code = "provider_rejected"
    default_key = "error.provider_rejected"


class OptionRefused(ProviderRejected):
    """The model service said the model does not take an option or one of its values.

    ``option`` is the request field (``background``, ``size``, ``input_fidelity`` ...) and
    ``value`` what was sent (``"*"``: any value). The running catalog withdraws it.
    """

    code = "option_refused"

    def __init__(
        self, user_message: str | Msg | None = None, *, model: str, option: str, value: str
    ) -> None:
        super().__init__(user_message)
        self.model = model
        self.option = option
        self.value = value


class ConfigurationError(ImagebotError):
    """Settings are missing or malformed; the message is for the operator."""


class InternalError(ImagebotError):
    """An unexpected state; logged with ids, answered with a generic apology."""


def user_message_for(exc: BaseException) -> tuple[str, str]:
    """Return ``(code, message)`` to show a person for any exception."""
    if isinstance(exc, UserFacingError):
        return exc.code, exc.user_message
    return "internal", GENERIC_SORRY


def message_for(exc: BaseException) -> Msg | str:
    """The message to show a person for any exception (a catalog message, or a legacy
    English sentence); anything not user-facing gets the generic apology."""
    if isinstance(exc, UserFacingError):
        return exc.msg
    return GENERIC_SORRY_MSG
