"""Picture cards: "🖼 Share as image" through the fake Bot API, inline photos, the disk cache and
render process, and the content check's part for cards. (Reading them back: test_cards_ocr.py.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import CONTENT, BotHarness
from PIL import Image

from bot import cli
from bot.cards import text
from bot.cards.build import method_card, quiz_card, tip_card
from bot.cards.check import CHECK_USERNAME, check_cards, every_card
from bot.cards.draw import MAX_HEIGHT, STYLES, WIDTH, layout
from bot.cards.model import Block
from bot.cards.service import CardService, key_of
from bot.content import load_library
from bot.fakeapi import BotMessage, InlineAnswer, UserDriver
from bot.fakeapi.files import FileStore
from bot.fakeapi.models import Call
from bot.store import open_store

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SHARE_BN, SHARE_EN = "🖼 ছবি হিসেবে শেয়ার", "🖼 Share as image"
DEEP_LINK = "https://t.me/AyerPothBot?start="


def photo_sends(bot: BotHarness) -> list[Call]:
    return [c for c in bot.api.calls_to("sendPhoto") if c.ok]


def uploaded(call: Call) -> bool:
    """A multipart upload (the fake reads it as a file), not a file_id."""
    return isinstance(call.params["photo"], dict)


def file_id_of(message: BotMessage) -> str:
    assert message.kind == "photo" and message.media is not None
    return str(message.media["sizes"][-1]["file_id"])


async def share_method(user: UserDriver, method_id: str = "youtube") -> BotMessage:
    """Open a card, then "What it is", where the share buttons are; share it as a picture."""
    await user.send(f"/start {method_id}")
    await user.press("এটা কী" if user.language_code == "bn" else "What it is")
    reply = await user.press(SHARE_BN)
    assert reply.callback_answer is not None
    [photo] = reply.messages
    return photo


def pictures_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def photos_for(answer: InlineAnswer, method_id: str) -> list[str]:
    return [str(p["file_id"]) for p in answer.photos if str(p["id"]).startswith(f"{method_id}.")]


async def test_a_shared_card_is_uploaded_once_then_sent_by_its_file_id(bot: BotHarness) -> None:
    photo = await share_method(bot.user("Rahim"))
    method = CONTENT.method("bn", "youtube")
    assert photo.text.splitlines() == [
        f"{method.emoji} {method.title}",
        f"পুরো কার্ডটি বটে দেখুন: {DEEP_LINK}youtube",
    ]
    assert photo.find_button("পুরো কার্ড")["url"] == f"{DEEP_LINK}youtube"
    [upload] = photo_sends(bot)
    assert uploaded(upload)
    picture = Image.open(io.BytesIO(bot.api.files.data(file_id_of(photo))))
    assert picture.width == WIDTH and picture.format == "PNG"
    card = method_card(CONTENT, "bn", "youtube", "AyerPothBot")
    assert await bot.store.card_file_id(key_of(card)) == file_id_of(photo)  # type: ignore[union-attr]

    again = await share_method(bot.user("Karim"))
    second = photo_sends(bot)[-1]
    assert not uploaded(second) and second.params["photo"] == file_id_of(photo)
    assert file_id_of(again) == file_id_of(photo)

    await bot.restart()  # the file_id is kept in the store, not only in memory
    await share_method(bot.user("Salma"))
    assert [uploaded(c) for c in photo_sends(bot)] == [True, False, False]
    assert bot.app is not None and bot.app.bot_data.services.cards.renders == 0


async def test_a_content_change_draws_and_uploads_a_new_picture(
    bot: BotHarness, content_copy: Path
) -> None:
    first = await share_method(bot.user("Rahim"))
    path = content_copy / "bn" / "methods" / "youtube.toml"
    old_cost = CONTENT.method("bn", "youtube").cost
    path.write_text(
        path.read_text("utf-8").replace(old_cost, "শুরু করতে একটি স্মার্টফোনই যথেষ্ট।"), "utf-8"
    )
    await bot.restart(library=load_library(content_copy))
    user = bot.user("Karim")
    assert photos_for(await user.inline("ইউটিউব"), "youtube") == []  # the old picture is stale
    second = await share_method(user)
    assert [uploaded(c) for c in photo_sends(bot)] == [True, True]
    assert file_id_of(second) != file_id_of(first)
    assert photos_for(await user.inline("ইউটিউব"), "youtube") == [file_id_of(second)]
    assert len(pictures_in(bot.settings.card_cache_dir)) == 2  # a drawing per version of it


async def test_inline_offers_a_shared_card_as_a_photo_beside_its_text(bot: BotHarness) -> None:
    photo = await share_method(bot.user("Rahim"))
    user = bot.user("Karim")
    answer = await user.inline("ইউটিউব")
    assert [r["type"] for r in answer.results] == ["article", "photo"]
    [result] = answer.photos
    method = CONTENT.method("bn", "youtube")
    assert result["file_id"] == file_id_of(photo) and method.title in result["caption"]
    assert result["reply_markup"]["inline_keyboard"][0][0]["url"] == f"{DEEP_LINK}youtube"
    assert photos_for(await user.inline("ফ্রিল্যান্সিং"), "freelancing") == []  # never shared
    friends = bot.api.group("Friends", creator=user)
    await friends.add_bot(user)
    posted = (await user.choose_inline(answer, 2, chat=friends)).posted
    assert posted is not None and posted.kind == "photo" and file_id_of(posted) == result["file_id"]


async def test_cards_uploaded_ahead_give_the_first_inline_share_a_picture(
    bot: BotHarness,
) -> None:
    owner = bot.user("Owner")
    uploads = bot.api.group("Card uploads", creator=owner)
    await uploads.add_bot(owner)
    bot.settings = dataclasses.replace(bot.settings, card_upload_chat_id=uploads.id)
    await bot.restart()
    assert bot.app is not None
    cards = bot.app.bot_data.services.cards
    assert cards.uploading_ahead is not None and await cards.uploading_ahead == 2 * len(
        CONTENT.method_ids
    )
    sent = [m for m in bot.api.sent_to(uploads.id) if m.kind == "photo"]
    assert len(sent) == 2 * len(CONTENT.method_ids)  # every method card, both languages
    for language_code in ("bn", "en"):
        answer = await bot.user("Nobody", language_code=language_code).inline("")
        assert [p["id"] for p in answer.photos] == [
            f"{m}.{language_code}.photo" for m in CONTENT.method_ids
        ]
    await bot.restart()  # uploaded already: nothing is sent again
    cards = bot.app.bot_data.services.cards
    assert cards.uploading_ahead is not None and await cards.uploading_ahead == 0
    assert len([m for m in bot.api.sent_to(uploads.id) if m.kind == "photo"]) == len(sent)


async def test_a_tip_and_a_quiz_result_are_shared_as_pictures(bot: BotHarness) -> None:
    user = bot.user("Rahim", language_code="en")
    await user.send("/start")
    await user.press("English")
    await user.send("/start youtube")
    await user.press("Get weekly tips")
    tip = await bot.wait_for(user.id, lambda m: "· Week 1/" in m.text)
    reply = await user.press(SHARE_EN, message=tip)
    [photo] = reply.messages
    assert "Week 1/" in photo.text and f"{DEEP_LINK}youtube" in photo.text

    reply = await user.send("/quiz")
    for _ in CONTENT.quiz_questions:
        reply = await user.press(1)
    reply = await user.press(SHARE_EN)
    [result] = reply.messages
    assert result.kind == "photo" and f"{DEEP_LINK}quiz" in result.text
    assert result.find_button("Which path")["url"] == f"{DEEP_LINK}quiz"
    assert len(photo_sends(bot)) == 2


async def test_two_taps_at_once_send_one_picture(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    await user.send("/start youtube")
    what = (await user.press("এটা কী")).last
    data = what.find_button(SHARE_BN)["callback_data"]
    replies = await asyncio.gather(
        user.press_data(data, what.message_id), user.press_data(data, what.message_id)
    )
    assert all(r.callback_answer is not None for r in replies)  # both taps answered
    assert len(photo_sends(bot)) == 1


async def test_a_file_id_telegram_forgot_is_uploaded_again(bot: BotHarness) -> None:
    await share_method(bot.user("Rahim"))
    bot.api.files = FileStore()  # Telegram no longer knows the bot's files (a new bot token)
    second = await share_method(bot.user("Karim"))
    refused = [c for c in bot.api.calls_to("sendPhoto") if not c.ok]
    assert [c.description for c in refused] == [
        "Bad Request: wrong file identifier/HTTP URL specified"
    ]
    assert [uploaded(c) for c in photo_sends(bot)] == [True, True]
    card = method_card(CONTENT, "bn", "youtube", "AyerPothBot")
    assert await bot.store.card_file_id(key_of(card)) == file_id_of(second)  # type: ignore[union-attr]
    bot.api.calls = [c for c in bot.api.calls if c.ok]  # the refusal above was the point


async def test_share_buttons_for_what_no_longer_exists_get_the_current_menu(
    bot: BotHarness,
) -> None:
    user = bot.user("Rahim")
    tips = CONTENT.tip_count("youtube")
    answers = len(CONTENT.quiz_questions)
    for data in ("img:m:gone", f"img:t:youtube:{tips}", "img:q:" + "9" * answers, "img:q:0"):
        card = await user.send("/start youtube")
        reply = await user.press_data(data, card.last.message_id)
        assert reply.callback_answer is not None and "মূল মেনু" in reply.text, data
    assert photo_sends(bot) == []


# ------------------------------------------------------------------------------ the service


async def test_cards_are_drawn_in_another_process_once_and_kept_on_disk(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    card = tip_card(CONTENT, "bn", "writing", 2, CHECK_USERNAME)
    try:
        cards = CardService(CONTENT, store, tmp_path / "cards", clock=lambda: NOW)
        assert not multiprocessing.active_children()  # nothing is started before it is needed
        drawn = await cards.png(card)
        assert [p.name for p in multiprocessing.active_children()]  # the render process
        assert await cards.png(card) == drawn and cards.renders == 1
        await cards.close()
        assert not multiprocessing.active_children()
        again = CardService(CONTENT, store, tmp_path / "cards", clock=lambda: NOW)
        assert await again.png(card) == drawn and again.renders == 0  # from the disk cache
        assert pictures_in(tmp_path / "cards") == [f"{card.digest}.png"]
        await again.close()
    finally:
        await store.close()


async def test_the_render_process_ends_when_nothing_was_drawn_for_a_while(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    cards = CardService(
        CONTENT, store, tmp_path / "cards", clock=lambda: NOW, render_idle_seconds=0
    )
    try:
        await cards.png(method_card(CONTENT, "en", "social", CHECK_USERNAME))
        [render] = multiprocessing.active_children()
        await asyncio.to_thread(render.join, 10)  # it is told to end right after its last card
        assert not render.is_alive()
        await cards.png(method_card(CONTENT, "en", "stock", CHECK_USERNAME))  # a new one
        assert cards.renders == 2
    finally:
        await cards.close()
        await store.close()


def test_a_card_hash_follows_everything_drawn_and_nothing_else() -> None:
    card = method_card(CONTENT, "bn", "youtube", "AyerPothBot")
    assert card.digest == method_card(CONTENT, "bn", "youtube", "AyerPothBot").digest
    others = [
        method_card(CONTENT, "en", "youtube", "AyerPothBot"),
        method_card(CONTENT, "bn", "youtube", "OtherBot"),  # the QR code and handle change
        dataclasses.replace(
            card, blocks=(*card.blocks[:-1], Block("step", "নতুন ধাপ", card.blocks[-1].source, "৩."))
        ),
    ]
    assert len({card.digest, *(o.digest for o in others)}) == 4
    recaptioned = dataclasses.replace(card, caption="<b>another caption</b>")
    assert recaptioned.digest == card.digest  # the caption is not in the picture


# ------------------------------------------------------------------------------ the check


def test_every_card_of_the_content_fits() -> None:
    assert check_cards(CONTENT) == []
    names = [c.name for c in every_card(CONTENT)]
    quizzed = {m for n in names if n.startswith("quiz:") for m in n[5:].split("+")}
    assert quizzed == set(CONTENT.method_ids)  # every method in a quiz result's box


def test_a_card_with_every_box_full_is_still_not_too_tall() -> None:
    username = "a" * 32  # the longest Telegram allows
    ids = CONTENT.method_ids
    for card in (
        method_card(CONTENT, "en", "stock", username),
        tip_card(CONTENT, "bn", "youtube", 0, username),
        quiz_card(CONTENT, "bn", ids[:3], username),
    ):
        full = dataclasses.replace(
            card, blocks=tuple(dataclasses.replace(b, text="শব্দ " * 200) for b in card.blocks)
        )
        laid = layout(full)
        assert all("lines" in p.message for p in laid.problems), laid.problems  # not "px tall"
        assert laid.height <= MAX_HEIGHT, card.name
    assert set(STYLES) == {"title", "chip", "label", "body", "step", "tip", "pick", "pick_note"}


def test_the_check_names_the_file_and_key_of_what_does_not_fit(content_copy: Path) -> None:
    youtube = content_copy / "bn" / "methods" / "youtube.toml"
    source = youtube.read_text("utf-8")
    time_to_income = CONTENT.method("bn", "youtube").time_to_income
    longer = time_to_income + " স্পনসরের আয় আসে আরও পরে, বড় দর্শক হলে।"
    summary = CONTENT.method("bn", "youtube").summary
    source = source.replace(time_to_income, longer).replace(summary, "নিজের চ্যানেলে ভিডিও।")
    source = source.replace('title = "চ্যানেলটা গুছিয়ে নিন"', 'title = "চ্যানেলটা গুছিয়ে নিন ☺"')
    youtube.write_text(source, "utf-8")
    ui = content_copy / "en" / "ui.toml"
    ui.write_text(
        ui.read_text("utf-8").replace(
            'scan = "Scan the QR code to open the full card in the bot"',
            'scan = "Scan the QR code to open the full card in the bot, where you can also choose this path and get its weekly tips"',
        ),
        "utf-8",
    )
    lines = [p.render(content_copy) for p in check_cards(load_library(content_copy))]
    tip_line = source.splitlines().index('title = "চ্যানেলটা গুছিয়ে নিন ☺"') + 1
    assert len(lines) == 3, lines
    assert lines[0].startswith("content/bn/methods/youtube.toml:")
    assert "time_to_income: takes 4 lines on the picture card, its box holds 3" in lines[0]
    assert lines[1].startswith(f"content/bn/methods/youtube.toml:{tip_line}: title: ")
    assert "have no '☺'" in lines[1] and "tip:youtube:1 (bn)" in lines[1]
    assert lines[2].startswith("content/en/ui.toml:") and "card.scan: takes 3 lines" in lines[2]


def test_without_shaping_nothing_starts_and_the_check_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pillow without Raqm (no FriBiDi on the system) cannot be had here: its probe is replaced.
    monkeypatch.setattr(text, "_has_raqm", lambda: False)
    monkeypatch.setenv("BOT_TOKEN", "123456789:TEST_fake_token_for_tests_only_000")
    assert cli.main(["content", "check"]) == 1
    out = capsys.readouterr().out
    assert "picture cards: Bangla cannot be drawn correctly" in out and "libfribidi0" in out
    assert cli.main(["run"]) == 1
    assert "Raqm" in capsys.readouterr().err
    with pytest.raises(text.ShapingUnavailable):
        layout(method_card(CONTENT, "bn", "youtube", CHECK_USERNAME))
