"""Typed questions: the analyzer, the evaluation set through the bot, small talk, no answer."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CONTENT, BotHarness, Clock, bot_against_fake

from bot import callbacks
from bot.config import Settings
from bot.content import COLLECTIONS, Library, screen_words
from bot.search import english_key, romanised, words
from handlers.answers import mask_query

# Two sets of real-style questions, each written by someone who had not seen the content's
# keywords (the second also without the first): 220 questions in Bangla, English and Banglish.
EVAL_SETS = {
    name: tomllib.loads((Path(__file__).parent / f"{name}.toml").read_text(encoding="utf-8"))[
        "case"
    ]
    for name in ("search_eval", "search_holdout")
}
REQUIRED_ACCURACY = 0.9


INDEX = CONTENT.search


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("একটিভ", "অ্যাকটিভ"),
        ("কিভাবে", "কীভাবে"),
        ("বিকাশে", "বিকাশ"),
        ("ফ্রিল্যান্সিংয়ে", "ফ্রিল্যান্সিং"),
        ("ফ্রিলান্সিং", "ফ্রিল্যান্সিং"),
        ("টাকার", "টাকা"),
        ("মোবাইলে", "মোবাইল"),
        ("শাটারস্টকে", "শাটারস্টক"),
    ],
)
def test_bangla_spelling_variants_and_suffixes_meet(a: str, b: str) -> None:
    assert INDEX.key(words(a)[0]) == INDEX.key(words(b)[0])


def test_a_suffix_comes_off_only_where_a_known_word_is_left() -> None:
    assert INDEX.key("আয়") != INDEX.key("আজ")  # no য/জ fold: "income" is not "today"
    assert INDEX.key("ভাই") == "ভাই"


def test_english_stems_whole_words_only() -> None:
    assert english_key("payments") == english_key("payment")
    assert english_key("get") != english_key("getty")  # no prefix trap


def test_romanised_bangla_is_read_as_bangla() -> None:
    assert INDEX.key(romanised("taka")) == INDEX.key("টাকা")
    assert INDEX.key(romanised("kivabe")) == INDEX.key("কীভাবে")


def test_words_drop_links_and_read_bangla_digits() -> None:
    assert words("দেখুন https://example.com ১৮ বছর") == ["দেখুন", "18", "বছর"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("how do I get paid from Bangladesh", "page:getting_paid"),  # "get" is not "getty"
        ("where can I learn for free", "learn:general"),  # "free" is not "freelancing"
        ("bkash", "paid:bkash"),
        ("একটিভ ইনকাম", "faq:active_what page:active_passive"),
        ("freelancing kivabe shuru korbo", "card:freelancing"),
        ("payoneer", "paid:payoneer faq:payoneer_open"),
        ("বিকাশ", "paid:bkash"),
        ("টাকা তুলব কিভাবে", "page:getting_paid"),
        ("প্রতারণা", "page:safety faq:is_it_scam"),
        ("scam", "page:safety faq:is_it_scam"),
        ("প্যাসিভ ইনকাম কী", "faq:passive_what page:active_passive"),
    ],
)
def test_questions_the_old_keyword_search_got_wrong(query: str, expected: str) -> None:
    outcome = INDEX.search(query)
    assert outcome.kind == "answer"
    assert outcome.targets[0] in expected.split()


def heading(library: Library, language: str, target: str) -> str:
    """The first line of the screen that shows `target` (as the templates write it)."""
    kind, _, rest = target.partition(":")
    if kind == "card":
        m = library.method(language, rest)
        return f"{m.emoji} {m.title}"
    if kind == "page":
        page = library.page(language, rest)
        return f"{page.emoji} {page.title}"
    entry = library.entry(language, kind, rest)
    assert entry is not None, target
    return f"{library.t(language, f'icon.{kind}')} {entry.title}"


def reached(library: Library, language: str, reply_text: str, expect: list[str]) -> bool:
    """Whether the bot's reply is the expected answer (a card's own sections count as the card)."""
    first_line = reply_text.split("\n", 1)[0]
    for target in expect:
        if target == "smalltalk":
            replies = [library.t(language, f"smalltalk.{k}") for k in ("greeting", "thanks", "ok")]
            if any(reply_text.startswith(r.split("\n")[0]) for r in replies):
                return True
        elif target == "none":
            for key in ("search.none", "search.unsure"):
                head = library.t(language, key, query="\x00").split("\x00")[0]
                if reply_text.startswith(head):
                    return True
        elif first_line == (head := heading(library, language, target)) or (
            target.startswith("card:") and first_line.startswith(f"{head} · ")
        ):
            return True
    return False


async def test_the_evaluation_sets_reach_their_answers(bot: BotHarness) -> None:
    """Every question through the real bot; Bangla and English users take turns."""
    users = {"bn": bot.user("Rahim"), "en": bot.user("Rachel", language_code="en")}
    await users["en"].send("/start")
    await users["en"].press("English")
    missed: list[str] = []
    total = 0
    for name, cases in EVAL_SETS.items():
        missed_here = 0
        for n, case in enumerate(cases):
            language = ("bn", "en")[n % 2]
            reply = await users[language].send(case["q"])
            if not reached(CONTENT, language, reply.text, case["expect"]):
                missed_here += 1
                missed.append(f"{case['q']!r} → {case['expect']}: {reply.text.splitlines()[0]!r}")
        print(
            f"\n{name}: {len(cases) - missed_here}/{len(cases)} = {1 - missed_here / len(cases):.1%}"
        )
        total += len(cases)
        assert len(cases) >= 80
    accuracy = 1 - len(missed) / total
    print(f"search evaluation: {total - len(missed)}/{total} = {accuracy:.1%}")
    print("\n".join(f"  missed {m}" for m in missed))
    assert accuracy >= REQUIRED_ACCURACY, "\n".join(missed)


async def test_small_talk_gets_a_short_friendly_reply_and_the_menu(bot: BotHarness) -> None:
    user = bot.user("Karim")
    for text in ("হ্যালো", "assalamualaikum", "ধন্যবাদ ভাই", "ok", "👍👍"):
        reply = await user.send(text)
        assert "🤔" not in reply.text
        assert any("সব পদ্ধতি" in b for b in reply.last.button_texts())


async def test_an_answer_comes_with_the_next_best_and_more_buttons(bot: BotHarness) -> None:
    user = bot.user("Rupa")
    reply = await user.send("পেপাল কি বাংলাদেশে চলে?")
    entry = CONTENT.entry("bn", "paid", "paypal")
    assert entry is not None
    assert reply.text.splitlines()[0] == heading(CONTENT, "bn", "paid:paypal")
    buttons = reply.last.button_texts()
    assert len(buttons) >= 3  # what says more, the next-best answers, and home
    # a "more" button opens its screen
    see = CONTENT.entry("bn", *entry.see[0].split(":")) if ":" in entry.see[0] else None
    if see is not None and see.collection != "card":
        reply = await user.press(see.button)
        assert see.title in reply.text


async def test_no_answer_is_honest_offers_the_quiz_and_is_counted(bot: BotHarness) -> None:
    user = bot.user("Nila")
    for _ in range(2):
        reply = await user.send("আজ ঢাকার আবহাওয়া কেমন থাকবে 01711000000?")
        assert reply.text.startswith("🤔")
        assert any("কোন পথ আমার জন্য" in b for b in reply.last.button_texts())
    assert bot.store is not None
    top = await bot.store.top_unanswered(limit=5, now=bot.clock())
    assert top == [("আজ ঢাকার আবহাওয়া কেমন থাকবে ###########?", 2)]


async def test_unanswered_questions_show_in_stats_for_admins(
    make_settings: Callable[..., Settings], clock: Clock
) -> None:
    # the fake's first private user
    async with bot_against_fake(make_settings, clock, ADMIN_IDS="10000001") as harness:
        admin = harness.user("Admin")
        await admin.send("ক্রিকেট খেলার স্কোর কত")
        reply = await admin.send("/stats")
        assert "ক্রিকেট খেলার স্কোর কত" in reply.text
        assert "১×" in reply.text


def test_a_kept_question_has_no_contact_details() -> None:
    kept = mask_query("Call  01711-000000 or mail me@x.com, see https://t.me/x and @rahim  Bkash")
    assert kept == "call #####-###### or mail <email> see <link> and <user> bkash"


async def test_a_huge_message_is_cut_and_still_answered(bot: BotHarness) -> None:
    user = bot.user("Long")
    reply = await user.send("payoneer " + "অনেক কথা " * 600)
    assert reply.text  # an answer or an honest "no answer", never an error
    assert "দুঃখিত" not in reply.text


async def test_every_collection_lists_its_answers_and_opens_each(bot: BotHarness) -> None:
    user = bot.user("Tania")
    await user.send("/start")
    reply = await user.press("প্রশ্ন-উত্তর")
    assert CONTENT.entries("bn", "faq")[0].button in " ".join(reply.last.button_texts())
    reply = await user.press("পরের পাতা")
    assert "পাতা ২/" in reply.text
    await user.send("/start")
    reply = await user.press("টাকা তোলা")
    for entry in CONTENT.entries("bn", "paid")[:3]:
        reply = await user.press(entry.button)
        assert entry.title in reply.text
        reply = await user.press("ফিরে যান")


@pytest.mark.parametrize("language", ["bn", "en"])
async def test_every_answer_screen_renders_through_the_bot(bot: BotHarness, language: str) -> None:
    """Each answer of each collection, opened from its list, as Telegram receives it; the
    fixture fails the test if the fake Bot API refused any of them (HTML, length, buttons)."""
    user = bot.user("Mina", language_code=language)
    menu = await user.send("/start")
    if language == "en":
        menu = await user.press("English")
    lib = bot.library
    for collection in COLLECTIONS:
        entries = lib.entries(language, collection)
        listing = await user.press_data(
            callbacks.AnswerList(collection).pack(), menu.last.message_id
        )
        for entry in entries:
            while entry.button not in " ".join(listing.last.button_texts()):
                listing = await user.press(f"^{re.escape(lib.t(language, 'btn.next'))}$")
            reply = await user.press(
                f"^{re.escape(lib.t(language, f'icon.{collection}'))} {re.escape(entry.button)}$"
            )
            assert entry.title in reply.text
            assert screen_words(reply.last.html) <= 160
            for target in entry.see:  # every "more" button leads somewhere real
                assert lib.has_target(target)
            listing = await user.press(f"^{re.escape(lib.t(language, 'btn.back'))}$")
