"""Taps that are safe to repeat: every button that changes something, tapped once, twice, and twice
at once (both taps in flight before the bot answers either), ends in the same stored state with
the same answer. On slow data people tap twice; Telegram then delivers both.

Each case brings three people to the same screen; one taps once, one taps the same button twice
(the second tap on the message as it is by then, as Telegram sends it), one sends two taps at once.
Their data, the answers and the screens must be the same.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from conftest import CONTENT, BotHarness, Clock, bot_against_fake

from bot.config import Settings
from bot.fakeapi import BotMessage, Reply, UserDriver

# The fake numbers private users from this id on: the three people of every case are admins too,
# for the broadcast case.
FIRST_USER = 10_000_001


@pytest.fixture
async def bot(make_settings: Callable[..., Settings], clock: Clock) -> AsyncIterator[BotHarness]:
    admins = ",".join(str(FIRST_USER + i) for i in range(3))
    async with bot_against_fake(make_settings, clock, ADMIN_IDS=admins) as harness:
        yield harness


def is_tip(message: BotMessage) -> bool:
    return message.text.startswith("💡") and " · " in message.text.split("\n")[0]


def data_of(message: BotMessage, pattern: str) -> str:
    data = message.find_button(pattern).get("callback_data")
    assert isinstance(data, str), f"{pattern!r} is not a callback button"
    return data


# --- what the three people reach, and what is compared ------------------------------------------

Target = tuple[int, str]  # the message with the button, and the button's data


async def card(user: UserDriver, bot: BotHarness) -> BotMessage:
    return (await user.send("/start youtube")).last


async def on_path(user: UserDriver, bot: BotHarness) -> BotMessage:
    """The checklist of YouTube, chosen as a path."""
    await user.press("এই পথ বেছে নিন", message=await card(user, bot))
    await user.send("/mypath")
    return (await user.press("YouTube")).last


async def with_tips(user: UserDriver, bot: BotHarness) -> BotMessage:
    """Subscribed to YouTube's tips; returns the first tip."""
    await user.press("সাপ্তাহিক টিপস নিন", message=await card(user, bot))
    return await bot.wait_for(user.id, is_tip)


async def choose(user: UserDriver, bot: BotHarness) -> Target:
    message = await card(user, bot)
    return message.message_id, data_of(message, "এই পথ বেছে নিন")


async def tick(user: UserDriver, bot: BotHarness) -> Target:
    message = await on_path(user, bot)
    return message.message_id, data_of(message, "^▫️ ২$")


async def untick(user: UserDriver, bot: BotHarness) -> Target:
    await user.press("^▫️ ২$", message=await on_path(user, bot))
    message = user.last_message
    return message.message_id, data_of(message, "^✅ ২$")


async def remove(user: UserDriver, bot: BotHarness) -> Target:
    message = (await user.press("পথটি বাদ দিন", message=await on_path(user, bot))).last
    return message.message_id, data_of(message, "হ্যাঁ, বাদ দিন")


async def tip_step(user: UserDriver, bot: BotHarness) -> Target:
    tip = await with_tips(user, bot)
    return tip.message_id, data_of(tip, "ধাপ ১ শেষ করেছি")


async def subscribe(user: UserDriver, bot: BotHarness) -> Target:
    message = await card(user, bot)
    return message.message_id, data_of(message, "সাপ্তাহিক টিপস নিন")


async def resume(user: UserDriver, bot: BotHarness) -> Target:
    await with_tips(user, bot)
    await user.send("/stop")
    message = (await user.send("/tips")).last
    return message.message_id, data_of(message, "টিপস আবার চালু")


async def unsubscribe(user: UserDriver, bot: BotHarness) -> Target:
    await with_tips(user, bot)
    message = (await user.send("/tips")).last
    return message.message_id, data_of(message, "এর টিপস বন্ধ")


async def unsubscribe_under_tip(user: UserDriver, bot: BotHarness) -> Target:
    tip = await with_tips(user, bot)
    return tip.message_id, data_of(tip, "টিপস বন্ধ করুন")


async def schedule(user: UserDriver, bot: BotHarness) -> Target:
    await with_tips(user, bot)
    await user.send("/tips")
    await user.press("দিন ও সময় বদলান")
    message = (await user.press("শুক্রবার")).last
    return message.message_id, data_of(message, "^রাত ৮টা$")


async def language(user: UserDriver, bot: BotHarness) -> Target:
    # The switch names the language it switches to, as a switch must (see test_language_switch).
    return (await user.send("/start")).last.message_id, "lang:en"


async def forget(user: UserDriver, bot: BotHarness) -> Target:
    await with_tips(user, bot)
    message = (await user.send("/forget")).last
    return message.message_id, data_of(message, "হ্যাঁ, সব মুছে ফেলুন")


async def broadcast(user: UserDriver, bot: BotHarness) -> Target:
    await user.send("/start")
    await user.send("/broadcast")
    message = (await user.send("সবার জন্য একটি খবর")).last
    return message.message_id, data_of(message, "শুধু বাংলা")


async def stored(bot: BotHarness, user: UserDriver) -> dict[str, Any]:
    """Everything stored about the person (as /mydata has it, their id left out), the tips and
    broadcasts that reached them, and the broadcasts they made."""
    assert bot.store is not None
    data = await bot.store.export_user(user.id)
    if data["user"] is not None:
        del data["user"]["user_id"]
    with sqlite3.connect(bot.database_path) as db:
        made = db.execute(
            """SELECT b.language, b.text, count(t.user_id) FROM broadcasts AS b
            LEFT JOIN broadcast_targets AS t ON t.broadcast_id = b.id
            WHERE b.created_by = ? GROUP BY b.id ORDER BY b.id""",
            (user.id,),
        ).fetchall()
    return {
        **data,
        "broadcasts_made": made,
        "tips_received": [m.text for m in bot.api.sent_to(user.id) if is_tip(m)],
    }


@dataclass(frozen=True)
class Case:
    reach: Callable[[UserDriver, BotHarness], Awaitable[Target]]
    changed: Callable[[dict[str, Any]], object]  # the part of the stored data the button changes


CASES = {
    "choose a path": Case(choose, lambda d: [p["method_id"] for p in d["paths"]]),
    "tick a step": Case(tick, lambda d: d["paths"][0]["done_steps"]),
    "untick a step": Case(untick, lambda d: d["paths"][0]["done_steps"]),
    "remove a path": Case(remove, lambda d: d["paths"]),
    "I did step 1, under a tip": Case(tip_step, lambda d: d["paths"][0]["done_steps"]),
    "subscribe": Case(subscribe, lambda d: (d["subscriptions"], d["tips_received"])),
    "resume tips": Case(resume, lambda d: (d["subscriptions"], d["tips_received"])),
    "stop one method's tips": Case(unsubscribe, lambda d: d["subscriptions"]),
    "stop tips under a tip": Case(unsubscribe_under_tip, lambda d: d["subscriptions"]),
    "day and hour of tips": Case(schedule, lambda d: d["subscriptions"]),
    "language": Case(language, lambda d: d["user"]["language"]),
    "forget me": Case(forget, lambda d: (d["user"], d["paths"], d["subscriptions"])),
    "confirm a broadcast": Case(broadcast, lambda d: d["broadcasts_made"]),
}


def answered(reply: Reply) -> tuple[str | None, bool]:
    answer = reply.callback_answer
    assert answer is not None
    return answer.text, answer.show_alert


@pytest.mark.parametrize("name", list(CASES))
async def test_a_second_tap_and_two_taps_at_once_do_what_one_tap_does(
    bot: BotHarness, name: str
) -> None:
    case = CASES[name]
    once, twice, at_once = people = [bot.user(n) for n in ("Once", "Twice", "AtOnce")]
    assert [p.id for p in people] == [FIRST_USER, FIRST_USER + 1, FIRST_USER + 2]
    before = [await case.reach(person, bot) for person in people]
    await bot.dispatch()  # nothing of the way there is still on its way
    (m1, data), (m2, data2), (m3, data3) = before
    assert data == data2 == data3, "the three reached different buttons"

    replies = {
        "once": [await once.press_data(data, m1)],
        "twice": [await twice.press_data(data, m2), await twice.press_data(data, m2)],
        "at once": list(await asyncio.gather(*(at_once.press_data(data, m3) for _ in range(2)))),
    }
    await bot.dispatch()  # tips or broadcasts the taps made due go out now

    states = [await stored(bot, person) for person in people]
    assert case.changed(states[1]) == case.changed(states[0]) == case.changed(states[2])
    assert states[1] == states[0] == states[2]  # and nothing else changed either
    first = answered(replies["once"][0])
    for how, taps in replies.items():
        assert [answered(r) for r in taps] == [first] * len(taps), how
    screens = [bot.api.message(p.id, m) for p, m in zip(people, (m1, m2, m3), strict=True)]
    assert len({s.text if s else None for s in screens}) == 1, [s and s.text for s in screens]


async def test_ticks_carry_the_state_they_set(bot: BotHarness) -> None:
    """A checklist tapped on an old copy: "tick step 2" stays a tick, it never unticks."""
    user = bot.user("Rahim")
    checklist = await on_path(user, bot)
    data = data_of(checklist, "^▫️ ২$")
    assert data == "step:youtube:1:1"
    for _ in range(3):
        await user.press_data(data, checklist.message_id)
    [path] = await bot.store.list_paths(user.id)  # type: ignore[union-attr]
    assert path.done_steps == {1}
    assert "✅ ২" in user.api.message(user.id, checklist.message_id).button_texts()  # type: ignore[union-attr]


async def test_three_taps_on_the_same_tip_tick_one_step(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    tip = await with_tips(user, bot)
    taps = [user.press("ধাপ ১ শেষ করেছি", message=tip) for _ in range(3)]
    for reply in await asyncio.gather(*taps):
        assert answered(reply) == ("✅ ধাপ ১ শেষ হিসেবে রাখা হলো।", False)
    [path] = await bot.store.list_paths(user.id)  # type: ignore[union-attr]
    assert path.done_steps == {0}
    assert "১/৭ ধাপ শেষ" in (await user.send("/mypath")).text


async def test_a_broadcast_confirmed_twice_is_sent_once(bot: BotHarness) -> None:
    """Both audience buttons of one preview, and one of them twice, all in flight at once."""
    admin = bot.user("Admin")
    others = [bot.user(f"U{i}") for i in range(3)]
    for person in others:
        await person.send("/start")
    preview, bangla = await broadcast(admin, bot)
    everyone = data_of(admin.last_message, "সবাইকে")
    replies = await asyncio.gather(
        *(admin.press_data(d, preview) for d in (bangla, bangla, everyone))
    )
    await bot.wait_for(admin.id, lambda m: "ব্রডকাস্ট শেষ" in m.text)
    for person in others:
        assert [m.text for m in bot.api.sent_to(person.id)].count("সবার জন্য একটি খবর") == 1
    assert bot.api.message(admin.id, preview).text.startswith("📤 ৪ জনের কাছে")  # type: ignore[union-attr]
    assert {answered(r) for r in replies} == {(None, False)}
    assert "বাতিল" not in bot.api.message(admin.id, preview).text  # type: ignore[union-attr]


# --- the same language everywhere ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data", ["card:gone:all", "sec:gone:what:0:all", "step:youtube:0", "when:9:99", "x" * 64]
)
async def test_a_stale_button_from_an_english_user_is_answered_in_english(
    bot: BotHarness, data: str
) -> None:
    """Some stale buttons reach the fallback handler, some a handler that raises StaleButton and
    so the error handler, whose context PTB makes afresh: all are answered in English."""
    user = bot.user("Jane", language_code="en")
    await user.send("/start")
    await user.send("/language")
    card = await user.send("/start youtube")
    reply = await user.press_data(data, card.last.message_id)
    assert answered(reply) == (CONTENT.t("en", "stale"), False)
    assert reply.text.startswith("🏠 Main menu") and "মূল মেনু" not in reply.text


async def test_the_apology_for_a_failed_tap_is_in_the_users_language(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = bot.user("Jane", language_code="en")
    await user.send("/start")
    await user.send("/language")
    card = await user.send("/start youtube")

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.store, "add_path", broken)
    reply = await user.press_data("choose:youtube:all", card.last.message_id)
    assert answered(reply) == (CONTENT.t("en", "error"), False)


async def test_language_switch_names_the_language_it_switches_to(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    await user.send("/start")
    reply = await user.press_data("lang:en", user.last_message.message_id)
    assert reply.text.startswith(CONTENT.t("en", "language_changed"))
    again = await user.press_data("lang:en", user.last_message.message_id)
    assert answered(again) == answered(reply) == (CONTENT.t("en", "language_changed"), False)
    assert (await bot.store.get_user(user.id)).language == "en"  # type: ignore[union-attr]


async def test_two_taps_at_once_edit_the_message_once_while_the_edit_waits_in_the_outbox(
    bot: BotHarness,
) -> None:
    """ShownScreens with the outbox: the first tap's edit is only posted when the second tap's
    handler runs, and the second, seeing the screen already on its way, sends no edit of its own
    (Telegram would refuse it as "not modified")."""
    user = bot.user("Rahim")
    menu = (await user.send("/start")).last
    data = data_of(menu, "সব পদ্ধতি")
    before = len(bot.api.calls_to("editMessageText"))
    taps = await asyncio.gather(*(user.press_data(data, menu.message_id) for _ in range(2)))
    edits = bot.api.calls_to("editMessageText")[before:]
    assert [c.ok for c in edits] == [True]  # one edit, and no refused second one
    assert all(t.callback_answer is not None for t in taps)  # both spinners stopped
    assert "ফ্রিল্যান্সিং" in " ".join(user.last_message.button_texts())


async def test_a_message_another_worker_edited_since_is_edited_again(bot: BotHarness) -> None:
    """Several workers (docs/operations.md): this one drew the list on the menu message; another
    worker then drew the menu again. A tap on the menu's "all methods" must edit the message,
    though this worker last put the list there: the tap carries the message as it is now, not as
    it was when this worker edited it."""
    user = bot.user("Rahim")
    menu = (await user.send("/start")).last
    data = data_of(menu, "সব পদ্ধতি")
    await user.press_data(data, menu.message_id)
    assert "ফ্রিল্যান্সিং" in " ".join(user.last_message.button_texts())
    edit = {"chat_id": user.id, "message_id": menu.message_id, "text": menu.html,
            "parse_mode": "HTML", "reply_markup": menu.reply_markup}  # fmt: skip
    url = f"{bot.api.base_url}/bot{bot.api.token}/editMessageText"
    async with aiohttp.ClientSession() as http, http.post(url, json=edit) as answer:
        assert answer.status == 200  # the other worker has put the menu back
    assert user.last_message.text == menu.text
    reply = await user.press_data(data, menu.message_id)
    assert reply.edits, f"the tap was answered but the message left as it was: {reply.describe()}"
    assert "ফ্রিল্যান্সিং" in " ".join(user.last_message.button_texts())


async def test_a_tap_on_the_screen_it_leads_to_sends_no_edit_even_after_a_restart(
    bot: BotHarness,
) -> None:
    """The bot remembers the screens it drew only while it runs; after a restart it reads what
    the tapped message shows (its keyboard from the raw update, bot.intake) and sends no edit
    Telegram would refuse as "not modified" (bot_against_fake asserts none was refused)."""
    user = bot.user("Rahim")
    await user.send("/start")
    listing = (await user.press("সব পদ্ধতি")).last
    await bot.restart()
    again = await user.press_data("list:all", listing.message_id)  # a late second tap
    assert again.callback_answer is not None and not again.edits
    assert [c.method for c in bot.api.calls[-1:]] == ["answerCallbackQuery"]
