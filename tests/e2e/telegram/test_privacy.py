"""Privacy self-service through Telegram (P07–P13, P15, P22, P25, P26): /privacy with its
switches, /export, /delete_my_data, /appeal, /feedback and /support, on both databases."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

from sqlalchemy import text

from core.types import Conversation, GenerateOptions, GenerateRequest, ReplyTarget
from storage.database import Database
from tests.e2e.telegram.conftest import TelegramHarness, launch
from tests.fakes.telegram_server import BotCall, FakeTelegram


async def _imagine(telegram: TelegramHarness, person_chat: int, say: object, prompt: str) -> None:
    mark = telegram.mark()
    say(f"/imagine {prompt} --quality low")  # type: ignore[operator]
    await telegram.result(person_chat, after=mark)


def _private(chat_id: int) -> Conversation:
    return Conversation("telegram", str(chat_id), is_private=True)


async def _rows(db: Database, sql: str, **params: object) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


def _button(call: BotCall | dict[str, object], starts: str) -> str:
    markup = call.params.get("reply_markup") if isinstance(call, BotCall) else call["reply_markup"]
    assert isinstance(markup, dict)
    for row in markup["inline_keyboard"]:
        for button in row:
            if button["text"].startswith(starts):
                return str(button.get("callback_data") or button.get("url"))
    raise AssertionError(f"no button starting {starts!r}")


async def test_P13_privacy_shows_the_configured_periods_and_the_policy(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(
        database,
        tmp_path,
        fake_telegram,
        retention='{"images_and_prompts": 180, "reference_uploads": 14, "exports": 2}',
        policy_url="https://example.org/privacy?v=3&lang=en",
        policy_version="3",
        policy_effective_date="2026-03-01",
    )
    try:
        fake = telegram.fake
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/privacy")
        answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        shown = fake.message(ada.chat.id, answer.result["message_id"])
        assert shown is not None
        body = shown["text"]
        assert "Generated images and their prompts: 6 months" in body
        assert "Reference images you send for edits: 14 days" in body
        assert "Data exports you asked for: 2 days" in body
        assert "Refused requests (safety records): 3 months" in body  # a default
        assert "version 3, effective 2026-03-01" in body
        assert 'href="https://example.org/privacy?v=3&amp;lang=en"' in answer.text
        assert "Your stored name: <b>Ada</b>" in answer.text
        labels = [label for label, _ in answer.buttons()]
        assert labels[:3] == [
            "⬜ Model improvement: off (turn on)",
            "⬜ Product updates: off (turn on)",
            "⬜ Usage analytics: off (turn on)",
        ]
    finally:
        await telegram.stop()


async def test_P10_each_switch_takes_effect_at_once(telegram: TelegramHarness) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/privacy")
    answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    message = answer.result

    for name, label in (
        ("training_opt_in", "⬜ Model improvement"),
        ("product_updates", "⬜ Product updates"),
        ("usage_analytics", "⬜ Usage analytics"),
    ):
        current = fake.message(ada.chat.id, message["message_id"])
        assert current is not None
        reply = await fake.wait_answer(ada.press(current, _button(current, label)))
        assert reply["text"].endswith(": on")
        overview = await core.privacy.overview(ada.actor, _private(ada.chat.id))
        assert getattr(overview.consents, name) is True

    # The message was redrawn in place: every switch shows on, and turns off again.
    current = fake.message(ada.chat.id, message["message_id"])
    assert current is not None
    assert "Usage analytics: <b>on</b>" in fake.html[(ada.chat.id, message["message_id"])]
    await fake.wait_answer(ada.press(current, _button(current, "✅ Usage analytics")))
    overview = await core.privacy.overview(ada.actor, _private(ada.chat.id))
    assert overview.consents.usage_analytics is False
    assert overview.consents.training_opt_in is True
    # Each change is in the requests log.
    kinds = [r.kind for r in await core.privacy.requests(ada.actor, _private(ada.chat.id))]
    assert kinds.count("consent:usage_analytics") == 2


async def test_P09_the_stored_name_is_refreshed_or_cleared(telegram: TelegramHarness) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    mark = telegram.mark()
    ada.say("/privacy")
    answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)

    ada.user.first_name = "Augusta <Ada>"  # changed on Telegram since
    reply = await fake.wait_answer(ada.press(answer.result, _button(answer, "🔄")))
    assert reply["text"] == "Your stored name and language were refreshed from Telegram."
    overview = await core.privacy.overview(ada.actor, _private(ada.chat.id))
    assert overview.display_name == "Augusta <Ada>"
    html = fake.html[(ada.chat.id, answer.result["message_id"])]
    assert "Your stored name: <b>Augusta &lt;Ada&gt;</b>" in html

    current = fake.message(ada.chat.id, answer.result["message_id"])
    assert current is not None
    reply = await fake.wait_answer(ada.press(current, _button(current, "🧹")))
    assert reply["text"] == "Your stored name was cleared."
    overview = await core.privacy.overview(ada.actor, _private(ada.chat.id))
    assert overview.display_name == ""


async def test_P11_broadcast_skips_users_who_opted_out(telegram: TelegramHarness) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person("Ada")
    bob = await telegram.person("Bob")
    mark = telegram.mark()
    ada.say("/privacy")
    answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    await fake.wait_answer(ada.press(answer.result, _button(answer, "⬜ Product updates")))

    mark = telegram.mark()
    assert await core.messages.broadcast("New: <b>transparent</b> backgrounds!") == 1
    sent = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "New: &lt;b&gt;transparent&lt;/b&gt; backgrounds!" in sent.text  # escaped
    assert "/privacy turns them off" in sent.text
    assert all("transparent" not in c.text for c in fake.calls_of("sendMessage", bob.chat.id))


async def test_P07_export_is_a_signed_link_when_one_can_be_given_else_a_zip_document(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(database, tmp_path, fake_telegram, public_url="https://bot.example.net")
    try:
        fake, core = telegram.fake, telegram.core
        assert core.downloads is not None
        ada = await telegram.person()
        await _imagine(telegram, ada.chat.id, ada.say, "a lighthouse at dusk")
        mark = telegram.mark()
        ada.say("/feedback the sheet view is lovely")
        await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)

        # With a public address: a signed link (URL button), the ZIP never sent as bytes.
        mark = telegram.mark()
        ada.say("/export")
        link = await fake.wait_call(
            "sendMessage", chat_id=ada.chat.id, after=mark, where=lambda c: "MB" in c.text
        )
        assert "24 hours" in link.text
        url = dict(link.buttons())["⬇️ Download my data"]
        assert url.startswith("https://bot.example.net/files/")
        path, name = await core.downloads.open(url.rsplit("/", 1)[-1])
        assert name.endswith(".zip") and path.startswith("users/")
        data = b"".join([chunk async for chunk in core.files.stream(path)])
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            jobs = json.loads(archive.read("jobs.json"))
            assert [job["prompt"] for job in jobs] == ["a lighthouse at dusk"]
        assert not [c for c in fake.calls[mark:] if c.method == "sendDocument"]

        # Without one (and a local store): the ZIP as a document, as before.
        core.downloads.public_url = None
        mark = telegram.mark()
        ada.say("/export")
        document = await fake.wait_call("sendDocument", chat_id=ada.chat.id, after=mark)
        upload = document.files["document"]
        assert upload.filename.startswith("imagebot-data-") and upload.filename.endswith(".zip")
        assert "README.txt" in document.text
        with zipfile.ZipFile(io.BytesIO(upload.data or b"")) as archive:
            names = archive.namelist()
            assert {"README.txt", "profile.json", "jobs.json", "ledger.json"} <= set(names)
            feedback = json.loads(archive.read("feedback_and_support.json"))
            assert feedback[0]["text"] == "the sheet view is lovely"
            images = [n for n in names if n.startswith("images/")]
            assert images and all(archive.read(n) for n in images)

        # Too big to send and no link to give: said plainly, nothing half-sent.
        telegram.adapter.runtime.document_limit = 1_000
        mark = telegram.mark()
        ada.say("/export")
        refusal = await fake.wait_call(
            "sendMessage", chat_id=ada.chat.id, after=mark, where=lambda c: "operator" in c.text
        )
        assert "download address" in refusal.text
        assert not [c for c in fake.calls[mark:] if c.method == "sendDocument"]
    finally:
        await telegram.stop()


async def test_P08_delete_my_data_asks_then_erases_everything_with_a_receipt(
    telegram: TelegramHarness, database: Database
) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    await _imagine(telegram, ada.chat.id, ada.say, "a secret garden")
    page = await core.history.page(ada.actor)
    stored = Path(core.files.absolute(page.items[0].outputs[0].path))
    assert stored.exists()

    # "Keep my data" changes nothing.
    mark = telegram.mark()
    ada.say("/delete_my_data")
    question = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "permanently erases" in question.text
    await fake.wait_answer(ada.press(question.result, _button(question, "Keep my data")))
    assert (await core.history.page(ada.actor)).total == 1

    mark = telegram.mark()
    ada.say("/delete_my_data")
    question = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    answer = await fake.wait_answer(ada.press(question.result, _button(question, "🗑 Erase")))
    assert answer["text"] == "Erased."
    receipt = fake.message(ada.chat.id, question.result["message_id"])
    assert receipt is not None
    assert receipt["text"].startswith("🗑 Done. On ") and "Request number" in receipt["text"]
    assert "reply_markup" not in receipt or not receipt["reply_markup"]
    assert await core.credits.user_for(ada.actor) is None
    assert not stored.exists()
    assert await _rows(database, "SELECT count(*) FROM jobs WHERE prompt = 'a secret garden'") == 0

    # The same account later starts as a new user: the terms again.
    mark = telegram.mark()
    ada.say("/imagine a fox")
    await fake.wait_for(
        lambda: any("13 or older" in c.text for c in fake.calls_of(None, ada.chat.id)[-3:]),
        what="the terms",
    )
    assert (await core.history.page(ada.actor)).total == 0


async def test_P12_group_pointer_and_a_refused_erasure_can_be_appealed(
    telegram: TelegramHarness, database: Database
) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person()
    group = fake.group()
    for command in ("/privacy", "/export", "/delete_my_data", "/appeal 1 why"):
        mark = telegram.mark()
        ada.say(command, chat=group)
        pointer = await fake.wait_call("sendMessage", chat_id=group.id, after=mark)
        assert "works in a private chat" in pointer.text
    assert await _rows(database, "SELECT count(*) FROM privacy_requests") == 0

    # An open payment dispute: the erasure is refused, says why and how to appeal.
    user_id = await core.credits.user_for(ada.actor)
    async with database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE credit_accounts SET frozen = TRUE WHERE user_id = :u"), {"u": user_id}
        )
    mark = telegram.mark()
    ada.say("/delete_my_data")
    question = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    await fake.wait_answer(ada.press(question.result, _button(question, "🗑 Erase")))
    refused = fake.message(ada.chat.id, question.result["message_id"])
    assert refused is not None
    assert "payment dispute is open" in refused["text"]
    logged = await core.privacy.requests(ada.actor, _private(ada.chat.id))
    assert logged[0].kind == "erase" and logged[0].status == "refused"
    assert logged[0].completed_at is not None
    assert f"/appeal {logged[0].id}" in refused["text"]
    assert await core.credits.user_for(ada.actor) == user_id

    mark = telegram.mark()
    ada.say("/appeal")
    usage = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "request number" in usage.text

    mark = telegram.mark()
    ada.say(f"/appeal {logged[0].id} the dispute was settled <yesterday>")
    done = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert f"appeal of request #{logged[0].id}" in done.text
    appeals = await core.privacy.open_appeals()
    assert [a.appeal_text for a in appeals] == ["the dispute was settled <yesterday>"]

    mark = telegram.mark()
    ada.say("/appeal 999 not mine")
    wrong = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    assert "no refused request of yours" in wrong.text


async def test_P25_a_banned_user_can_erase_and_a_blocked_user_keeps_their_data(
    telegram: TelegramHarness,
) -> None:
    fake, core = telegram.fake, telegram.core
    ada = await telegram.person("Ada")
    bob = await telegram.person("Bob")
    user_id = await core.credits.user_for(ada.actor)
    assert user_id is not None
    await core.safety.set_ban(user_id, by="cli:test", reason="abuse", hours=None)
    mark = telegram.mark()
    ada.say("/imagine a fox")
    refused = await fake.wait_call(
        "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "may not" in c.text
    )
    assert "privacy commands keep working" in refused.text
    mark = telegram.mark()
    ada.say("/delete_my_data")
    question = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
    await fake.wait_answer(ada.press(question.result, _button(question, "🗑 Erase")))
    assert await core.credits.user_for(ada.actor) is None

    # Bob blocks the bot while a job of his is queued: it still runs and is kept.
    await _imagine(telegram, bob.chat.id, bob.say, "first picture")
    before = await bob.balance()
    fake.block(bob.chat.id)
    submitted = await core.generation.submit(
        GenerateRequest(
            actor=bob.actor,
            conversation=_private(bob.chat.id),
            prompt="second picture",
            options=GenerateOptions(quality="low"),
            idempotency_key="test:p25",
            reply_target=ReplyTarget("telegram", str(bob.chat.id), extra={"owner": str(bob.id)}),
        )
    )
    await fake.wait_for(
        lambda: any(
            c.method == "sendPhoto" and c.status == 403 for c in fake.calls_of(None, bob.chat.id)
        ),
        what="a refused delivery",
    )
    for _ in range(100):
        job = await core.generation.job(bob.actor, submitted.job.id)
        if job.state.value != "delivering":
            break
        await asyncio.sleep(0.05)
    assert job.state.value == "succeeded"
    assert (await core.history.page(bob.actor)).total == 2
    assert await bob.balance() == before - job.cost
    assert await core.credits.user_for(bob.actor) is not None


async def test_P26_feedback_and_support_reach_the_operators_chat_and_are_erased(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    operators = fake_telegram.group("Operators")
    telegram = await launch(
        database, tmp_path, fake_telegram, support_chat=f"telegram:{operators.id}"
    )
    try:
        fake, core = telegram.fake, telegram.core
        ada = await telegram.person()
        mark = telegram.mark()
        ada.say("/feedback")
        usage = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "Write /feedback followed by" in usage.text

        for kind, body in (("feedback", "love the <b>album</b> view"), ("support", "help me")):
            mark = telegram.mark()
            ada.say(f"/{kind} {body}")
            forwarded = await fake.wait_call("sendMessage", chat_id=operators.id, after=mark)
            assert forwarded.text.startswith(f"{kind.title()} #")
            assert body.replace("<", "&lt;").replace(">", "&gt;") in forwarded.text
            thanks = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
            assert f"Your {kind} #" in thanks.text and "reached the operators" in thanks.text

        # An operator answers the support message: it reaches Ada privately.
        ticket = await _rows(database, "SELECT max(id) FROM feedback_messages")
        mark = telegram.mark()
        await core.messages.reply(ticket, "Try /export again")
        answer = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        assert "Try /export again" in answer.text

        mark = telegram.mark()
        ada.say("/delete_my_data")
        question = await fake.wait_call("sendMessage", chat_id=ada.chat.id, after=mark)
        await fake.wait_answer(ada.press(question.result, _button(question, "🗑 Erase")))
        assert await _rows(database, "SELECT count(*) FROM feedback_messages") == 0
    finally:
        await telegram.stop()


async def test_P22_a_policy_change_is_shown_before_the_next_imagine(
    database: Database, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    telegram = await launch(database, tmp_path, fake_telegram, policy_version="1")
    ada = await telegram.person()
    await _imagine(telegram, ada.chat.id, ada.say, "before the change")
    await telegram.stop()

    # The operator publishes version 2 and restarts.
    telegram = await launch(
        database,
        tmp_path,
        fake_telegram,
        policy_version="2",
        policy_effective_date="2026-06-01",
    )
    try:
        fake, core = telegram.fake, telegram.core
        mark = telegram.mark()
        ada.say("/imagine after the change")
        notice = await fake.wait_call(
            "editMessageText", chat_id=ada.chat.id, after=mark, where=lambda c: "changed" in c.text
        )
        assert "Our privacy policy has changed" in notice.text
        assert "version 2, effective 2026-06-01" in notice.text
        assert (await core.history.page(ada.actor)).total == 1  # nothing generated
        current = fake.message(ada.chat.id, notice.result["message_id"])
        assert current is not None
        await fake.wait_answer(ada.press(current, _button(current, "✅")))
        await _imagine(telegram, ada.chat.id, ada.say, "after accepting")
        assert (await core.history.page(ada.actor)).total == 2
    finally:
        await telegram.stop()
