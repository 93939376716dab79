"""Slash commands through the real discord.py against the loopback Discord: sync, where
commands work, what each answers."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from bot.discord import client as client_module
from bot.discord.app import parse_shard_ids, start
from core.errors import ConfigurationError
from core.types import Announcement, ReplyTarget
from storage.database import Database
from tests.e2e.discord.conftest import CHANNEL, GUILD, DiscordHarness
from tests.e2e.discord.support import actor, buttons, job_of, result
from tests.fakes.discord_server import EPHEMERAL, TOKEN, FakeDiscord
from tests.fakes.stripe_server import API_KEY as STRIPE_KEY
from tests.fakes.stripe_server import WEBHOOK_SECRET as STRIPE_WEBHOOK_SECRET
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import make_core, png

ADA = FakeDiscord.user(4242, "Ada")


async def test_commands_are_synced_with_options_contexts_and_installs(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    by_name = {c["name"]: c for c in sync.json}
    assert set(by_name) >= {
        "imagine",
        "edit",
        "history",
        "settings",
        "balance",
        "help",
        "buy",
        "subscribe",
        "billing",
        "privacy",
        "export",
        "delete_my_data",
        "feedback",
        "support",
        "appeal",
        "admin",
        "server",
        "Edit with imagebot",
    }
    for command in sync.json:
        if command["name"] in ("admin", "server"):
            continue  # test_admin.py and test_server_controls.py check these
        assert command["contexts"] == [0, 1, 2]  # servers, DMs with the bot, anywhere else
        assert command["integration_types"] == [0, 1]  # server install and user install
        assert command.get("default_member_permissions") is None  # everyone sees them
    assert by_name["Edit with imagebot"]["type"] == 3  # a message context menu
    imagine = {o["name"]: o for o in by_name["imagine"]["options"]}
    assert next(iter(imagine)) == "prompt" and imagine["prompt"]["required"] is True
    assert imagine["prompt"]["type"] == 3
    assert {c["value"] for c in imagine["size"]["choices"]} == {
        "1024x1024",
        "1536x1024",
        "1024x1536",
        "auto",
    }
    assert {c["value"] for c in imagine["quality"]["choices"]} >= {"low", "medium", "high"}
    assert (imagine["n"]["type"], imagine["n"]["min_value"], imagine["n"]["max_value"]) == (4, 1, 4)
    assert imagine["transparent"]["type"] == 5 and imagine["private"]["type"] == 5
    assert [imagine[f"image{i}"]["type"] for i in range(1, 5)] == [11, 11, 11, 11]
    edit = {o["name"]: o for o in by_name["edit"]["options"]}
    assert edit["image1"]["required"] is True and edit["image1"]["type"] == 11


async def test_commands_sync_to_the_development_guild_when_set(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    harness = DiscordHarness(fake, sqlite_db, tmp_path, {"discord_guild_id": GUILD})
    await harness.start()
    try:
        assert fake.requests_to("PUT", rf"^/applications/\d+/guilds/{GUILD}/commands$")
        assert not fake.requests_to("PUT", r"^/applications/\d+/commands$")
        assert "imagine" in {c["name"] for c in fake.commands[GUILD]}
    finally:
        await harness.stop()


async def test_imagine_in_a_server(bot: DiscordHarness, fake: FakeDiscord) -> None:
    ix = await fake.slash("imagine", {"prompt": "a red fox in snow"}, user=ADA, guild_id=GUILD)
    message = await result(ix)
    assert ix.ack_type == 5 and not ix.ephemeral  # deferred ("thinking…"), public
    assert ix.acked_at is not None and ix.acked_at - ix.dispatched_at < 3
    assert message["channel_id"] == CHANNEL
    assert "a red fox in snow" in message["content"] and "1 credit" in message["content"]
    [attachment] = message["attachments"]
    with Image.open(io.BytesIO(fake.file_bytes(attachment))) as picture:
        assert picture.size == (1024, 1024)
    labels = buttons(message)
    assert set(labels) == {"Reroll", "Edit", "Variation", "Full resolution", "Delete"}
    assert all(custom_id.endswith(f":{ADA['id']}") for custom_id in labels.values())
    # Progress went through the same original response: queued first.
    edits = fake.requests_to("PATCH", r"/messages/@original$")
    assert "queued (position 1, cost 1 credit" in edits[0].json["content"]


async def test_imagine_in_a_dm(bot: DiscordHarness, fake: FakeDiscord) -> None:
    ix = await fake.slash("imagine", {"prompt": "a lighthouse at dusk"}, user=ADA)
    message = await result(ix)
    assert ix.guild_id is None and ix.payload["context"] == 1
    assert message["channel_id"] == fake.dm_channels[ADA["id"]]
    assert message["attachments"] and "lighthouse" in message["content"]


async def test_private_imagine_is_ephemeral(bot: DiscordHarness, fake: FakeDiscord) -> None:
    ix = await fake.slash(
        "imagine", {"prompt": "a secret garden", "private": True}, user=ADA, guild_id=GUILD
    )
    message = await result(ix)
    assert ix.ack_type == 5 and ix.ack_data == {"flags": EPHEMERAL}
    assert int(message["flags"]) & EPHEMERAL and message["attachments"]


async def test_typed_options_reach_the_job(bot: DiscordHarness, fake: FakeDiscord) -> None:
    ix = await fake.slash(
        "imagine",
        {"prompt": "a kite", "size": "1536x1024", "quality": "low", "n": 2, "transparent": True},
        user=ADA,
        guild_id=GUILD,
    )
    message = await result(ix)
    assert len(message["attachments"]) == 2
    assert bot.core is not None
    job = await bot.core.generation.job(actor(ADA), job_of(message))
    assert job.options["size"] == "1536x1024" and job.options["quality"] == "low"
    assert job.options["background"] == "transparent" and job.options["output_format"] == "png"
    # Two images: Reroll and Delete once, Edit / Variation / Full per image.
    assert {"Reroll", "Delete", "Edit 1", "Edit 2", "Variation 2", "Full 2"} <= set(
        buttons(message)
    )


async def test_imagine_with_attachments_downloads_them_from_discord(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    first = fake.attachment(png(64, 64, (10, 200, 10)), "leaf.png")
    second = fake.attachment(png(48, 48, (10, 10, 200)), "sky.png")
    ix = await fake.slash(
        "imagine",
        {"prompt": "combine these", "image1": first, "image2": second},
        user=ADA,
        guild_id=GUILD,
    )
    message = await result(ix)
    assert sorted(fake.downloads) == sorted([first["id"], second["id"]])
    assert bot.core is not None
    job = await bot.core.generation.job(actor(ADA), job_of(message))
    assert job.kind == "edit" and len(job.inputs) == 2


async def test_context_menu_edit_opens_a_modal_and_edits_the_message_images(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    target = {
        "id": "700000000000000123",
        "channel_id": CHANNEL,
        "guild_id": GUILD,
        "type": 0,
        "content": "look at this",
        "author": FakeDiscord.user(77, "Grace"),
        "attachments": [
            fake.attachment(png(80, 60), "photo.png"),
            fake.attachment(b"%PDF", "doc.pdf", "application/pdf"),
        ],
        "embeds": [],
        "mentions": [],
        "mention_roles": [],
        "pinned": False,
        "mention_everyone": False,
        "tts": False,
        "timestamp": "2026-11-01T10:00:00+00:00",
        "edited_timestamp": None,
        "flags": 0,
        "components": [],
    }
    opened = await fake.message_command("Edit with imagebot", target, user=ADA, guild_id=GUILD)
    await opened.wait(lambda i: i.acked)
    assert opened.ack_type == 9 and opened.modal is not None
    assert opened.modal["title"] == "Edit with imagebot"
    submitted = await fake.submit_modal(opened, {"instruction": "make it a watercolour"})
    message = await result(submitted)
    assert submitted.ack_type == 5 and message["attachments"]
    assert fake.downloads == [target["attachments"][0]["id"]]  # the image only, not the PDF
    assert bot.core is not None
    job = await bot.core.generation.job(actor(ADA), job_of(message))
    assert job.kind == "edit" and job.prompt == "make it a watercolour" and len(job.inputs) == 1


async def test_context_menu_on_a_message_without_images(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    target = {
        "id": "700000000000000124",
        "channel_id": CHANNEL,
        "type": 0,
        "content": "just words",
        "author": FakeDiscord.user(77),
        "attachments": [],
        "embeds": [],
        "mentions": [],
        "mention_roles": [],
        "pinned": False,
        "mention_everyone": False,
        "tts": False,
        "timestamp": "2026-11-01T10:00:00+00:00",
        "edited_timestamp": None,
        "flags": 0,
    }
    ix = await fake.message_command("Edit with imagebot", target, user=ADA, guild_id=GUILD)
    await ix.wait(lambda i: i.acked)
    assert ix.ack_type == 4 and ix.ephemeral
    assert "no images" in ix.original["content"]


async def test_help_balance_and_settings(bot: DiscordHarness, fake: FakeDiscord) -> None:
    help_ix = await fake.slash("help", user=ADA, guild_id=GUILD)
    await help_ix.wait(lambda i: i.acked)
    assert help_ix.ephemeral and "/imagine" in help_ix.original["content"]

    balance = await fake.slash("balance", user=ADA, guild_id=GUILD)
    await balance.wait(lambda i: i.original and "credits" in i.original["content"])
    assert balance.ephemeral and "**20 credits**" in balance.original["content"]

    change = await fake.slash(
        "settings", {"size": "1536x1024", "quality": "high"}, user=ADA, guild_id=GUILD
    )
    await change.wait(lambda i: i.original and "defaults" in i.original["content"])
    assert "Size: **1536x1024**" in change.original["content"]
    assert "Quality: **high**" in change.original["content"]
    reset = await fake.slash("settings", {"size": "default"}, user=ADA, guild_id=GUILD)
    await reset.wait(lambda i: i.original and "defaults" in i.original["content"])
    assert "Size: **default**" in reset.original["content"]
    assert "Quality: **high**" in reset.original["content"]


async def test_buy_without_billing_says_so(bot: DiscordHarness, fake: FakeDiscord) -> None:
    for command in ("buy", "subscribe", "billing"):
        ix = await fake.slash(command, user=ADA, guild_id=GUILD)
        await ix.wait(lambda i: i.original and i.original["content"].startswith("⚠️"))
        assert ix.ephemeral
        assert "not set up on this bot" in ix.original["content"]


async def test_buy_gives_a_private_checkout_link(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    stripe = FakeStripe()
    await stripe.start()
    harness = DiscordHarness(
        fake,
        sqlite_db,
        tmp_path,
        {
            "stripe_secret_key": STRIPE_KEY,
            "stripe_webhook_secret": STRIPE_WEBHOOK_SECRET,
            "stripe_api_url": stripe.base_url,
            "stripe_max_network_retries": 0,
            "public_url": "https://bot.example.net",
        },
    )
    await harness.start()
    try:
        ix = await fake.slash("buy", user=ADA, guild_id=GUILD)
        await ix.wait(lambda i: i.original and "Credit packs" in i.original["content"])
        assert ix.ephemeral
        offers = buttons(ix.original)
        [pack] = [label for label in offers if label.startswith("Starter pack")]
        press = await fake.press(ix.original, offers[pack], user=ADA)
        await press.wait(lambda i: i.original and buttons(i.original).get("Open"))
        assert press.ephemeral
        assert buttons(press.original)["Open"].startswith(f"{stripe.base_url}/c/pay/")
        assert "Starter pack" in press.original["content"]
        assert stripe.errors == []
    finally:
        await harness.stop()
        await stripe.stop()


async def test_privacy_commands_answer_only_in_dms(bot: DiscordHarness, fake: FakeDiscord) -> None:
    for command in ("privacy", "export", "delete_my_data"):
        ix = await fake.slash(command, user=ADA, guild_id=GUILD)
        await ix.wait(lambda i: i.acked)
        assert ix.ack_type == 4 and ix.ephemeral
        assert "only in a direct message" in ix.original["content"]
    assert not fake.dm_channels  # nothing was sent anywhere else


async def test_privacy_overview_and_switches_in_a_dm(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    ix = await fake.slash("privacy", user=ADA)
    await ix.wait(lambda i: i.original and "Privacy policy" in i.original["content"])
    message = ix.original
    assert "What we store" in message["content"] and "How long we keep it" in message["content"]
    switch = buttons(message)["Turn on: Use my images and prompts to improve models"]
    press = await fake.press(message, switch, user=ADA)
    await press.wait(
        lambda i: "Turn off: Use my images" in str(i.original and i.original["components"])
    )
    assert "Use my images and prompts to improve models: **on**" in press.original["content"]


async def test_export_in_a_dm_sends_a_zip(bot: DiscordHarness, fake: FakeDiscord) -> None:
    made = await fake.slash("imagine", {"prompt": "something to export"}, user=ADA)
    await result(made)
    ix = await fake.slash("export", user=ADA)
    await ix.wait(lambda i: i.original and i.original["attachments"])
    [attachment] = ix.original["attachments"]
    assert attachment["filename"] == "imagebot-export.zip"
    with zipfile.ZipFile(io.BytesIO(fake.file_bytes(attachment))) as archive:
        names = archive.namelist()
    assert "README.txt" in names and any(n.startswith("images/") for n in names)


async def test_delete_my_data_asks_then_erases(bot: DiscordHarness, fake: FakeDiscord) -> None:
    made = await fake.slash("imagine", {"prompt": "soon gone"}, user=ADA)
    await result(made)
    ix = await fake.slash("delete_my_data", user=ADA)
    await ix.wait(lambda i: i.original and "Continue?" in i.original["content"])
    keep = await fake.press(ix.original, buttons(ix.original)["Keep my data"], user=ADA)
    await keep.wait(
        lambda i: i.original and i.original["content"].startswith("Nothing was erased.")
    )
    assert bot.core is not None
    assert (await bot.core.history.page(actor(ADA))).total == 1

    again = await fake.slash("delete_my_data", user=ADA)
    await again.wait(lambda i: i.original and "Continue?" in i.original["content"])
    erase = await fake.press(again.original, buttons(again.original)["Erase everything"], user=ADA)
    await erase.wait(lambda i: i.original and i.original["content"].startswith("Done."))
    assert (await bot.core.history.page(actor(ADA))).total == 0


async def test_feedback_reaches_the_operators_channel(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    operators = "900000000000000777"
    harness = DiscordHarness(fake, sqlite_db, tmp_path, {"support_chat": f"discord:{operators}"})
    await harness.start()
    try:
        ix = await fake.slash("feedback", {"text": "Love it @everyone"}, user=ADA, guild_id=GUILD)
        await ix.wait(lambda i: i.original and "Thank you" in i.original["content"])
        assert ix.ephemeral and "#1" in ix.original["content"]
        [forwarded] = fake.channel_messages(operators)
        assert "Love it @everyone" in forwarded["content"]
        assert forwarded["allowed_mentions"] == {"parse": []}
    finally:
        await harness.stop()


async def test_announcement_arrives_as_a_dm(bot: DiscordHarness, fake: FakeDiscord) -> None:
    assert bot.core is not None
    sent = await bot.core.notifier.notify(
        ReplyTarget("discord", ADA["id"], extra={"dm": "1"}),
        Announcement("50 credits arrived. Thank you! @everyone"),
        final=True,
    )
    assert sent
    [message] = fake.dm_messages(ADA["id"])
    assert "50 credits arrived" in message["content"]
    assert message["allowed_mentions"] == {"parse": []}


async def test_a_redelivered_interaction_makes_no_second_job(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    ix = await fake.slash("imagine", {"prompt": "only once"}, user=ADA, guild_id=GUILD)
    await result(ix)
    await fake.dispatch("INTERACTION_CREATE", ix.payload, guild_id=GUILD)  # a gateway replay
    await fake.wait_until(lambda: len(fake.requests_to("POST", "/callback")) == 2)
    assert bot.core is not None
    page = await bot.core.history.page(actor(ADA))
    assert page.total == 1


async def test_shards_identify_with_their_ids(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "IDENTIFY_INTERVAL", 0.05)  # 5 s on the real Discord
    harness = DiscordHarness(
        fake, sqlite_db, tmp_path, {"discord_shard_count": 2, "discord_shard_ids": "0,1"}
    )
    await harness.start()
    try:
        assert sorted(i["shard"] for i in fake.identifies) == [[0, 2], [1, 2]]
        assert not fake.requests_to("GET", "/gateway/bot")  # count and URL were given
        guild_on_shard_1 = str((1 << 22) | 5)
        ix = await fake.slash("help", user=ADA, guild_id=guild_on_shard_1)
        await ix.wait(lambda i: i.acked)
    finally:
        await harness.stop()


async def test_a_refused_token_is_a_configuration_error(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(
        sqlite_db,
        tmp_path,
        discord_token=TOKEN.replace("fake", "gone"),
        discord_api_url=fake.api_url,
        discord_gateway_url=fake.gateway_url,
    )
    try:
        with pytest.raises(ConfigurationError, match="Discord refused IMAGEBOT_DISCORD_TOKEN"):
            await start(core)
        assert not fake.identifies
    finally:
        await core.aclose()


def test_shard_ids_are_checked() -> None:
    assert parse_shard_ids("", None) is None
    assert parse_shard_ids("1, 0", 4) == [0, 1]
    for text, count in (("0,x", 2), ("2", 2), ("0", None)):
        with pytest.raises(ConfigurationError):
            parse_shard_ids(text, count)
