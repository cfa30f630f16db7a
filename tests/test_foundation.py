"""The foundation: the real bot over HTTP against the fake Bot API — start-up, /start, shutdown."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from conftest import CONTENT, BotHarness, Clock

from bot.config import Settings
from bot.fakeapi import FakeBotAPI
from bot.playground import PlaygroundSession


async def test_start_round_trip_in_bangla(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    reply = await user.send("/start")
    assert "আয়ের পথ" in reply.text and "Rahim" in reply.text
    assert any("English" in t for t in reply.last.button_texts())


async def test_commands_are_published_per_language(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    await user.send("/start")
    bn = [c["command"] for c in bot.api.effective_commands(user.id, language_code="bn")]
    assert bn == ["start", "methods", "quiz", "mypath", "tips", "language", "help"]
    en = bot.api.effective_commands(user.id, language_code="en")
    assert en[0]["description"] == "Main menu"
    assert bot.api.effective_commands(user.id, language_code="bn")[0]["description"] == "মূল মেনু"


async def test_restart_keeps_the_user(bot: BotHarness) -> None:
    user = bot.user("Karim", language_code="en")
    await user.send("/start")
    await bot.restart()
    bot.clock.advance(60)
    reply = await user.send("/start")
    assert "Karim" not in reply.text  # a returning user gets the menu, not the welcome
    assert "মূল মেনু" in reply.text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_webhook_mode_accepts_updates_only_with_the_secret(
    make_settings: Callable[..., Settings], clock: Clock
) -> None:
    port = _free_port()
    async with FakeBotAPI() as api:
        settings = make_settings(
            api,
            WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
            WEBHOOK_SECRET="right_secret",
            WEBHOOK_PORT=str(port),
        )
        harness = BotHarness(api, settings, clock, CONTENT)
        await harness.start()
        try:
            user = harness.user("Rahim")
            reply = await user.send("/start")  # delivered by the fake API's webhook POST
            assert "স্বাগতম" in reply.text
            update = {"update_id": 999, "message": {"message_id": 1, "date": 0, "text": "/start",
                      "chat": {"id": user.id, "type": "private"}, "from": {"id": user.id, "is_bot": False, "first_name": "X"}}}  # fmt: skip
            async with aiohttp.ClientSession() as http:
                for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                    async with http.post(
                        f"http://127.0.0.1:{port}/telegram", json=update, headers=headers
                    ) as r:
                        assert r.status == 403
            sent = len(api.sent_to(user.id))
            await user.send(
                "/help"
            )  # a genuine update still goes through, and nothing else was sent
            assert len(api.sent_to(user.id)) == sent + 1
        finally:
            await harness.stop()


async def test_a_failure_gets_an_apology_and_a_log_line(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    user = bot.user("Karim")
    await user.send("/start")
    bot.api.fail_next(
        "sendMessage", status=500, description="Internal Server Error", chat_id=user.id
    )
    reply = await user.send("/help")
    assert "দুঃখিত" in reply.text
    assert any("failed" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def _bot_env(api: FakeBotAPI, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "BOT_TOKEN": api.token,
        "BOT_API_URL": api.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "LOG_LEVEL": "DEBUG",
        **extra,
    }


async def test_ayerpoth_run_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The real `ayerpoth run` process: long polling, a reply, SIGTERM, exit 0, no token logged."""
    async with FakeBotAPI(track_processing=False) as api:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            env=_bot_env(api, tmp_path), cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            user = api.private_user("Rahim")
            reply = await user.send("/start", timeout=30)
            assert "স্বাগতম" in reply.text
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        log = (stdout + stderr).decode()
        assert process.returncode == 0, log
        assert "ready" in log and "DEBUG" in log
        # the reply went out through the outbox before the stop: nothing handed back or given up
        assert "handed back" not in log and "not sent" not in log
        assert api.token not in log and api.token.split(":")[1] not in log
        assert os.stat(tmp_path / "run.sqlite3").st_mode & 0o077 == 0


def test_playground_driven_through_stdin(tmp_path: Path) -> None:
    typed = "1\n/language\nyoutube\n1\n42\n/group\n/methods\n@AyerPothBot youtube\n1\nq\n"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "playground", "--no-color"],
        input=typed, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "আয়ের পথ" in out  # the welcome
    assert "(edited)" in out and "প্যাসিভ" in out  # button 1 edited the menu in place
    assert "The language is now English." in out
    assert "YouTube" in out and "Cost to start" in out  # search, then the card by its number
    assert "there is no button 42" in out
    assert "*" in out  # bold is shown readably
    assert "Playground group" in out and "(group) > " in out  # /group, then /methods there
    assert "via @AyerPothBot" in out  # an inline result posted into the group


def playground(bot: BotHarness) -> tuple[PlaygroundSession, io.StringIO]:
    """The playground's session on the test bot: typed lines go to `step`, output to the buffer."""
    out = io.StringIO()
    session = PlaygroundSession(bot.api, bot.user("You"), out, color=False, catch_up_seconds=0.01)
    return session, out


def shown_since(out: io.StringIO, start: int) -> str:
    return out.getvalue()[start:]


async def test_playground_numbers_press_buttons_whose_labels_repeat(bot: BotHarness) -> None:
    """The quiz result has a "choose this path" button per method: each number picks its own."""
    chosen: list[str] = []
    repeated: list[int] = []
    while not repeated or len(chosen) < len(repeated):
        session, out = playground(bot)  # a new person each time: the same answers, fresh result
        await session.step("/quiz")
        for _ in CONTENT.quiz_questions:
            await session.step("1")
        texts = session.user.last_message.button_texts()
        repeated = repeated or [n for n, t in enumerate(texts, 1) if texts.count(t) > 1]
        assert len(repeated) >= 2, texts
        start = len(out.getvalue())
        await session.step(str(repeated[len(chosen)]))
        toasts = [line for line in shown_since(out, start).splitlines() if line.startswith("💬")]
        assert "(!)" not in shown_since(out, start) and len(toasts) == 1, shown_since(out, start)
        chosen.append(toasts[0])
    assert len(set(chosen)) == len(repeated), chosen  # three buttons, three different paths


async def test_playground_group_and_inline_mode(bot: BotHarness) -> None:
    session, out = playground(bot)
    await session.step("/start")
    await session.step("/group")
    assert session.in_group and session.group is not None
    group = session.group
    assert "/methods" in group.last_message.text  # the bot's hello when added
    await session.step("/methods")
    assert len(group.last_message.button_texts()) == len(CONTENT.method_ids)
    youtube = CONTENT.method("bn", "youtube")
    await session.step(str(CONTENT.method_ids.index("youtube") + 1))  # a number, in the group
    assert youtube.title in group.last_message.text and len(group.messages) == 2
    start = len(out.getvalue())
    await session.step("any chatter")
    assert "does not get this message" in shown_since(out, start)  # privacy mode

    # inline mode: the results, numbered; a number posts one into the group via the bot
    start = len(out.getvalue())
    await session.step("@AyerPothBot ইউটিউব")
    assert f"[1] {youtube.emoji} {youtube.title}" in shown_since(out, start)
    await session.step("1")
    posted = session.posted[-1]
    assert posted.chat_id == group.id and youtube.title in posted.text
    sent = bot.api.user_message(group.id, posted.message_id)
    assert sent is not None and sent["via_bot"]["username"] == "AyerPothBot"
    assert f"You via @AyerPothBot\n{youtube.emoji}" in shown_since(out, start)

    # its "full card" button is a deep link: Telegram opens the bot's chat with /start youtube
    await session.step("1")
    assert not session.in_group
    card = session.user.last_message
    assert youtube.title in card.text and len(card.buttons) > 1
    start = len(out.getvalue())
    await session.step("@bot")  # the short form; nothing typed lists every method
    listed = shown_since(out, start)
    assert all(f"[{n}] " in listed for n in range(1, len(CONTENT.method_ids) + 1))
    await session.step("99")
    assert "there is no result 99" in shown_since(out, start)
    await session.step("/private")
    assert "You are in your private chat" in shown_since(out, start)
    await session.step("/group")
    assert session.in_group and session.group is group


async def test_a_failed_edit_after_answering_is_not_answered_twice(bot: BotHarness) -> None:
    user = bot.user("Karim")
    await user.send("/start")
    bot.api.fail_next("editMessageText", status=500, description="Internal Server Error")
    reply = await user.press("সব পদ্ধতি")
    assert reply.callback_answer is not None
    assert (
        len(bot.api.calls_to("answerCallbackQuery")) == 1
    )  # and the fixture checks: no rejections
