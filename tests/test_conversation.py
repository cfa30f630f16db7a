"""The guided conversation, as a user lives it: through the real bot and the fake Bot API."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import BotHarness

from bot.content import load_library, screen_words
from bot.fakeapi import UserDriver
from handlers.subscriptions import tip_message


async def started(bot: BotHarness, name: str = "Rahim", language_code: str = "bn") -> UserDriver:
    user = bot.user(name, language_code=language_code)
    await user.send("/start")
    return user


async def test_welcome_is_bangla_with_a_visible_way_to_english(bot: BotHarness) -> None:
    user = bot.user("Rahim", language_code="en")  # Bangla first, whatever the app's language
    reply = await user.send("/start")
    assert "স্বাগতম" in reply.text
    reply = await user.press("English")
    assert reply.callback_answer is not None
    assert "Main menu" in reply.text
    assert reply.last.edited  # navigation edits the message in place


async def test_english_user_returns_to_english(bot: BotHarness) -> None:
    user = await started(bot)
    await user.send("/language")
    bot.clock.advance(3600)
    reply = await user.send("/start")
    assert "Main menu" in reply.text and "Welcome" not in reply.text
    # the command list in this chat follows the language chosen in the bot
    commands = bot.api.effective_commands(user.id, user.id, language_code="bn")
    assert commands[0]["description"] == "Main menu"
    await user.send("/language")
    commands = bot.api.effective_commands(user.id, user.id, language_code="en")
    assert commands[0]["description"] == "মূল মেনু"


async def test_active_passive_then_lists_with_back_and_home(bot: BotHarness) -> None:
    user = await started(bot)
    reply = await user.press("অ্যাকটিভ বনাম প্যাসিভ")
    assert "প্যাসিভ" in reply.text
    reply = await user.press("প্যাসিভ পদ্ধতি")
    names = reply.last.button_texts()
    assert any("YouTube" in n for n in names) and not any("ফ্রিল্যান্সিং" in n for n in names)
    reply = await user.press("YouTube")
    assert "ধরন:" in reply.text and "শুরুর খরচ:" in reply.text
    reply = await user.press("ফিরে যান")  # back to the passive list it came from
    assert "প্যাসিভ আয়ের পদ্ধতি" in reply.text
    reply = await user.press("মূল মেনু")
    assert "মূল মেনু" in reply.text


async def test_card_sections_platform_links_and_pages(bot: BotHarness) -> None:
    user = await started(bot, language_code="en")
    await user.press("English")
    await user.press("All methods")
    reply = await user.press("Freelancing")
    assert len(reply.last.button_texts()) <= 6  # the rest is one tap further, under "What it is"
    reply = await user.press("What it is")
    assert "Skills needed" in reply.text or "Skills" in reply.text
    reply = await user.press("Platforms")
    assert "Fiverr" in reply.text and "https://" not in reply.html  # the links once: as buttons
    link = await user.press("🔗 Fiverr")
    assert link.url == "https://www.fiverr.com"
    await user.press("Back")
    await user.press("What it is")
    reply = await user.press("^💡 Tips$")
    assert "Week 1" in reply.text and "Page 1/" in reply.text
    reply = await user.press("Next page")
    assert "Page 2/" in reply.text and "Week 1:" not in reply.text
    reply = await user.press("Previous page")
    assert "Page 1/" in reply.text
    reply = await user.press("Back")
    assert "Cost to start" in reply.text
    await user.press("What it is")
    share = await user.press("📤 Share")
    assert share.switch_inline_query == "Freelancing"


async def test_quiz_top_three_stored_and_retaken(bot: BotHarness) -> None:
    user = await started(bot)
    reply = await user.send("/quiz")
    total = len(bot.library.quiz_questions)
    assert f"১/{'১২৩৪৫৬৭৮৯'[total - 1]}" in reply.text
    for _ in range(total):
        first_answer = reply.last.button_texts()[0]
        reply = await user.press(f"^{first_answer}$")
    opened = [
        t
        for t in reply.last.button_texts()
        if not any(icon in t for icon in ("⭐", "🔄", "🏠", "🖼"))
    ]
    assert len(opened) == 3
    stored = await bot.store.get_quiz_result(user.id)  # type: ignore[union-attr]
    assert stored is not None and len(stored.answers) == total
    assert reply.text.count("কারণ:") == 3
    assert "১. " in reply.text and "1. " not in reply.text
    # open a recommended method, then Back returns to the result
    await user.press(f"^{opened[0]}$")
    back = await user.press("ফিরে যান")
    assert back.text.count("কারণ:") == 3
    again = await user.press("আবার কুইজ")
    assert "প্রশ্ন ১/" in again.text


async def test_quiz_survives_a_restart_midway(bot: BotHarness) -> None:
    user = await started(bot)
    reply = await user.send("/quiz")
    reply = await user.press(f"^{reply.last.button_texts()[0]}$")
    await bot.restart()
    reply = await user.press(f"^{reply.last.button_texts()[1]}$")
    assert "প্রশ্ন ৩/" in reply.text


async def test_choose_paths_tick_steps_and_remove(bot: BotHarness) -> None:
    user = await started(bot)
    await user.press("সব পদ্ধতি")
    await user.press("ফ্রিল্যান্সিং")
    reply = await user.press("এই পথ বেছে নিন")
    assert reply.callback_answer is not None and "যোগ হলো" in (reply.callback_answer.text or "")
    assert any("আমার পথে আছে" in t for t in reply.last.button_texts())
    reply = await user.send("/mypath")
    assert "০/৬" in reply.text
    reply = await user.press("ফ্রিল্যান্সিং")
    reply = await user.press("^▫️ ১$")
    assert "১/৬" in reply.text
    reply = await user.press("^▫️ ৩$")
    assert "২/৬" in reply.text
    reply = await user.press("^✅ ১$")  # untick
    assert "১/৬" in reply.text
    await bot.restart()
    reply = await user.send("/mypath")
    assert "১/৬" in reply.text  # progress survives a restart
    await user.press("ফ্রিল্যান্সিং")
    reply = await user.press("পথটি বাদ দিন")
    assert "বাদ দেবেন" in reply.text
    reply = await user.press("হ্যাঁ, বাদ দিন")
    assert "এখনো কোনো পথ বেছে নেননি" in reply.text


async def test_popup_texts_are_plain_text_not_html(bot: BotHarness) -> None:
    user = await started(bot, language_code="en")
    await user.send("/language")
    await user.send("/start youtube")
    reply = await user.press("Choose this path")
    assert reply.callback_answer is not None
    assert reply.callback_answer.text == '⭐ "YouTube & Video Editing" is now on your path.'


async def test_at_most_three_paths(bot: BotHarness) -> None:
    user = await started(bot, language_code="en")
    await user.send("/language")
    for method_id in ("freelancing", "writing", "youtube"):
        await user.send(f"/start {method_id}")
        await user.press("Choose this path")
    await user.send("/start stock")
    reply = await user.press("Choose this path")
    assert reply.callback_answer is not None and reply.callback_answer.show_alert
    assert "three" in (reply.callback_answer.text or "")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [("youtube", "YouTube"), ("quiz", "প্রশ্ন ১/"), ("mypath", "আমার পথ"), ("nonsense-42", "স্বাগতম")],
)
async def test_deep_links(bot: BotHarness, payload: str, expected: str) -> None:
    user = bot.user("Rahim")
    reply = await user.send(f"/start {payload}")
    assert expected in reply.text


async def test_free_text_answers_in_both_scripts(bot: BotHarness) -> None:
    user = await started(bot)
    reply = await user.send("ইউটিউব থেকে কিভাবে আয় করব?")
    assert "YouTube" in reply.text.splitlines()[0]
    reply = await user.send("freelancing")
    assert "ফ্রিল্যান্সিং" in reply.text.splitlines()[0]
    reply = await user.press("প্রথম ধাপ")  # the answer is the card itself, with its buttons
    assert "প্রথম ধাপ" in reply.text
    reply = await user.send("<b>zzqx</b>")
    assert "<b>zzqx</b>" in reply.text  # echoed safely, escaped
    assert any("মূল মেনু" in t for t in reply.last.button_texts())


async def test_media_unknown_commands_and_edits(bot: BotHarness) -> None:
    user = await started(bot)
    assert "শুধু লেখা" in (await user.send_sticker()).text
    assert "শুধু লেখা" in (await user.send_voice()).text
    assert "শুধু লেখা" in (await user.send_photo()).text
    assert "চিনি না" in (await user.send("/stats")).text
    edited = await user.edit_message(None, "something else")
    assert edited.shown == []


async def test_stale_and_forged_buttons_get_the_current_menu(bot: BotHarness) -> None:
    user = await started(bot)
    for data in ("card:gone:all", "v0:old-button", "step:youtube:99", "quiz:9999", "x" * 64):
        card = await user.send("/start youtube")
        reply = await user.press_data(data, card.last.message_id)
        assert reply.callback_answer is not None
        assert "মূল মেনু" in reply.text


async def test_a_page_that_no_longer_exists_shows_the_last_one(bot: BotHarness) -> None:
    user = await started(bot)
    card = await user.send("/start youtube")
    reply = await user.press_data("sec:youtube:steps:9:all", card.last.message_id)
    assert "প্রথম ধাপগুলো" in reply.text


async def test_button_for_a_method_removed_from_the_content(
    bot: BotHarness, tmp_path: Path
) -> None:
    user = await started(bot)
    await user.press("সব পদ্ধতি")
    reply = await user.press("ড্রপশিপিং")
    content = tmp_path / "content"
    shutil.copytree(bot.settings.content_dir, content)
    for language in ("bn", "en"):
        (content / language / "methods" / "dropshipping.toml").unlink()
    methods = content / "methods.toml"
    methods.write_text(
        methods.read_text(encoding="utf-8").replace(', "dropshipping"', ""), encoding="utf-8"
    )
    quiz = content / "quiz.toml"
    text = re.sub(r",\s*dropshipping\s*=\s*\d", "", quiz.read_text(encoding="utf-8"))
    # its limits, and the answer naming it as an interest, go with it (and their texts)
    text = re.sub(r'(?m)^dropshipping = \[.*\]$|^\s*interest = \["dropshipping"\]$', "", text)
    text = re.sub(r'(?m)^\s*lacks = \["(money|time)"\]$', "", text)
    quiz.write_text(text, encoding="utf-8")
    for language in ("bn", "en"):
        texts = content / language / "quiz.toml"
        texts.write_text(
            texts.read_text(encoding="utf-8").split("[excluded.dropshipping]")[0], encoding="utf-8"
        )
    for answers in content.glob("*/answers/*.toml"):  # "see also" buttons to the card go too
        text = answers.read_text(encoding="utf-8")
        answers.write_text(re.sub(r'"card:dropshipping",? ?|, "card:dropshipping"', "", text))
    await bot.restart(library=load_library(content))
    reply = await user.press("প্রথম ধাপ", message=reply.last)
    assert reply.callback_answer is not None and "বদলে গেছে" in (reply.callback_answer.text or "")
    assert "মূল মেনু" in reply.text


@pytest.mark.parametrize("language", ["bn", "en"])
async def test_every_screen_of_every_method_renders_through_the_bot(
    bot: BotHarness, language: str
) -> None:
    """Each card, each section page, each info page and each tip, as Telegram receives them.

    The fixture fails the test if the fake Bot API refused any of them (HTML, length, buttons).
    """
    user = await started(bot)
    if language == "en":
        await user.send("/language")
    lib = bot.library
    labels = {key: lib.t(language, f"btn.{key}") for key in SECTION_BUTTON_KEYS}
    for method in lib.methods(language):
        card = await user.send(f"/start {method.id}")
        assert method.title in card.text
        # a phone's first screen: at most 90 words and 6 buttons in 4 rows
        assert screen_words(card.last.html) <= 90
        assert len(card.last.button_texts()) <= 6 and len(card.last.buttons) <= 4
        for key, label in labels.items():
            if key not in ("what", "steps"):  # the rest is reached from "what it is"
                await user.press(f"^{re.escape(labels['what'])}$", message=card.last)
            reply = await user.press(f"^{re.escape(label)}$", message=card.last)
            assert screen_words(reply.last.html) <= 160
            seen = 1
            while any(t == lib.t(language, "btn.next") for t in reply.last.button_texts()):
                reply = await user.press(f"^{re.escape(lib.t(language, 'btn.next'))}$")
                assert screen_words(reply.last.html) <= 160
                seen += 1
            assert seen == len(
                lib.section_pages(language, method.id, _section_of(label, labels), done=frozenset())
            )
            await user.press(f"^{re.escape(lib.t(language, 'btn.back'))}$")
    for page_id in ("active_passive", "before_start", "safety", "getting_paid"):
        page = lib.page(language, page_id)
        label = (
            lib.t(language, "btn.active_passive")
            if page_id == "active_passive"
            else f"{page.emoji} {page.button}"
        )
        await user.send("/start")
        reply = await user.press(f"^{re.escape(label)}$")
        assert page.title in reply.text
    for method_id in lib.method_ids:  # every weekly tip, sent as the dispatcher sends it
        for index in range(lib.tip_count(method_id)):
            text, markup = tip_message(lib, language, method_id, index)
            await bot.app.bot.send_message(user.id, text, reply_markup=markup)  # type: ignore[union-attr]


SECTION_BUTTON_KEYS = ("what", "steps", "platforms", "mistakes", "tips_section")


def _section_of(label: str, labels: dict[str, str]) -> str:
    key = next(k for k, v in labels.items() if v == label)
    return "tips" if key == "tips_section" else key
