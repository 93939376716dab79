"""``/server``: a server's members with Manage Server limit imagebot to channels, cap the
images per member a day, or switch it off (issue 7); everyone else is refused."""

from __future__ import annotations

from typing import Any

from storage.database import Database
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import answered, audit_log, result
from tests.fakes.discord_server import ADMINISTRATOR, MANAGE_GUILD, FakeDiscord

ADA = FakeDiscord.user(4242, "Ada")
MOD = FakeDiscord.user(5555, "Mo")
ART = "900000000000000010"
CHAT = "900000000000000011"


async def server(
    fake: FakeDiscord,
    sub: str,
    options: dict[str, Any] | None = None,
    *,
    user: dict[str, Any] = MOD,
    permissions: int | None = MANAGE_GUILD,
) -> str:
    """``/server <sub>`` in the server; the (ephemeral) answer's text."""
    ix = await fake.slash(
        f"server {sub}", options, user=user, guild_id=GUILD, permissions=permissions
    )
    message = await answered(ix)
    assert ix.ephemeral
    return str(message["content"])


async def imagine(fake: FakeDiscord, channel: str, user: dict[str, Any] = ADA) -> str:
    """``/imagine`` in a channel of the server; the text of what it ended with."""
    ix = await fake.slash(
        "imagine", {"prompt": "a red fox"}, user=user, guild_id=GUILD, channel_id=channel
    )
    return str((await result(ix))["content"])


async def test_server_controls_are_offered_to_managers_only(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    [group] = [c for c in sync.json if c["name"] == "server"]
    assert str(group["default_member_permissions"]) == str(MANAGE_GUILD)
    assert group["contexts"] == [0] and group["integration_types"] == [0]
    assert {o["name"] for o in group["options"]} == {
        "status",
        "on",
        "off",
        "channels",
        "cap",
        "rate",
        "language",
    }


async def test_members_without_manage_server_are_refused_and_nothing_changes(
    bot_any_db: DiscordHarness, fake: FakeDiscord, database: Database
) -> None:
    for sub, options in (
        ("status", {}),
        ("off", {}),
        ("channels", {"channel1": FakeDiscord.channel(ART, "art")}),
        ("cap", {"images": 0}),
    ):
        text = await server(fake, sub, options, user=ADA, permissions=0)
        assert text == (
            "⚠️ Only members with the Manage Server permission can change imagebot's settings here."
        )
    assert "Status: **on**" in await server(fake, "status")
    assert "Channels: every channel" in await server(fake, "status")
    assert await audit_log(database) == []
    assert "1 credit" in await imagine(fake, ART)
    # Outside a server there is no server to set up (a forged use from a DM).
    ix = await fake.slash("server status", user=MOD)
    assert "use it in that server" in (await answered(ix))["content"]


async def test_managers_limit_channels_cap_members_and_switch_the_bot_off(
    bot_any_db: DiscordHarness, fake: FakeDiscord, database: Database
) -> None:
    limited = await server(
        fake,
        "channels",
        {"channel1": FakeDiscord.channel(ART, "art"), "channel2": FakeDiscord.channel(ART, "art")},
    )
    assert f"Channels: <#{ART}>" in limited and "(saved)" in limited
    assert "limited imagebot to other channels" in await imagine(fake, CHAT)
    assert "1 credit" in await imagine(fake, ART)

    capped = await server(fake, "cap", {"images": 2})
    assert "Images per member a day: 2" in capped
    assert "1 credit" in await imagine(fake, ART)  # the second today
    refused = await imagine(fake, ART)
    assert "allows 2 images per member a day" in refused and "midnight UTC" in refused
    assert "1 credit" in await imagine(fake, ART, user=MOD)  # a cap per member
    dm = await fake.slash("imagine", {"prompt": "in private"}, user=ADA)
    assert (await result(dm))["attachments"]  # private chats are not limited

    off = await server(fake, "off", permissions=ADMINISTRATOR)
    assert "Status: **off**" in off
    assert "switched imagebot off here" in await imagine(fake, ART, user=MOD)
    await server(fake, "on")
    await server(fake, "cap")
    everywhere = await server(fake, "channels")
    assert "Channels: every channel" in everywhere and "no cap" in everywhere
    assert "1 credit" in await imagine(fake, CHAT)

    rows = await audit_log(database)
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("discord:5555", "chat_control"),
        ("discord:5555", "chat_control"),
        ("discord:5555", "chat_control"),
        ("discord:5555", "chat_control"),
        ("discord:5555", "chat_control"),
        ("discord:5555", "chat_control"),
    ]
    assert rows[0]["details"]["channels"] == [ART] and rows[0]["details"]["chat"] == GUILD
    assert rows[2]["details"]["enabled"] is False


async def test_a_thread_inside_an_allowed_channel_is_allowed(
    bot_any_db: DiscordHarness, fake: FakeDiscord
) -> None:
    """Issue 18, item 10: a thread is a channel of its own to Discord, but a server that
    allows #art allows the threads in it; a thread of another channel stays refused."""
    in_art = fake.thread("900000000000000020", parent_id=ART)
    in_chat = fake.thread("900000000000000021", parent_id=CHAT)
    await server(fake, "channels", {"channel1": FakeDiscord.channel(ART, "art")})
    answer = await imagine(fake, in_art)
    assert "1 credit" in answer
    assert "limited imagebot to other channels" in await imagine(fake, in_chat)
    # The result went to the thread itself.
    assert any(m["channel_id"] == in_art and m.get("attachments") for m in fake.messages.values())


async def test_a_busy_server_is_served_unless_its_managers_set_a_request_cap(
    bot_any_db: DiscordHarness, fake: FakeDiscord, database: Database
) -> None:
    # No cap by default: 30 members at once are all served (per-user limits still hold).
    members = [FakeDiscord.user(7000 + i, f"m{i}") for i in range(30)]
    for member in members:
        assert "1 credit" in await imagine(fake, ART, user=member)
    assert "no cap" in (await server(fake, "status")).split("Requests a minute")[1]
    # Out-of-range values never reach the core: Discord's own option range refuses them.
    capped = await server(fake, "rate", {"requests": 2})
    assert "Requests a minute, all members together: 2" in capped
    assert "1 credit" in await imagine(fake, ART, user=members[0])
    assert "1 credit" in await imagine(fake, ART, user=members[1])
    refused = await imagine(fake, ART, user=members[2])
    assert "this chat has made many requests" in refused
    lifted = await server(fake, "rate")
    assert "Requests a minute, all members together: no cap" in lifted
    assert "1 credit" in await imagine(fake, ART, user=members[2])
    rows = await audit_log(database)
    assert [r["details"].get("requests_per_minute") for r in rows] == [2, None]


async def test_the_request_cap_line_speaks_the_managers_language(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    manager = FakeDiscord.user(5656, "Mia")
    fake.locales[manager["id"]] = "de"
    status = await server(fake, "status", user=manager)
    assert "Anfragen pro Minute, alle Mitglieder zusammen: kein Limit" in status
    capped = await server(fake, "rate", {"requests": 1500}, user=manager)
    assert "Anfragen pro Minute, alle Mitglieder zusammen: 1.500" in capped  # German digits
    assert "Requests a minute" not in capped
