"""Resilience (issue 14): a bad update, a stop, a hostile webhook client, business chats and long
messages never stop the bot for anyone else; nor does one noisy chat: a group raid, one user
flooding, a crowd arriving at once, one subscriber's long retry_after, a slow chat. Through the fake
Bot API and the real application.

The noisy-chat cases run with flood emulation on. To stay fast, time is scaled by ten: Telegram's
budgets (and the limiter's) are ten times as fast and its deadlines ten times as short (a group
gets 20 messages in a rolling 6 s, a private chat 10/s after a burst of 3, the bot 300/s in all; a
reply must go within 3 s, a group's within 6 s, a tap must be answered within 3 s: 1.5 s, doubled
because the CPU is not scaled). The figures are printed (`pytest -s`); bench/run.py --resilience
has the same cases at Telegram's real rates.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import CONTENT, BotHarness, Clock, bot_against_fake, captured_logs, unthrottled
from test_tips import is_tip, subscribed, tips_of

from bot.config import Settings
from bot.fakeapi import FakeBotAPI, FloodRules, UserDriver
from bot.intake import WebhookServer
from bot.ratelimit import LaneRateLimiter
from bot.search import on_search_thread

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
    database = store.database
    threads = [database.writer._thread, database.reader._thread]  # type: ignore[attr-defined]

    def deny_pragmas(action: int, *args: object) -> int:
        return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_PRAGMA else sqlite3.SQLITE_OK

    await database.writer.set_authorizer(deny_pragmas)  # type: ignore[attr-defined]
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
        max_body=64 * 1024, client_timeout=0.3, idle_timeout=0.3, answer_within=0.5,
        health=lambda: {"worker": "w1", "in_hand": bot.app.bot_data.services.inbox.in_hand},
    )  # fmt: skip
    await server.serve()
    try:
        yield server
    finally:
        await server.stop()
        await server.finish(True)


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


def _raw_update(user: UserDriver, text: str, update_id: int) -> bytes:
    return json.dumps(
        {"update_id": update_id, "message": user._text_message(user.user, text)}
    ).encode()


async def test_webhook_answers_200_once_the_update_is_handled_and_its_reply_is_out(
    bot: BotHarness, hook: WebhookServer
) -> None:
    """So a worker killed before it has answered never said 200: the update comes again."""
    user = bot.user("Rahim")
    await user.send("/start")
    before = len(user.messages)
    update = _raw_update(user, "/help", 1001)
    answer = await _exchange(hook, _post(len(update), "right_secret", update))
    assert answer.startswith(b"HTTP/1.1 200")
    assert [m.html for m in user.messages[before:]] == [CONTENT.t("bn", "help")]  # already out
    assert hook.answered_early == 0


async def test_webhook_answers_a_reply_held_by_a_long_retry_after_within_its_bound(
    bot: BotHarness, hook: WebhookServer
) -> None:
    """A 30 s retry_after must not hold Telegram's connection: 200 after answer_within, the
    update still in hand (the reply goes out when the chat may be written to again)."""
    user = bot.user("Rahim")
    await user.send("/start")
    bot.api.fail_next("sendMessage", status=429, retry_after=30, chat_id=user.id)
    before = len(user.messages)
    update = _raw_update(user, "/help", 1002)
    started = time.monotonic()
    answer = await _exchange(hook, _post(len(update), "right_secret", update))
    assert answer.startswith(b"HTTP/1.1 200") and time.monotonic() - started < 2
    assert hook.answered_early == 1 and len(user.messages) == before
    assert bot.app is not None and bot.app.bot_data.services.inbox.holds(1002)


async def test_webhook_health_for_the_balancer_and_503_once_stopping(
    bot: BotHarness, hook: WebhookServer
) -> None:
    probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # no secret needed
    answer = await _exchange(hook, probe)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Type: application/json" in head
    assert json.loads(body) == {"worker": "w1", "in_hand": 0}
    calls = len(bot.api.calls_to("setWebhook"))
    await hook.stop()
    assert (await _exchange(hook, probe)).startswith(b"HTTP/1.1 503")
    update = _raw_update(bot.user("Karim"), "/start", 1003)
    # an update offered to a stopping worker is refused, for the balancer to send elsewhere
    assert (await _exchange(hook, _post(len(update), "right_secret", update))).startswith(
        b"HTTP/1.1 503"
    )
    assert bot.app is not None and not bot.app.bot_data.services.inbox.holds(1003)
    # a worker that does not register the webhook (another one of the cluster does) never sets it
    assert bot.app is not None
    quiet = WebhookServer(
        bot.app, bot.app.bot_data.services.inbox, listen="127.0.0.1", port=_free_port(),
        path="/telegram", secret="right_secret", url="http://127.0.0.1:1/telegram",
        register=False,
    )  # fmt: skip
    await quiet.start()
    await quiet.stop()
    await quiet.finish(True)
    assert len(bot.api.calls_to("setWebhook")) == calls


async def test_a_webhook_stop_answers_what_it_handed_back_once_stored(
    make_settings: Callable[..., Settings], clock: Clock
) -> None:
    """The webhook twin of the stop above: Telegram's POST for the update whose reply waits on a
    30 s retry_after stays open through the stop, and gets its 200 once the update is stored
    (not before: a crash meanwhile would lose it; not never: Telegram would send it again while
    the next start also answers it)."""
    async with bot_in("webhook", make_settings, clock) as bot:
        user = bot.user("Rahim")
        await user.send("/start")
        bot.api.fail_next("sendMessage", status=429, retry_after=30, chat_id=user.id)
        before = len(user.messages)
        update_id = bot.api.enqueue_update("message", user._text_message(user.user, "/help"))
        while not any(c.error_code == 429 for c in bot.api.calls_to("sendMessage")):
            await bot.api.wait_event(0.01)  # the 429 records no chat event: poll the calls
        assert bot.api.is_pending(update_id)  # its POST is still open: no 200 yet
        await bot.stop()
        assert not bot.api.is_pending(update_id) and bot.api.webhook_errors == []
        assert len(user.messages) == before
        await bot.start()
        deadline = time.monotonic() + 5  # handed back, answered by the next start
        while len(user.messages) == before and time.monotonic() < deadline:
            await bot.api.wait_event(0.5)
        assert [m.html for m in user.messages[before:]] == [CONTENT.t("bn", "help")]


async def test_a_tap_delivered_twice_gets_its_screen_and_no_apology(
    make_settings: Callable[..., Settings], clock: Clock
) -> None:
    """A worker killed after handling a tap but before its 200: the update comes again (to
    another worker). Telegram refuses the second answer ("query is too old") and the edit changes
    nothing; the person must not get an apology for a screen they are looking at."""
    async with FakeBotAPI() as api:
        bot = BotHarness(api, make_settings(api), clock, CONTENT, unthrottled)
        await bot.start()
        try:
            user = bot.user("Rahim")
            screen = (await user.send("/start")).last
            reply = await user.press("সব পদ্ধতি", message=screen)
            before = len(user.messages)
            await bot.restart()  # another worker: it knows nothing of the first answer
            again = {  # the same update once more, as Telegram sends it again
                "id": reply.callback_query_id, "from": user.user.to_api(),
                "message": api.message_json(screen), "chat_instance": str(user.id * 7 + 3),
                "data": screen.find_button("সব পদ্ধতি")["callback_data"],
            }  # fmt: skip
            await api.wait_processed(api.enqueue_update("callback_query", again), 5)
            refused = sorted(c.description or "" for c in api.rejections)
            assert len(refused) == 2 and "query is too old" in refused[1].lower(), refused
            assert "message is not modified" in refused[0]
            assert len(user.messages) == before  # and no apology came
        finally:
            await bot.stop()


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
    await asyncio.gather(
        *(on_search_thread(functools.partial(search.search, text)) for text in fresh)
    )
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


# --- one noisy chat: scheduled flood control (bot.outbox, bot.ratelimit) -----------------------


SCALE = 10
APOLOGY = CONTENT.t("bn", "error")
CALLBACK_TIMEOUT = 2 * 15 / SCALE
RULES = FloodRules(
    global_per_second=30 * SCALE,
    global_burst=30 * SCALE,
    private_per_second=1 * SCALE,
    private_burst=3,
    group_per_minute=20 * SCALE,
    group_burst=20,
    count_edits=False,
)


def scaled_limiter() -> LaneRateLimiter:
    return LaneRateLimiter(
        broadcast_rate=25,
        bot_wide_rate=30 * SCALE,
        private_rate=0.9 * SCALE,  # the production default: a little under Telegram's 1/s
        private_burst=3,
        group_max_rate=20,
        group_time_period=60 / SCALE,
        reply_deadline=30 / SCALE,
        group_deadline=60 / SCALE,
    )


@pytest.fixture
async def flooded_bot(
    make_settings: Callable[..., Settings], clock: Clock
) -> AsyncIterator[BotHarness]:
    async with bot_against_fake(
        make_settings,
        clock,
        flood=RULES,
        limiter=scaled_limiter,
        # Telegram's ~15 s, scaled; doubled because the CPU is not ten times as fast: 500 taps at
        # once are a queue of real work (the answers still go out first, see the figures).
        api_options={"callback_timeout": CALLBACK_TIMEOUT},
    ) as harness:
        yield harness


def limiter_of(bot: BotHarness) -> LaneRateLimiter:
    assert bot.app is not None
    limiter = bot.app.bot.rate_limiter
    assert isinstance(limiter, LaneRateLimiter)
    return limiter


async def timed(action: Awaitable[object]) -> float:
    started = time.perf_counter()
    await action
    return time.perf_counter() - started


async def ordinary_session(user: UserDriver) -> list[float]:
    """What an ordinary private user does: open the menu, the list, a card."""
    return [
        await timed(user.send("/start")),
        await timed(user.press("সব পদ্ধতি")),
        await timed(user.press("ফ্রিল্যান্সিং")),
    ]


async def sessions(users: list[UserDriver]) -> list[float]:
    """Everyone's session at once; every reply must have come (the driver checks taps)."""
    results = await asyncio.gather(*(ordinary_session(u) for u in users))
    for user in users:
        assert "ফ্রিল্যান্সিং" in user.last_message.text
    return [seconds for one in results for seconds in one]


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def figures(name: str, values: list[float]) -> str:
    return f"{name}: p50 {p(values, 50) * 1000:.0f} ms, p99 {p(values, 99) * 1000:.0f} ms"


def apologies(bot: BotHarness, users: list[UserDriver]) -> int:
    return sum(1 for u in users for m in bot.api.sent_to(u.id) if m.text == APOLOGY)


async def test_a_group_raid_does_not_slow_private_users_and_the_group_keeps_its_limit(
    flooded_bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    bot = flooded_bot
    alice, raider = bot.user("Alice"), bot.user("Raider")
    group = bot.api.group("Earners BD", creator=alice)
    await group.add_bot(alice)
    users = [bot.user(f"U{i}") for i in range(20)]
    baseline = await sessions(users)

    async def raid() -> list[int]:  # /methods 4 times a second for 30 s, scaled
        sent = []
        for _ in range(4 * 30):
            sent.append(group.send_nowait(raider, "/methods"))
            await asyncio.sleep(1 / (4 * SCALE))
        return sent

    raiding = asyncio.create_task(raid())
    await asyncio.sleep(0.5)  # the group's budget is spent and its queue full
    during = await sessions(users)
    raid_updates = await raiding
    for update_id in raid_updates:  # every raid update was handled (answered or shed)
        await bot.api.wait_processed(update_id, 15)

    to_group = [c.time for c in bot.api.calls_to("sendMessage") if c.ok and c.params.get("chat_id") == group.id]  # fmt: skip
    window = 60 / SCALE
    busiest = max(sum(1 for t in to_group if s <= t < s + window) for s in to_group)
    dropped = limiter_of(bot).dropped
    print(
        f"\n{figures('others, baseline', baseline)}; {figures('during the raid', during)}; "
        f"group: {len(to_group)} replies to {len(raid_updates)} /methods, at most {busiest} in a "
        f"rolling {window:.0f} s, {dropped} dropped and logged; 429s: {bot.api.flood_rejections}"
    )
    assert p(during, 99) <= 2 * p(baseline, 99) + 1 / SCALE
    assert busiest <= 20  # the rolling window holds: never more than 20 in any (scaled) minute
    assert dropped >= len(raid_updates) - len(to_group) - 1 > 0  # the rest shed, counted
    assert any("not sent" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert apologies(bot, users) == 0


async def test_one_user_sending_200_messages_in_2_s_slows_only_themselves(
    flooded_bot: BotHarness,
) -> None:
    bot = flooded_bot
    spammer = bot.user("Spammer")
    users = [bot.user(f"U{i}") for i in range(20)]
    baseline = await sessions(users)
    sent_before = len(bot.api.sent_to(spammer.id))
    updates = []
    loop = asyncio.get_running_loop()
    first_sent = loop.time()
    for i in range(200):
        updates.append(spammer.send_nowait(f"freelancing {i}"))
        if i % 10 == 9:
            await asyncio.sleep(2 / SCALE / 20)
    sending = (loop.time() - first_sent) * SCALE  # 2 s (scaled) planned; longer on a busy machine
    during = await sessions(users)
    for update_id in updates:
        await bot.api.wait_processed(update_id, 15)
    answered = len(bot.api.sent_to(spammer.id)) - sent_before
    dropped = limiter_of(bot).dropped
    print(
        f"\n{figures('others, baseline', baseline)}; {figures('during the flood', during)}; "
        f"the flooder: {answered} of 200 answered, {dropped} dropped and logged, "
        f"429s: {bot.api.flood_rejections}"
    )
    assert p(during, 99) <= 2 * p(baseline, 99) + 1 / SCALE
    assert answered + dropped == 200  # nothing lost silently
    # A burst of 3, then 0.9/s (scaled): checked on when the fake received each reply, so a busy
    # machine (a slow send of the 200) cannot move the bound; one reply of arrival jitter.
    replies = [
        c.time
        for c in bot.api.calls_to("sendMessage")
        if c.ok and c.params.get("chat_id") in (spammer.id, str(spammer.id))
    ][-answered:]
    paced_for = (replies[-1] - replies[0]) * SCALE
    assert 3 <= answered <= 3 + 0.9 * paced_for + 1, (answered, paced_for, sending)
    assert answered <= 3 + 0.9 * (60 + sending) + 2  # and none after the last one's deadline
    assert apologies(bot, [spammer, *users]) == 0


async def test_500_users_arriving_at_once_are_all_answered_in_time(
    flooded_bot: BotHarness,
) -> None:
    bot = flooded_bot
    users = [bot.user(f"New{i}") for i in range(500)]
    started = time.perf_counter()
    starts = await asyncio.gather(*(timed(u.send("/start", timeout=30)) for u in users))
    taps = await asyncio.gather(*(timed(u.press("সব পদ্ধতি", timeout=30)) for u in users))
    elapsed = time.perf_counter() - started
    answers = bot.api.calls_to("answerCallbackQuery")
    print(
        f"\n500 arrivals in {elapsed:.1f} s: {figures('/start', starts)}; {figures('tap', taps)}; "
        f"{len(answers)} callbacks answered, {bot.api.late_answers} too late; "
        f"{limiter_of(bot).dropped} dropped; {bot.api.flood_rejections} 429s"
    )
    for user in users:
        assert "ফ্রিল্যান্সিং" in " ".join(user.last_message.button_texts())
    assert len(answers) == 500 and all(c.ok for c in answers) and bot.api.late_answers == 0
    assert apologies(bot, users) == 0 and limiter_of(bot).dropped == 0
    assert max(taps) < CALLBACK_TIMEOUT


@pytest.fixture
async def tips_bot(
    make_settings: Callable[..., Settings], clock: Clock
) -> AsyncIterator[BotHarness]:
    """The limiter's clock moves with real time and jumps when the test moves `clock` on, so a
    chat's 60 s pause (the limiter's time) ends when the test's 60 s (the store's time) do."""
    loop, start = asyncio.get_running_loop(), clock.now

    def limiter_clock() -> float:
        return loop.time() + (clock.now - start).total_seconds()

    async with bot_against_fake(
        make_settings, clock, limiter=lambda: unthrottled(limiter_clock)
    ) as harness:
        yield harness


async def test_one_chats_60_s_retry_after_and_a_slow_chat_delay_nobody_elses_tip(
    tips_bot: BotHarness,
) -> None:
    bot = tips_bot
    users = [await subscribed(bot, "youtube") for _ in range(20)]
    flooded, slow = users[3], users[7]
    bot.clock.advance(7 * 24 * 3600)
    bot.api.fail_next("sendMessage", status=429, retry_after=60, chat_id=flooded.id)
    bot.api.fail_next("sendMessage", status=500, delay=6, chat_id=slow.id)  # a client timeout
    started = bot.api.clock()
    await bot.dispatch()
    others = [u for u in users if u not in (flooded, slow)]
    arrived = [
        max(c.time for c in bot.api.calls_to("sendMessage") if c.ok and c.params["chat_id"] == u.id)
        - started
        for u in others
    ]
    print(
        f"\nothers' second tips within {max(arrived):.2f} s of the run's start "
        f"(the slow chat's send took {bot.api.clock() - started:.1f} s)"
    )
    assert all(len(tips_of(bot, u)) == 2 for u in others)
    assert max(arrived) < 2.0  # 18 tips at BROADCAST_RATE 25/s; nobody waited for 60 s or 5 s
    assert len(tips_of(bot, flooded)) == 1 and len(tips_of(bot, slow)) == 1
    bot.clock.advance(59)
    await bot.dispatch()
    assert len(tips_of(bot, flooded)) == 1  # retry_after is honoured…
    bot.clock.advance(1)
    await bot.dispatch()
    await bot.wait_for(flooded.id, lambda m: is_tip(m) and "২/১৩" in m.text)  # …and then sent
    assert len(tips_of(bot, slow)) == 2  # the slow one came back after TIP_CHECK_SECONDS
