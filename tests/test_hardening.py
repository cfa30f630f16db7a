"""Hardening: faults from Telegram and the database, security properties, and fuzzed input.

Everything goes through the real application and the fake Bot API; the `bot` fixture also checks
that Telegram would have accepted every request the bot made (no rejections).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import CONTENT, BotHarness, Clock, captured_logs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Update
from telegram.ext import TypeHandler
from test_tips import is_tip, tips_of, week_of

from bot.config import Settings
from bot.context import AppContext
from bot.fakeapi import FakeBotAPI, Faults, UserDriver
from bot.store import SQLStore
from bot.store.sqlite import SQLiteDatabase

WEEK = 7 * 24 * 3600
APOLOGY = CONTENT.t("bn", "error")


@pytest.fixture
def log_text(bot: BotHarness) -> Iterator[io.StringIO]:
    """Everything logged at any level, formatted as `ayerpoth run` formats it (secrets redacted)."""
    with captured_logs(bot.settings.secrets()) as out:
        yield out


async def subscribed(bot: BotHarness, name: str, method: str = "stock") -> UserDriver:
    user = bot.user(name)
    await user.send(f"/start {method}")
    await user.press("সাপ্তাহিক টিপস নিন")
    await bot.wait_for(user.id, is_tip)
    return user


def weeks(bot: BotHarness, user: UserDriver) -> list[str]:
    return [week_of(m).split("সপ্তাহ ")[1] for m in tips_of(bot, user)]


# --- faults from Telegram -----------------------------------------------------------------------


async def test_5xx_while_users_tap_gets_answers_or_apologies(bot: BotHarness) -> None:
    users = [bot.user(f"U{i}") for i in range(4)]
    menus = [(await user.send("/start")).last.message_id for user in users]
    bot.api.faults = Faults(error_rate=0.35, seed=11, methods={"sendMessage", "editMessageText"})
    taps = ("list:all", "card:freelancing:all", "sec:freelancing:steps:0:all", "home", "home")
    for user, menu in zip(users, menus, strict=True):
        for data in taps:
            calls = len(bot.api.calls)
            reply = await user.press_data(data, menu)  # the driver checks the tap was answered
            if not reply.shown:  # the screen failed: then an apology, unless that failed too
                failed = [c for c in bot.api.calls[calls:] if c.error_code in (500, 502)]
                assert failed or data == "home", reply.describe()
        calls = len(bot.api.calls)
        reply = await user.send("ইউটিউব")
        assert reply.shown or any(c.error_code for c in bot.api.calls[calls:])
    injected = [c for c in bot.api.calls if c.error_code in (500, 502)]
    assert len(injected) >= 5  # the seed really injected faults
    assert any(m.text == APOLOGY for u in users for m in u.messages)
    bot.api.faults = Faults()
    for user in users:
        assert CONTENT.t("bn", "btn.all") in (await user.send("/start")).last.button_texts()


async def test_429_storm_5xx_timeout_and_blocked_users_still_deliver_every_tip_once(
    bot: BotHarness,
) -> None:
    users = [await subscribed(bot, f"U{i}") for i in range(8)]
    gone = users[:2]
    for user in gone:
        user.user.blocked = True  # blocked without the bot hearing of it
    bot.clock.advance(WEEK)
    bot.api.fail_next("sendMessage", status=429, retry_after=1, count=5)
    bot.api.fail_next("sendMessage", status=502, count=2, chat_id=users[4].id)
    bot.api.fail_next("sendMessage", status=500, chat_id=users[5].id, delay=6)  # a client timeout
    for _ in range(4):
        await bot.dispatch()
        bot.clock.advance(bot.settings.tip_check_seconds)
    for user in users[2:]:
        assert weeks(bot, user) == ["১/১২", "২/১২"], user.first_name
    for user in gone:
        assert weeks(bot, user) == ["১/১২"]
        assert (await bot.store.get_user(user.id)).blocked  # type: ignore[union-attr]
    assert [c.error_code for c in bot.api.calls_to("sendMessage")].count(429) >= 5


# --- faults from the database -------------------------------------------------------------------


async def test_database_locked_by_another_writer_for_two_seconds(bot: BotHarness) -> None:
    users = [bot.user(f"U{i}") for i in range(5)]
    for user in users:
        await user.send("/start youtube")
    other = sqlite3.connect(bot.database_path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock; the bot waits (busy_timeout 5 s)
        taps = [asyncio.create_task(u.press("এই পথ বেছে নিন", timeout=15)) for u in users]
        newcomer = asyncio.create_task(bot.user("New").send("/start", timeout=15))
        await asyncio.sleep(2)
        assert not newcomer.done()  # really held up by the lock
    finally:
        other.rollback()
        other.close()
    for reply in await asyncio.gather(*taps):
        assert reply.callback_answer is not None and "যোগ" in (reply.callback_answer.text or "")
    assert "স্বাগতম" in (await newcomer).text
    for user in users:
        assert [p.method_id for p in await bot.store.list_paths(user.id)] == ["youtube"]  # type: ignore[union-attr]


async def fill_disk(store: SQLStore) -> None:
    """Make the bot's own connection see a full disk: no page may be added, none has room.

    PRAGMA max_page_count caps the file at its current size; filler rows then take the room
    left in the last pages of the tables that grow (deliveries, paths), so the next row there
    fails with SQLITE_FULL ("database or disk is full"), as on a full disk.
    """
    assert isinstance(store.database, SQLiteDatabase)
    db = store.database.writer  # the bot's writing connection
    filler = 2**62  # sorts after every real key, as new rows do
    await db.execute(
        "INSERT INTO users (user_id, first_seen, last_seen) VALUES (?, 0, 0)", (filler,)
    )
    pages = (await db.execute_fetchall("PRAGMA page_count"))[0][0]  # type: ignore[index]
    await db.execute(f"PRAGMA max_page_count = {pages}")
    inserts = (
        "INSERT INTO deliveries (user_id, method_id, position, sent_at, status)"
        " VALUES (:u, :text, 0, :u, 'sent')",
        "INSERT INTO paths (user_id, method_id, chosen_at) VALUES (:u, :text, 0)",
    )
    for sql in inserts:
        n = 0
        for size in (1000, 200, 40, 8, 1):
            while True:
                n += 1
                try:
                    await db.execute(sql, {"u": filler, "text": f"{n:07}" + "x" * size})
                except sqlite3.OperationalError as exc:
                    assert "full" in str(exc)
                    break


async def test_disk_full_apologises_logs_and_delivers_every_tip_afterwards(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    rina = await subscribed(bot, "Rina", "youtube")
    card = (await rina.send("/start stock")).last
    bot.clock.advance(WEEK)
    await fill_disk(bot.store)  # type: ignore[arg-type]

    reply = await rina.press("এই পথ বেছে নিন")  # a new row in paths: cannot be stored
    assert reply.callback_answer is not None and reply.callback_answer.text == APOLOGY
    assert "মূল মেনু" in (await rina.send("/start")).text  # reading still works
    await bot.dispatch()  # the tip goes out, its record cannot be written
    await bot.dispatch()  # nothing new is sent while that record is pending
    assert weeks(bot, rina) == ["১/১৩", "২/১৩"]
    assert any("database or disk is full" in r.getMessage() for r in caplog.records)

    await bot.store.database.writer.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[union-attr]
    bot.clock.advance(301)  # past the lease: had the record been lost, the tip would repeat
    await bot.dispatch()
    bot.clock.advance(WEEK)
    await bot.dispatch()
    assert weeks(bot, rina) == ["১/১৩", "২/১৩", "৩/১৩"]  # each once
    reply = await rina.press("এই পথ বেছে নিন", message=card)
    assert reply.callback_answer is not None and "যোগ" in (reply.callback_answer.text or "")
    await bot.stop()
    with sqlite3.connect(bot.database_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    await bot.start()


# --- security -----------------------------------------------------------------------------------


async def test_the_token_is_in_no_log_line_at_any_level(
    bot: BotHarness, log_text: io.StringIO
) -> None:
    url = f"{bot.settings.bot_api_url}/bot{bot.settings.bot_token}/sendMessage"

    async def boom(update: Update, ctx: AppContext) -> None:
        if update.effective_message and update.effective_message.text == "boom":
            raise RuntimeError(f"POST {url} failed")

    assert bot.app is not None
    bot.app.add_handler(TypeHandler(Update, boom), group=-3)
    user = bot.user("Rahim")
    await user.send("/start")
    assert APOLOGY in [m.text for m in (await user.send("boom")).messages]
    bot.api.fail_next("sendMessage", status=500, chat_id=user.id)
    await user.send("/help")
    text = log_text.getvalue()
    token = bot.settings.bot_token or ""
    assert "Traceback" in text and "[REDACTED]/sendMessage failed" in text
    assert "DEBUG" in text
    assert token not in text and token.split(":")[1] not in text


async def test_html_in_names_and_typed_text_is_escaped_everywhere(bot: BotHarness) -> None:
    name = "<b>x</b>&"
    user = bot.user(name)
    assert name in (await user.send("/start")).text  # the welcome, shown as typed
    query = "<i>zz</i> & <a href='x'>"
    assert query in (await user.send(query)).text  # search: "nothing found for …"
    assert "<b>" in (await user.send("<b>আবহাওয়া</b>")).text  # "no answer about …", escaped
    english = bot.user(name, language_code="en")
    await english.send("/start")
    await english.send("/language")
    await english.send("/start youtube")  # "YouTube & Video Editing": an & in every screen
    await english.press("Choose this path")
    await english.press("Weekly tips")
    for command in ("/tips", "/mydata", "/quiz", "/mypath"):
        reply = await english.send(command)
        assert reply.shown
    assert (await english.press("YouTube", message=reply.last)).shown  # the checklist
    group = bot.api.group(name)
    await group.add_bot(user)
    await group.send(user, "/methods")
    await group.press(user, "YouTube")
    assert bot.api.rejections == []  # and the fixture checks it again at the end


async def test_admin_buttons_forged_by_others_do_nothing(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    menu = (await user.send("/start")).last.message_id
    for data in ("bc:all", "bc:bn", "bc:no", "bc:1:all", "bc:7:bn", "bc:7:no"):
        reply = await user.press_data(data, menu)
        assert reply.callback_answer is not None
        assert reply.callback_answer.text == CONTENT.t("bn", "stale")
    assert await bot.store.unfinished_broadcasts() == []  # type: ignore[union-attr]
    unknown = (await user.send("/nosuchcommand")).text
    for command in ("/stats", "/broadcast", "/stats@AyerPothBot", "/broadcast hello"):
        assert (await user.send(command)).text == unknown


async def test_database_files_are_readable_by_the_owner_only(
    make_settings: Callable[..., Settings], clock: Clock, tmp_path: Path
) -> None:
    old = os.umask(0)  # the loosest umask: nothing may depend on it
    try:
        async with FakeBotAPI() as api:
            database = tmp_path / "new" / "dir" / "bot.sqlite3"
            settings = make_settings(api, DATABASE_URL=f"sqlite:///{database}")
            harness = BotHarness(api, settings, clock, CONTENT)
            await harness.start()
            try:
                await harness.user("Rahim").send("/start")
                files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
                for path in files:
                    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
                assert stat.S_IMODE(database.parent.stat().st_mode) & 0o077 == 0
            finally:
                await harness.stop()
    finally:
        os.umask(old)


# --- fuzz ---------------------------------------------------------------------------------------

BANGLA = "অআইউএওকখগঘচছজঝটঠডঢণতথদধনপফবভমযরলশষসহড়ঢ়য়ৎংঃঁািীুূৃেৈোৌ্০১২৩৪৫৬৭৮৯।"
ODD = "😀👍🏽👨‍👩‍👧🇧🇩\u200d\u200c\ufe0f\u202e\u202d\u200fمرحباשלום<>&\"'\\/:;@#$%{}[]\t\n\r\x00\x01\x1b\x7f"
TEXT = st.text(alphabet=st.sampled_from(BANGLA + ODD + "abcXYZ019 -_."), min_size=1, max_size=80)
LONG = st.sampled_from(["অ" * 4096, "😀" * 2048, "<b>" * 1365 + "x", "a" * 4095 + "\x00"])
COMMANDS = st.sampled_from(
    [
        "/start",
        "/help",
        "/methods",
        "/quiz",
        "/mypath",
        "/tips",
        "/subscribe",
        "/unsubscribe",
        "/stop",
        "/language",
        "/mydata",
        "/forget",
        "/stats",
        "/broadcast",
        "/cancel",
        "/start@AyerPothBot",
        "/nosuch",
    ]
)
PAYLOADS = st.sampled_from(["youtube", "quiz", "mypath", "", "../../etc", "x" * 64, "<b>", "০"])
VALID_DATA = st.sampled_from(
    [
        "home",
        "help",
        "lang",
        "lang:en",
        "lang:bn",
        "path",
        "tips",
        "tips:add",
        "when",
        "when:4",
        "when:4:20",
        "when:9:99",
        "glist",
        "quiz:",
        "quiz:0",
        "quiz:01234",
        "quiz:99999",
        "quiz:result",
        "list:all",
        "list:passive",
        "list:nope",
        "card:youtube:all",
        "card:youtube:find",
        "card:nosuch:all",
        "card:youtube:evil",
        "sec:youtube:steps:0:all",
        "sec:youtube:tips:99:quiz",
        "sec:youtube:nope:0:all",
        "choose:stock:path",
        "path:youtube",
        "path:nosuch",
        "step:youtube:0",
        "step:youtube:62",
        "step:youtube:99",
        "drop:youtube:0",
        "drop:youtube:1",
        "sub:youtube",
        "sub:nosuch",
        "unsub:youtube:0",
        "unsub:youtube:1",
        "tipstep:youtube",
        "tipstep:youtube:0",
        "tipstep:youtube:99",
        "tipstep:nosuch",
        "step:youtube:0:1",
        "step:youtube:3:0:quiz",
        "path:youtube:all",
        "drop:youtube:1:path",
        "bc:1:all",
        "page:safety",
        "page:nope",
        "forget:no",
        "forget:yes",
        "bc:all",
        "bc:no",
        "gcard:youtube",
        "gcard:nosuch",
    ]
)
DATA = st.one_of(VALID_DATA, TEXT, st.just("x" * 65), st.just("card:" + "y" * 200 + ":all"))
ACTION = st.one_of(
    st.tuples(st.just("text"), st.one_of(TEXT, LONG)),
    st.tuples(st.just("command"), st.builds(lambda c, p: f"{c} {p}".strip(), COMMANDS, PAYLOADS)),
    st.tuples(st.just("press"), DATA),
    st.tuples(st.just("press_stale"), DATA),
    st.tuples(st.just("inline"), st.one_of(TEXT, st.just(""))),
    st.tuples(st.sampled_from(["sticker", "photo", "voice", "forward", "edit", "poll"]), TEXT),
    st.tuples(st.just("channel"), TEXT),
    st.tuples(st.just("group"), st.one_of(COMMANDS, TEXT)),
    st.tuples(st.just("group_press"), DATA),
)


class ErrorRecords(logging.Handler):
    """Log records at ERROR or above: an unhandled exception reaches bot.errors as one."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def act(bot: BotHarness, user: UserDriver, other: UserDriver, kind: str, value: str) -> None:
    api = bot.api
    if kind in ("text", "command"):
        await user.send(value)
    elif kind == "press":
        await user.press_data(value, user.last_message.message_id)
    elif kind == "press_stale":
        await user.press_data(value, 9_999)  # a message that is not there (deleted, too old)
    elif kind == "inline":
        await user.inline(value)
    elif kind == "sticker":
        await user.send_sticker(emoji=value[:1])
    elif kind == "photo":
        await user.send_photo(caption=value)
    elif kind == "voice":
        await user.send_voice()
    elif kind == "forward":
        await user.send_forwarded(value)
    elif kind == "edit":
        await user.edit_message(None, value) if user.last_sent else await user.send(value)
    elif kind == "poll":
        option = {"persistent_id": "o1", "text": "a", "voter_count": 0}
        poll = {"id": "1", "question": value, "options": [option], "total_voter_count": 0,
                "is_closed": False, "is_anonymous": True, "type": "regular",
                "allows_multiple_answers": False, "allows_revoting": False,
                "members_only": False}  # fmt: skip
        await api.wait_processed(api.enqueue_update("poll", poll), 5)
    elif kind == "channel":
        await api.channel_post(value)
    else:
        group = api.group("Fuzz")
        await group.add_bot(other)
        if kind == "group":
            await group.send(user, value)
            await group.send(other, "/methods")
        else:  # a tap on a message another member called up
            await group.press_data(user, value, group.last_message.message_id)


@pytest.fixture
def error_records() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTION, min_size=1, max_size=5), english=st.booleans())
async def test_fuzz_hostile_input_never_breaks_the_bot(
    bot: BotHarness, error_records: ErrorRecords, actions: list[tuple[str, str]], english: bool
) -> None:
    """One harness for all examples: each must leave the bot answering a plain /start."""
    error_records.records.clear()
    user = bot.user("Fuzz", language_code="en" if english else "bn")
    other = bot.user("<b>Other</b>")
    await user.send("/start")
    for kind, value in actions:
        await act(bot, user, other, kind, value)  # presses: the driver checks the answer
    bot.clock.advance(1)
    reply = await user.send("/start")
    assert reply.last.buttons  # the menu
    assert [r.getMessage() for r in error_records.records] == []
    assert bot.api.rejections == [], [f"{c.method}: {c.description}" for c in bot.api.rejections]
