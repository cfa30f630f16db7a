"""Sharing method cards into any chat (inline mode) and using the bot in groups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import CONTENT, BotHarness, Clock, bot_against_fake

from bot.config import Settings
from bot.fakeapi import FloodRules, GroupDriver, InlineAnswer, UserDriver

DEEP_LINK = "https://t.me/AyerPothBot?start="


def ids(answer: InlineAnswer) -> list[str]:
    """The methods listed (a result id is `<method id>.<language>`)."""
    return [str(r["id"]).split(".")[0] for r in answer.results]


def start_payload(answer: InlineAnswer, index: int = 0) -> str:
    """The /start payload of a result's "full card" button."""
    url = answer.articles[index]["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert url.startswith(DEEP_LINK)
    return parse_qs(urlsplit(url).query)["start"][0]


async def group_with_bot(
    bot: BotHarness, *, as_admin: bool = False
) -> tuple[GroupDriver, UserDriver, UserDriver]:
    """A group created by Alice, who adds the bot; Bob is a plain member. Neither started the bot."""
    alice, bob = bot.user("Alice"), bot.user("Bob", language_code="en")
    group = bot.api.group("Earners BD", creator=alice)
    group.add_member(bob)
    reply = await group.add_bot(alice, as_admin=as_admin)
    assert len(reply.messages) == 1 and "/methods" in reply.text
    return group, alice, bob


# ------------------------------------------------------------------------------ inline mode


async def test_inline_matches_bangla_and_english_spellings(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    cases = {
        "ফ্রিল্যান্স": "freelancing",
        "ফ্রিলান্সিং": "freelancing",
        "freelancer": "freelancing",
        "ইউটিউব": "youtube",
        "youtube": "youtube",
        "ড্রপশিপিং": "dropshipping",
    }
    for query, method_id in cases.items():
        answer = await user.inline(query)
        assert ids(answer) == [method_id], query
        title = CONTENT.method("bn", method_id).title
        assert title in answer.articles[0]["title"] and title in answer.texts()[0]


async def test_empty_query_lists_every_method_as_valid_results(bot: BotHarness) -> None:
    answer = await bot.user("Rahim").inline("")
    assert ids(answer) == list(CONTENT.method_ids) and len(answer.results) <= 50
    result_ids = [str(r["id"]) for r in answer.results]
    assert len(set(result_ids)) == len(result_ids)
    assert all(i.isascii() and len(i.encode()) <= 64 for i in result_ids)
    assert answer.cache_time == 300 and not answer.is_personal
    for method, article in zip(CONTENT.methods("bn"), answer.articles, strict=True):
        assert article["title"] == f"{method.emoji} {method.title}"
        assert article["description"] == method.summary
        assert "<b>" in article["html"] and "শুরুর খরচ:" in article["text"]  # parsed as HTML
    # nobody started the bot: inline mode neither stores nor writes to anyone
    assert bot.api.calls_to("sendMessage") == []


async def test_share_button_text_finds_exactly_that_method(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    await user.send("/start")
    await user.press("সব পদ্ধতি")
    await user.press("YouTube")
    await user.press("এটা কী")
    share = await user.press("📤 শেয়ার")
    assert share.switch_inline_query is not None
    assert ids(await user.inline(share.switch_inline_query)) == ["youtube"]
    for language, person in (("bn", user), ("en", bot.user("Ann", language_code="en"))):
        for method in CONTENT.methods(language):
            assert ids(await person.inline(method.button)) == [method.id], method.button


async def test_language_comes_from_saved_setting_then_telegram(bot: BotHarness) -> None:
    user = bot.user("Rahim", language_code="bn")
    await user.send("/start")
    await user.send("/language")  # saved: English
    answer = await user.inline("ইউটিউব")
    assert answer.is_personal and answer.results[0]["id"] == "youtube.en"
    assert "Cost to start:" in answer.texts()[0]
    assert answer.articles[0]["reply_markup"]["inline_keyboard"][0][0]["text"] == "📖 Full card"
    # never started, English app: English, and not shared with Bangla users through the cache
    stranger = bot.user("Ann", language_code="en")
    answer = await stranger.inline("ইউটিউব")
    assert answer.is_personal and answer.results[0]["id"] == "youtube.en"
    assert await bot.store.get_user(stranger.id) is None  # type: ignore[union-attr]


async def test_deep_link_opens_the_full_card_in_private(bot: BotHarness) -> None:
    sharer = bot.user("Rahim")
    payload = start_payload(await sharer.inline("dropshipping"))
    assert payload == "dropshipping"
    friend = bot.user("Karim")  # sees the shared card in another chat and taps the button
    reply = await friend.send(f"/start {payload}")
    assert "ড্রপশিপিং" in reply.text and "শুরুর খরচ:" in reply.text
    buttons = reply.last.button_texts()
    assert "📖 এটা কী" in buttons and "⭐ এই পথ বেছে নিন" in buttons


# ------------------------------------------------------------------------------ groups


async def test_group_list_card_and_back_by_two_users(bot: BotHarness) -> None:
    group, alice, bob = await group_with_bot(bot)
    stored = await bot.store.get_group(group.id)  # type: ignore[union-attr]
    assert stored is not None and stored.title == "Earners BD"
    listing = await group.send(alice, "/methods@AyerPothBot")
    assert len(listing.last.button_texts()) == len(CONTENT.method_ids)
    card = await group.press(bob, "YouTube")
    assert card.callback_answer is not None
    assert card.last.edited and card.last.message_id == listing.last.message_id
    assert "শুরুর খরচ:" in card.text and CONTENT.method("bn", "youtube").summary in card.text
    assert card.last.button_texts() == ["📖 পুরো কার্ড", "⬅️ ফিরে যান"]  # nothing personal
    opened = await group.press(bob, "পুরো কার্ড")
    assert opened.url == f"{DEEP_LINK}youtube"
    back = await group.press(alice, "ফিরে যান")
    assert back.last.message_id == listing.last.message_id and "সব পদ্ধতি" in back.text
    help_reply = await group.send(bob, "/help@AyerPothBot")
    assert "/language" in help_reply.text and "@AyerPothBot" in help_reply.text
    # the group's command menu, in each member's app language until admins pick one
    menu = bot.api.effective_commands(group.id, bob.id, language_code="en")
    assert [(c["command"], c["description"]) for c in menu] == [
        ("methods", "All ways to earn"),
        ("language", "Change language (বাংলা)"),
        ("help", "Help"),
    ]
    # the bot never writes privately to people who have not started it
    assert bot.api.sent_to(alice.id) == [] and bot.api.sent_to(bob.id) == []
    await group.remove_bot(alice)
    assert await bot.store.get_group(group.id) is None  # type: ignore[union-attr]


async def test_only_admins_set_the_group_language(bot: BotHarness) -> None:
    group, alice, bob = await group_with_bot(bot)
    refused = await group.send(bob, "/language@AyerPothBot")
    assert "শুধু অ্যাডমিন" in refused.text
    stored = await bot.store.get_group(group.id)  # type: ignore[union-attr]
    assert stored is not None and stored.language is None
    group.make_admin(bob)
    switched = await group.send(bob, "/language")
    assert "now English" in switched.text
    listing = await group.send(alice, "/methods")
    assert "All methods" in listing.text and "💻 Freelancing" in listing.last.button_texts()
    card = await group.press(alice, "Freelancing")
    assert "Cost to start:" in card.text
    # everyone's menu in this group follows, whatever their app's language
    menu = bot.api.effective_commands(group.id, alice.id, language_code="bn")
    assert menu[0]["description"] == "All ways to earn"
    back = await group.send(alice, "/language")  # the creator is an admin too
    assert "বাংলা" in back.text
    # a new stay starts afresh in the default language
    await group.send(bob, "/language")
    await group.remove_bot(alice)
    rejoined = await group.add_bot(alice)
    assert "আসসালামু আলাইকুম" in rejoined.text
    menu = bot.api.effective_commands(group.id, alice.id, language_code="bn")
    assert menu[0]["description"] == "সব আয়ের পদ্ধতি"


async def test_buttons_of_other_screens_in_a_group_get_only_an_answer(bot: BotHarness) -> None:
    group, alice, bob = await group_with_bot(bot)
    listing = await group.send(alice, "/methods")
    message_id = listing.last.message_id
    forged = await group.press_data(bob, "choose:freelancing:all", message_id)
    assert forged.callback_answer is not None and "প্রাইভেট চ্যাটে" in (
        forged.callback_answer.text or ""
    )
    assert forged.shown == []
    assert await bot.store.list_paths(bob.id) == []  # type: ignore[union-attr]
    await group.press(bob, "ফ্রিল্যান্সিং")
    gone = await group.press_data(bob, "gcard:crypto", message_id)  # a method since removed
    assert gone.callback_answer is not None and gone.callback_answer.text == CONTENT.t(
        "bn", "stale"
    )
    assert "সব পদ্ধতি" in gone.text


async def test_chatter_other_bots_and_channel_posts_are_ignored(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    group, alice, bob = await group_with_bot(bot, as_admin=True)  # an admin bot sees everything
    welcome = group.last_message
    sent_before = len(bot.api.calls)
    for text in ("আসসালামু আলাইকুম সবাই", "/methods@OtherBot", "/quiz", "ইউটিউব ভালো?"):
        assert (await group.send(bob, text)).events == [], text
    assert (await group.send(alice, "ধন্যবাদ", reply_to=welcome)).events == []
    assert (await bot.api.channel_post("নতুন পোস্ট: /methods")).events == []
    assert [c.method for c in bot.api.calls[sent_before:] if c.method != "getUpdates"] == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ------------------------------------------------------------------------------ flood limits


@pytest.fixture
async def tight_bot(
    make_settings: Callable[..., Settings], clock: Clock
) -> AsyncIterator[BotHarness]:
    """The bot against a fake whose group limit (4 at once) is far below the rate limiter's 20."""
    rules = FloodRules(group_burst=4, group_per_minute=600)
    async with bot_against_fake(make_settings, clock, flood=rules) as harness:
        yield harness


async def test_a_burst_of_group_taps_waits_out_429s(
    tight_bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    bot = tight_bot
    group, alice, bob = await group_with_bot(bot)
    carol = bot.user("Carol")
    listing = await group.send(alice, "/methods")
    chosen = CONTENT.method_ids[:6]
    tappers = [alice, bob, carol] * 2
    start = bot.api.event_seq
    await asyncio.gather(
        *(
            group.press_data(person, f"gcard:{method_id}", listing.last.message_id)
            for person, method_id in zip(tappers, chosen, strict=True)
        )
    )
    assert bot.api.flood_rejections > 0  # Telegram pushed back, and the rate limiter retried
    edits = [e.message.text for e in bot.api.events_since(start) if e.kind == "edit" and e.message]
    for method_id in chosen:
        assert any(CONTENT.method("bn", method_id).summary in text for text in edits), method_id
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_group_that_becomes_a_supergroup_keeps_its_language(bot: BotHarness) -> None:
    alice = bot.user("Alice")
    group = bot.api.group("Earners BD", supergroup=False, creator=alice)
    await group.add_bot(alice)
    assert "now English" in (await group.send(alice, "/language")).text
    said = len(bot.api.sent_to(group.id))
    supergroup = await group.upgrade(alice)  # Telegram gives it a new id
    assert await bot.store.get_group(group.id) is None  # type: ignore[union-attr]
    stored = await bot.store.get_group(supergroup.id)  # type: ignore[union-attr]
    assert stored is not None and stored.language == "en" and stored.title == "Earners BD"
    listing = await supergroup.send(alice, "/methods")
    assert "All methods" in listing.text
    menu = bot.api.effective_commands(supergroup.id, alice.id, language_code="bn")
    assert menu[0]["description"] == "All ways to earn"
    assert len(bot.api.sent_to(group.id)) == said  # nothing sent to the old id
