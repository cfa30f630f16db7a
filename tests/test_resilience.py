"""Resilience (issue 14): a bad update, a stop, a hostile webhook client, business chats and long
messages never stop the bot for anyone else. Through the fake Bot API and the real application.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import CONTENT, BotHarness, Clock, bot_against_fake, captured_logs

from bot.config import Settings
from bot.fakeapi import UserDriver
from bot.intake import WebhookServer

SECRET_TEXT = "Rahims private words 4711"  # in every poison update: never in a log line


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    with captured_logs() as out:
        yield out


@asynccontextmanager
async def bot_in(
    mode: str, make_settings: Callable[..., Settings], clock: Clock
) -> AsyncIterator[BotHarness]:
    env: dict[str, str] = {}
    if mode == "webhook":
        port = _free_port()
        env = {
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
            "WEBHOOK_SECRET": "right_secret",
            "WEBHOOK_PORT": str(port),
        }
    async with bot_against_fake(make_settings, clock, **env) as harness:
        yield harness


def poison(user: UserDriver) -> dict[str, dict[str, Any]]:
    """Updates PTB 22.8 cannot read, each holding a user's text."""
    chat = {"id": user.id, "type": "private", "first_name": "Rahim"}
    sender = {"id": user.id, "is_bot": False, "first_name": "Rahim"}
    option = {"text": SECRET_TEXT, "voter_count": 0}  # no persistent_id (Bot API 9.6)
    poll = {"id": "1", "question": SECRET_TEXT, "options": [option], "total_voter_count": 0,
            "is_closed": False, "is_anonymous": True, "type": "regular",
            "allows_multiple_answers": False}  # fmt: skip
    base = {"message_id": 900, "date": 0, "chat": chat, "from": sender}
    return {
        "poll from an older Bot API server": {"message": {**base, "poll": poll}},
        "date as text": {"message": {**base, "date": "yesterday", "text": SECRET_TEXT}},
        "message not an object": {"message": SECRET_TEXT},
        "sender without a name": {
            "callback_query": {
                "id": "7",
                "chat_instance": "c",
                "data": SECRET_TEXT,
                "from": {"id": user.id},
            }
        },
        "chat without a type": {"message": {**base, "chat": {"id": user.id}, "text": SECRET_TEXT}},
    }


# --- a poison update ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_poison_updates_are_logged_once_skipped_and_counted(
    mode: str, make_settings: Callable[..., Settings], clock: Clock, log_lines: io.StringIO
) -> None:
    async with bot_in(mode, make_settings, clock) as bot:
        user = bot.user("Rahim")
        await user.send("/start")
        polls = len(bot.api.calls_to("getUpdates"))
        started = time.monotonic()
        bad = {bot.api.inject_raw(raw): name for name, raw in poison(user).items()}
        reply = await user.send("/help")  # queued behind every poison update
        assert reply.shown and time.monotonic() - started < 2
        await asyncio.sleep(0.3)  # a tight refetch loop would make hundreds of calls meanwhile
        assert bot.app is not None
        inbox = bot.app.bot_data.services.inbox
        assert inbox.skipped == len(bad)
        if mode == "polling":
            assert len(bot.api.calls_to("getUpdates")) - polls <= 6
        else:
            assert bot.api.webhook_errors == []  # every delivery got a 200
        warnings = [
            line
            for line in log_lines.getvalue().splitlines()
            if " WARNING bot.intake: update " in line
        ]
        for update_id in bad:
            assert sum(f"update {update_id} skipped" in line for line in warnings) == 1
        assert "persistent_id" in "\n".join(warnings)  # what is missing is said
        assert SECRET_TEXT not in log_lines.getvalue()
        print(f"\n{mode}: {len(bad)} poison updates skipped, the next update answered in "
              f"{time.monotonic() - started:.2f}s")  # fmt: skip

        await bot.restart()  # nothing comes back: the offset moved past them
        assert (await user.send("/start")).shown
        assert bot.app.bot_data.services.inbox.skipped == 0


# --- update kinds the bot does not serve ---------------------------------------------------------


async def test_business_chats_and_other_kinds_are_ignored_and_never_recorded(
    bot: BotHarness, log_lines: io.StringIO
) -> None:
    owner = bot.user("Owner")
    await owner.send("/start")
    customer = 77_000_001
    chat = {"id": customer, "type": "private", "first_name": "Customer"}
    sender = {"id": customer, "is_bot": False, "first_name": "Customer"}
    message = {"message_id": 5, "date": 0, "chat": chat, "from": sender, "text": "/start",
               "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
               "business_connection_id": "bc1"}  # fmt: skip
    connection = {"id": "bc1", "user": owner.to_api(), "user_chat_id": owner.id, "date": 0,
                  "can_reply": True, "is_enabled": True}  # fmt: skip
    old = {**message, "chat": {"id": owner.id, "type": "private", "first_name": "Owner"},
           "from": owner.to_api(), "edit_date": 1}  # fmt: skip
    old.pop("business_connection_id")
    calls = len(bot.api.calls)
    ids = [
        bot.api.inject_raw({"business_connection": connection}),
        bot.api.inject_raw({"business_message": message}),
        bot.api.inject_raw({"edited_business_message": message}),
        bot.api.inject_raw(
            {
                "deleted_business_messages": {
                    "business_connection_id": "bc1",
                    "chat": chat,
                    "message_ids": [5],
                }
            }
        ),
        bot.api.inject_raw({"message": message}),  # a business message in the wrong field
        bot.api.inject_raw({"edited_message": old}),  # an edited old /start
        bot.api.inject_raw(
            {"message_reaction_count": {"chat": chat, "message_id": 5, "date": 0, "reactions": []}}
        ),
        bot.api.inject_raw({"some_future_kind": {"text": "hello"}}),
    ]
    for update_id in ids:
        await bot.api.wait_processed(update_id, 5)
    assert bot.api.calls[calls:] == [c for c in bot.api.calls[calls:] if c.method == "getUpdates"]
    assert bot.store is not None and await bot.store.get_user(customer) is None
    assert "ignored: not a kind the bot serves" in log_lines.getvalue()
    assert (await owner.send("/help")).shown  # and the owner is still served


async def test_debug_logs_hold_ids_and_kinds_not_what_people_wrote(
    bot: BotHarness, log_lines: io.StringIO
) -> None:
    user = bot.user("Rahim")
    menu = (await user.send("/start")).last
    await user.send("amar gopon proshno kivabe taka tulbo 4711")
    await user.press("সব পদ্ধতি", message=menu)
    text = log_lines.getvalue()
    assert "DEBUG" in text and "Processing update update " in text
    for secret in ("gopon proshno", "সব পদ্ধতি", "Rahim"):
        assert secret not in text, secret


# --- a graceful stop -----------------------------------------------------------------------------


async def test_a_stop_hands_back_what_it_could_not_finish_and_the_next_start_answers_it(
    bot: BotHarness,
) -> None:
    """The /help handler has returned; its reply waits in the outbox on a 30 s retry_after, and
    that keeps the update in hand: the stop cancels the reply and stores the update."""
    user = bot.user("Rahim")
    await user.send("/start")
    bot.api.fail_next("sendMessage", status=429, retry_after=30, chat_id=user.id)
    before = len(user.messages)
    update_id = bot.api.enqueue_update("message", user._text_message(user.user, "/help"))
    while not any(c.error_code == 429 for c in bot.api.calls_to("sendMessage")):
        await bot.api.wait_event(0.01)  # the 429 records no chat event: poll the calls
    assert bot.app is not None
    services = bot.app.bot_data.services
    # the handler is done (its slot free); only the posted reply is left, and it holds the update
    assert services.outbox.sending(update_id) and services.outbox.pending == 1
    assert services.inbox.in_hand == 1
    started = time.monotonic()
    await bot.stop()
    took = time.monotonic() - started
    print(f"\nstop with a reply held in the outbox by a 30 s retry_after: {took:.1f}s")
    assert took < 10
    assert len(user.messages) == before  # nothing was answered
    # handed back with its update, not dropped: nothing left in the outbox, nothing given up
    assert services.outbox.handed_back == 1 and services.outbox.dropped == 0
    assert services.outbox.pending == 0
    await bot.start()
    deadline = time.monotonic() + 5
    while len(user.messages) == before and time.monotonic() < deadline:
        await bot.api.wait_event(0.5)
    # the /help the first run owed, answered by the second
    assert [m.html for m in user.messages[before:]] == [CONTENT.t("bn", "help")]


async def test_the_store_closes_when_a_pragma_fails(tmp_path: Any) -> None:
    import sqlite3

    from bot.store import open_store

    store = await open_store(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    threads = [store._db._thread, store._reader._thread]  # type: ignore[union-attr]

    def deny_pragmas(action: int, *args: object) -> int:
        return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_PRAGMA else sqlite3.SQLITE_OK

    await store._db.set_authorizer(deny_pragmas)
    await store.close()  # PRAGMA optimize fails ("not authorized"); both connections close
    for thread in threads:
        thread.join(2)
        assert not thread.is_alive()
    await store.close()  # twice is fine


# --- the webhook server --------------------------------------------------------------------------


@pytest.fixture
async def hook(
    bot: BotHarness,
) -> AsyncIterator[WebhookServer]:
    """A webhook server on the running bot, with small limits so tests stay fast."""
    assert bot.app is not None
    server = WebhookServer(
        bot.app, bot.app.bot_data.services.inbox, listen="127.0.0.1", port=_free_port(),
        path="/telegram", secret="right_secret", url="", max_connections=8,
        max_body=64 * 1024, client_timeout=0.3, idle_timeout=0.3,
    )  # fmt: skip
    await server.serve()
    try:
        yield server
    finally:
        await server.stop()


async def _exchange(server: WebhookServer, data: bytes, *, then_wait: float = 2) -> bytes:
    """Send `data` and return whatever the server answers before closing (b"" for nothing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(then_wait):
            return await reader.read(4096)
    finally:
        writer.close()


def _post(length: int, secret: str | None, body: bytes = b"", path: str = "/telegram") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if secret is not None:
        head += f"X-Telegram-Bot-Api-Secret-Token: {secret}\r\n"
    return f"{head}Content-Length: {length}\r\n\r\n".encode() + body


async def test_webhook_judges_secret_and_size_before_reading_the_body(
    hook: WebhookServer,
) -> None:
    huge = 100 * 1024 * 1024  # announced, never sent
    started = time.monotonic()
    assert (await _exchange(hook, _post(huge, None))).startswith(b"HTTP/1.1 403")
    assert (await _exchange(hook, _post(huge, "wrong"))).startswith(b"HTTP/1.1 403")
    assert (await _exchange(hook, _post(huge, "right_secret"))).startswith(b"HTTP/1.1 413")
    assert (await _exchange(hook, _post(2, "right_secret", path="/x"))).startswith(b"HTTP/1.1 404")
    chunked = b"POST /telegram HTTP/1.1\r\nX-Telegram-Bot-Api-Secret-Token: right_secret\r\n"
    chunked += b"Transfer-Encoding: chunked\r\n\r\n"
    assert (await _exchange(hook, chunked)).startswith(b"HTTP/1.1 411")
    assert time.monotonic() - started < 1  # no body was waited for
    assert (await _exchange(hook, _post(2, "right_secret", b"[]"))).startswith(b"HTTP/1.1 400")


async def test_webhook_times_out_slow_clients_and_bounds_connections(
    bot: BotHarness, hook: WebhookServer
) -> None:
    user = bot.user("Rahim")
    await user.send("/start")
    # Slow: headers a byte at a time, a body that never comes.
    started = time.monotonic()
    assert await _exchange(hook, b"POST /tel") == b""
    assert await _exchange(hook, _post(100, "right_secret", b"{")) == b""
    assert time.monotonic() - started < 1.5 and hook.timed_out == 2
    # 40 clients that connect and send nothing: at most 8 are held, the rest closed at once.
    idle = [await asyncio.open_connection("127.0.0.1", hook.port) for _ in range(40)]
    await asyncio.sleep(0.05)
    assert hook.connections <= 8 and hook.refused >= 32
    for _, writer in idle:
        writer.close()
    # Once they are gone (closed, or timed out), a real update is served.
    update = (
        b'{"update_id": 999, "message": {"message_id": 99, "date": 0, "text": "/help", '
        b'"chat": {"id": %d, "type": "private"}, '
        b'"from": {"id": %d, "is_bot": false, "first_name": "R"}}}'
    ) % (user.id, user.id)
    await asyncio.sleep(0.05)
    sent = len(bot.api.sent_to(user.id))
    assert (await _exchange(hook, _post(len(update), "right_secret", update))).startswith(
        b"HTTP/1.1 200"
    )
    await bot.api.wait_event(2)
    assert len(bot.api.sent_to(user.id)) == sent + 1


# --- long messages -------------------------------------------------------------------------------


async def test_80_long_messages_at_once_do_not_hold_up_anyone_else(bot: BotHarness) -> None:
    """Each search runs on the search thread, cut to 300 characters / 24 words / 8 romanised
    words: the event loop spends next to nothing per search, and others are answered."""
    import random
    import string

    rnd = random.Random(14)

    def made_up() -> str:  # unknown Latin words: no cache helps, each is romanised and fuzzed
        text = ""
        while len(text) < 4096:
            text += "".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(5, 9)))
            text += " "
        return text[:4096]

    texts = [made_up() for _ in range(80)]
    search = bot.library.search
    search.search("warm up")
    thread_costs = []
    for text in texts[:10]:
        started = time.perf_counter()
        search.search(text + " ")  # not cached
        thread_costs.append(time.perf_counter() - started)
    # Event-loop time per search: the loop thread's CPU while 80 searches run at once.
    fresh = [made_up() for _ in range(80)]
    loop_cpu = time.thread_time()
    wall = time.perf_counter()
    await asyncio.gather(*(search.search_async(text) for text in fresh))
    loop_cpu = (time.thread_time() - loop_cpu) / 80
    wall = time.perf_counter() - wall

    senders = [bot.user(f"S{i}") for i in range(80)]
    other = bot.user("Other")
    for user in (*senders, other):
        await user.send("/start")
    menu = other.last_message
    flood = [
        asyncio.create_task(u.send(t, timeout=30)) for u, t in zip(senders, texts, strict=True)
    ]
    await asyncio.sleep(0.01)
    started = time.monotonic()
    reply = await other.press("সব পদ্ধতি", message=menu)
    answered = time.monotonic() - started
    await asyncio.gather(*flood)
    worst = max(thread_costs)
    print(f"\n4096-character made-up message: search {worst * 1000:.1f} ms at worst on the search "
          f"thread; event-loop time per search {loop_cpu * 1000:.2f} ms (80 at once took "
          f"{wall * 1000:.0f} ms); another user's tap during 80 of them: {answered * 1000:.0f} ms")  # fmt: skip
    assert loop_cpu < 0.002  # the review found 28 ms per search, all of it on the loop
    # The search thread's own time is printed, not asserted: it is wall time on a shared machine.
    # The tap itself waits for one of the harness's 8 handler slots, which the 80 hold while they
    # queue for the search thread (slots and lanes: the rate-limit part of issue 14).
    assert reply.shown


async def test_ayerpoth_run_stops_within_the_bound_and_the_next_run_sends_the_owed_reply(
    tmp_path: Any,
) -> None:
    """The real process: SIGTERM while a reply waits in the outbox on a 30 s retry_after."""
    import signal
    import sys

    from test_foundation import _bot_env

    from bot.fakeapi import FakeBotAPI

    async def start(api: FakeBotAPI) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            env={**_bot_env(api, tmp_path), "LOG_LEVEL": "INFO"}, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async with FakeBotAPI(track_processing=False) as api:
        process = await start(api)
        try:
            user = api.private_user("Rahim")
            assert (await user.send("/start", timeout=30)).shown
            api.fail_next("sendMessage", status=429, retry_after=30, chat_id=user.id)
            before = len(user.messages)
            api.enqueue_update("message", user._text_message(user.user, "/help"))
            while not any(c.error_code == 429 for c in api.calls_to("sendMessage")):
                await api.wait_event(0.01)  # the 429 records no chat event: poll the calls
        finally:
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        took = time.monotonic() - started
        log = output.decode()
        print(f"\n`ayerpoth run` stopped {took:.1f}s after SIGTERM, one reply handed back")
        assert process.returncode == 0, log
        assert took < 10, log
        assert "1 update(s) handed back" in log and len(user.messages) == before
        # the reply waiting in the outbox was handed back with its update, not given up
        assert "not sent" not in log

        process = await start(api)
        try:
            deadline = time.monotonic() + 30
            while len(user.messages) == before and time.monotonic() < deadline:
                await api.wait_event(0.5)
            assert [m.html for m in user.messages[before:]] == [CONTENT.t("bn", "help")]
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, output.decode()
