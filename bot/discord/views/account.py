"""Buttons about the person rather than a job: the terms and age question, offers and
payment links, privacy switches and the erasure question."""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import ui

from bot.discord import context, render, respond
from bot.discord.views.base import Handled, core_of
from core.billing.offers import Offer
from core.errors import message_for
from core.i18n import Msg
from core.privacy import ConfirmationExpired
from core.privacy.onboarding import Policy
from core.privacy.ports import ConsentRecord
from core.types import ConfirmationRequest, PaymentLinkReply

# --- terms and age ------------------------------------------------------------------------------


class TermsButton(
    Handled, ui.DynamicItem[ui.Button[Any]], template=r"ib:terms:(?P<choice>accept|refuse)"
):
    """Accept the terms (13 or older), or say one is under 13."""

    def __init__(self, choice: str) -> None:
        accept = choice == "accept"
        super().__init__(
            ui.Button(
                label=render.words("button.accept_plain" if accept else "button.under_13"),
                style=discord.ButtonStyle.success if accept else discord.ButtonStyle.secondary,
                custom_id=f"ib:terms:{choice}",
            )
        )
        self.choice = choice

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> TermsButton:
        return cls(match["choice"])

    async def handle(self, interaction: discord.Interaction) -> None:
        core = core_of(interaction)
        if not await respond.defer(interaction, update=True):
            return
        actor = context.actor_of(interaction)
        if self.choice == "accept":
            await core.onboarding.accept(actor)
            text = render.accepted_text(interaction.user.display_name)
        else:
            await core.onboarding.refuse(actor)
            text = render.refused_age()
        await respond.update(interaction, text, view=None)


def terms_view(policy: Policy) -> ui.View:
    """The two answers to the terms, and the policy's link when there is one."""
    view = ui.View(timeout=None)
    view.add_item(TermsButton("accept"))
    view.add_item(TermsButton("refuse"))
    if policy.url and len(policy.url) <= 512:
        view.add_item(ui.Button(label=render.words("button.read_policy"), url=policy.url))
    return view


# --- billing ----------------------------------------------------------------------------------


class OfferButton(
    Handled, ui.DynamicItem[ui.Button[Any]], template=r"ib:buy:(?P<offer>[\w.-]{1,80})"
):
    """One credit pack or plan: a press makes a private checkout link."""

    def __init__(self, offer_id: str, label: str = "Buy") -> None:
        super().__init__(
            ui.Button(
                label=label, style=discord.ButtonStyle.primary, custom_id=f"ib:buy:{offer_id}"
            )
        )
        self.offer_id = offer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> OfferButton:
        return cls(match["offer"], getattr(item, "label", None) or "Buy")

    async def handle(self, interaction: discord.Interaction) -> None:
        if not await respond.defer(interaction, ephemeral=True):
            return
        link = await core_of(interaction).billing.checkout_link(
            context.actor_of(interaction), self.offer_id, request_key=offer_key(interaction)
        )
        await send_link(interaction, link)


def offer_key(interaction: discord.Interaction) -> str:
    """The press's checkout key: the message the button is on, so a double click (two
    interactions) gives one checkout session; a new /buy is a new message, a new session."""
    message = interaction.message
    if message is None:
        return context.request_key(interaction)
    return f"discord:offers:{message.id}"


def offers_view(offers: tuple[Offer, ...]) -> ui.View | None:
    """A button per offer (at most 25)."""
    if not offers:
        return None
    view = ui.View(timeout=None)
    for offer in offers[:25]:
        view.add_item(OfferButton(offer.id, render.offer_label(offer)))
    return view


def premium_offers_view(premium: tuple[Offer, ...], cards: tuple[Offer, ...]) -> ui.View:
    """A premium button per SKU (Discord's own checkout), then card buttons (at most 25)."""
    view = ui.View(timeout=None)
    for offer in premium[:25]:
        assert offer.discord_sku_id is not None
        view.add_item(
            ui.Button(style=discord.ButtonStyle.premium, sku_id=int(offer.discord_sku_id))
        )
    for offer in cards[: 25 - len(view.children)]:
        view.add_item(OfferButton(offer.id, render.offer_label(offer)))
    return view


async def send_link(interaction: discord.Interaction, link: PaymentLinkReply) -> None:
    """A payment link as a link button (Discord allows 512 characters), else as text."""
    fits = len(link.url) <= 512
    view = None
    if fits:
        view = ui.View(timeout=None)
        view.add_item(ui.Button(label=render.words("button.open_link"), url=link.url))
    await respond.reply(interaction, render.payment_text(link, link_in_button=fits), view=view)


# --- privacy ----------------------------------------------------------------------------------


class ConsentButton(
    Handled,
    ui.DynamicItem[ui.Button[Any]],
    template=r"ib:consent:(?P<name>[a-z_]{1,40}):(?P<value>[01])",
):
    """Turn one privacy switch on or off (P10); only in the user's DM with the bot."""

    def __init__(self, name: str, value: bool) -> None:
        label = render.consent_label(name)
        super().__init__(
            ui.Button(
                label=render.clip(f"{'Turn on' if value else 'Turn off'}: {label}", 80),
                style=discord.ButtonStyle.success if value else discord.ButtonStyle.secondary,
                custom_id=f"ib:consent:{name}:{int(value)}",
            )
        )
        self.name = name
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> ConsentButton:
        return cls(match["name"], match["value"] == "1")

    async def handle(self, interaction: discord.Interaction) -> None:
        privacy = core_of(interaction).privacy
        if not await respond.defer(interaction, update=True):
            return
        await privacy.set_consent(
            context.actor_of(interaction),
            context.conversation_of(interaction),
            self.name,
            self.value,
        )
        await _show_privacy(interaction)


def consent_view(consents: ConsentRecord) -> ui.View:
    """One button per switch, offering the opposite of its state; then the profile's
    buttons (refresh or clear the name, P09) and the requests log (P12)."""
    view = ui.View(timeout=None)
    for name in render.CONSENT_LABELS:
        view.add_item(ConsentButton(name, not getattr(consents, name, False)))
    view.add_item(ProfileButton("refresh"))
    view.add_item(ProfileButton("clear"))
    view.add_item(RequestsButton())
    return view


async def _show_privacy(interaction: discord.Interaction, note: str = "") -> None:
    """Redraw the /privacy message the button is on (after a deferred update)."""
    privacy = core_of(interaction).privacy
    overview = await privacy.overview(
        context.actor_of(interaction), context.conversation_of(interaction)
    )
    text = render.privacy_text(overview)
    await respond.update(
        interaction, f"{note}\n\n{text}" if note else text, view=consent_view(overview.consents)
    )


class ProfileButton(
    Handled, ui.DynamicItem[ui.Button[Any]], template=r"ib:profile:(?P<choice>refresh|clear)"
):
    """Correct the stored profile (P09): refresh the name and language from Discord, or
    clear the name."""

    def __init__(self, choice: str) -> None:
        refresh = choice == "refresh"
        super().__init__(
            ui.Button(
                label=render.words("button.refresh_discord" if refresh else "button.clear_stored"),
                style=discord.ButtonStyle.secondary,
                custom_id=f"ib:profile:{choice}",
            ),
            row=1,
        )
        self.choice = choice

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> ProfileButton:
        return cls(match["choice"])

    async def handle(self, interaction: discord.Interaction) -> None:
        privacy = core_of(interaction).privacy
        if not await respond.defer(interaction, update=True):
            return
        clear = self.choice == "clear"
        await privacy.correct_profile(
            context.actor_of(interaction), context.conversation_of(interaction), clear=clear
        )
        await _show_privacy(
            interaction, render.profile_cleared() if clear else render.profile_refreshed()
        )


class RequestsButton(Handled, ui.DynamicItem[ui.Button[Any]], template=r"ib:privreq"):
    """The person's privacy requests log (P12), sent privately."""

    def __init__(self) -> None:
        super().__init__(
            ui.Button(
                label=render.words("button.my_requests"),
                style=discord.ButtonStyle.secondary,
                custom_id="ib:privreq",
            ),
            row=1,
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> RequestsButton:
        return cls()

    async def handle(self, interaction: discord.Interaction) -> None:
        privacy = core_of(interaction).privacy
        if not await respond.defer(interaction, ephemeral=True):
            return
        records = await privacy.requests(
            context.actor_of(interaction), context.conversation_of(interaction)
        )
        await respond.reply(interaction, render.requests_text(records))


class EraseButton(Handled, ui.DynamicItem[ui.Button[Any]], template=r"ib:erase:(?P<choice>yes|no)"):
    """The answer to the erasure question (P08)."""

    def __init__(self, choice: str, label: Msg | str) -> None:
        yes = choice == "yes"
        super().__init__(
            ui.Button(
                label=render.clip(label if isinstance(label, str) else render.words(label.key), 80),
                style=discord.ButtonStyle.danger if yes else discord.ButtonStyle.secondary,
                custom_id=f"ib:erase:{choice}",
            )
        )
        self.choice = choice

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> EraseButton:
        return cls(match["choice"], getattr(item, "label", None) or match["choice"])

    async def handle(self, interaction: discord.Interaction) -> None:
        if not await respond.defer(interaction, update=True):
            return
        if self.choice != "yes":
            await respond.update(interaction, render.erase_kept(), view=None)
            return
        # The question's age is the time of the message the button is on: an old question,
        # or a press replayed on it much later, erases nothing.
        asked_at = interaction.message.created_at if interaction.message else None
        try:
            receipt = await core_of(interaction).privacy.erase(
                context.actor_of(interaction),
                context.conversation_of(interaction),
                asked_at=asked_at,
            )
        except ConfirmationExpired as exc:
            await respond.update(interaction, render.text_of(message_for(exc)), view=None)
            return
        await respond.update(interaction, render.text_of(receipt.message), view=None)


def erase_view(question: ConfirmationRequest) -> ui.View:
    """Erase everything, or keep it."""
    view = ui.View(timeout=None)
    view.add_item(EraseButton("yes", question.confirm_label))
    view.add_item(EraseButton("no", question.cancel_label))
    return view
