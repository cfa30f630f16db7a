"""The foundation: the real bot over HTTP against the fake Bot API — start-up, /start, shutdown."""

from __future__ import annotations

import asyncio
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
        assert api.token not in log and api.token.split(":")[1] not in log
        assert os.stat(tmp_path / "run.sqlite3").st_mode & 0o077 == 0


def test_playground_driven_through_stdin(tmp_path: Path) -> None:
    typed = "1\n/language\nyoutube\n1\n42\nq\n"
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


async def test_a_failed_edit_after_answering_is_not_answered_twice(bot: BotHarness) -> None:
    user = bot.user("Karim")
    await user.send("/start")
    bot.api.fail_next("editMessageText", status=500, description="Internal Server Error")
    reply = await user.press("সব পদ্ধতি")
    assert reply.callback_answer is not None
    assert (
        len(bot.api.calls_to("answerCallbackQuery")) == 1
    )  # and the fixture checks: no rejections
