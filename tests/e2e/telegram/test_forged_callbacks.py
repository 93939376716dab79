"""Forged callback data (P19): decoding never fails, and no forged press ever acts on
another user's job, reveals it, or moves their credits."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.telegram import callbacks
from tests.e2e.telegram.conftest import TelegramHarness


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_decoding_any_callback_data_never_raises(data: str) -> None:
    decoded = callbacks.decode(data)
    if decoded is not None:
        assert decoded.action in callbacks.ACTIONS
        assert isinstance(decoded.owner, int) and decoded.index >= 0


actions = st.sampled_from(sorted(callbacks.ACTIONS))


async def test_P19_forged_presses_never_touch_another_users_job(
    telegram_sqlite: TelegramHarness,
) -> None:
    telegram = telegram_sqlite
    fake, core = telegram.fake, telegram.core
    ada, mallory = await telegram.person(), await telegram.person("Mallory")
    mark = telegram.mark()
    ada.say("/imagine a secret garden --quality low")
    result = await telegram.result(ada.chat.id, after=mark)
    job = (await core.history.page(ada.actor)).items[0]
    ada_balance = await ada.balance()
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        action=actions,
        index=st.integers(0, 5),
        arg=st.text("abc0123:-", max_size=6),
        owner_is_mallory=st.booleans(),
    )
    def forge(action: str, index: int, arg: str, owner_is_mallory: bool) -> None:
        owner = mallory.id if owner_is_mallory else ada.id
        data = f"{action}:{owner}:{job.id}:{index}:{arg}"[:64]
        asyncio.run_coroutine_threadsafe(press(data), loop).result(timeout=30)

    async def press(data: str) -> None:
        mark = telegram.mark()
        answer = await fake.wait_answer(fake.press(mallory.user, result.result, data, check=False))
        assert "secret garden" not in str(answer.get("text"))
        for call in fake.calls[mark:]:
            if call.params.get("chat_id") in (mallory.chat.id, str(mallory.chat.id)):
                assert "secret garden" not in call.text
                assert not call.files, f"{call.method} sent Mallory a file"

    await asyncio.to_thread(forge)
    await asyncio.sleep(0.5)
    after = (await core.history.page(ada.actor)).items
    assert [j.id for j in after] == [job.id]
    assert after[0].state.value == "succeeded" and after[0].outputs == job.outputs
    assert await ada.balance() == ada_balance
    # Mallory may only have acted on herself (a forged "erase" with her own id erases her
    # own account, as /delete_my_data would): never on Ada.
