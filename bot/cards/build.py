"""The cards the bot draws, made from the content library: a method, a weekly tip, a quiz result.

Every text comes from the library (method files, UI strings), with the place it is written, so
the content check can name the file and key of a text that does not fit. Emoji stay off the
pictures (the fonts have none); they are in the captions.
"""

from __future__ import annotations

from collections.abc import Sequence

from telegram.helpers import create_deep_linked_url

from bot.cards.model import Block, Card, Footer, Source
from bot.content import Library
from bot.telegram_html import parse_html

STEPS_SHOWN = 3
QUIZ_PAYLOAD = "quiz"  # handlers.menu.open_payload opens the quiz for it


def method_name(method_id: str) -> str:
    return f"method:{method_id}"


def tip_name(method_id: str, index: int) -> str:
    return f"tip:{method_id}:{index}"


def quiz_name(method_ids: Sequence[str]) -> str:
    return "quiz:" + "+".join(method_ids)


class _Writer:
    """Blocks in one language, each with where its text is written."""

    def __init__(self, library: Library, language: str, bot_username: str) -> None:
        self.library, self.language, self.bot = library, language, bot_username

    def ui(self, key: str, **values: object) -> str:
        """A UI string as plain text (UI strings are HTML with escaped values)."""
        return parse_html(self.library.t(self.language, key, **values)).plain

    def ui_source(self, key: str) -> Source:
        return Source(f"{self.language}/ui.toml", key)

    def method_source(self, method_id: str, key: str) -> Source:
        return Source(f"{self.language}/methods/{method_id}.toml", key)

    def tip_source(self, method_id: str, key: str, index: int) -> Source:
        return Source(f"{self.language}/methods/{method_id}.toml", key, "tips", index)

    def footer(self, call_key: str, payload: str) -> Footer:
        link = create_deep_linked_url(self.bot, payload)
        return Footer(
            brand=self.ui("card.brand"),
            call=self.ui(call_key),
            link=link,
            sources=(
                self.ui_source("card.brand"),
                self.ui_source(call_key),
                self.ui_source(call_key),
            ),
        )

    def caption(self, key: str, title: str, payload: str) -> str:
        link = create_deep_linked_url(self.bot, payload)
        return self.library.t(self.language, key, title=title, link=link)

    def kind(self, kind: str) -> str:
        return f"{self.ui('label.kind')}: {self.ui('kind.' + kind)}"


def method_card(library: Library, language: str, method_id: str, bot_username: str) -> Card:
    """A method: title, kind, cost, time to a first income, the first three steps."""
    w = _Writer(library, language, bot_username)
    m = library.method(language, method_id)
    source = w.method_source
    blocks = [
        Block("title", m.title, source(method_id, "title")),
        Block("chip", w.kind(m.kind), w.ui_source(f"kind.{m.kind}")),
        Block("label", w.ui("label.cost"), w.ui_source("label.cost")),
        Block("body", m.cost, source(method_id, "cost")),
        Block("label", w.ui("label.time"), w.ui_source("label.time")),
        Block("body", m.time_to_income, source(method_id, "time_to_income")),
        Block("label", w.ui("card.steps"), w.ui_source("card.steps")),
    ]
    blocks += [
        Block(
            "step", step, source(method_id, "first_steps"), prefix=f"{library.digits(language, n)}."
        )
        for n, step in enumerate(m.first_steps[:STEPS_SHOWN], 1)
    ]
    return Card(
        method_name(method_id),
        language,
        tuple(blocks),
        w.footer("card.scan", method_id),
        w.caption("card.caption", f"{m.emoji} {m.title}", method_id),
    )


def tip_card(
    library: Library, language: str, method_id: str, index: int, bot_username: str
) -> Card:
    """Weekly tip number `index` of a method: which path and week, its title and text."""
    w = _Writer(library, language, bot_username)
    m = library.method(language, method_id)
    tip = m.tips[index]
    week = w.ui("label.week_of", n=index + 1, total=len(m.tips))
    blocks = (
        Block("label", m.title, w.method_source(method_id, "title")),
        Block("chip", week, w.ui_source("label.week_of")),
        Block("title", tip.title, w.tip_source(method_id, "title", index)),
        Block("tip", tip.text, w.tip_source(method_id, "text", index)),
    )
    return Card(
        tip_name(method_id, index),
        language,
        blocks,
        w.footer("card.scan", method_id),
        w.caption("card.caption", f"{m.emoji} {m.button} · {week}: {tip.title}", method_id),
    )


def quiz_card(
    library: Library, language: str, method_ids: Sequence[str], bot_username: str
) -> Card:
    """A quiz result to share: the three best-fitting methods, best first."""
    w = _Writer(library, language, bot_username)
    quiz = library.quiz_text(language)
    blocks = [
        Block("label", quiz.title, Source(f"{language}/quiz.toml", "title")),
        Block("title", w.ui("card.quiz_title"), w.ui_source("card.quiz_title")),
    ]
    for n, method_id in enumerate(method_ids, 1):
        m = library.method(language, method_id)
        prefix = f"{library.digits(language, n)}."
        blocks.append(Block("pick", m.title, w.method_source(method_id, "title"), prefix))
        blocks.append(Block("pick_note", w.kind(m.kind), w.ui_source(f"kind.{m.kind}")))
    return Card(
        quiz_name(method_ids),
        language,
        tuple(blocks),
        w.footer("card.scan_quiz", QUIZ_PAYLOAD),
        w.caption("card.caption_quiz", w.ui("card.quiz_title"), QUIZ_PAYLOAD),
    )
