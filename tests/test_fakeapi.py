"""The fake Bot API: Telegram's rejections over raw HTTP, then the real PTB Application end to end.

The raw tests pin the error texts the bot's own tests rely on; the PTB tests prove that the
driver's send/press/Reply flow works against python-telegram-bot exactly as in production.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InlineQueryResultArticle, Update
from telegram import InputTextMessageContent as TextContent
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.fakeapi import FakeBotAPI, Faults, FloodRules, TrackingUpdateProcessor, UserDriver


class FakeClock:
    """A clock the flood tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    api: FakeBotAPI, http: aiohttp.ClientSession, method: str, **params: Any
) -> tuple[int, dict[str, Any]]:
    """POST ``params`` as JSON, the way most Bot API clients do."""
    async with http.post(f"{api.base_url}/bot{api.token}/{method}", json=params) as response:
        return response.status, await response.json()


def started(api: FakeBotAPI, name: str = "Rahim") -> UserDriver:
    """A user who has already written to the bot, so the bot may message them."""
    user = api.private_user(name)
    user.user.has_started = True
    return user


async def bad(api: FakeBotAPI, http: aiohttp.ClientSession, method: str, **params: Any) -> str:
    status, body = await call(api, http, method, **params)
    assert status == 400, body
    assert body["ok"] is False
    assert body["error_code"] == 400
    return str(body["description"])


def keyboard(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"inline_keyboard": [list(buttons)]}


def png(width: int = 1080, height: int = 1620) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (250, 250, 240)).save(out, format="PNG")
    return out.getvalue()


async def send_photo(
    api: FakeBotAPI, http: aiohttp.ClientSession, chat_id: int, photo: bytes | str, **fields: str
) -> tuple[int, dict[str, Any]]:
    """sendPhoto as PTB sends it: a multipart upload, or a file_id in a form."""
    form = aiohttp.FormData()
    form.add_field("chat_id", str(chat_id))
    for name, value in fields.items():
        form.add_field(name, value)
    if isinstance(photo, bytes):
        form.add_field("photo", photo, filename="card.png")
    else:
        form.add_field("photo", photo)
    async with http.post(f"{api.base_url}/bot{api.token}/sendPhoto", data=form) as response:
        return response.status, await response.json()


# ---------------------------------------------------------------------------------------------
# Raw HTTP: routing, auth, body formats


async def test_wrong_token_is_401_and_unknown_method_404(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{api.base_url}/bot1:wrong/getMe") as response:
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
    status, body = await call(api, http, "sendTelepathy")
    assert (status, body["description"]) == (404, "Not Found")


async def test_get_me_describes_the_bot(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{api.base_url}/bot{api.token}/getme") as response:
        body = await response.json()
    assert body["result"] == {
        "id": 123456789,
        "is_bot": True,
        "first_name": "Ayer Poth",
        "username": "AyerPothBot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": True,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def test_form_bodies_with_json_encoded_markup(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    user = started(api)
    form = {
        "chat_id": str(user.id),
        "text": "<b>নমস্কার</b>",
        "parse_mode": "HTML",
        "reply_markup": json.dumps(keyboard({"text": "Go", "callback_data": "go"})),
    }
    async with http.post(f"{api.base_url}/bot{api.token}/sendMessage", data=form) as response:
        body = await response.json()
    message = body["result"]
    assert message["text"] == "নমস্কার"
    assert message["entities"] == [{"type": "bold", "offset": 0, "length": 7}]
    assert message["from"]["is_bot"] is True
    assert message["chat"] == {"id": user.id, "type": "private", "first_name": "Rahim"}
    assert message["reply_markup"] == keyboard({"text": "Go", "callback_data": "go"})
    assert user.last_message.html == "<b>নমস্কার</b>"
    assert user.last_message.button_texts() == ["Go"]


async def test_multipart_upload_stores_file_and_checks_caption(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    user = started(api)
    form = aiohttp.FormData()
    form.add_field("chat_id", str(user.id))
    form.add_field("caption", "Guide")
    form.add_field("document", b"x" * 1234, filename="guide.pdf")
    async with http.post(f"{api.base_url}/bot{api.token}/sendDocument", data=form) as response:
        body = await response.json()
    assert body["result"]["document"]["file_size"] == 1234
    assert body["result"]["document"]["file_name"] == "guide.pdf"
    assert body["result"]["caption"] == "Guide"
    assert user.last_message.render() == "[document: guide.pdf, 1234 bytes]\nGuide"
    too_long = aiohttp.FormData()
    too_long.add_field("chat_id", str(user.id))
    too_long.add_field("caption", "c" * 1025)
    too_long.add_field("photo", b"png", filename="p.png")
    async with http.post(f"{api.base_url}/bot{api.token}/sendPhoto", data=too_long) as response:
        assert (await response.json())["description"] == "Bad Request: message caption is too long"


async def test_a_photo_is_uploaded_once_then_sent_by_its_file_id(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    user = started(api)
    picture = png()
    status, body = await send_photo(
        api, http, user.id, picture, caption="<b>Card</b>", parse_mode="HTML"
    )
    assert status == 200, body
    sizes = body["result"]["photo"]
    # Telegram's sizes of a 1080×1620 picture: thumbnails by longest side, then the original.
    assert [(s["width"], s["height"]) for s in sizes] == [
        (60, 90), (213, 320), (533, 800), (853, 1280), (1080, 1620)
    ]  # fmt: skip
    assert sizes[-1]["file_size"] == len(picture) and body["result"]["caption"] == "Card"
    assert api.files.data(sizes[-1]["file_id"]) == picture
    status, again = await send_photo(api, http, user.id, sizes[-1]["file_id"])
    assert status == 200 and again["result"]["photo"] == sizes
    assert user.last_message.render() == f"[photo: 1080×1620, {len(picture)} bytes]"


async def test_photos_telegram_would_refuse(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    user = started(api)
    wrong_file = "Bad Request: wrong file identifier/HTTP URL specified"
    cases = [
        ("fake-photo-999", {}, wrong_file),  # an id this server never issued
        (b"GIF89a not a png", {}, "Bad Request: IMAGE_PROCESS_FAILED"),
        (png(4000, 150), {}, "Bad Request: PHOTO_INVALID_DIMENSIONS"),  # over 20:1
        (png(), {"caption": "c" * 1025}, "Bad Request: message caption is too long"),
        (
            png(),
            {"caption": "<p>x</p>", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: unsupported start tag "p" at byte offset 0',
        ),
    ]
    for photo, fields, description in cases:
        status, body = await send_photo(api, http, user.id, photo, **fields)
        assert (status, body["description"]) == (400, description)
    status, body = await send_photo(api, http, user.id, png())
    document_id = body["result"]["photo"][-1]["file_id"]
    form = aiohttp.FormData({"chat_id": str(user.id), "document": document_id})
    async with http.post(f"{api.base_url}/bot{api.token}/sendDocument", data=form) as response:
        assert (await response.json())["description"] == wrong_file  # a photo is no document


# ---------------------------------------------------------------------------------------------
# Raw HTTP: what Telegram rejects


async def test_send_message_rejections(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    user = started(api)
    never = api.private_user("Karim")
    assert (
        await bad(api, http, "sendMessage", chat_id=999, text="x") == "Bad Request: chat not found"
    )
    status, body = await call(api, http, "sendMessage", chat_id=never.id, text="x")
    assert (status, body["description"]) == (
        403,
        "Forbidden: bot can't initiate conversation with a user",
    )
    description = await bad(api, http, "sendMessage", chat_id=user.id, text="  ")
    assert description == "Bad Request: message text is empty"
    description = await bad(
        api, http, "sendMessage", chat_id=user.id, text="<b></b>", parse_mode="HTML"
    )
    assert description == "Bad Request: message text is empty"
    description = await bad(api, http, "sendMessage", chat_id=user.id, text="x" * 4097)
    assert description == "Bad Request: message is too long"
    # The limit counts text after entity parsing, in UTF-16 units.
    status, _ = await call(
        api, http, "sendMessage", chat_id=user.id, text=f"<b>{'x' * 4096}</b>", parse_mode="HTML"
    )
    assert status == 200
    description = await bad(api, http, "sendMessage", chat_id=user.id, text="😀" * 2049)
    assert description == "Bad Request: message is too long"
    description = await bad(
        api, http, "sendMessage", chat_id=user.id, text="a<br>b", parse_mode="HTML"
    )
    assert description == (
        'Bad Request: can\'t parse entities: unsupported start tag "br" at byte offset 1'
    )
    assert len(api.rejections) == 6


async def test_blocked_user_is_forbidden(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    user = started(api)
    user.user.blocked = True
    status, body = await call(api, http, "sendMessage", chat_id=user.id, text="x")
    assert (status, body["description"]) == (403, "Forbidden: bot was blocked by the user")
    assert api.rejections == []


@pytest.mark.parametrize(
    ("markup", "description"),
    [
        (keyboard({"text": "x", "callback_data": "d" * 65}), "Bad Request: BUTTON_DATA_INVALID"),
        (keyboard({"text": "x", "callback_data": "ক" * 22}), "Bad Request: BUTTON_DATA_INVALID"),
        (keyboard({"text": "x", "callback_data": ""}), "Bad Request: BUTTON_DATA_INVALID"),
        (
            keyboard({"text": "x", "url": "example.com"}),
            "Bad Request: inline keyboard button URL 'example.com' is invalid: Wrong HTTP URL",
        ),
        (
            keyboard({"text": "x", "url": "https://"}),
            "Bad Request: inline keyboard button URL 'https://' is invalid: Wrong HTTP URL",
        ),
        (
            keyboard({"text": "x"}),
            "Bad Request: can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        ),
        (
            keyboard({"text": "x", "url": "https://a.b", "callback_data": "y"}),
            "Bad Request: can't parse inline keyboard button: exactly one of the optional "
            "fields must be used, got url, callback_data",
        ),
        (keyboard({"text": "", "callback_data": "y"}), "Bad Request: BUTTON_TEXT_INVALID"),
        (
            {"inline_keyboard": [{"text": "x", "callback_data": "y"}]},
            'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup should be an '
            "Array of Arrays",
        ),
        ("nonsense", "Bad Request: can't parse reply keyboard markup JSON object"),
    ],
)
async def test_inline_keyboard_rejections(
    api: FakeBotAPI, http: aiohttp.ClientSession, markup: Any, description: str
) -> None:
    user = started(api)
    assert await bad(api, http, "sendMessage", chat_id=user.id, text="x", reply_markup=markup) == (
        description
    )


async def test_valid_buttons_of_every_kind(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    user = started(api)
    markup = {
        "inline_keyboard": [
            [
                {"text": "a", "callback_data": "ক" * 21},
                {"text": "b", "url": "tg://resolve?domain=x"},
            ],
            [{"text": "c", "switch_inline_query": ""}, {"text": "d", "copy_text": {"text": "x"}}],
            [{"text": "e", "web_app": {"url": "https://app.example"}}],
        ]
    }
    status, body = await call(
        api, http, "sendMessage", chat_id=user.id, text="x", reply_markup=markup
    )
    assert status == 200, body
    assert user.last_message.render() == (
        "x\n[1] a  [2] b (tg://resolve?domain=x)\n[3] c  [4] d\n[5] e"
    )


async def test_edit_and_delete_rules(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    user = started(api)
    markup = keyboard({"text": "Go", "callback_data": "go"})
    _, body = await call(api, http, "sendMessage", chat_id=user.id, text="Hi", reply_markup=markup)
    message_id = body["result"]["message_id"]
    same = await bad(
        api,
        http,
        "editMessageText",
        chat_id=user.id,
        message_id=message_id,
        text="Hi",
        reply_markup=markup,
    )
    assert same == (
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message"
    )
    # Same text without the markup is a modification: Telegram drops the keyboard.
    status, body = await call(
        api, http, "editMessageText", chat_id=user.id, message_id=message_id, text="Hi"
    )
    assert status == 200
    assert "reply_markup" not in body["result"]
    assert body["result"]["edit_date"] >= body["result"]["date"]
    assert user.last_message.edited
    missing = await bad(api, http, "editMessageText", chat_id=user.id, message_id=99, text="x")
    assert missing == "Bad Request: message to edit not found"
    missing = await bad(
        api, http, "editMessageReplyMarkup", chat_id=user.id, message_id=99, reply_markup=markup
    )
    assert missing == "Bad Request: message to edit not found"
    status, _ = await call(api, http, "deleteMessage", chat_id=user.id, message_id=message_id)
    assert status == 200
    assert user.messages == []
    gone = await bad(api, http, "deleteMessage", chat_id=user.id, message_id=message_id)
    assert gone == "Bad Request: message to delete not found"


async def test_callback_and_inline_answers_are_checked(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    user = started(api)
    too_old = "Bad Request: query is too old and response timeout expired or query ID is invalid"
    assert await bad(api, http, "answerCallbackQuery", callback_query_id="42") == too_old
    query_id = api.register_callback_query(user.id)
    too_long = await bad(
        api, http, "answerCallbackQuery", callback_query_id=query_id, text="x" * 201
    )
    assert too_long == "Bad Request: MESSAGE_TOO_LONG"
    status, _ = await call(api, http, "answerCallbackQuery", callback_query_id=query_id, text="ok")
    assert status == 200
    assert await bad(api, http, "answerCallbackQuery", callback_query_id=query_id) == too_old

    def article(result_id: str, text: str = "t", **extra: Any) -> dict[str, Any]:
        return {
            "type": "article",
            "id": result_id,
            "title": "T",
            "input_message_content": {"message_text": text, "parse_mode": "HTML"},
            **extra,
        }

    inline_id = api.register_inline_query(user.id)
    cases = [
        ([article(str(i)) for i in range(51)], "Bad Request: RESULTS_TOO_MUCH"),
        ([article("a"), article("a")], "Bad Request: RESULT_ID_DUPLICATE"),
        ([article("x" * 65)], "Bad Request: RESULT_ID_INVALID"),
        ([article("a", "x" * 4097)], "Bad Request: message is too long"),
        (
            [article("a", "<p>x</p>")],
            'Bad Request: can\'t parse entities: unsupported start tag "p" at byte offset 0',
        ),
        (
            [article("a", reply_markup=keyboard({"text": "x", "callback_data": "d" * 65}))],
            "Bad Request: BUTTON_DATA_INVALID",
        ),
    ]
    status, body = await send_photo(api, http, user.id, png())
    file_id = body["result"]["photo"][-1]["file_id"]

    def photo(result_id: str, **extra: Any) -> dict[str, Any]:
        return {"type": "photo", "id": result_id, "photo_file_id": file_id, **extra}

    cases += [
        (
            [photo("p", photo_file_id="fake-photo-999")],
            "Bad Request: wrong file identifier/HTTP URL specified",
        ),
        ([photo("p", caption="c" * 1025)], "Bad Request: message caption is too long"),
        (
            [photo("p", caption="<i>x", parse_mode="HTML")],
            "Bad Request: can't parse entities: can't find end tag corresponding to start tag \"i\"",
        ),
        (
            [{"type": "photo", "id": "p", "photo_url": "https://example.org/a.png"}],
            "Bad Request: THUMB_URL_INVALID",
        ),
    ]
    for results, description in cases:
        assert (
            await bad(api, http, "answerInlineQuery", inline_query_id=inline_id, results=results)
            == description
        )
    status, _ = await call(
        api,
        http,
        "answerInlineQuery",
        inline_query_id=inline_id,
        results=[photo("p", caption="<b>Card</b>", parse_mode="HTML")],
    )
    assert status == 200
    inline_id = api.register_inline_query(user.id)
    status, _ = await call(
        api, http, "answerInlineQuery", inline_query_id=inline_id, results=[article("a")]
    )
    assert status == 200
    assert (
        await bad(api, http, "answerInlineQuery", inline_query_id=inline_id, results=[]) == too_old
    )


async def test_commands_are_validated_and_fall_back_like_telegram(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    commands = [{"command": "start", "description": "শুরু"}]
    for broken, description in [
        ([{"command": "Start!", "description": "x"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "x" * 33, "description": "x"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "ok", "description": ""}], "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"),
        (
            [{"command": "ok", "description": "x" * 257}],
            "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID",
        ),
        (
            [{"command": f"c{i}", "description": "x"} for i in range(101)],
            "Bad Request: BOT_COMMANDS_TOO_MUCH",
        ),
    ]:
        assert await bad(api, http, "setMyCommands", commands=broken) == description
    invalid_language = await bad(api, http, "setMyCommands", commands=commands, language_code="bng")
    assert invalid_language == "Bad Request: invalid language code specified"
    private = {"type": "all_private_chats"}
    await call(api, http, "setMyCommands", commands=commands, scope=private, language_code="bn")
    english = [{"command": "start", "description": "Start"}]
    await call(api, http, "setMyCommands", commands=english, scope=private)
    _, body = await call(api, http, "getMyCommands", scope=private, language_code="bn")
    assert body["result"] == commands
    _, body = await call(api, http, "getMyCommands", scope=private, language_code="en")
    assert body["result"] == english
    _, body = await call(api, http, "getMyCommands")
    assert body["result"] == []
    user = started(api)
    assert api.effective_commands(user.id, language_code="bn") == commands
    assert api.get_commands(private) == english
    await call(api, http, "deleteMyCommands", scope=private)
    assert api.effective_commands(user.id, language_code="en") == []
    await call(api, http, "setMyDescription", description="বিবরণ")
    _, body = await call(api, http, "getMyDescription", language_code="bn")
    assert body["result"] == {"description": "বিবরণ"}


async def test_chats_and_members(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    owner = api.private_user("Owner")
    group = api.group("Freelancers BD", creator=owner)
    helper = api.private_user("Helper")
    group.add_member(helper)
    group.make_admin(helper)
    assert group.id < -1_000_000_000_000
    status, body = await call(api, http, "sendMessage", chat_id=group.id, text="x")
    assert (status, body["description"]) == (
        403,
        "Forbidden: bot is not a member of the supergroup chat",
    )
    _, body = await call(api, http, "getChat", chat_id=group.id)
    assert body["result"]["title"] == "Freelancers BD"
    _, body = await call(api, http, "getChatMember", chat_id=group.id, user_id=owner.id)
    assert body["result"]["status"] == "creator"
    _, body = await call(api, http, "getChatAdministrators", chat_id=group.id)
    assert [m["user"]["first_name"] for m in body["result"]] == ["Owner", "Helper"]
    _, body = await call(api, http, "getChatMember", chat_id=owner.id, user_id=owner.id)
    assert body["result"]["status"] == "member"


# ---------------------------------------------------------------------------------------------
# Raw HTTP: updates, webhooks, flood, faults


async def test_long_polling_with_offsets_limit_and_allowed_updates(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    started_at = loop.time()
    _, body = await call(api, http, "getUpdates", timeout=0.2)
    assert body["result"] == []
    assert loop.time() - started_at >= 0.15
    poll = asyncio.create_task(call(api, http, "getUpdates", timeout=5))
    await asyncio.sleep(0.05)
    first = api.enqueue_update("message", {"text": "1"})
    _, body = await asyncio.wait_for(poll, 1)
    assert [u["update_id"] for u in body["result"]] == [first]
    second = api.enqueue_update("message", {"text": "2"})
    third = api.enqueue_update("callback_query", {"data": "3"})
    _, body = await call(api, http, "getUpdates", offset=first + 1, limit=1)
    assert [u["update_id"] for u in body["result"]] == [second]
    _, body = await call(api, http, "getUpdates", offset=third)
    assert [u["update_id"] for u in body["result"]] == [third]
    _, body = await call(api, http, "getUpdates", offset=third + 1, allowed_updates=["message"])
    assert body["result"] == []
    dropped = api.enqueue_update("callback_query", {"data": "x"})
    await api.wait_processed(dropped, 0.1)  # filtered out, so nobody waits for it
    kept = api.enqueue_update("message", {"text": "y"})
    _, body = await call(api, http, "getUpdates")
    assert [u["update_id"] for u in body["result"]] == [kept]


async def test_stop_ends_pending_long_polls_promptly(http: aiohttp.ClientSession) -> None:
    api = FakeBotAPI()
    await api.start()
    poll = asyncio.create_task(call(api, http, "getUpdates", timeout=30))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(api.stop(), 2)
    status, body = await asyncio.wait_for(poll, 2)
    assert (status, body["result"]) == (200, [])


@asynccontextmanager
async def webhook_receiver(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]], port: int = 0
) -> AsyncIterator[int]:
    """A webhook endpoint at /hook on 127.0.0.1 that answers with `handle`; yields its port."""
    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def chat_update(chat_id: int, text: str) -> dict[str, Any]:
    return {"message_id": 1, "date": 0, "text": text, "chat": {"id": chat_id, "type": "private"}}


async def test_webhook_delivery_with_secret_and_retries(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    failures = [1]
    all_in = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        if failures:
            failures.pop()
            return web.Response(status=500)
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        if len(received) == 3:
            all_in.set()
        return web.Response()

    async with webhook_receiver(hook) as port:
        description = await bad(api, http, "setWebhook", url="https://example.com/hook")
        assert "bad webhook" in description
        status, _ = await call(
            api, http, "setWebhook", url=f"http://127.0.0.1:{port}/hook", secret_token="s3cr-t_"
        )
        assert status == 200
        status, body = await call(api, http, "getUpdates")
        assert (status, body["description"]) == (
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
        # One chat's updates: in order, the first retried after its 500 before the next is sent.
        ids = [api.enqueue_update("message", chat_update(7, str(i))) for i in range(3)]
        await asyncio.wait_for(all_in.wait(), 5)
        assert [(secret, u["update_id"]) for secret, u in received] == [
            ("s3cr-t_", update_id) for update_id in ids
        ]
        _, body = await call(api, http, "getWebhookInfo")
        assert body["result"]["url"] == f"http://127.0.0.1:{port}/hook"
        assert body["result"]["max_connections"] == 40
        assert body["result"]["last_error_message"] == (
            "Wrong response from the webhook: 500 Internal Server Error"
        )
        await call(api, http, "deleteWebhook")
        _, body = await call(api, http, "getUpdates")
        assert body["result"] == []


async def test_webhook_delivery_is_concurrent_per_chat_in_order_and_never_gives_up(
    api: FakeBotAPI, http: aiohttp.ClientSession
) -> None:
    """As Telegram: up to max_connections POSTs at once, one per chat at a time; an update that
    got no 2xx (refused connection, reset, 503) is sent again until it is delivered."""
    with socket.socket() as probe:  # a port with nobody listening yet: connections refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, _ = await call(
        api, http, "setWebhook", url=f"http://127.0.0.1:{port}/hook", max_connections=3
    )
    assert status == 200
    assert "max_connections" in await bad(api, http, "setWebhook", url="", max_connections=101)
    early = api.enqueue_update("message", chat_update(9, "early"))
    for _ in range(500):  # refused, again and again, and not given up
        if len(api.webhook_errors) >= 3:
            break
        await asyncio.sleep(0.01)
    assert api.webhook_errors[:3] == ["Connection failed: ClientConnectorError"] * 3

    open_now: list[int] = []  # the chats whose POST is being answered
    overlaps: list[int] = []  # chats with a second POST open before the first was answered
    connections: list[int] = []  # the fake's open POSTs, as each arrives
    delivered: list[tuple[int, int]] = []
    three_open = asyncio.Event()
    everything = asyncio.Event()
    troubled = {1: "reset", 2: "503"}  # chat 1's first POST is cut off, chat 2's gets a 503
    chats = (1, 2, 3, 4, 5)

    async def hook(request: web.Request) -> web.StreamResponse:
        update = await request.json()
        chat = update["message"]["chat"]["id"]
        connections.append(api.webhook_connections)
        if chat in open_now:
            overlaps.append(chat)
        open_now.append(chat)
        try:
            if len(open_now) == 3:
                three_open.set()
            await three_open.wait()  # the first ones wait until three are open
            trouble = troubled.pop(chat, None)
            if trouble == "reset":
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
            if trouble == "503":
                return web.Response(status=503)
            delivered.append((chat, update["update_id"]))
            if len(delivered) == 2 * len(chats) + 1:
                everything.set()
            return web.Response()
        finally:
            open_now.remove(chat)

    async with webhook_receiver(hook, port):
        sent = {chat: [api.enqueue_update("message", chat_update(chat, "a")),
                       api.enqueue_update("message", chat_update(chat, "b"))] for chat in chats}  # fmt: skip
        await asyncio.wait_for(everything.wait(), 10)
    # never more than max_connections (however many were ready), never two of one chat at once
    assert (max(connections), overlaps) == (3, [])
    for chat in chats:
        assert [u for c, u in delivered if c == chat] == sent[chat]  # each once, in order
    assert (9, early) in delivered
    assert "Wrong response from the webhook: 503 Service Unavailable" in api.webhook_errors
    assert any(e.startswith("Connection failed: ServerDisconnected") for e in api.webhook_errors)


async def test_flood_limits_with_fake_clock(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with FakeBotAPI(flood=FloodRules(), clock=clock) as api:
        user = started(api)
        for _ in range(3):
            status, _ = await call(api, http, "sendMessage", chat_id=user.id, text="x")
            assert status == 200
        status, body = await call(api, http, "sendMessage", chat_id=user.id, text="x")
        assert status == 429
        assert body == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        }
        assert len(user.messages) == 3  # the refused request was not performed
        clock.now += 1.0
        status, _ = await call(api, http, "sendMessage", chat_id=user.id, text="x")
        assert status == 200
        status, _ = await call(
            api, http, "editMessageText", chat_id=user.id, message_id=1, text="y"
        )
        assert status == 429

        owner = api.private_user("Owner")
        group = api.group("G")
        group.add_member(owner)
        group.chat.bot_status = "member"
        for _ in range(20):
            clock.now += 0.01
            status, _ = await call(api, http, "sendMessage", chat_id=group.id, text="x")
            assert status == 200
        status, body = await call(api, http, "sendMessage", chat_id=group.id, text="x")
        assert (status, body["parameters"]["retry_after"]) == (429, 3)
        assert (api.flood_rejections, api.bot_wide_floods) == (3, 0)  # each chat's own rule
        assert api.rejections == []

        clock.now += 10  # the bot-wide rule: 30 new messages in all, then one a 30th of a second
        crowd = [started(api, f"U{i}") for i in range(31)]
        statuses = [
            (await call(api, http, "sendMessage", chat_id=u.id, text="x"))[0] for u in crowd
        ]
        assert statuses == [200] * 30 + [429]
        assert (api.flood_rejections, api.bot_wide_floods) == (4, 1)


async def test_scripted_failures(api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    user = started(api)
    other = started(api, "Other")
    api.fail_next("sendMessage", status=429, retry_after=7, chat_id=user.id)
    api.fail_next("sendMessage", status=502, count=2)
    status, body = await call(api, http, "sendMessage", chat_id=other.id, text="x")
    assert (status, body["description"]) == (502, "Bad Gateway")
    status, body = await call(api, http, "sendMessage", chat_id=user.id, text="x")
    assert (status, body["parameters"]) == (429, {"retry_after": 7})
    status, body = await call(api, http, "sendMessage", chat_id=user.id, text="x")
    assert status == 502
    status, body = await call(api, http, "sendMessage", chat_id=user.id, text="x")
    assert status == 200
    assert len(user.messages) == 1


async def test_random_faults_are_seeded(http: aiohttp.ClientSession) -> None:
    outcomes = []
    for _ in range(2):
        async with FakeBotAPI() as api:
            user = started(api)
            api.faults = Faults(error_rate=0.5, seed=7)
            statuses = [
                (await call(api, http, "sendMessage", chat_id=user.id, text="x"))[0]
                for _ in range(12)
            ]
            outcomes.append(statuses)
            status, _ = await call(api, http, "getUpdates")
            assert status == 200  # getUpdates is exempt unless named
    assert outcomes[0] == outcomes[1]
    assert {500, 502, 200} <= set(outcomes[0])


async def test_timeout_fault_holds_the_request(http: aiohttp.ClientSession) -> None:
    async with FakeBotAPI() as api:
        user = started(api)
        api.faults = Faults(timeout_rate=1.0, methods={"sendMessage"}, timeout_delay=0.3)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await call(api, http, "sendMessage", chat_id=user.id, text="x")
        assert user.messages == []


# ---------------------------------------------------------------------------------------------
# The real PTB Application end to end


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Freelancing", callback_data="topic:free")],
            [InlineKeyboardButton("Website", url="https://example.org")],
            [InlineKeyboardButton("Share", switch_inline_query="fiverr")],
        ]
    )
    await update.effective_message.reply_text("<b>Welcome</b> to Ayer Poth", reply_markup=markup)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    if query.data == "topic:free":
        await query.answer("Loading…")
        back = InlineKeyboardMarkup([[InlineKeyboardButton("Back", callback_data="back")]])
        await query.edit_message_text("<i>Freelancing</i> on Fiverr", reply_markup=back)
    else:
        await query.answer("That button is old", show_alert=True)


async def on_echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo as plain text, unless the user asks for the (broken) HTML echo."""
    message = update.effective_message
    assert message is not None and message.text is not None
    if message.text.startswith("html:"):
        await message.reply_text(message.text.removeprefix("html:"))
    else:
        await message.reply_text(message.text, parse_mode=None)


async def on_long(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    context.bot_data["error"] = None
    try:
        await update.effective_message.reply_text("x" * 4097)
    except BadRequest as error:
        context.bot_data["error"] = error.message


async def on_group_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text("Group help")


async def on_membership(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.my_chat_member is not None
    context.bot_data.setdefault("statuses", []).append(update.my_chat_member.new_chat_member.status)


async def on_inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.inline_query is not None
    await update.inline_query.answer(
        [InlineQueryResultArticle("1", "Fiverr", TextContent("<b>Fiverr</b> guide"))],
        cache_time=5,
        is_personal=True,
    )


def build_app(api: FakeBotAPI) -> Application[Any, Any, Any, Any, Any, Any]:
    app = (
        ApplicationBuilder()
        .token(api.token)
        .base_url(f"{api.base_url}/bot")
        .base_file_url(f"{api.base_url}/file/bot")
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .concurrent_updates(TrackingUpdateProcessor(4, on_processed=api.notify_processed))
        .build()
    )
    app.add_handler(CommandHandler("start", on_start))
    app.add_handler(CommandHandler("long", on_long))
    app.add_handler(CommandHandler("help", on_group_help, filters.ChatType.GROUPS))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(InlineQueryHandler(on_inline))
    app.add_handler(ChatMemberHandler(on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_echo))
    return app


@pytest.fixture
async def bot_api() -> AsyncIterator[tuple[FakeBotAPI, Application[Any, Any, Any, Any, Any, Any]]]:
    async with FakeBotAPI() as server:
        app = build_app(server)
        await app.initialize()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            yield server, app
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()


BotFixture = tuple[FakeBotAPI, Application[Any, Any, Any, Any, Any, Any]]


async def test_conversation_with_buttons(bot_api: BotFixture) -> None:
    api, _ = bot_api
    user = api.private_user("Rahim")
    assert not user.has_started
    reply = await user.send("/start")
    assert user.has_started
    assert reply.text == "Welcome to Ayer Poth"
    assert reply.html == "<b>Welcome</b> to Ayer Poth"
    assert reply.last.button_texts() == ["Freelancing", "Website", "Share"]
    assert (await user.press("web")).url == "https://example.org"
    assert (await user.press("share")).switch_inline_query == "fiverr"
    with pytest.raises(AssertionError, match=r"no button matching 'Nope'.*'Freelancing'"):
        await user.press("Nope")

    reply = await user.press("freelanc")
    assert reply.callback_answer is not None
    assert reply.callback_answer.text == "Loading…"
    assert reply.messages == []
    assert [m.text for m in reply.edits] == ["Freelancing on Fiverr"]
    assert reply.last.edited
    assert reply.last.render() == "_Freelancing_ on Fiverr\n[1] Back"
    assert [m.text for m in user.messages] == ["Freelancing on Fiverr"]

    stale = await user.press_data("topic:gone", user.last_message.message_id)
    assert stale.callback_answer is not None and stale.callback_answer.show_alert
    reply = await user.send("hello & <b>")
    assert reply.text == "hello & <b>"
    assert reply.html == "hello &amp; &lt;b&gt;"
    assert api.rejections == []


async def test_bad_html_and_too_long_text_are_rejected(bot_api: BotFixture) -> None:
    api, app = bot_api
    user = api.private_user()
    reply = await user.send("html:a & b")  # echoed with PTB's HTML default: a bare "&"
    with pytest.raises(AssertionError, match="showed no message"):
        _ = reply.last
    assert [c.description for c in api.rejections] == [
        'Bad Request: can\'t parse entities: unescaped "&" at byte offset 2; use "&amp;"'
    ]
    await user.send("/long")
    assert app.bot_data["error"] == "Message is too long"
    assert len(api.rejections) == 2


async def test_group_commands_and_privacy_mode(bot_api: BotFixture) -> None:
    api, _ = bot_api
    admin = api.private_user("Admin")
    group = api.group("Freelancers BD")
    reply = await group.add_bot(by=admin)
    assert reply.events == []
    reply = await group.send(admin, "/help@AyerPothBot")
    assert reply.text == "Group help"
    assert (await group.send(admin, "/help")).text == "Group help"
    assert (await group.send(admin, "/help@OtherBot")).events == []
    assert (await group.send(admin, "just chatting")).events == []
    assert [m.text for m in group.messages] == ["Group help", "Group help"]
    await group.remove_bot(by=admin)
    status, _ = await _raw_send(api, group.id)
    assert status == 403


async def _raw_send(api: FakeBotAPI, chat_id: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        return await call(api, session, "sendMessage", chat_id=chat_id, text="x")


async def test_block_unblock_and_unsupported_inputs(bot_api: BotFixture) -> None:
    api, app = bot_api
    user = api.private_user()
    await user.send("/start")
    await user.block()
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_message(user.id, "still there?")
    await user.unblock()
    assert app.bot_data["statuses"] == ["kicked", "member"]
    for reply in [
        await user.send_sticker(),
        await user.send_photo(caption="look"),
        await user.send_voice(),
    ]:
        assert reply.events == []
    assert (await user.send_forwarded("fwd")).text == "fwd"
    # PTB's MessageHandler also matches edited messages, so the edit is echoed.
    assert (await user.edit_message(None, "edited")).text == "edited"
    assert api.rejections == []


async def test_inline_query_and_channel_posts(bot_api: BotFixture) -> None:
    api, _ = bot_api
    user = api.private_user()
    answer = await user.inline("fiverr")
    assert answer.cache_time == 5 and answer.is_personal
    assert answer.texts() == ["Fiverr guide"]
    assert (await api.channel_post("news")).events == []


async def test_photo_upload_through_ptb(bot_api: BotFixture) -> None:
    api, app = bot_api
    user = api.private_user()
    await user.send("/start")
    picture = png(320, 200)
    message = await app.bot.send_photo(user.id, picture, caption="<b>Chart</b>")
    assert message.caption == "Chart"
    assert (message.photo[-1].width, message.photo[-1].file_size) == (320, len(picture))
    again = await app.bot.send_photo(user.id, message.photo[-1].file_id)
    assert again.photo == message.photo


async def test_fallback_without_processing_tracking() -> None:
    async with FakeBotAPI(track_processing=False) as api:
        app = (
            ApplicationBuilder()
            .token(api.token)
            .base_url(f"{api.base_url}/bot")
            .defaults(Defaults(parse_mode=ParseMode.HTML))
            .build()
        )
        app.add_handler(CommandHandler("start", on_start))
        await app.initialize()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            user = api.private_user()
            reply = await user.send("/start", timeout=2)
            assert reply.text == "Welcome to Ayer Poth"
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()


async def test_webhook_mode_with_ptb() -> None:
    async with FakeBotAPI() as api:
        app = build_app(api)
        await app.initialize()
        assert app.updater is not None
        port = _free_port()
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret_token="s3cret",
        )
        await app.start()
        try:
            reply = await api.private_user().send("/start")
            assert reply.text == "Welcome to Ayer Poth"
            assert api.webhook_secret == "s3cret"
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
