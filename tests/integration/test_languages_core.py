"""Core's own words in the reader's language, on real databases: an appeal's outcome and
an operator's answer are told to their owner in the language of their /settings choice
(else their platform's), and core refusals carry catalog messages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import InvalidRequest
from core.i18n import render
from core.types import Announcement
from storage.database import Database
from tests.helpers import actor, make_core
from tests.integration.test_appeal_decisions import OPERATOR, dms, refused_and_appealed


async def test_a_denied_appeal_is_told_in_the_users_ukrainian(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path, admins="test:999")
    try:
        olena = replace(actor(), locale="uk")
        number = await refused_and_appealed(core, database, olena)
        decision, told = await core.admin.decide_appeal(
            OPERATOR, number, grant=False, reason="Спір із банком ще відкритий."
        )
        assert told and decision.decision == "denied"
        [message] = dms(notes)
        assert message.startswith(
            f"Оператор розглянув ваше оскарження щодо запиту про дані {number} і залишив"
        )
        assert "Причина: Спір із банком ще відкритий." in message
        assert "органу із захисту персональних даних" in message
    finally:
        await core.aclose()


async def test_a_chosen_language_wins_over_the_platforms_for_an_operators_answer(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path, admins="test:999")
    try:
        ada = actor()  # an English app
        await core.users.register(ada)
        await core.users.set_language(ada, "fr")
        ticket = await core.messages.submit(ada, "support", "Mon image est floue")
        await core.messages.reply(ticket.id, "Essayez --quality high.")
        answers = [
            e.text
            for t, e in notes.events
            if isinstance(e, Announcement) and t.chat_id == ada.user_id
        ]
        assert answers[-1] == (
            f"Réponse à votre demande d'assistance #{ticket.id} :\nEssayez --quality high."
        )
        with pytest.raises(InvalidRequest) as info:
            await core.messages.reply(ticket.id, "  ")
        assert render(info.value.msg, "fr") == "La réponse est vide."
        assert info.value.user_message == "The answer is empty."
        with pytest.raises(InvalidRequest) as refused:
            await core.admin.decide_appeal(OPERATOR, 1, grant=True, reason="x" * 5000)
        assert render(refused.value.msg, "ar").startswith("اجعل السبب أقل من")
    finally:
        await core.aclose()


async def test_a_refused_download_link_speaks_the_browsers_language(
    database: Database, tmp_path: Path
) -> None:
    import aiohttp
    from aiohttp.test_utils import TestServer

    from bot.web.server import build_http_app

    core, _ = await make_core(database, tmp_path)
    server = TestServer(build_http_app(core))
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as http:
            for header, words in (
                ("uk-UA,uk;q=0.9,en;q=0.5", "Це посилання недійсне."),
                ("zz, de;q=0.5", "Dieser Link ist ungültig."),
                ("en-GB", "This link is not valid."),
                ("", "This link is not valid."),
            ):
                async with http.get(
                    f"{base}/files/not-a-token", headers={"Accept-Language": header}
                ) as resp:
                    if resp.status == 404:
                        continue  # no download links without a public address
                    assert resp.status == 403
                    assert resp.content_type == "text/html"
                    page = await resp.text()
                    assert f"<title>{words}</title>" in page, header
                    assert f"<p>{words}</p>" in page, header
                # An export link of the old scheme: gone, said in the browser's language.
                async with http.get(
                    f"{base}/exports/not-a-token", headers={"Accept-Language": header}
                ) as resp:
                    assert resp.status == 410
                    if header.startswith("uk"):
                        assert '<html lang="uk">' in await resp.text()
    finally:
        await server.close()
        await core.aclose()
