"""The "which path fits me?" quiz: every answer combination, the content check, and a chat."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BotHarness

from bot import callbacks
from bot.config import default_content_dir
from bot.content import QUIZ_FITS, Library, QuizAnswer, check_content, load_library
from bot.fakeapi import Reply, UserDriver
from bot.telegram_html import parse_html
from handlers.quiz import TOP, Result, recommend, result_text

CONTENT = default_content_dir()


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(CONTENT)


def every_combination(library: Library) -> Iterator[tuple[str, list[QuizAnswer]]]:
    """Each way to answer the quiz: the buttons' digits and the answers they stand for."""
    questions = library.quiz_questions
    for digits in itertools.product(*(range(len(q.answers)) for q in questions)):
        yield (
            "".join(map(str, digits)),
            [q.answers[d] for q, d in zip(questions, digits, strict=True)],
        )


def choices(library: Library, **answers: str) -> str:
    return "".join(
        str([a.id for a in q.answers].index(answers[q.id])) for q in library.quiz_questions
    )


def reason_texts(library: Library, language: str, result: Result) -> list[str]:
    quiz = library.quiz_text(language)
    return [
        library.t(
            language,
            "quiz.reason",
            why=quiz.whys[pick.reason[0]],
            also=quiz.whys[pick.reason[1]] if len(pick.reason) > 1 else "",
        )
        for pick in result.picks
    ]


def test_the_quiz_is_small_enough_to_try_every_answer(library: Library) -> None:
    combinations = sum(1 for _ in every_combination(library))
    assert 100 < combinations < 5000  # 540 today


def test_every_combination_gives_three_distinct_methods_each_with_its_own_reason(
    library: Library,
) -> None:
    for digits, answers in every_combination(library):
        result = recommend(library, digits)
        methods = [p.method_id for p in result.picks]
        assert len(methods) == TOP and len(set(methods)) == TOP, digits
        assert tuple(methods) == result.ranking[:TOP], digits
        for pick in result.picks:
            assert 1 <= len(pick.reason) <= 2, (digits, pick)
            by_id = {(q.id, a.id): a for q, a in zip(library.quiz_questions, answers, strict=True)}
            # the reason is made of the person's own answers, each one that favoured this method
            for ref in pick.reason:
                assert by_id[ref].scores[pick.method_id] >= QUIZ_FITS, (digits, pick)
        assert len({frozenset(p.reason) for p in result.picks}) == TOP, digits
        for language in ("bn", "en"):
            reasons = reason_texts(library, language, result)
            assert len(set(reasons)) == TOP, (digits, language, reasons)


def test_no_recommendation_contradicts_its_own_card(library: Library) -> None:
    needs = library.quiz_needs
    for digits, answers in every_combination(library):
        lacks = set().union(*(a.lacks for a in answers))
        result = recommend(library, digits)
        for method_id in result.ranking:  # neither the three nor the rest stored with them
            assert not set(needs.get(method_id, ())) & lacks, (digits, method_id, lacks)
        ids = {a.id for a in answers}
        if "phone" in ids:
            assert "freelancing" not in result.ranking, digits
        if "none" in ids or "few" in ids:
            assert "dropshipping" not in result.ranking, digits


def test_an_interest_is_in_the_top_three_unless_a_limit_rules_it_out(library: Library) -> None:
    needs = library.quiz_needs
    for digits, answers in every_combination(library):
        lacks = set().union(*(a.lacks for a in answers))
        result = recommend(library, digits)
        top = [p.method_id for p in result.picks]
        excluded = dict(result.excluded)
        for method_id in (m for a in answers for m in a.interest):
            unmet = [n for n in needs.get(method_id, ()) if n in lacks]
            if unmet:
                assert method_id not in top and excluded[method_id] == unmet[0], digits
            else:
                assert method_id in top and method_id not in excluded, digits
        for language in ("bn", "en"):
            text = result_text(library, language, result)
            plain = parse_html(text).plain  # Telegram would accept it
            assert len(plain.split()) <= 160  # a phone screen
            quiz = library.quiz_text(language)
            for ref in result.excluded:
                assert quiz.excluded[ref] in plain, (digits, language)
            if not result.excluded:
                assert "ℹ️" not in plain
            for reason in reason_texts(library, language, result):
                assert reason in text


def test_the_limits_match_what_the_cards_say(library: Library) -> None:
    needs = library.quiz_needs
    cards = {m.id: m for m in library.methods("en")}

    def card(method_id: str) -> str:
        m = cards[method_id]
        return f"{m.summary} {m.cost} {m.what_it_is}".lower()

    assert "computer" in needs["freelancing"] and "need a computer" in card("freelancing")
    assert {"money", "time"} <= set(needs["dropshipping"])
    assert "ads" in cards["dropshipping"].cost.lower() and "daily work" in card("dropshipping")
    for method_id, method in cards.items():
        if "phone" in method.cost.lower():  # "a smartphone is enough to start"
            assert "computer" not in needs.get(method_id, ()), method_id


def test_budget_answers_show_taka_amounts(library: Library) -> None:
    budget = next(q for q in library.quiz_questions if q.id == "budget")
    for language, digits in (("bn", "০১২৩৪৫৬৭৮৯"), ("en", "0123456789")):
        quiz = library.quiz_text(language)
        for answer in budget.answers:
            label = quiz.labels["budget", answer.id]
            assert "৳" in label and any(d in label for d in digits), label
            assert len(label) <= 24
        if language == "bn":
            assert not any(re.search(r"[0-9]", quiz.labels["budget", a.id]) for a in budget.answers)


def test_the_case_from_the_issue(library: Library) -> None:
    """Camera/video, phone only, quick income: YouTube is there, for its own reason."""
    digits = choices(
        library, hours="part", budget="small", skill="video", goal="quick", device="phone"
    )
    result = recommend(library, digits)
    top = [p.method_id for p in result.picks]
    assert "youtube" in top and "freelancing" not in top
    youtube = next(p for p in result.picks if p.method_id == "youtube")
    assert youtube.reason == (("skill", "video"), ("device", "phone"))
    assert len({frozenset(p.reason) for p in result.picks}) == TOP


# --- the content check ---------------------------------------------------------------------------


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old` in the file; the 1-based line it was on."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def test_a_typo_in_the_limits_is_reported_with_its_line(content_copy: Path) -> None:
    quiz = content_copy / "quiz.toml"
    needs_line = edit(
        quiz, 'freelancing = ["computer"]', 'freelancing = ["computer"]\nwriting2 = ["money"]'
    )
    line = edit(quiz, 'lacks = ["computer"]', 'lacks = ["computr"]')
    problems = check_content(content_copy)
    assert f"content/quiz.toml:{line}: lacks: no method needs 'computr' (see [needs])" in problems
    assert (
        f"content/quiz.toml:{needs_line + 1}: needs: 'writing2' is not a method in content/methods.toml"
        in problems
    )


def test_an_interest_must_favour_its_method_and_be_possible(content_copy: Path) -> None:
    quiz = content_copy / "quiz.toml"
    edit(quiz, 'interest = ["writing"]', 'interest = ["stock"]')  # the writing answer gives stock 0
    line = edit(
        quiz,
        'id = "phone"\n  lacks = ["computer"]',
        'id = "phone"\n  lacks = ["computer"]\n  interest = ["freelancing"]',
    )
    problems = check_content(content_copy)
    assert any("interest: answer 'writing' gives 'stock' 0 points" in p for p in problems)
    assert (
        f"content/quiz.toml:{line + 2}: interest: 'freelancing' needs what answer 'phone' lacks"
        in problems
    )


def test_limits_that_leave_too_few_methods_are_refused(content_copy: Path) -> None:
    quiz = content_copy / "quiz.toml"
    edit(
        quiz,
        'dropshipping = ["money", "time"]',
        'dropshipping = ["money", "time"]\n'
        + "\n".join(
            f'{m} = ["computer"]' for m in ("writing", "youtube", "affiliate", "courses", "social")
        ),
    )
    problems = check_content(content_copy)
    assert any(
        p.startswith("content/quiz.toml:") and "leave too few methods (1); at least 3" in p
        for p in problems
    ), problems


def test_texts_for_the_quiz_are_checked_in_each_language(content_copy: Path) -> None:
    en = content_copy / "en" / "quiz.toml"
    edit(en, 'time = "Dropshipping needs steady', 'tiem = "Dropshipping needs steady')
    label = edit(en, 'label = "Under ৳5,000"', 'label = "Less than ৳5,000 to start with"')
    why = edit(en, 'why = "you enjoy writing"', 'why = "you like design or tech"')
    problems = check_content(content_copy)
    assert (
        f"content/en/quiz.toml:{label}: label: is 30 characters long, at most 24 allowed"
        in problems
    )
    assert any(
        p.startswith(
            f"content/en/quiz.toml:{why}: why: the same as [questions.skill.answers.design]"
        )
        for p in problems
    )
    assert any(
        "content/en/quiz.toml:" in p and "time: must be non-empty text" in p for p in problems
    )
    assert any(
        "excluded.dropshipping.tiem: content/quiz.toml has no such need" in p for p in problems
    )


def test_quiz_button_data_fits(library: Library) -> None:
    assert len(callbacks.Quiz("9" * len(library.quiz_questions)).pack()) <= callbacks.MAX_BYTES


# --- through the fake Bot API --------------------------------------------------------------------


async def answer(user: UserDriver, reply: Reply, *labels: str) -> Reply:
    for label in labels:
        reply = await user.press(f"^{re.escape(label)}$")
    return reply


async def test_video_phone_quick_income_gets_youtube_with_its_own_reason(bot: BotHarness) -> None:
    user = bot.user("Rahim")
    reply = await user.send("/quiz")
    assert "প্রশ্ন ১/৫" in reply.text
    reply = await answer(
        user, reply, "৫–১০ ঘণ্টা", "৳৫,০০০-এর কম", "ক্যামেরা বা ভিডিও", "তাড়াতাড়ি কিছু আয়", "শুধু মোবাইল ফোন"
    )
    text = reply.text
    assert "YouTube চ্যানেল ও ভিডিও এডিটিং" in text
    assert "ফ্রিল্যান্সিং" not in text  # its card says most of its skills need a computer
    assert "কারণ: ক্যামেরা ও ভিডিওতে আপনার আগ্রহ আছে, আর শুরু করতে আপনার ফোনই যথেষ্ট।" in text
    reasons = [line for line in text.splitlines() if line.startswith("কারণ:")]
    assert len(reasons) == 3 and len(set(reasons)) == 3
    assert any("YouTube" in t for t in reply.last.button_texts())
    stored = await bot.store.get_quiz_result(user.id)  # type: ignore[union-attr]
    assert stored is not None and "youtube" in stored.ranking[:3]
    assert "freelancing" not in stored.ranking


async def test_an_interest_ruled_out_is_explained_in_one_line(bot: BotHarness) -> None:
    user = bot.user("Karim", language_code="en")
    await user.send("/start")
    await user.send("/language")
    reply = await user.send("/quiz")
    assert "Question 1/5" in reply.text
    reply = await answer(
        user,
        reply,
        "Under 5 hours",
        "৳0, nothing",
        "Design or tech",
        "Some income soon",
        "Only a phone",
    )
    text = reply.text
    assert "Freelancing needs a computer for most of its skills, so it is not in your list." in text
    assert "Dropshipping" not in text
    assert text.count("Why:") == 3
    # Back from a card opened on the result shows the same result again
    opened = reply.last.button_texts()[0]
    await user.press(f"^{re.escape(opened)}$")
    back = await user.press("^⬅️ Back$")
    assert back.text == text
