"""Buttons and modals. Buttons are persistent (discord.py dynamic items: the custom id
carries what they act on), so presses on any message ever sent work after a restart; each
press is thin (check, defer, one core call, answer) and errors go to the one renderer."""

from bot.discord.views.account import (
    ConsentButton,
    EraseButton,
    OfferButton,
    ProfileButton,
    RequestsButton,
    TermsButton,
    consent_view,
    erase_view,
    offers_view,
    premium_offers_view,
    send_link,
    terms_view,
)
from bot.discord.views.admin import ReviewButton, reviews_view
from bot.discord.views.base import refuse_foreign_press
from bot.discord.views.gallery import GalleryButton, send_gallery_link
from bot.discord.views.history import PageButton, history_view
from bot.discord.views.results import EditImagesModal, EditResultModal, JobButton, result_view

DYNAMIC_ITEMS = (
    JobButton,
    PageButton,
    GalleryButton,
    TermsButton,
    OfferButton,
    ConsentButton,
    EraseButton,
    ProfileButton,
    RequestsButton,
    ReviewButton,
)
"""Registered at start-up: presses on any message ever sent are routed to these."""

__all__ = [
    "DYNAMIC_ITEMS",
    "EditImagesModal",
    "EditResultModal",
    "GalleryButton",
    "JobButton",
    "consent_view",
    "erase_view",
    "history_view",
    "offers_view",
    "premium_offers_view",
    "refuse_foreign_press",
    "result_view",
    "reviews_view",
    "send_gallery_link",
    "send_link",
    "terms_view",
]
