"""Inline keyboards: every button carries a :class:`bot.telegram.callbacks.Callback`."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot.telegram import callbacks as cb
from bot.telegram.render import (
    consent_button,
    gallery_mini_app_button,
    gallery_short,
    offer_label,
    setting_label,
    stars_cancel_button,
    stars_offer_label,
)
from bot.telegram.render import gallery_button as gallery_button_label
from core.billing.offers import Offer
from core.generation.models import MAX_N_PER_JOB, ModelSpec
from core.i18n import LANGUAGE_NAMES, LANGUAGES, Msg, render
from core.privacy.ports import ConsentRecord
from core.privacy.service import CONSENT_LABELS
from core.safety.ports import ReviewRecord
from core.types import ConfirmationRequest, HistoryPage


def _t(key: str, **args: object) -> str:
    """A button's words in the current language."""
    return render(Msg(key, args))


def _button(
    text: str, action: str, owner: int, job: str = "", index: int = 0, arg: str = ""
) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text, callback_data=cb.Callback(action, owner, job, index, arg).encode()
    )


def terms(owner: int) -> InlineKeyboardMarkup:
    """Accept (13+) or say one is under 13."""
    return InlineKeyboardMarkup(
        [
            [_button(_t("button.accept"), cb.TERMS_ACCEPT, owner)],
            [_button(_t("button.under_13"), cb.TERMS_REFUSE, owner)],
        ]
    )


def cancel(owner: int, job_id: str) -> InlineKeyboardMarkup:
    """The queued status message's Cancel button."""
    return InlineKeyboardMarkup([[_button(_t("button.cancel"), cb.CANCEL, owner, job_id)]])


def album_ref(message_ids: Sequence[int]) -> str:
    """The album a result's buttons belong to, as ``first+count`` (ids are consecutive)."""
    if not message_ids:
        return ""
    first = min(message_ids)
    if sorted(message_ids) != list(range(first, first + len(message_ids))):
        return ""
    return f"{first}+{len(message_ids)}"


def album_ids(ref: str) -> list[int]:
    """Inverse of :func:`album_ref`."""
    first, _, count = ref.partition("+")
    if not first.isdigit() or not count.isdigit():
        return []
    return list(range(int(first), int(first) + min(int(count), 10)))


def result(
    owner: int, job_id: str, count: int, album: str = "", *, gallery: bool = False
) -> InlineKeyboardMarkup:
    """Reroll, Edit, Variation, Full resolution and Delete for a result of ``count`` images
    (and Gallery when the web gallery is served)."""
    rows = [[_button(_t("button.reroll"), cb.REROLL, owner, job_id)]]
    if count == 1:
        rows[0].append(_button(_t("button.edit"), cb.EDIT, owner, job_id, 0))
        rows.append(
            [
                _button(_t("button.variation"), cb.VARIATION, owner, job_id, 0),
                _button(_t("button.full_res"), cb.FULL_RES, owner, job_id, 0),
            ]
        )
    else:
        numbers = range(min(count, MAX_N_PER_JOB))
        rows.append([_button(f"✏️ {i + 1}", cb.EDIT, owner, job_id, i) for i in numbers])
        rows.append([_button(f"🔀 {i + 1}", cb.VARIATION, owner, job_id, i) for i in numbers])
        rows.append([_button(f"📄 {i + 1}", cb.FULL_RES, owner, job_id, i) for i in numbers])
    rows.append([_button(_t("button.delete"), cb.DELETE_ASK, owner, job_id, 0, album)])
    if gallery:
        rows[-1].append(gallery_button(owner))
    return InlineKeyboardMarkup(rows)


def confirm_delete(owner: int, job_id: str, album: str = "") -> InlineKeyboardMarkup:
    """Are you sure?"""
    return InlineKeyboardMarkup(
        [
            [
                _button(_t("button.delete_yes"), cb.DELETE_YES, owner, job_id, 0, album),
                _button(_t("button.keep"), cb.DELETE_NO, owner, job_id, 0, album),
            ]
        ]
    )


def history(
    owner: int, page: HistoryPage, confirm: str = "", *, gallery: bool = False
) -> InlineKeyboardMarkup:
    """Open, download or delete each numbered item; previous and next page; the gallery.

    With ``confirm`` (a job id), that item's row asks for confirmation of the deletion.
    """
    rows = []
    for number, job in enumerate(page.items, 1):
        arg = str(page.page)
        if job.id == confirm:
            rows.append(
                [
                    _button(
                        _t("button.delete_for_good", number=number),
                        cb.HISTORY_DELETE_YES,
                        owner,
                        job.id,
                        0,
                        arg,
                    ),
                    _button(_t("button.keep"), cb.HISTORY_KEEP, owner, "", 0, arg),
                ]
            )
            continue
        row = [_button(_t("button.open_n", number=number), cb.HISTORY_OPEN, owner, job.id, 0, arg)]
        if job.outputs:
            row.append(
                _button(_t("button.file_n", number=number), cb.HISTORY_FILE, owner, job.id, 0, arg)
            )
        row.append(
            _button(
                _t("button.delete_n", number=number), cb.HISTORY_DELETE_ASK, owner, job.id, 0, arg
            )
        )
        rows.append(row)
    nav = []
    if page.page > 1:
        nav.append(_button(_t("button.newer"), cb.HISTORY_PAGE, owner, "", 0, str(page.page - 1)))
    if page.page < page.pages:
        nav.append(_button(_t("button.older"), cb.HISTORY_PAGE, owner, "", 0, str(page.page + 1)))
    if gallery:
        nav.append(gallery_button(owner))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


SETTING_FIELDS = ("size", "quality", "output_format", "n", "background", "model")


def setting_choices(name: str, spec: ModelSpec, models: Sequence[str] = ()) -> list[str]:
    """The values offered for one setting (the model's table, or the models on offer,
    plus ``default``)."""
    if name == "model":
        values = list(models)
    elif name == "size":
        values = list(spec.sizes) + (["auto"] if spec.allows_auto_size else [])
    elif name == "quality":
        values = list(spec.qualities)
    elif name == "output_format":
        values = list(spec.formats)
    elif name == "n":
        values = [str(i) for i in range(1, MAX_N_PER_JOB + 1)]
    else:
        values = list(spec.backgrounds)
    return [*values, "default"]


def settings_main(owner: int, *, choose_model: bool = False) -> InlineKeyboardMarkup:
    """One button per setting (the model only when there is more than one to choose)."""
    rows = [
        [
            _button(
                _t("button.change", setting=setting_label(name).lower()),
                cb.SETTINGS_OPEN,
                owner,
                arg=name,
            )
        ]
        for name in (*SETTING_FIELDS, "language")
        if name != "model" or choose_model
    ]
    return InlineKeyboardMarkup(rows)


def languages(owner: int) -> InlineKeyboardMarkup:
    """``/settings language``: one button per shipped language, in its own words."""
    buttons = [
        _button(LANGUAGE_NAMES[lang], cb.SETTINGS_SET, owner, arg=f"language={lang}")
        for lang in LANGUAGES
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(_t("button.back"), cb.SETTINGS_BACK, owner)])
    return InlineKeyboardMarkup(rows)


def settings_choices(
    owner: int, name: str, spec: ModelSpec, models: Sequence[str] = ()
) -> InlineKeyboardMarkup:
    """The values of one setting, three to a row (models one to a row), and Back."""
    buttons = []
    for value in setting_choices(name, spec, models):
        try:
            buttons.append(_button(value, cb.SETTINGS_SET, owner, arg=f"{name}={value}"))
        except ValueError:  # a model name too long for callback data: /settings model NAME
            continue
    per_row = 1 if name == "model" else 3
    rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    rows.append([_button(_t("button.back"), cb.SETTINGS_BACK, owner)])
    return InlineKeyboardMarkup(rows)


def offers(owner: int, items: Sequence[Offer]) -> InlineKeyboardMarkup:
    """One button per offer whose id fits in callback data."""
    rows = []
    for offer in items:
        try:
            rows.append([_button(offer_label(offer), cb.BUY, owner, arg=offer.id)])
        except ValueError:
            continue
    return InlineKeyboardMarkup(rows)


def privacy(owner: int, consents: ConsentRecord, *, known: bool = True) -> InlineKeyboardMarkup:
    """/privacy: one switch per consent (flipped at once), then the name correction."""
    rows = [
        [
            _button(
                consent_button(name, bool(getattr(consents, name))),
                cb.CONSENT,
                owner,
                arg=f"{name}={0 if getattr(consents, name) else 1}",
            )
        ]
        for name in CONSENT_LABELS
    ]
    if known:
        rows.append(
            [
                _button(_t("button.refresh_name"), cb.PROFILE, owner, arg="refresh"),
                _button(_t("button.clear_name"), cb.PROFILE, owner, arg="clear"),
            ]
        )
    return InlineKeyboardMarkup(rows)


def confirm_erase(owner: int, request: ConfirmationRequest) -> InlineKeyboardMarkup:
    """/delete_my_data: erase for good, or keep."""
    return InlineKeyboardMarkup(
        [
            [_button("🗑 " + render(request.confirm_label), cb.ERASE_YES, owner)],
            [_button(render(request.cancel_label), cb.ERASE_NO, owner)],
        ]
    )


def reviews(owner: int, items: Sequence[ReviewRecord]) -> InlineKeyboardMarkup | None:
    """/admin reviews: approve or dismiss each open item (numbered as in the text)."""
    rows = [
        [
            _button(
                _t("button.approve", review_id=item.id), cb.REVIEW_APPROVE, owner, arg=str(item.id)
            ),
            _button(
                _t("button.dismiss", review_id=item.id), cb.REVIEW_DISMISS, owner, arg=str(item.id)
            ),
        ]
        for item in items
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def gallery(link_url: str, mini_app_url: str | None) -> InlineKeyboardMarkup:
    """/gallery: the one-time sign-in link, and the Mini App (private chats, https only)."""
    rows = [[InlineKeyboardButton(gallery_button_label(), url=link_url)]]
    if mini_app_url:
        rows.append(
            [InlineKeyboardButton(gallery_mini_app_button(), web_app=WebAppInfo(mini_app_url))]
        )
    return InlineKeyboardMarkup(rows)


def gallery_button(owner: int) -> InlineKeyboardButton:
    """Under /history and results: asks for a fresh /gallery link (links expire, so
    none is baked into an old message)."""
    return _button(gallery_short(), cb.GALLERY, owner)


def link(text: str, url: str) -> InlineKeyboardMarkup:
    """A single URL button."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(text, url=url)]])


def url_button_ok(url: str) -> bool:
    """True when Telegram takes ``url`` in a URL button: http or https, a host name with
    a dot (Telegram answers BUTTON_URL_INVALID for ``localhost`` and other bare names),
    and not absurdly long. A download link that fails this is not offered: the file is
    uploaded through the chat instead."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return (
        parts.scheme in ("http", "https")
        and "." in host.strip(".")
        and not host.endswith(".localhost")
        and len(url) <= MAX_BUTTON_URL
    )


MAX_BUTTON_URL = 2048
"""The longest URL offered in a button (Telegram documents no limit; longer ones are
refused in practice, and a presigned URL with a session token can be long)."""


def edit_question() -> ForceReply:
    """The reply box opened by the Edit button (for the person it was asked of)."""
    return ForceReply(selective=True, input_field_placeholder=_t("button.edit_placeholder"))


def stars_offers(
    owner: int, stars: Sequence[Offer], cards: Sequence[Offer]
) -> InlineKeyboardMarkup:
    """/buy and /subscribe with Telegram Stars: one button per Stars offer, then (in
    ``both`` mode) the card offers."""
    rows = []
    for offer in stars:
        try:
            rows.append([_button(stars_offer_label(offer), cb.BUY_STARS, owner, arg=offer.id)])
        except ValueError:
            continue
    for offer in cards:
        try:
            rows.append([_button(offer_label(offer), cb.BUY, owner, arg=offer.id)])
        except ValueError:
            continue
    return InlineKeyboardMarkup(rows)


def stars_cancel(owner: int, offer_id: str) -> InlineKeyboardMarkup:
    """/billing with a Stars plan: cancel it (it runs to the end of the period)."""
    return InlineKeyboardMarkup([[_button(stars_cancel_button(), cb.STARS_CANCEL, owner)]])
