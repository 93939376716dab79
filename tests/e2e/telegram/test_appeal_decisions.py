"""Operators decide privacy appeals through Telegram (P12; issue 18, item 10): ``/admin
appeal N grant|deny REASON``, audited, the user told in a DM; anyone else sees an
unknown command. SQLite (the core verb runs on both databases in
tests/integration/test_appeal_decisions.py)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from core.types import Conversation
from storage.database import Database
from tests.e2e.telegram.conftest import Person, TelegramHarness
from tests.e2e.telegram.test_admin import ask, audit_rows, with_operator
from tests.fakes.telegram_server import FakeTelegram


async def refused_erasure_appealed(telegram: TelegramHarness, ada: Person, db: Database) -> int:
    """Ada's erasure is refused during a dispute; she appeals; returns the request number."""
    user_id = await telegram.core.credits.user_for(ada.actor)
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE credit_accounts SET frozen = TRUE WHERE user_id = :u"), {"u": user_id}
        )
    with_question = await ask(telegram, ada, "/delete_my_data")
    data = telegram.button(with_question, "ey:")
    await telegram.fake.wait_answer(ada.press(with_question.result, data))
    private = Conversation("telegram", str(ada.chat.id), is_private=True)
    number = (await telegram.core.privacy.requests(ada.actor, private))[0].id
    await ask(telegram, ada, f"/appeal {number} the dispute was my bank's error")
    return number


async def test_P12_an_operator_decides_an_appeal_in_telegram(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram, olga = await with_operator(sqlite_only, tmp_path, fake_telegram)
    try:
        fake, core = telegram.fake, telegram.core
        ada = await telegram.person("Ada")
        number = await refused_erasure_appealed(telegram, ada, sqlite_only)

        # Ada cannot decide her own appeal: /admin does not exist for her.
        unknown = await ask(telegram, ada, "/frobnicate")
        mine = await ask(telegram, ada, f"/admin appeal {number} grant please")
        assert mine.params == unknown.params
        # Mistakes are explained.
        usage = await ask(telegram, olga, f"/admin appeal {number} maybe because")
        assert "/admin appeal NUMBER grant|deny REASON" in usage.text
        huge = await ask(telegram, olga, "/admin appeal 999999999999 deny no")
        assert "no open appeal" in huge.text

        mark = telegram.mark()
        answer = await ask(telegram, olga, f"/admin appeal {number} deny The chargeback is open.")
        assert f"Appeal #{number} denied" in answer.text and "direct message" in answer.text
        told = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "upheld the refusal" in told.text and "The chargeback is open." in told.text
        again = await ask(telegram, olga, f"/admin appeal {number} grant changed my mind")
        assert "no open appeal" in again.text

        # Appealed again, and granted: the erasure is carried out and Ada gets the receipt.
        await ask(telegram, ada, f"/appeal {number} it really was withdrawn")
        mark = telegram.mark()
        answer = await ask(telegram, olga, f"/admin appeal {number} grant The bank confirmed.")
        assert "granted" in answer.text and "erased" in answer.text
        told = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "granted" in told.text and "Request number" in told.text
        assert await core.credits.user_for(ada.actor) is None
        actions = [a for _, a in await audit_rows(sqlite_only) if a.startswith("appeal_")]
        assert actions == ["appeal_deny", "appeal_grant"]
    finally:
        await telegram.stop()
