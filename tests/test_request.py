"""The aiohttp backend (bot.request) against the fake Bot API: bodies, uploads, timeouts, errors."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import CONTENT, BotHarness, Clock
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from bot.config import ConfigError, Settings
from bot.fakeapi import FakeBotAPI
from bot.request import AiohttpRequest
from bot.workarounds import retry_delay


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(out, format="PNG")
    return out.getvalue()


PNG = _png()  # the fake Bot API takes only real pictures as photos


async def bot_id(request: AiohttpRequest, url: str) -> object:
    me = await request.post(url)
    return me["id"] if isinstance(me, dict) else None


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


def make_bot(api: FakeBotAPI, read_timeout: float = 5.0) -> Bot:
    return Bot(
        api.token,
        base_url=f"{api.base_url}/bot",
        request=AiohttpRequest(read_timeout=read_timeout),
        get_updates_request=AiohttpRequest(connection_pool_size=1, read_timeout=read_timeout),
    )


async def test_json_body_keeps_bangla_text_and_nested_markup(api: FakeBotAPI) -> None:
    user = api.private_user("Rahim")
    user.user.has_started = True
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("সব পদ্ধতি", callback_data="list:all")]])
    async with make_bot(api) as bot:
        assert bot.username == api.bot_username  # getMe: a call without parameters
        sent = await bot.send_message(
            user.id, "আয়ের <b>পথ</b>", parse_mode="HTML", reply_markup=markup
        )
    assert sent.text == "আয়ের পথ"
    message = api.sent_to(user.id)[0]
    assert message.html == "আয়ের <b>পথ</b>" and message.button_texts() == ["সব পদ্ধতি"]
    assert api.rejections == []


async def test_uploads_go_as_multipart(api: FakeBotAPI) -> None:
    user = api.private_user("Rahim")
    user.user.has_started = True
    payload = b"%PDF-1.4 " + bytes(range(256)) * 400  # binary, ~100 kB
    async with make_bot(api) as bot:
        document = await bot.send_document(
            user.id,
            InputFile(payload, filename="পরিকল্পনা.pdf"),
            caption="<i>ধাপ</i>",
            parse_mode="HTML",
        )
        photo = await bot.send_photo(user.id, InputFile(PNG, filename="a.png"))
    assert document.document is not None and document.document.file_name == "পরিকল্পনা.pdf"
    assert document.document.file_size == len(payload) and document.caption == "ধাপ"
    assert photo.photo and photo.photo[-1].file_size == len(PNG)
    assert [m.kind for m in api.sent_to(user.id)] == ["document", "photo"]


async def test_http_errors_map_to_ptb_exceptions(api: FakeBotAPI) -> None:
    user = api.private_user("Rahim")
    user.user.has_started = True
    async with make_bot(api) as bot:
        for status, error in ((400, BadRequest), (403, Forbidden), (500, NetworkError)):
            api.fail_next("sendMessage", status=status)
            with pytest.raises(error):
                await bot.send_message(user.id, "x")
        api.fail_next("sendMessage", status=429, retry_after=7)
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(user.id, "x")
        assert retry_delay(flood.value).total_seconds() == 7


async def test_read_timeout_default_and_per_call(api: FakeBotAPI) -> None:
    user = api.private_user("Rahim")
    user.user.has_started = True
    async with make_bot(api, read_timeout=0.2) as bot:
        api.fail_next("sendMessage", status=504, delay=5)
        with pytest.raises(TimedOut):
            await bot.send_message(user.id, "held by the server")
        api.fail_next("sendMessage", status=504, delay=5)
        with pytest.raises(TimedOut):
            await bot.send_message(user.id, "held", read_timeout=0.05)
        api.fail_next("sendMessage", status=500, delay=0.4)  # longer than the default timeout
        with pytest.raises(NetworkError) as late:
            await bot.send_message(user.id, "slow but allowed", read_timeout=3)
        assert not isinstance(late.value, TimedOut)  # the answer (a 500) did arrive


async def test_long_poll_extends_the_read_timeout(api: FakeBotAPI) -> None:
    """getUpdates waits `timeout` on top of the read timeout, as PTB asks of every backend."""
    user = api.private_user("Rahim")
    async with make_bot(api, read_timeout=0.1) as bot:
        loop = asyncio.get_running_loop()
        loop.call_later(
            0.3, lambda: api.enqueue_update("message", user._text_message(user.user, "hi"))
        )
        updates = await bot.get_updates(timeout=5)
    assert [u.message.text for u in updates if u.message] == ["hi"]


async def test_pool_timeout_when_every_connection_is_busy(api: FakeBotAPI) -> None:
    request = AiohttpRequest(connection_pool_size=1, pool_timeout=0.05)
    get_me = f"{api.base_url}/bot{api.token}/getMe"
    await request.initialize()
    try:
        api.fail_next("getMe", status=500, delay=5)
        busy = asyncio.create_task(request.post(get_me))
        await asyncio.sleep(0)  # it takes the only connection before its first real wait
        with pytest.raises(TimedOut, match="Pool timeout"):
            await request.post(get_me)
        busy.cancel()
        await asyncio.gather(busy, return_exceptions=True)
        assert await bot_id(request, get_me) == api.bot_id
    finally:
        await request.shutdown()


async def test_refused_connection_is_a_network_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as refused:
            await request.post(f"http://127.0.0.1:{port}/botX/getMe")
        assert not isinstance(refused.value, TimedOut)
        assert "ConnectionRefusedError" in str(refused.value)  # what failed, by name
    finally:
        await request.shutdown()


async def test_shutdown_is_clean_and_restartable(api: FakeBotAPI) -> None:
    request = AiohttpRequest()
    with pytest.raises(NetworkError, match="not initialized"):
        await request.post(f"{api.base_url}/bot{api.token}/getMe")
    await request.initialize()
    assert await bot_id(request, f"{api.base_url}/bot{api.token}/getMe") == api.bot_id
    await request.shutdown()
    await request.shutdown()
    await request.initialize()
    assert await request.post(f"{api.base_url}/bot{api.token}/close") is True
    await request.shutdown()


def test_http_backend_setting() -> None:
    assert Settings.from_env({}).http_backend == "aiohttp"
    assert Settings.from_env({"HTTP_BACKEND": "HTTPX"}).http_backend == "httpx"
    with pytest.raises(ConfigError, match="HTTP_BACKEND"):
        Settings.from_env({"HTTP_BACKEND": "requests"})


@pytest.mark.parametrize(
    ("backend", "kind"), [("aiohttp", AiohttpRequest), ("httpx", HTTPXRequest)]
)
async def test_the_application_uses_the_chosen_backend_for_both_requests(
    api: FakeBotAPI,
    make_settings: Callable[..., Settings],
    clock: Clock,
    backend: str,
    kind: type,
) -> None:
    settings = make_settings(api, HTTP_BACKEND=backend)
    harness = BotHarness(api, settings, clock, CONTENT)
    await harness.start()
    try:
        assert harness.app is not None
        assert all(isinstance(r, kind) for r in harness.app.bot._request)
        reply = await harness.user("Rahim").send("/start")
        assert "আয়ের পথ" in reply.text
    finally:
        await harness.stop()


async def test_a_tap_sends_what_ptb_would_send(
    make_settings: Callable[..., Settings], clock: Clock, tmp_path: Path
) -> None:
    """The tap's answer and edit are written by bot.fastcalls on our backend and by PTB on
    httpx's: Telegram gets the same parameters either way (popups and alerts included), as JSON
    or, from httpx, as form fields."""
    sent: dict[str, list[tuple[str, dict[str, object]]]] = {}
    for backend in ("aiohttp", "httpx"):
        async with FakeBotAPI() as fake:
            database = f"sqlite:///{tmp_path / backend}.sqlite3"
            settings = make_settings(fake, HTTP_BACKEND=backend, DATABASE_URL=database)
            harness = BotHarness(fake, settings, clock, CONTENT)
            await harness.start()
            try:
                user = harness.user("Rahim")
                await user.send("/start")
                await user.press("📋 সব পদ্ধতি")  # an edit, an empty answer
                for method in ("freelancing", "writing", "youtube", "affiliate"):
                    await user.send(f"/start {method}")
                    # a popup with the new card; the fourth path is one too many: an alert
                    await user.press("⭐ এই পথ বেছে নিন")
            finally:
                await harness.stop()
            sent[backend] = [
                (
                    call.method,
                    {k: _typed(v) for k, v in call.params.items() if k != "callback_query_id"},
                )
                for call in fake.calls
                if call.method in ("answerCallbackQuery", "editMessageText")
            ]
            assert fake.rejections == []
    methods = [method for method, _ in sent["aiohttp"]]
    assert methods.count("editMessageText") == 4 and methods.count("answerCallbackQuery") == 5
    answers = [params for method, params in sent["aiohttp"] if method == "answerCallbackQuery"]
    assert [bool(a.get("text")) for a in answers] == [False, True, True, True, True]
    assert answers[-1]["show_alert"] is True
    assert sent["aiohttp"] == sent["httpx"]


def _typed(value: object) -> object:
    """A form field as the JSON value it encodes (httpx sends numbers, booleans and objects as
    JSON text); texts stay texts."""
    if isinstance(value, str) and (
        value in ("true", "false") or value.isdigit() or value[:1] == "{"
    ):
        return json.loads(value)
    return value


async def test_a_taps_calls_fail_as_ptbs_do(bot: BotHarness) -> None:
    """Written by bot.fastcalls, a tap's calls still fail as PTB's calls do: a 429 on the edit
    pauses the chat and the edit is sent again, as the rate limiter does for any reply."""
    user = bot.user("Rahim")
    await user.send("/start")
    bot.api.fail_next("editMessageText", status=429, retry_after=1)
    reply = await user.press("সব পদ্ধতি")
    assert reply.callback_answer is not None and reply.last.text.startswith("📋")
    assert [call.error_code for call in bot.api.calls_to("editMessageText")] == [429, None]
