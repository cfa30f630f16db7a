"""Weekly tips: subscribe, receive in order on schedule, stop, resume, and survive faults and restarts.

The dispatcher runs at the injected clock's time; `bot.dispatch()` is one run of the JobQueue job.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from conftest import CONTENT, BotHarness

from bot.fakeapi import BotMessage, UserDriver
from bot.outbox.dispatcher import Dispatcher
from bot.outbox.schedule import next_due, next_slot
from bot.store import DeliveryStatus

WEEK = 7 * 24 * 3600
DHAKA = ZoneInfo("Asia/Dhaka")


def is_tip(message: BotMessage) -> bool:
    return message.text.startswith("💡") and " · " in message.text.split("\n")[0]


def tips_of(bot: BotHarness, user: UserDriver) -> list[BotMessage]:
    return [m for m in bot.api.sent_to(user.id) if is_tip(m)]


def week_of(message: BotMessage) -> str:
    return message.text.split("\n")[0]


async def subscribed(bot: BotHarness, method_id: str = "youtube") -> UserDriver:
    user = bot.user("Rahim")
    await user.send(f"/start {method_id}")
    reply = await user.press("সাপ্তাহিক টিপস নিন")
    assert reply.callback_answer is not None and "চালু হলো" in (reply.callback_answer.text or "")
    await bot.wait_for(user.id, is_tip)  # the first tip, right away
    return user


async def test_first_tip_right_away_then_one_a_week_in_order(bot: BotHarness) -> None:
    user = await subscribed(bot)
    assert "সপ্তাহ ১/১৩" in week_of(tips_of(bot, user)[0])
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 1  # nothing more is due yet
    for week in ("২", "৩"):
        bot.clock.advance(WEEK)
        await bot.dispatch()
        assert f"সপ্তাহ {week}/১৩" in week_of(tips_of(bot, user)[-1])
    assert len(tips_of(bot, user)) == 3
    first = tips_of(bot, user)[0]
    assert first.button_texts() == [
        "✅ ধাপ ১ শেষ করেছি",
        "🎬 YouTube ও ভিডিও এডিটিং",
        "🔕 টিপস বন্ধ করুন",
        "🖼 ছবি হিসেবে শেয়ার",
    ]


async def test_tips_screen_shows_next_time_in_bangla(bot: BotHarness) -> None:
    user = await subscribed(bot)
    reply = await user.send("/tips")
    # subscribed on Monday 15:00 in Dhaka: the next tip comes on the Monday after, same time
    assert "সপ্তাহ ২/১৩, পরের টিপ আসবে সোমবার, ৩০ নভেম্বর, বিকেল ৩টায়" in reply.text
    assert "সময়গুলো বাংলাদেশ সময় অনুযায়ী" in reply.text
    assert not any(w in reply.text for w in ("PM", "AM", "Asia", "Dhaka"))
    # the off switch says what it does
    assert "🔕 YouTube ও ভিডিও এডিটিং-এর টিপস বন্ধ" in reply.last.button_texts()


async def test_the_screen_after_subscribing_stays_true_once_tip_1_arrived(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    await user.send("/start youtube")
    screen = await user.press("সাপ্তাহিক টিপস নিন")
    await bot.wait_for(user.id, is_tip)
    shown = user.api.message(user.id, screen.edits[-1].message_id)  # the card became the screen
    assert shown is not None and "এখনই" not in shown.text
    assert "সপ্তাহ ২/১৩, পরের টিপ আসবে সোমবার, ৩০ নভেম্বর, বিকেল ৩টায়" in shown.text
    assert shown.text == (await user.send("/tips")).text  # what the screen says once it came


async def test_the_english_tips_screen_says_bangladesh_time(bot: BotHarness) -> None:
    user = await subscribed(bot)
    await user.send("/language")
    reply = await user.send("/tips")
    assert "next tip: Monday, 30 November, 3:00 PM" in reply.text
    assert "Times are Bangladesh time." in reply.text and "Asia/Dhaka" not in reply.text
    assert "🔕 Stop YouTube & Video Editing tips" in reply.last.button_texts()
    await user.press("Change day and time")
    reply = await user.press("Friday")
    assert "(Bangladesh time)" in reply.text and "8:00 PM" in reply.last.button_texts()


async def test_another_methods_tips_lists_only_methods_without_tips(bot: BotHarness) -> None:
    user = await subscribed(bot)
    await user.send("/tips")
    reply = await user.press("আরেকটি পদ্ধতির টিপস")
    names = " ".join(reply.last.button_texts())
    assert "YouTube" not in names and "ফ্রিল্যান্সিং" in names
    await user.send("/stop")  # stopped tips still have their own button on the tips screen
    reply = await user.send("/subscribe")
    assert "YouTube" not in " ".join(reply.last.button_texts())


async def test_unsubscribe_from_a_tip_then_resume_where_left_off(bot: BotHarness) -> None:
    user = await subscribed(bot)
    bot.clock.advance(WEEK)
    await bot.dispatch()
    reply = await user.press("টিপস বন্ধ করুন", message=tips_of(bot, user)[-1])
    assert reply.callback_answer is not None and reply.callback_answer.show_alert
    bot.clock.advance(3 * WEEK)
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 2
    reply = await user.send("/tips")
    assert "বন্ধ আছে" in reply.text
    await user.press("🔔 YouTube")
    third = await bot.wait_for(user.id, lambda m: is_tip(m) and "সপ্তাহ ৩/১৩" in m.text)
    assert is_tip(third)


async def test_stop_command_stops_everything(bot: BotHarness) -> None:
    user = await subscribed(bot)
    reply = await user.send("/stop")
    assert "সব টিপস বন্ধ" in reply.text
    bot.clock.advance(WEEK)
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 1
    assert "কোনো টিপস চালু নেই" in (await user.send("/unsubscribe")).text


async def test_blocked_user_is_paused_until_they_come_back(bot: BotHarness) -> None:
    user = await subscribed(bot)
    user.user.blocked = True  # blocked without the bot hearing of it: the next send gets a 403
    bot.clock.advance(WEEK)
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 1
    assert (await bot.store.get_user(user.id)).blocked  # type: ignore[union-attr]
    bot.clock.advance(WEEK)
    await bot.dispatch()  # paused: not even tried
    assert [c.error_code for c in bot.api.calls_to("sendMessage")].count(403) == 1
    await user.unblock()
    await bot.dispatch()
    assert "সপ্তাহ ২/১৩" in week_of(tips_of(bot, user)[-1])  # the tip that bounced, not a skipped one


async def test_block_update_pauses_and_start_resumes(bot: BotHarness) -> None:
    user = await subscribed(bot)
    await user.block()
    bot.clock.advance(WEEK)
    await bot.dispatch()
    assert not [c for c in bot.api.calls_to("sendMessage") if c.error_code == 403]
    user.user.blocked = False
    await user.send("/start")
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 2


async def test_server_errors_are_retried_and_delivered_once(bot: BotHarness) -> None:
    user = await subscribed(bot)
    bot.clock.advance(WEEK)
    bot.api.fail_next("sendMessage", status=502, description="Bad Gateway", chat_id=user.id)
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 1
    bot.clock.advance(bot.settings.tip_check_seconds)
    await bot.dispatch()
    await bot.dispatch()
    assert [week_of(m) for m in tips_of(bot, user)][-1].endswith("সপ্তাহ ২/১৩")
    assert len(tips_of(bot, user)) == 2


async def test_flood_wait_is_honoured(bot: BotHarness) -> None:
    user = await subscribed(bot)
    bot.clock.advance(WEEK)
    bot.api.fail_next("sendMessage", status=429, retry_after=1, chat_id=user.id)
    await bot.dispatch()
    bot.clock.advance(bot.settings.tip_check_seconds)
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 2
    assert [c.error_code for c in bot.api.calls_to("sendMessage")].count(429) == 1


async def test_restart_mid_dispatch_loses_nothing(bot: BotHarness) -> None:
    users = [bot.user(f"User{i}") for i in range(5)]
    for user in users:
        await user.send("/start stock")
        await user.press("সাপ্তাহিক টিপস নিন")
    for user in users:
        await bot.wait_for(user.id, is_tip)
    bot.clock.advance(WEEK)
    # A sender claims every due tip and dies before sending any of them.
    claims = await bot.store.claim_due_tips(  # type: ignore[union-attr]
        now=bot.clock(), limit=100, lease_seconds=300, owner="dead-sender"
    )
    assert len(claims) == 5
    await bot.dispatch()
    assert all(len(tips_of(bot, u)) == 1 for u in users)  # still leased to the dead sender
    await (
        bot.restart()
    )  # a new process frees the dead sender's leases at start-up (SQLite: one process)
    for user in users:
        await bot.wait_for(user.id, lambda m: is_tip(m) and "সপ্তাহ ২/১২" in m.text)
    await bot.dispatch()
    for user in users:
        assert [week_of(m).split("সপ্তাহ ")[1] for m in tips_of(bot, user)] == ["১/১২", "২/১২"]


async def test_last_tip_offers_another_path_and_resubscribing_starts_over(bot: BotHarness) -> None:
    user = await subscribed(bot, "stock")
    for _ in range(11):
        bot.clock.advance(WEEK)
        await bot.dispatch()
    last = tips_of(bot, user)[-1]
    assert "সপ্তাহ ১২/১২" in week_of(last) and "শেষ টিপ" in last.text
    assert any("কোন পথ" in t for t in last.button_texts())
    bot.clock.advance(WEEK)
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 12
    reply = await user.send("/tips")
    assert "সব টিপস পাঠানো হয়েছে" in reply.text
    await user.press("🔄")
    await bot.wait_for(user.id, lambda m: m.message_id > last.message_id and is_tip(m))
    assert "সপ্তাহ ১/১২" in week_of(tips_of(bot, user)[-1])


async def test_step_done_under_a_tip_ticks_the_step_it_names(bot: BotHarness) -> None:
    user = await subscribed(bot)
    for _ in range(3):  # tapped three times on slow data: step 1, once
        reply = await user.press("ধাপ ১ শেষ করেছি", message=tips_of(bot, user)[0])
        assert reply.callback_answer is not None
        assert reply.callback_answer.text == "✅ ধাপ ১ শেষ হিসেবে রাখা হলো।"
    assert "১/৭" in (await user.send("/mypath")).text
    bot.clock.advance(WEEK)
    await bot.dispatch()
    assert "✅ ধাপ ২ শেষ করেছি" in tips_of(bot, user)[-1].button_texts()  # the next one not done


async def test_a_step_button_from_before_steps_were_named_ticks_nothing(bot: BotHarness) -> None:
    user = await subscribed(bot)
    tip = tips_of(bot, user)[0]
    reply = await user.press_data("tipstep:youtube", tip.message_id)
    assert reply.callback_answer is not None and reply.callback_answer.show_alert
    assert "/mypath" in (reply.callback_answer.text or "") and reply.shown == []  # tip kept
    assert "প্রথম ধাপ" not in (await user.send("/mypath")).text.split("\n")[0]
    assert await bot.store.list_paths(user.id) == []  # type: ignore[union-attr]


async def test_changing_the_day_and_hour(bot: BotHarness) -> None:
    user = await subscribed(bot)
    await user.send("/tips")
    await user.press("দিন ও সময় বদলান")
    await user.press("শুক্রবার")
    reply = await user.press("^রাত ৮টা$")
    assert "শুক্রবার, ২৭ নভেম্বর, রাত ৮টায়" in reply.text
    answer = reply.callback_answer
    assert answer is not None
    assert answer.text == "🗓 এখন থেকে টিপস আসবে প্রতি শুক্রবার রাত ৮টায় (বাংলাদেশ সময়)।"
    bot.clock.now = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # Friday 20:00 in Dhaka
    await bot.dispatch()
    assert len(tips_of(bot, user)) == 2


def test_next_due_keeps_the_weekday_and_skips_a_backlog() -> None:
    due = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 15:00 Dhaka
    week = timedelta(seconds=WEEK)
    sent_late = due + timedelta(hours=5)
    following = next_due(due, sent_late, week, weekday=0, hour=15, minute=0, tz=DHAKA)
    assert following == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    after_downtime = due + timedelta(days=40)
    resumed = next_due(due, after_downtime, week, weekday=0, hour=15, minute=0, tz=DHAKA)
    assert resumed > after_downtime and resumed - after_downtime <= week
    assert resumed.astimezone(DHAKA).weekday() == 0 and resumed.astimezone(DHAKA).hour == 15
    short = next_due(due, due, timedelta(seconds=2), weekday=0, hour=15, minute=0, tz=DHAKA)
    assert short == due + timedelta(seconds=2)


def test_next_slot_in_dhaka() -> None:
    monday_noon_utc = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # Monday 18:00 Dhaka
    slot = next_slot(monday_noon_utc, weekday=4, hour=20, minute=0, tz=DHAKA)
    assert slot == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


async def test_delivery_log_records_each_tip(bot: BotHarness) -> None:
    user = await subscribed(bot)
    exported = await bot.store.export_user(user.id)  # type: ignore[union-attr]
    assert exported["tips_sent"]["count"] == 1
    with sqlite3.connect(bot.database_path) as db:
        rows = db.execute(
            "SELECT method_id, position, status FROM deliveries WHERE user_id = ?", (user.id,)
        ).fetchall()
    assert rows == [("youtube", 0, DeliveryStatus.SENT.value)]


async def test_runs_never_overlap_and_a_call_during_a_run_makes_it_go_again() -> None:
    class Counting(Dispatcher):
        def __init__(self) -> None:
            super().__init__(None, None)  # type: ignore[arg-type]  # run() below needs neither
            self.runs = 0
            self.running = 0
            self.release = asyncio.Event()

        async def run(self, bot: Any) -> None:
            self.running += 1
            assert self.running == 1
            self.runs += 1
            await self.release.wait()
            self.running -= 1

    dispatcher = Counting()
    job = SimpleNamespace(bot=None)
    first = asyncio.create_task(dispatcher(job))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    await dispatcher(job)  # type: ignore[arg-type]  # the job returns at once: no pile-up
    await dispatcher(job)  # type: ignore[arg-type]
    waiting = asyncio.create_task(dispatcher.request(None))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert dispatcher.runs == 1 and not waiting.done()
    dispatcher.release.set()
    await asyncio.gather(first, waiting)
    assert dispatcher.runs == 2  # all the calls made during the run: one more run


def test_times_as_people_say_them() -> None:
    lib = CONTENT
    said = {h: lib.clock("bn", h) for h in range(24)}
    assert said[0] == "রাত ১২টা" and said[3] == "রাত ৩টা"
    assert said[4] == "ভোর ৪টা" and said[5] == "ভোর ৫টা"
    assert said[6] == "সকাল ৬টা" and said[9] == "সকাল ৯টা" and said[11] == "সকাল ১১টা"
    assert said[12] == "দুপুর ১২টা" and said[14] == "দুপুর ২টা"
    assert said[15] == "বিকেল ৩টা" and said[17] == "বিকেল ৫টা"
    assert said[18] == "সন্ধ্যা ৬টা" and said[19] == "সন্ধ্যা ৭টা"
    assert said[20] == "রাত ৮টা" and said[23] == "রাত ১১টা"
    assert lib.clock("bn", 9, 30) == "সকাল ৯টা ৩০ মিনিট"
    assert lib.clock("bn", 21, 5, at=True) == "রাত ৯টা ৫ মিনিটে"
    assert lib.clock("bn", 9, at=True) == "সকাল ৯টায়"
    assert lib.clock("en", 9) == "9:00 AM" and lib.clock("en", 19, 30) == "7:30 PM"
    monday = datetime(2026, 11, 30, 15, 0, tzinfo=DHAKA)
    assert lib.when("bn", monday) == "সোমবার, ৩০ নভেম্বর, বিকেল ৩টা"
    assert lib.when("en", monday) == "Monday, 30 November, 3:00 PM"
    assert lib.zone("bn", DHAKA) == "বাংলাদেশ সময়" and lib.zone("en", DHAKA) == "Bangladesh time"
