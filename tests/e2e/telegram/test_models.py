"""Choosing a model on Telegram (issue 14): /settings buttons, --model inline, the model in
the quote, the history and the price table in /help, against the OpenAI fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.database import Database
from tests.e2e.telegram.conftest import launch
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram


async def test_model_chosen_in_settings_and_inline_with_prices_in_help(
    sqlite_only: Database, tmp_path: Path, fake_telegram: FakeTelegram, openai_fake: FakeOpenAI
) -> None:
    telegram = await launch(
        sqlite_only,
        tmp_path,
        fake_telegram,
        image_provider="openai",
        openai_api_key="sk-test-telegram-models-1",
        openai_base_url=openai_fake.base_url,
        models="gpt-image-2,gpt-image-1-mini",
        provider_max_retries=0,
    )
    fake, core = telegram.fake, telegram.core
    try:
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/help")
        help_call = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "Models and prices" in help_call.text
        assert "GPT Image 1 mini (<code>gpt-image-1-mini</code>): low 1 · medium 2" in (
            help_call.text
        )

        mark = telegram.mark()
        ada.say("/settings")
        shown = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "Model: <b>default</b>" in shown.text
        message = shown.result
        buttons = {
            b["text"]: b["callback_data"]
            for row in message["reply_markup"]["inline_keyboard"]
            for b in row
        }
        await fake.wait_answer(ada.press(message, buttons["Change model"]))
        current = fake.message(ada.chat.id, message["message_id"])
        assert current is not None
        choices = [b["text"] for row in current["reply_markup"]["inline_keyboard"] for b in row]
        assert choices[:3] == ["gpt-image-2", "gpt-image-1-mini", "default"]
        data = next(
            b["callback_data"]
            for row in current["reply_markup"]["inline_keyboard"]
            for b in row
            if b["text"] == "gpt-image-1-mini"
        )
        answer = await fake.wait_answer(ada.press(current, data))
        assert answer["text"] == "Model: gpt-image-1-mini"
        assert (await core.users.settings(ada.actor)).model == "gpt-image-1-mini"

        mark = telegram.mark()
        ada.say("/imagine a fox on my model --quality high")
        await telegram.result(ada.chat.id, after=mark)
        # The quote is coalesced away when the worker starts first; when shown, it names
        # the model (the model itself is checked on the provider's side below).
        for quote in quotes(fake, ada.chat.id, mark):
            assert "cost 4 credits, gpt-image-1-mini" in quote

        mark = telegram.mark()
        ada.say("/imagine a fox on the best model --model gpt-image-2 --quality low")
        await telegram.result(ada.chat.id, after=mark)
        for quote in quotes(fake, ada.chat.id, mark):
            assert "gpt-image-2" in quote
        assert [r.get("model") for r in openai_fake.image_requests] == [
            "gpt-image-1-mini",
            "gpt-image-2",
        ]

        mark = telegram.mark()
        ada.say("/imagine nope --model dall-e-9")
        refused = await fake.wait_for(
            lambda: next((c for c in fake.calls[mark:] if "dall-e-9" in c.text), None),
            what="the refusal",
        )
        assert "dall-e-9" in refused.text and "gpt-image-2, gpt-image-1-mini" in refused.text
        assert len(openai_fake.image_requests) == 2

        mark = telegram.mark()
        ada.say("/history")
        sheet = await fake.wait_call("sendPhoto", chat_id=ada.chat.id, after=mark)
        assert "gpt-image-2" in sheet.text and "gpt-image-1-mini" in sheet.text
    finally:
        await telegram.stop()


def quotes(fake: Any, chat_id: int, mark: int) -> list[str]:
    """The queue quotes (position, cost, model) shown in ``chat_id`` since ``mark``."""
    return [
        c.text
        for c in fake.calls[mark:]
        if c.method == "editMessageText" and c.chat_id == chat_id and "queued" in c.text
    ]
