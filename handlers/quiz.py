"""The "which path fits me?" quiz: a few tap-only questions, then the three best-fitting methods.

Progress travels in the buttons' data (one digit per answer), so a quiz survives restarts and
needs no server-side state until the result is stored. Scoring is data (content/quiz.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot import callbacks
from bot.content import Library
from bot.context import AppContext
from bot.ui import StaleButton, button, keyboard, nav_row, show

TOP = 3


@dataclass(frozen=True, slots=True)
class Fit:
    method_id: str
    score: int
    reason: tuple[str, str]  # (question id, answer id) that favoured this method most


def score(library: Library, choices: str) -> list[Fit]:
    """Rank methods by the summed scores of the chosen answers; ties keep menu order."""
    picked = [
        q.answers[int(digit)] for q, digit in zip(library.quiz_questions, choices, strict=True)
    ]
    fits = []
    for method_id in library.method_ids:
        points = [a.scores[method_id] for a in picked]
        best = max(range(len(picked)), key=lambda i: points[i])  # first best answer wins a tie
        question = library.quiz_questions[best]
        fits.append(Fit(method_id, sum(points), (question.id, picked[best].id)))
    return sorted(fits, key=lambda f: (-f.score, library.method_ids.index(f.method_id)))


def valid_choices(library: Library, choices: str) -> bool:
    questions = library.quiz_questions
    return len(choices) <= len(questions) and all(
        digit.isdigit() and int(digit) < len(q.answers)
        for q, digit in zip(questions, choices, strict=False)
    )


async def show_question(update: Update, ctx: AppContext, choices: str) -> None:
    lib = ctx.library
    text_of = lib.quiz_text(ctx.lang)
    question = lib.quiz_questions[len(choices)]
    text = ctx.t(
        "quiz.question",
        n=len(choices) + 1,
        total=len(lib.quiz_questions),
        text=text_of.questions[question.id],
    )
    if not choices:
        text = f"🧭 <b>{escape(text_of.title)}</b>\n{escape(text_of.intro)}\n\n{text}"
    rows = [
        [button(text_of.labels[question.id, a.id], callbacks.quiz(choices + str(i)))]
        for i, a in enumerate(question.answers)
    ]
    back = callbacks.quiz(choices[:-1]) if choices else callbacks.HOME
    await show(update, ctx, text, keyboard([*rows, nav_row(ctx, back)]))


async def show_result(
    update: Update, ctx: AppContext, ranking: list[str], reasons: dict[str, tuple[str, str]]
) -> None:
    lib = ctx.library
    text_of = lib.quiz_text(ctx.lang)
    lines = [ctx.t("quiz.result", title=text_of.title, intro=text_of.result_intro)]
    rows = []
    for n, method_id in enumerate(ranking[:TOP], 1):
        method = lib.method(ctx.lang, method_id)
        why = text_of.whys.get(reasons.get(method_id, ("", "")), "")
        lines.append(f"\n<b>{ctx.digits(n)}. {method.emoji} {escape(method.title)}</b>")
        if why:
            lines.append(ctx.t("quiz.reason", why=why))
        rows.append(
            [
                button(f"{method.emoji} {method.button}", callbacks.card(method_id, "quiz")),
                button(ctx.t("btn.choose"), callbacks.choose(method_id, "quiz")),
            ]
        )
    lines.append("\n" + ctx.t("quiz.choose_hint"))
    rows.append([button(ctx.t("btn.retake"), callbacks.quiz())])
    await show(update, ctx, "\n".join(lines), keyboard([*rows, nav_row(ctx)]))


async def quiz_command(update: Update, ctx: AppContext) -> None:
    await show_question(update, ctx, "")


async def answer_question(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None and update.effective_user is not None
    choices = ctx.match.group(1)
    lib = ctx.library
    if not valid_choices(lib, choices):
        raise StaleButton  # the quiz changed since these buttons were made
    if len(choices) < len(lib.quiz_questions):
        await show_question(update, ctx, choices)
        return
    fits = score(lib, choices)
    ranking = [f.method_id for f in fits]
    answers = {q.id: q.answers[int(d)].id for q, d in zip(lib.quiz_questions, choices, strict=True)}
    await ctx.store.save_quiz_result(update.effective_user.id, answers, ranking, now=ctx.now())
    await show_result(update, ctx, ranking, {f.method_id: f.reason for f in fits})


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
    fits = score(lib, choices)
    await show_result(
        update, ctx, [f.method_id for f in fits], {f.method_id: f.reason for f in fits}
    )


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [
        CommandHandler("quiz", quiz_command, filters=filters.ChatType.PRIVATE),
        CallbackQueryHandler(saved_result, pattern=f"^{callbacks.QUIZ_RESULT}$"),
        CallbackQueryHandler(answer_question, pattern=r"^quiz:(\d{0,8})$"),
    ]
