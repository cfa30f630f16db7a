"""Button data, from the declarations in bot/callbacks.py: every form fits Telegram's 64 bytes,
reads back as itself, reaches the handler declared for it, and old buttons keep their format."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import CONTENT, BotHarness
from telegram.ext import CallbackQueryHandler

from bot import callbacks
from bot.callbacks import DECLARED, FIXED, CallbackData, Fixed
from handlers.groups import GroupButtonHandler

GROUP_ONLY = (callbacks.GroupCard, callbacks.GROUP_LIST)


def every_button() -> Iterator[tuple[Fixed | type[CallbackData], str]]:
    """Each declaration with every form of its data the content allows."""
    for fixed in FIXED:
        yield fixed, fixed.pack()
    for declared in DECLARED:
        for data in declared.samples(CONTENT):
            yield declared, data.pack()


def test_no_declaration_can_make_data_over_64_bytes() -> None:
    """From the declarations alone: whatever ids the content has, within their patterns."""
    for declared in DECLARED:
        assert declared.longest() <= callbacks.MAX_BYTES, declared.__name__
    assert all(len(fixed.pack()) <= callbacks.MAX_BYTES for fixed in FIXED)


def test_every_form_fits_and_reads_back_as_itself() -> None:
    count = 0
    for declared, data in every_button():
        assert 0 < len(data.encode()) <= callbacks.MAX_BYTES and data.isascii(), data
        if isinstance(declared, Fixed):
            continue
        parsed = declared.parse(data)
        assert parsed is not None and parsed.pack() == data
        count += 1
    assert count > 1000  # every method, origin, section, answer...


def test_prefixes_and_fixed_words_are_unique() -> None:
    prefixes = [d.prefix for d in DECLARED]
    assert len(set(prefixes)) == len(prefixes)
    words = [f.data for f in FIXED]
    assert len(set(words)) == len(words)


@pytest.mark.parametrize(
    ("data", "packed"),
    [  # the formats buttons in people's chats were made with: they must keep working
        (callbacks.Card("youtube"), "card:youtube:all"),
        (callbacks.Section("youtube", "steps", 2, "quiz"), "sec:youtube:steps:2:quiz"),
        (callbacks.Choose("stock", "path"), "choose:stock:path"),
        (callbacks.Checklist("stock"), "path:stock"),
        (callbacks.Checklist("stock", "all"), "path:stock:all"),
        (callbacks.Step("stock", 3, True), "step:stock:3:1"),
        (callbacks.Step("stock", 3, False, "find"), "step:stock:3:0:find"),
        (callbacks.RemovePath("stock"), "drop:stock:0"),
        (callbacks.RemovePath("stock", True, "quiz"), "drop:stock:1:quiz"),
        (callbacks.SetLanguage(), "lang"),
        (callbacks.SetLanguage("en"), "lang:en"),
        (callbacks.Quiz(), "quiz:"),
        (callbacks.Quiz("0120"), "quiz:0120"),
        (callbacks.Subscribe("stock"), "sub:stock"),
        (callbacks.Unsubscribe("stock"), "unsub:stock:0"),
        (callbacks.Unsubscribe("stock", from_settings=True), "unsub:stock:1"),
        (callbacks.TipStep("stock", 2), "tipstep:stock:2"),
        (callbacks.Schedule(), "when"),
        (callbacks.Schedule(4), "when:4"),
        (callbacks.Schedule(4, 20), "when:4:20"),
        (callbacks.Broadcast(17, "bn"), "bc:17:bn"),
        (callbacks.GroupCard("stock"), "gcard:stock"),
        (callbacks.MethodList("passive"), "list:passive"),
        (callbacks.InfoPage("safety"), "page:safety"),
        (callbacks.Answer("faq", "cost"), "ans:faq:cost"),
        (callbacks.AnswerList("faq"), "anl:faq:0"),
        (callbacks.HOME, "home"),
        (callbacks.SUBSCRIBE_MENU, "tips:add"),
        (callbacks.QUIZ_RESULT, "quiz:result"),
        (callbacks.FORGET_YES, "forget:yes"),
    ],
)
def test_the_data_of_each_button_is_as_it_always_was(
    data: CallbackData | Fixed, packed: str
) -> None:
    assert data.pack() == packed
    if isinstance(data, CallbackData):
        assert type(data).parse(packed) == data


def test_a_tip_from_before_buttons_named_their_step_still_reads() -> None:
    assert callbacks.TipStep.parse("tipstep:youtube") == callbacks.TipStep("youtube", None)


def test_ids_the_content_no_longer_has_are_not_taken() -> None:
    assert not callbacks.Card("gone").exists(CONTENT)
    assert callbacks.Card("youtube").exists(CONTENT)
    assert not callbacks.Step("youtube", 62, True).exists(CONTENT)
    assert not callbacks.Answer("faq", "no_such_answer").exists(CONTENT)
    assert not callbacks.Quiz("9").exists(CONTENT)
    assert not callbacks.Schedule(9, 99).exists(CONTENT)
    assert callbacks.Schedule(9).exists(CONTENT)  # the hours are offered; the slot is checked


async def test_every_button_reaches_the_handler_declared_for_it(bot: BotHarness) -> None:
    """In the order the application tries them: no pattern takes another button's data."""
    assert bot.app is not None
    handlers = [h for h in bot.app.handlers[0] if isinstance(h, CallbackQueryHandler)]
    in_groups = [h for h in handlers if isinstance(h, GroupButtonHandler)]
    in_private = [h for h in handlers if not isinstance(h, GroupButtonHandler)]
    checked = 0
    for declared, data in every_button():
        candidates = in_groups if declared in GROUP_ONLY else in_private
        taker = next(h for h in candidates if _takes(h, data))
        assert isinstance(taker.pattern, re.Pattern), (data, taker.callback)
        assert taker.pattern.pattern == declared.pattern().pattern, (data, taker.callback)
        checked += 1
    assert checked > 1000


def _takes(handler: CallbackQueryHandler, data: str) -> bool:  # type: ignore[type-arg]
    pattern = handler.pattern
    return pattern is None or (isinstance(pattern, re.Pattern) and bool(pattern.match(data)))
