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

GENERIC_SORRY = "Sorry, something went wrong on our side. Nothing was charged; please try again."


class ImagebotError(Exception):
    """Root of every error imagebot raises on purpose."""


class UserFacingError(ImagebotError):
    """An error with a stable code and a message meant for the person in the chat."""

    code: str = "error"
    default_message: str = GENERIC_SORRY

    def __init__(self, user_message: str | None = None, *, code: str | None = None) -> None:
        self.user_message = user_message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(f"{self.code}: {self.user_message}")


class InvalidRequest(UserFacingError):
    """The command or its options cannot be carried out as given."""

    code = "invalid_request"
    default_message = "That request is not valid."


class InvalidImage(UserFacingError):
    """A reference image was refused: wrong type, too large, broken or lying."""

    code = "invalid_image"
    default_message = "That image could not be used. PNG, JPEG, WebP or GIF files are accepted."


class InsufficientCredits(UserFacingError):
    """The account's balance does not cover the price of the job."""

    code = "insufficient_credits"

    def __init__(self, *, price: int, balance: int) -> None:
        self.price = price
        self.balance = balance
        super().__init__(
            f"This costs {price} credits and your balance is {balance}. Use /buy to add credits."
        )


class SpendingBlocked(UserFacingError):
    """The account may not spend right now (negative balance, open dispute, ban)."""

    code = "spending_blocked"
    default_message = "Spending is paused on this account. Use /support if you think this is wrong."


class ContentRefused(UserFacingError):
    """Safety screening refused the prompt, a reference image or an output."""

    code = "content_refused"

    def __init__(self, reason: str = "", *, stage: str = "input", reviewed: bool = False) -> None:
        self.reason = reason
        self.stage = stage
        detail = f" ({reason})" if reason else ""
        if stage == "output":
            text = f"The safety system withheld the result{detail}. Your credits were returned"
            text += " and an operator will review it." if reviewed else "."
        else:
            text = (
                f"The safety system refused this request{detail}. Nothing was charged; "
                "please rephrase and try again."
            )
        super().__init__(text)


class TermsRequired(UserFacingError):
    """The user has not accepted the current terms (first use, or a new policy version)."""

    code = "terms_required"

    def __init__(self, *, policy_changed: bool = False) -> None:
        self.policy_changed = policy_changed
        super().__init__(
            "Our privacy policy has changed; please read the new version and accept it to continue."
            if policy_changed
            else "Before your first image, please read the terms and confirm your age."
        )


class AgeRefused(UserFacingError):
    """The person said they are under 13; the service is not for them (P15)."""

    code = "age_refused"
    default_message = "Sorry, imagebot is only for people aged 13 or older."


class RateLimited(UserFacingError):
    """Too many requests in a short time; says when to try again."""

    code = "rate_limited"

    def __init__(self, retry_after: float, *, scope: str = "you") -> None:
        self.retry_after = retry_after
        seconds = max(1, round(retry_after))
        who = "this chat has" if scope == "chat" else "you have"
        super().__init__(
            f"Slow down a little: {who} made many requests in a short time. "
            f"Please try again in {seconds} second{'s' if seconds != 1 else ''}."
        )


class Banned(UserFacingError):
    """The account may not generate (a temporary or permanent ban)."""

    code = "banned"

    def __init__(self, until: str | None) -> None:
        self.until = until
        when = f"until {until}" if until else "permanently"
        super().__init__(
            f"This account may not generate images {when} because of repeated refused "
            "requests or an operator's decision. /support reaches the operators; your "
            "privacy commands keep working."
        )


class ChatDisabled(UserFacingError):
    """The bot is switched off (or limited) in this server or group by its admins."""

    code = "chat_disabled"
    default_message = "The admins of this chat have switched imagebot off here."


class NotFound(UserFacingError):
    """No such item for this user; also the answer for another user's ids."""

    code = "not_found"
    default_message = "That item is no longer available."


class ProviderUnavailable(UserFacingError):
    """The model service failed after retries; the job's credits are returned."""

    code = "provider_unavailable"
    default_message = (
        "The image service is not answering right now. Your credits were returned; "
        "please try again in a few minutes."
    )


class ProviderRejected(UserFacingError):
    """The model service refused the request as invalid (a precise reason is given)."""

    code = "provider_rejected"
    default_message = "The image service could not carry out this request. Nothing was charged."


class OptionRefused(ProviderRejected):
    """The model service said the model does not take an option or one of its values.

    ``option`` is the request field (``background``, ``size``, ``input_fidelity`` ...) and
    ``value`` what was sent (``"*"``: any value). The running catalog withdraws it.
    """

    code = "option_refused"

    def __init__(
        self, user_message: str | None = None, *, model: str, option: str, value: str
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
