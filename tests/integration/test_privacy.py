"""Privacy promises kept by mechanism, proven by scanning the real schema and disk."""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import String, Text, select, text

from bot.logs import configure_logging
from core.app import Core
from core.errors import InsufficientCredits, InvalidRequest
from core.privacy.service import PrivacyRequestRefused, PrivateChatRequired
from core.types import Announcement, Conversation, Delivered
from storage.database import Database
from storage.schema import Base
from tests.fakes.notifier import RecordingNotifier
from tests.helpers import actor, image_input, make_core, png, request

DM = Conversation("test", "dm-1001", is_private=True)
GROUP = Conversation("test", "group-1", is_private=False)
SECRET_PROMPT = "zebracorn-7f3a grazing on a neon meadow"
NAME = "Ada Lovelace"


def user_fk_columns() -> list[tuple[str, str]]:
    """Independently of the code under test: every column referencing users.id."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table.name == "users" for fk in column.foreign_keys):
                found.append((table.name, column.name))
    return found


async def rich_scenario(core: Core, notes: RecordingNotifier) -> None:
    """Generations, an edit with references, settings, consents, feedback, support."""
    who = actor()
    first = await core.generation.submit(request(who, SECRET_PROMPT))
    edit = await core.generation.submit(
        request(who, f"{SECRET_PROMPT}, watercolor", inputs=(image_input(png(80, 60)),))
    )
    await core.worker.run_until_idle()
    for sub in (first, edit):
        assert isinstance(await notes.wait_final(sub.job.id), Delivered)
    await core.users.update_settings(who, quality="high", size="1536x1024")
    await core.privacy.set_consent(who, DM, "training_opt_in", True)
    await core.privacy.set_consent(who, DM, "product_updates", True)
    await core.messages.submit(who, "feedback", f"love it {SECRET_PROMPT}")
    ticket = await core.messages.submit(who, "support", "my image looks odd")
    await core.messages.reply(ticket.id, "we are looking into it")


async def test_P07_export_contains_every_row_and_every_file(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path, support_chat="test:operators")
    try:
        await rich_scenario(core, notes)
        result = await core.privacy.export(actor(), DM)
        with zipfile.ZipFile(io.BytesIO(Path(result.absolute_path).read_bytes())) as zf:
            names = set(zf.namelist())
            docs = {n: json.loads(zf.read(n)) for n in names if n.endswith(".json")}
            readme = zf.read("README.txt").decode()
        # Every row of every table that references the user is in the export.
        stored_as = dict(
            (m.group(2), m.group(1))
            for m in re.finditer(r"^  (\S+)\.json  \(\d+ rows; stored as '(\w+)'\)$", readme, re.M)
        )
        async with database.engine.connect() as conn:
            for table_name, column in user_fk_columns():
                table = Base.metadata.tables[table_name]
                rows = (await conn.execute(select(table).where(table.c[column] == 1))).all()
                if not rows:
                    continue
                assert table_name in stored_as, f"{table_name} missing from the export"
                assert len(docs[stored_as[table_name] + ".json"]) == len(rows), table_name
        assert any(SECRET_PROMPT in json.dumps(d) for d in docs.values())
        assert docs["profile.json"][0]["display_name"] == NAME
        kinds = {r["kind"] for r in docs["feedback_and_support.json"]}
        assert kinds == {"feedback", "support"}
        assert any(r.get("reply_text") for r in docs["feedback_and_support.json"])
        # Every stored file of the user is in the export.
        for path in core.files.user_files(1):
            if "/exports/" in path:
                continue
            assert "images/" + path.removeprefix("users/1/") in names, path
        assert "README.txt" in names
    finally:
        await core.aclose()


async def test_P08_erasure_leaves_no_trace(database: Database, tmp_path: Path) -> None:
    core, notes = await make_core(database, tmp_path, support_chat="test:operators")
    try:
        await rich_scenario(core, notes)
        await core.privacy.export(actor(), DM)
        other = await core.generation.submit(request(actor("2", "Someone Else"), "a cat"))
        await core.worker.run_until_idle()
        await notes.wait_final(other.job.id)
        assert core.privacy.erasure_confirmation(DM).action == "erase"

        receipt = await core.privacy.erase(actor(), DM)
        assert "erased" in receipt.text and receipt.files >= 3

        async with database.engine.connect() as conn:
            for table_name, column in user_fk_columns():
                table = Base.metadata.tables[table_name]
                left = (await conn.execute(select(table).where(table.c[column] == 1))).all()
                assert left == [], f"{table_name}.{column} still names the user"
            for table in Base.metadata.sorted_tables:
                columns = [c for c in table.columns if isinstance(c.type, String | Text)]
                for row in (await conn.execute(select(*columns))).all() if columns else []:
                    for value in row:
                        assert not (isinstance(value, str) and "zebracorn" in value), table.name
                        assert not (isinstance(value, str) and NAME in value), table.name
            kept = (
                await conn.execute(
                    text("SELECT COUNT(*) FROM ledger_entries WHERE user_id IS NULL")
                )
            ).scalar()
            assert kept and kept > 0  # the ledger rows stay for tax, unlinked
        assert not (core.files.user_dir(1)).exists()  # type: ignore[attr-defined]
        someone = await core.users.register(actor("2", "Someone Else"))
        assert core.files.user_files(someone.id)  # nobody else lost anything
        if database.is_sqlite:
            raw = b""
            db_file = Path(database.url.split("///", 1)[1])
            for f in db_file.parent.glob(db_file.name + "*"):
                raw += f.read_bytes()
            assert b"zebracorn" not in raw and NAME.encode() not in raw
        # The same account starts again as a new user, without a second welcome grant
        # (issue 12: free credits are given once per platform account).
        with pytest.raises(InsufficientCredits):
            await core.generation.submit(request(actor(), "a fresh start"))
        assert await core.users.register(actor())
    finally:
        await core.aclose()


async def test_P12_privacy_requests_only_in_private_logged_and_appealable(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        await core.users.register(actor())
        with pytest.raises(PrivateChatRequired):
            await core.privacy.export(actor(), GROUP)
        with pytest.raises(PrivateChatRequired):
            await core.privacy.erase(actor(), GROUP)
        await core.privacy.export(actor(), DM)
        async with database.engine.begin() as conn:  # an open payment dispute
            await conn.execute(text("UPDATE credit_accounts SET frozen = TRUE WHERE user_id = 1"))
        with pytest.raises(PrivacyRequestRefused) as info:
            await core.privacy.erase(actor(), DM)
        assert "dispute" in info.value.user_message and "/appeal" in info.value.user_message
        await core.privacy.appeal(
            actor(), DM, info.value.request_id, "the dispute was my bank's error"
        )
        with pytest.raises(InvalidRequest):
            await core.privacy.appeal(actor("2"), DM, info.value.request_id, "not mine")
        log = await core.privacy.requests(actor(), DM)
        assert [r.kind for r in log] == ["erase", "export"]
        assert log[0].status == "refused" and log[0].appeal_status == "open"
        assert all(r.completed_at is not None and r.received_at for r in log)
        appeals = await core.privacy.open_appeals()
        assert [a.id for a in appeals] == [info.value.request_id]
    finally:
        await core.aclose()


async def test_P10_P11_consents_take_effect_at_once_and_broadcasts_skip_opted_out(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path)
    try:
        for uid in ("1", "2", "3"):
            await core.users.register(actor(uid, f"user {uid}"))
        overview = await core.privacy.overview(actor("1"), DM)
        assert not overview.consents.product_updates  # off by default
        assert not overview.consents.training_opt_in
        await core.privacy.set_consent(actor("1"), DM, "product_updates", True)
        await core.privacy.set_consent(actor("2"), DM, "product_updates", True)
        await core.privacy.set_consent(actor("2"), DM, "product_updates", False)
        sent = await core.messages.broadcast("New: transparent backgrounds!")
        assert sent == 1
        dms = [(t, e) for t, e in notes.events if isinstance(e, Announcement)]
        assert [t.chat_id for t, _ in dms] == ["1"]
        assert "/privacy" in dms[0][1].text and "turn" in dms[0][1].text
        with pytest.raises(InvalidRequest):
            await core.privacy.set_consent(actor("1"), DM, "sell_my_soul", True)
    finally:
        await core.aclose()


async def test_P09_profile_can_be_refreshed_or_cleared(database: Database, tmp_path: Path) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        await core.users.register(actor("1", "Old Name"))
        renamed = await core.privacy.correct_profile(actor("1", "New Name"), DM)
        assert renamed.display_name == "New Name"
        cleared = await core.privacy.correct_profile(actor("1", "New Name"), DM, clear=True)
        assert cleared.display_name == ""
        overview = await core.privacy.overview(actor("1", "New Name"), DM)
        assert overview.display_name == ""
    finally:
        await core.aclose()


async def test_P26_feedback_and_support_reach_operators_and_answers_reach_users(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path, support_chat="test:operators")
    try:
        ticket = await core.messages.submit(actor(), "support", "the bot <b>ignored</b> me")
        assert ticket.forwarded
        to_ops = [(t, e) for t, e in notes.events if t.chat_id == "operators"]
        assert to_ops and "ignored" in to_ops[0][1].text  # type: ignore[union-attr]
        await core.messages.reply(ticket.id, "fixed, sorry")
        to_user = [e for t, e in notes.events if t.chat_id == "1001"]
        assert to_user and "fixed, sorry" in to_user[0].text  # type: ignore[union-attr]
    finally:
        await core.aclose()


async def test_P01_only_a_minimal_profile_is_stored(database: Database, tmp_path: Path) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        await core.users.register(actor())
        async with database.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM users"))).mappings().one()
        personal = {k for k, v in row.items() if isinstance(v, str) and v and not k.endswith("_at")}
        assert personal <= {"platform", "platform_user_id", "display_name", "locale"}
        columns = {c.name for c in Base.metadata.tables["users"].columns}
        assert not columns & {"email", "phone", "avatar", "avatar_url", "photo", "birthdate"}
    finally:
        await core.aclose()


async def test_P14_logs_carry_ids_never_prompts(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("DEBUG")  # the operator's most verbose setting
    caplog.set_level(logging.DEBUG)
    core, notes = await make_core(database, tmp_path)
    try:
        sub = await core.generation.submit(request(prompt=SECRET_PROMPT))
        await core.worker.run_until_idle()
        await notes.wait_final(sub.job.id)
        await core.privacy.export(actor(), DM)
        text_ = "\n".join(r.getMessage() for r in caplog.records)
        assert sub.job.id in text_
        assert "zebracorn" not in text_ and NAME not in text_
    finally:
        await core.aclose()


async def test_P03_training_material_holds_only_opted_in_users(
    database: Database, tmp_path: Path
) -> None:
    core, notes = await make_core(database, tmp_path)
    try:
        yes, no, later = actor("1", "Yes"), actor("2", "No"), actor("3", "Changed Mind")
        subs = [
            await core.generation.submit(request(who, f"picture by {who.user_id}"))
            for who in (yes, no, later)
        ]
        await core.worker.run_until_idle()
        for sub in subs:
            await notes.wait_final(sub.job.id)
        await core.privacy.set_consent(yes, DM, "training_opt_in", True)
        await core.privacy.set_consent(later, DM, "training_opt_in", True)
        await core.privacy.set_consent(later, DM, "training_opt_in", False)
        material = await core.privacy.training_material()
        assert [prompt for _, prompt, _ in material] == ["picture by 1"]
        assert all(paths for _, _, paths in material)
    finally:
        await core.aclose()


async def test_P07_signed_export_link_is_single_user_and_expires(
    database: Database, tmp_path: Path
) -> None:
    """Export links use the one download signing scheme (``/files/<token>``, bound to
    the user and the file) with the export's 24-hour validity."""
    import base64

    from core.clock import ManualClock
    from core.files import EXPORT_LINK_SECONDS, LinkRefused

    clock = ManualClock()
    core, notes = await make_core(
        database, tmp_path, clock=clock, public_url="https://bot.example.org"
    )
    try:
        assert core.downloads is not None
        sub = await core.generation.submit(request())
        await core.worker.run_until_idle()
        await notes.wait_final(sub.job.id)
        mine = await core.privacy.export(actor(), DM)
        link = await core.privacy.export_link(actor(), mine)
        assert link.startswith("https://bot.example.org/files/")
        token = link.rsplit("/", 1)[1]
        path, name = await core.downloads.open(token)
        assert path == mine.path and name.endswith(".zip")
        data = b"".join([c async for c in core.files.stream(path)])
        assert data.startswith(b"PK")
        # Someone else's export cannot be linked by this user, nor a link altered.
        await core.users.register(actor("2"))
        with pytest.raises(InvalidRequest):
            await core.privacy.export_link(actor("2"), mine)
        payload, signature = token.split(".")
        forged_payload = (
            base64.urlsafe_b64decode(payload + "==")
            .decode()
            .replace("users/1/", "users/2/")
            .replace("[1,", "[2,", 1)
        )
        forged = base64.urlsafe_b64encode(forged_payload.encode()).decode().rstrip("=")
        with pytest.raises(LinkRefused):
            await core.downloads.open(f"{forged}.{signature}")
        with pytest.raises(LinkRefused):
            await core.downloads.open(f"{payload}.{'0' * 64}")
        # Valid for the export's day, not the images' minutes.
        clock.advance(seconds=EXPORT_LINK_SECONDS - 60)
        assert await core.downloads.open(token) == (path, name)
        clock.advance(seconds=61)
        with pytest.raises(LinkRefused) as info:
            await core.downloads.open(token)
        assert info.value.reason == "expired"
    finally:
        await core.aclose()


async def test_P25_erasure_works_with_a_negative_balance(
    database: Database, tmp_path: Path
) -> None:
    core, _ = await make_core(database, tmp_path)
    try:
        user = await core.users.register(actor())
        async with database.engine.begin() as conn:  # a refund took more than was left
            await conn.execute(
                text(
                    "INSERT INTO ledger_entries (user_id, kind, amount, idempotency_key, note, "
                    "created_at) VALUES (:u, 'refund', -50, 'r-1', '', :now)"
                ),
                {"u": user.id, "now": core.clock.now().replace(tzinfo=None)},
            )
            await conn.execute(
                text("UPDATE credit_accounts SET balance = balance - 50 WHERE user_id = :u"),
                {"u": user.id},
            )
        assert (await core.credits.balance(user.id)).spending_blocked
        receipt = await core.privacy.erase(actor(), DM)
        assert receipt.request_id > 0
        assert await core.credits.user_for(actor()) is None
    finally:
        await core.aclose()
