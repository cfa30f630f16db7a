"""Data rights and admin commands, through the real bot and the fake Bot API."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable

import pytest
from conftest import BotHarness, Clock, bot_against_fake

from bot.config import Settings
from bot.fakeapi import UserDriver

ADMIN_ID = 10_000_001  # the fake's first private user


async def rich_user(bot: BotHarness) -> UserDriver:
    """A user with something in every table: paths, progress, quiz, tips."""
    user = bot.user("Rahim")
    await user.send("/start youtube")
    await user.press("এই পথ বেছে নিন")
    await user.press("সাপ্তাহিক টিপস নিন")
    # the first tip itself (not the tips screen, which also names week 1)
    await bot.wait_for(user.id, lambda m: " · সপ্তাহ ১/" in m.text.split("\n")[0])
    reply = await user.send("/quiz")
    for _ in bot.library.quiz_questions:
        reply = await user.press(f"^{reply.last.button_texts()[0]}$")
    await user.send("/language")
    return user


async def test_mydata_shows_everything_in_the_users_language(bot: BotHarness) -> None:
    user = await rich_user(bot)
    reply = await user.send("/mydata")
    text = reply.text
    assert "What is stored about you" in text
    assert "Language: English" in text
    assert "YouTube" in text and "0/7 steps done" in text
    assert "Quiz result:" in text and "none" not in text.split("Quiz result:")[1].split("\n")[0]
    assert "Tips sent so far: 1" in text


async def test_forget_deletes_every_row_after_confirming(bot: BotHarness) -> None:
    user = await rich_user(bot)
    reply = await user.send("/forget")
    assert "Really delete" in reply.text
    reply = await user.press("No, keep it")
    assert "Nothing was deleted" in reply.text
    await user.send("/forget")
    reply = await user.press("Yes, delete everything")
    assert "deleted" in reply.text
    await bot.stop()  # then look at every table
    path = bot.database_path
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
            for column in set(columns) & {"user_id", "chat_id", "created_by"}:
                rows = db.execute(
                    f"SELECT count(*) FROM {table} WHERE {column} = ?", (user.id,)
                ).fetchone()
                assert rows[0] == 0, f"{table}.{column} still holds the user"
    await bot.start()


@pytest.fixture
async def admin_bot(
    make_settings: Callable[..., Settings], clock: Clock
) -> AsyncIterator[BotHarness]:
    async with bot_against_fake(make_settings, clock, ADMIN_IDS=str(ADMIN_ID)) as harness:
        yield harness


async def test_admin_commands_look_unknown_to_everyone_else(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    await user.send("/start")
    unknown = (await user.send("/nosuchcommand")).text
    assert (await user.send("/stats")).text == unknown
    assert (await user.send("/broadcast")).text == unknown


async def test_stats_in_bangla_digits(admin_bot: BotHarness) -> None:
    admin = admin_bot.user("Admin")
    assert admin.id == ADMIN_ID
    await admin.send("/start")
    for i in range(11):
        other = admin_bot.user(f"U{i}")
        await other.send("/start freelancing")
        await other.press("এই পথ বেছে নিন")
    reply = await admin.send("/stats")
    assert "ব্যবহারকারী: ১২" in reply.text
    assert "ফ্রিল্যান্সিং ১১" in reply.text


async def test_broadcast_preview_confirm_and_report(admin_bot: BotHarness) -> None:
    admin = admin_bot.user("Admin")
    await admin.send("/start")
    bangla = [admin_bot.user(f"B{i}") for i in range(3)]
    english = admin_bot.user("E", language_code="en")
    for user in bangla:
        await user.send("/start")
    await english.send("/start")
    await english.send("/language")
    gone = admin_bot.user("Gone")
    await gone.send("/start")
    gone.user.blocked = True  # blocked the bot without it knowing yet

    await admin.send("/broadcast")
    reply = await admin.send("নতুন টিপস আসছে <শীঘ্রই>!")
    assert reply.messages[0].text == "নতুন টিপস আসছে <শীঘ্রই>!"  # the preview, exactly as it will go
    reply = await admin.press("শুধু বাংলা")
    assert "জনের কাছে পাঠানো শুরু" in reply.text
    report = await admin_bot.wait_for(admin.id, lambda m: "ব্রডকাস্ট শেষ" in m.text)
    assert "পাঠানো ৪" in report.text and "বট ব্লক করেছেন ১" in report.text  # 3 users + the admin
    for user in bangla:
        assert any(m.text == "নতুন টিপস আসছে <শীঘ্রই>!" for m in admin_bot.api.sent_to(user.id))
    assert not any("শীঘ্রই" in m.text for m in admin_bot.api.sent_to(english.id))


async def test_broadcast_can_be_cancelled(admin_bot: BotHarness) -> None:
    admin = admin_bot.user("Admin")
    await admin.send("/start")
    await admin.send("/broadcast")
    reply = await admin.send("/cancel")
    assert "বাতিল" in reply.text
    reply = await admin.send("ইউটিউব")  # back to normal: free text is a search again
    assert "YouTube" in reply.text.splitlines()[0]
