"""The "which path fits me?" quiz: a few tap-only questions, then the three best-fitting methods.

Progress travels in the buttons' data (one digit per answer), so a quiz survives restarts and
needs no server-side state until the result is stored. Scoring is data (content/quiz.toml):

- each answer gives every method points; the methods with the most points fit best;
- a method needing what an answer says the person lacks (a computer, money, time) is never
  recommended to them;
- a method the person named as an interest is always among the three, unless it is ruled out;
  then the result says why in one line;
- each recommendation shows its own reason: up to two of the answers that gave it the most
  points, chosen so that no two recommendations give the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot import callbacks
from bot.callbacks import on_tap
from bot.content import QUIZ_FITS, QUIZ_TOP, Library, QuizAnswer, QuizQuestion
from bot.context import AppContext
from bot.ui import button, keyboard, nav_row, show

TOP = QUIZ_TOP
Ref = tuple[str, str]  # (question id, answer id)


@dataclass(frozen=True, slots=True)
class Pick:
    method_id: str
    score: int
    reason: tuple[Ref, ...]  # one or two answers that made it fit, the main one first


@dataclass(frozen=True, slots=True)
class Result:
    picks: tuple[Pick, ...]  # the TOP recommendations, best first
    ranking: tuple[str, ...]  # every method the person can start, best first (picks first)
    excluded: tuple[tuple[str, str], ...]  # (method id, need): interests a limit rules out


def recommend(library: Library, choices: str) -> Result:
    """The best-fitting methods for a full set of answers (one digit per question)."""
    return library.made_once(("quiz", choices), lambda: _recommend(library, choices))


def _recommend(library: Library, choices: str) -> Result:
    questions = library.quiz_questions
    picked = [q.answers[int(digit)] for q, digit in zip(questions, choices, strict=True)]
    lacks = frozenset().union(*(a.lacks for a in picked))
    order = library.method_ids

    def unmet(method_id: str) -> list[str]:
        return [need for need in library.quiz_needs.get(method_id, ()) if need in lacks]

    totals = {m: sum(a.scores[m] for a in picked) for m in order if not unmet(m)}
    ranked = sorted(totals, key=lambda m: (-totals[m], order.index(m)))
    interests = list(dict.fromkeys(m for a in picked for m in a.interest))
    wanted = [m for m in interests if m in totals]
    top = ranked[:TOP]
    for method_id in wanted:
        if method_id not in top:  # it takes the place of the weakest pick that is not wanted
            top.remove(next(m for m in reversed(top) if m not in wanted))
            top.append(method_id)
    top.sort(key=ranked.index)
    reasons = _reasons(questions, picked, top, wanted, list(totals))
    return Result(
        picks=tuple(Pick(m, totals[m], reasons[m]) for m in top),
        ranking=(*top, *(m for m in ranked if m not in top)),
        excluded=tuple((m, unmet(m)[0]) for m in interests if m not in totals),
    )


def _reasons(
    questions: Sequence[QuizQuestion],
    picked: Sequence[QuizAnswer],
    top: Sequence[str],
    wanted: Sequence[str],
    eligible: Sequence[str],
) -> dict[str, tuple[Ref, ...]]:
    """Each pick's reason: its best answers, no two picks with the same reason.

    An answer counts towards a method's reason when it gave the method at least QUIZ_FITS
    points; among those, the one that favours this method over the others most comes first.
    A wanted method's reason starts with the answer that named it. Each pick leads with an
    answer no earlier pick led with, where it has one.
    """
    refs = [(q.id, a.id) for q, a in zip(questions, picked, strict=True)]
    means = [fmean(a.scores[m] for m in eligible) for a in picked]

    def best_first(method_id: str) -> list[int]:
        points = [a.scores[method_id] for a in picked]
        ranked = sorted(range(len(picked)), key=lambda i: (-points[i], means[i] - points[i], i))
        fitting = [i for i in ranked if points[i] >= QUIZ_FITS] or ranked[:1]
        named = [i for i in fitting if method_id in picked[i].interest]
        return named + [i for i in fitting if i not in named]

    leads: set[int] = set()
    used: set[frozenset[int]] = set()
    reasons: dict[str, tuple[Ref, ...]] = {}
    for method_id in [*(m for m in top if m in wanted), *(m for m in top if m not in wanted)]:
        fitting = best_first(method_id)
        main = next((i for i in fitting if i not in leads), fitting[0])
        options: list[tuple[int, ...]] = [(main, i) for i in fitting if i != main]
        options += [(main,)]
        everything = [*fitting, *(i for i in range(len(picked)) if i not in fitting)]
        options += [(i, j) for i in everything for j in everything if i != j] + [
            (i,) for i in everything
        ]
        choice = next(o for o in options if frozenset(o) not in used)
        leads.add(choice[0])
        used.add(frozenset(choice))
        reasons[method_id] = tuple(refs[i] for i in choice)
    return reasons


async def show_question(update: Update, ctx: AppContext, choices: str) -> None:
    lib = ctx.library
    quiz = lib.quiz_text(ctx.lang)
    question = lib.quiz_questions[len(choices)]
    text = lib.made_once(
        ("quiz_question", ctx.lang, len(choices)),
        lambda: lib.render(
            ctx.lang,
            "quiz_question.j2",
            quiz=quiz,
            first=not choices,
            n=len(choices) + 1,
            total=len(lib.quiz_questions),
            text=quiz.questions[question.id],
        ),
    )
    rows = [
        [button(quiz.labels[question.id, a.id], callbacks.Quiz(choices + str(i)).pack())]
        for i, a in enumerate(question.answers)
    ]
    back = callbacks.Quiz(choices[:-1]) if choices else callbacks.HOME
    await show(update, ctx, text, keyboard([*rows, nav_row(ctx, back.pack())]))


def result_text(library: Library, language: str, result: Result) -> str:
    return library.made_once(
        ("quiz_result", language, result), lambda: _render_result(library, language, result)
    )


def _render_result(library: Library, language: str, result: Result) -> str:
    quiz = library.quiz_text(language)
    picks = [
        {
            "method": library.method(language, pick.method_id),
            "why": quiz.whys[pick.reason[0]],
            "also": quiz.whys[pick.reason[1]] if len(pick.reason) > 1 else "",
        }
        for pick in result.picks
    ]
    excluded = [quiz.excluded[ref] for ref in result.excluded]
    return library.render(language, "quiz_result.j2", quiz=quiz, picks=picks, excluded=excluded)


async def show_result(update: Update, ctx: AppContext, choices: str, result: Result) -> None:
    rows = []
    for pick in result.picks:
        method = ctx.library.method(ctx.lang, pick.method_id)
        rows.append(
            [
                button(f"{method.emoji} {method.button}", callbacks.Card(method.id, "quiz").pack()),
                button(ctx.t("btn.choose"), callbacks.Choose(method.id, "quiz").pack()),
            ]
        )
    rows.append([button(ctx.t("btn.share_image"), callbacks.ShareQuizImage(choices).pack())])
    rows.append([button(ctx.t("btn.retake"), callbacks.Quiz().pack())])
    text = result_text(ctx.library, ctx.lang, result)
    await show(update, ctx, text, keyboard([*rows, nav_row(ctx)]))


async def quiz_command(update: Update, ctx: AppContext) -> None:
    await show_question(update, ctx, "")


async def answer_question(update: Update, ctx: AppContext, data: callbacks.Quiz) -> None:
    assert update.effective_user is not None
    choices, lib = data.answers, ctx.library
    if len(choices) < len(lib.quiz_questions):
        await show_question(update, ctx, choices)
        return
    result = recommend(lib, choices)
    answers = {q.id: q.answers[int(d)].id for q, d in zip(lib.quiz_questions, choices, strict=True)}
    await ctx.store.save_quiz_result(
        update.effective_user.id, answers, list(result.ranking), now=ctx.now()
    )
    await show_result(update, ctx, choices, result)


async def saved_result(update: Update, ctx: AppContext) -> None:
    """Back from a card opened from the result: rebuild the result from what was stored."""
    assert update.effective_user is not None
    lib = ctx.library
    stored = await ctx.store.get_quiz_result(update.effective_user.id)
    index = {q.id: {a.id: str(i) for i, a in enumerate(q.answers)} for q in lib.quiz_questions}
    try:
        choices = (
            "".join(index[q.id][stored.answers[q.id]] for q in lib.quiz_questions) if stored else ""
        )
    except KeyError:
        choices = ""  # the quiz changed since the result was stored
    if not choices:
        await show_question(update, ctx, "")
        return
    await show_result(update, ctx, choices, recommend(lib, choices))


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [
        CommandHandler("quiz", quiz_command, filters=filters.ChatType.PRIVATE),
        on_tap(callbacks.QUIZ_RESULT, saved_result),
        on_tap(callbacks.Quiz, answer_question),
    ]
