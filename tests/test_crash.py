"""Crashes: the real `ayerpoth run` process killed with SIGKILL mid-dispatch and mid-burst of taps.

The bot runs in a child process against the fake Bot API in this one (which therefore cannot
see when the bot has finished an update: `track_processing=False`). Restarted on the same
database, it must lose no tip and keep every user's language, path, progress and subscription.

The duplicate bound: a tip is sent, then recorded in one transaction. Only a message that left
the bot but was not recorded yet is sent again after a crash, and the dispatcher has at most
`bot.outbox.dispatcher.SENDERS` sends in flight, so at most SENDERS tips are repeated. Taps are not repeated
at all: PTB confirms an update to Telegram as soon as it has fetched it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from bot.content import to_bangla_digits
from bot.fakeapi import FakeBotAPI, UserDriver
from bot.outbox.dispatcher import SENDERS
from bot.store import open_store

USERS = 60
RATE = 40  # BROADCAST_RATE: 60 tips take 1.5 s, so the kill lands mid-way
METHODS = ("youtube", "freelancing", "writing")


def _env(api: FakeBotAPI, database: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(database.parent),
        "BOT_TOKEN": api.token,
        "BOT_API_URL": api.base_url,
        "DATABASE_URL": f"sqlite:///{database}",
        "TIP_CHECK_SECONDS": "1",
        "BROADCAST_RATE": str(RATE),
        "LOG_LEVEL": "INFO",
    }


@asynccontextmanager
async def bot_process(api: FakeBotAPI, database: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`ayerpoth run` in a child process, its log appended to run.log; killed on the way out."""
    with (database.parent / "run.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            env=_env(api, database), cwd=database.parent,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def until(api: FakeBotAPI, condition: Callable[[], bool], timeout: float = 30) -> None:  # noqa: ASYNC109
    """Wait for the fake API's events until `condition` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0 and await api.wait_event(left), "timed out waiting for the bot"


def tips_sent(api: FakeBotAPI, users: list[UserDriver]) -> Counter[int]:
    ids = {u.id for u in users}
    return Counter(
        int(c.params["chat_id"])
        for c in api.calls_to("sendMessage")
        if c.ok and int(c.params["chat_id"]) in ids and "💡" in str(c.params.get("text"))
    )


async def recorded(database: Path, timeout: float = 10) -> None:  # noqa: ASYNC109
    """Wait until the child process has recorded every tip: week 2 next for everyone, no lease.

    Another process's commit sends no event, so this polls the file.
    """
    query = "SELECT DISTINCT position, claimed_until FROM subscriptions"
    for _ in range(int(timeout / 0.05)):
        with sqlite3.connect(database) as db:
            if db.execute(query).fetchall() == [(2, None)]:
                delivered = db.execute("SELECT count(DISTINCT user_id) FROM deliveries")
                assert delivered.fetchone()[0] == USERS
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the tips were sent but not recorded")


def snapshot(database: Path) -> dict[int, tuple[object, ...]]:
    """Per user: language, paths with their ticked steps, subscriptions (method, active)."""
    with sqlite3.connect(database) as db:
        users = dict(db.execute("SELECT user_id, language FROM users").fetchall())
        paths = db.execute("SELECT user_id, method_id, done_steps FROM paths").fetchall()
        subs = db.execute("SELECT user_id, method_id, active FROM subscriptions").fetchall()
    return {
        user_id: (
            language,
            sorted((m, d) for u, m, d in paths if u == user_id),
            sorted((m, a) for u, m, a in subs if u == user_id),
        )
        for user_id, language in users.items()
    }


async def seed(api: FakeBotAPI, database: Path) -> list[UserDriver]:
    """USERS people who started the bot, each with a language, a path with progress and a tip due."""
    users = [api.private_user(f"U{i}") for i in range(USERS)]
    store = await open_store(f"sqlite:///{database}")
    await store.close()
    now = int(datetime.now(UTC).timestamp())
    with sqlite3.connect(database) as db:
        for i, user in enumerate(users):
            user.user.has_started = True
            method = METHODS[i % len(METHODS)]
            db.execute(
                "INSERT INTO users (user_id, language, first_seen, last_seen) VALUES (?, ?, ?, ?)",
                (user.id, ("bn", "en")[i % 2], now - 86400, now - 86400),
            )
            db.execute(
                "INSERT INTO paths (user_id, method_id, chosen_at, done_steps) VALUES (?, ?, ?, ?)",
                (user.id, method, now - 86400, i % 8),
            )
            db.execute(
                """INSERT INTO subscriptions (user_id, method_id, position, next_due, weekday,
                hour, minute, subscribed_at) VALUES (?, ?, 1, ?, 0, 15, 0, ?)""",
                (user.id, method, now - 60 - i, now - 8 * 86400),
            )
    return users


async def test_sigkill_mid_dispatch_then_mid_taps_loses_nothing(tmp_path: Path) -> None:
    database = tmp_path / "crash.sqlite3"
    async with FakeBotAPI(track_processing=False) as api:
        users = await seed(api, database)
        before = snapshot(database)

        # 1. Killed while the dispatcher is a third of the way through the due tips.
        async with bot_process(api, database) as process:
            await until(api, lambda: sum(tips_sent(api, users).values()) >= USERS // 3)
            process.send_signal(signal.SIGKILL)
            await process.wait()
        sent_before_kill = tips_sent(api, users)
        assert 0 < len(sent_before_kill) < USERS, "the kill did not land mid-dispatch"

        # 2. Restarted on the same database: every tip goes out, at most SENDERS of them twice.
        async with bot_process(api, database) as process:
            await until(api, lambda: len(tips_sent(api, users)) == USERS)
            sent = tips_sent(api, users)
            duplicated = sum(n - 1 for n in sent.values())
            assert duplicated <= SENDERS, sent
            await recorded(database)

            # 3. Taps on the tips' card buttons, killed a third of the way through.
            calls = len(api.calls)
            tips = {u.id: next(m for m in u.messages if "💡" in m.text) for u in users}

            async def tap_in_turn() -> None:  # one after another, so the kill lands between two
                for i, u in enumerate(users):
                    card = f"card:{METHODS[i % 3]}:all"
                    await u.press_data(card, tips[u.id].message_id, timeout=10)

            taps = asyncio.create_task(tap_in_turn())
            await until(api, lambda: len(api.calls_to("answerCallbackQuery")) >= USERS // 3)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            taps.cancel()
            await asyncio.gather(taps, return_exceptions=True)
        answered = len(api.calls_to("answerCallbackQuery"))
        assert USERS // 3 <= answered < USERS, "the kill did not land mid-burst"
        assert snapshot(database) == before  # taps on cards change nothing stored
        with sqlite3.connect(database) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        # 4. Up again: each user still has their language, path, progress and subscription.
        async with bot_process(api, database) as process:
            for i, user in enumerate(users[:6]):
                reply = await user.send("/mypath", timeout=30)
                done = str(bin(i % 8).count("1"))  # ticked steps seeded as a bit mask
                title, done = ("My path", done) if i % 2 else ("আমার পথ", to_bangla_digits(done))
                assert title in reply.text and f"— {done}/" in reply.text, reply.text
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=30) == 0
        assert snapshot(database) == before
        assert tips_sent(api, users) == sent  # no tip sent a third time
        assert len(api.calls) > calls
        assert api.rejections == []
        log = (tmp_path / "run.log").read_text()
        assert " ERROR " not in log and "Traceback" not in log, log
        assert "in flight when the last run stopped will be sent now" in log
