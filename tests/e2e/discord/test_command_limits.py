"""Command registration against Discord's limits: the fake refuses what Discord refuses
(with Discord's nested 50035 body), and imagebot's commands stay within them."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.e2e.discord.conftest import DiscordHarness
from tests.fakes.discord_server import TOKEN, FakeDiscord


async def put_commands(fake: FakeDiscord, commands: list[dict[str, Any]]) -> tuple[int, Any]:
    """Register ``commands`` the way ``tree.sync()`` does; the status and the answer."""
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{fake.api_url}/applications/{fake.application_id}/commands",
            json=commands,
            headers={"Authorization": f"Bot {TOKEN}"},
        ) as response,
    ):
        return response.status, await response.json()


def command(*options: dict[str, Any]) -> dict[str, Any]:
    return {"name": "appeal", "description": "Contest a refusal", "options": list(options)}


async def test_values_past_2_pow_53_are_refused_like_discord(fake: FakeDiscord) -> None:
    ok = {"name": "request", "description": "Request", "type": 4, "required": True}
    status, body = await put_commands(fake, [command({**ok, "min_value": 1, "max_value": 2**53})])
    assert status == 400
    assert body == {
        "code": 50035,
        "errors": {
            "0": {
                "options": {
                    "0": {
                        "max_value": {
                            "_errors": [
                                {
                                    "code": "NUMBER_TYPE_MAX",
                                    "message": "int value should be less than or equal to "
                                    "9007199254740991.",
                                }
                            ]
                        }
                    }
                }
            }
        },
        "message": "Invalid Form Body",
    }
    status, _ = await put_commands(fake, [command({**ok, "min_value": -(2**53)})])
    assert status == 400
    status, _ = await put_commands(fake, [command({**ok, "max_value": 2**53 - 1})])
    assert status == 200


async def test_lengths_channel_types_names_and_counts_are_checked(fake: FakeDiscord) -> None:
    text = {"name": "reason", "description": "Why", "type": 3}
    channel = {"name": "where", "description": "Where", "type": 7}
    refused: list[tuple[dict[str, Any], str]] = [
        (command({**text, "max_length": 6001}), "NUMBER_TYPE_MAX"),
        (command({**text, "min_length": -1}), "NUMBER_TYPE_MIN"),
        (command({**channel, "channel_types": [0, 17]}), "ENUM_TYPE_COERCE"),
        (command({**text, "name": "Reason"}), "APPLICATION_COMMAND_INVALID_NAME"),
        (command({**text, "description": "x" * 101}), "BASE_TYPE_BAD_LENGTH"),
        (
            command(*({**text, "name": f"o{i}"} for i in range(26))),
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            command({**text, "choices": [{"name": str(i), "value": str(i)} for i in range(26)]}),
            "BASE_TYPE_MAX_LENGTH",
        ),
        ({**command(), "name": "a b"}, "APPLICATION_COMMAND_INVALID_NAME"),
    ]
    for payload, code in refused:
        status, body = await put_commands(fake, [payload])
        assert (status, body["code"], body["message"]) == (400, 50035, "Invalid Form Body")
        assert f'"code": "{code}"' in str(body).replace("'", '"'), (payload, body)
    accepted = command(
        {**text, "min_length": 0, "max_length": 6000},
        {**channel, "channel_types": [0, 5, 10, 11, 12, 15, 16]},  # 16: GUILD_MEDIA
    )
    assert (await put_commands(fake, [accepted]))[0] == 200


async def test_imagebot_registers_commands_within_discords_limits(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    assert sync.status == 200  # the strict checks of the fake passed
    by_name = {c["name"]: c for c in sync.json}
    appeal = {o["name"]: o for o in by_name["appeal"]["options"]}
    assert appeal["request"]["max_value"] == 2**53 - 1
    [channels] = [o for o in by_name["server"]["options"] if o["name"] == "channels"]
    for option in channels["options"]:
        # Where imagebot can be used and post: text and announcement channels, threads.
        assert sorted(option["channel_types"]) == [0, 5, 10, 11, 12]
