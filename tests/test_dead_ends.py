"""Screens that used to leave a person stuck or told them something untrue, through the real bot."""

from __future__ import annotations

from conftest import CONTENT, BotHarness

from bot.fakeapi import UserDriver

CARD_TITLE = "YouTube চ্যানেল ও ভিডিও এডিটিং"


async def on_path(bot: BotHarness) -> tuple[UserDriver, str]:
    """Someone with YouTube chosen, looking at its card (text returned)."""
    user = bot.user("Rahim")
    await user.send("/start youtube")
    reply = await user.press("এই পথ বেছে নিন")
    return user, reply.text


async def test_back_from_a_checklist_opened_on_a_card_returns_to_the_card(bot: BotHarness) -> None:
    user, card = await on_path(bot)
    checklist = await user.press("আমার পথে আছে")
    assert "ধাপ শেষ" in checklist.text
    assert not any("পুরো কার্ড" in t for t in checklist.last.button_texts())  # Back is the card
    back = await user.press("ফিরে যান")
    assert back.text == card
    assert "সব পদ্ধতি" in (await user.press("ফিরে যান")).text  # and the card's own Back as before


async def test_ticking_on_a_checklist_opened_on_a_card_keeps_its_way_back(bot: BotHarness) -> None:
    user, card = await on_path(bot)
    await user.press("আমার পথে আছে")
    await user.press("^▫️ ১$")
    await user.press("পথটি বাদ দিন")
    await user.press("না, থাক")
    assert (await user.press("ফিরে যান")).text == card


async def test_back_from_a_checklist_opened_on_my_path_returns_to_my_path(bot: BotHarness) -> None:
    user, _ = await on_path(bot)
    await user.send("/mypath")
    await user.press("YouTube")
    card = await user.press("পুরো কার্ড")
    assert CARD_TITLE in card.text
    checklist = await user.press("আমার পথে আছে")  # from the card opened on the checklist
    assert "ধাপ শেষ" in checklist.text
    assert "আমার পথ" in (await user.press("ফিরে যান")).text.split("\n")[0]  # no loop


async def test_mydata_names_the_language_in_use_when_none_was_chosen(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    await user.send("/start")
    text = (await user.send("/mydata")).text
    assert "ভাষা: বাংলা" in text and "ভাষা: নেই" not in text
    assert "বিকেল ৩টা" in text and "PM" not in text  # first seen: Monday 15:00 in Dhaka


async def test_after_forget_one_tap_starts_again(bot: BotHarness) -> None:
    user, _ = await on_path(bot)
    await user.send("/forget")
    reply = await user.press("হ্যাঁ, সব মুছে ফেলুন")
    assert "মুছে ফেলা হয়েছে" in reply.text
    assert reply.last.button_texts() == [CONTENT.t("bn", "btn.start_again")]
    again = await user.press("আবার শুরু করুন")
    assert "মূল মেনু" in again.text
    assert (await bot.store.get_user(user.id)) is not None  # type: ignore[union-attr]
    assert await bot.store.list_paths(user.id) == []  # type: ignore[union-attr]
