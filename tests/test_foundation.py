"""The foundation: the real bot over HTTP against the fake Bot API — start-up, /start, shutdown."""

from __future__ import annotations

from conftest import BotHarness


async def test_start_round_trip_in_bangla(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    reply = await user.send("/start")
    assert "আয়ের পথ" in reply.text and "Rahim" in reply.text
    assert any("English" in t for t in reply.last.button_texts())


async def test_commands_are_published_per_language(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    await user.send("/start")
    bn = [c["command"] for c in bot.api.effective_commands(user.id, language_code="bn")]
    assert bn == ["start", "methods", "quiz", "mypath", "language", "help"]
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
