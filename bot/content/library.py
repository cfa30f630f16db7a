"""The loaded content, read-only: handlers get data here and render it with `Library.render`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, Template

from bot.content import render
from bot.content.model import (
    COLLECTIONS,
    PAGE_IDS,
    SECTIONS,
    Entry,
    Method,
    Page,
    QuizQuestion,
    QuizText,
)
from bot.content.render import PAGE_LIMIT, SCREEN_WORDS, paginate
from bot.languages import LANGUAGES
from bot.search import SearchIndex

# Screens made from content alone that `Library.made_once` keeps: every card, section page,
# quiz question and quiz result in both languages (a few thousand), and room for ticked steps.
MADE_ONCE_KEEP = 8192
T = TypeVar("T")

FIND_SHARE = 0.75  # inline sharing lists the methods that answer this much of the best one
PAGE_MARK_WORDS = 3  # "পাতা ২/৩" under a page of a longer section
SECTION_TEMPLATES = {s: f"section_{s}.j2" for s in SECTIONS}


@dataclass
class LanguagePack:
    """Everything in one language: its methods (in menu order), pages, quiz texts and UI strings."""

    language: str
    env: Environment
    methods: dict[str, Method]
    pages: dict[str, Page]
    quiz: QuizText
    ui: dict[str, Template]
    ui_source: dict[str, str] = field(repr=False)
    entries: dict[str, dict[str, Entry]] = field(default_factory=dict)  # by collection, then id


class Library:
    """Read-only access to loaded content; handlers get data here and render it with `render`."""

    def __init__(
        self,
        root: Path,
        packs: dict[str, LanguagePack],
        order: tuple[str, ...],
        quiz: tuple[QuizQuestion, ...],
        search: Callable[[], SearchIndex] | None = None,
        *,
        quiz_needs: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.root = root
        self.packs = packs
        self.method_ids = order
        self.quiz_questions = quiz
        self.quiz_needs = dict(quiz_needs or {})  # method id -> what its card says it needs
        self._build_search = search or (lambda: SearchIndex(()))
        self._search: SearchIndex | None = None
        self._search_lock = threading.Lock()
        self.warnings: list[str] = []
        self._fixed: dict[tuple[str, str], str] = {}
        self._made: dict[Hashable, Any] = {}

    @property
    def search(self) -> SearchIndex:
        """The free-text index, built on first use (the bot warms it up while starting)."""
        if self._search is None:
            with self._search_lock:
                if self._search is None:
                    self._search = self._build_search()
        return self._search

    def method(self, language: str, method_id: str) -> Method:
        return self.packs[language].methods[method_id]

    def has_method(self, method_id: str) -> bool:
        return method_id in self.method_ids

    def methods(self, language: str, kind: str = "all") -> list[Method]:
        return [m for m in self.packs[language].methods.values() if m.fits(kind)]

    def page(self, language: str, page_id: str) -> Page:
        return self.packs[language].pages[page_id]

    def entries(self, language: str, collection: str) -> list[Entry]:
        return list(self.packs[language].entries.get(collection, {}).values())

    def entry(self, language: str, collection: str, entry_id: str) -> Entry | None:
        return self.packs[language].entries.get(collection, {}).get(entry_id)

    def quiz_text(self, language: str) -> QuizText:
        return self.packs[language].quiz

    def t(self, language: str, key: str, **values: Any) -> str:
        """A UI string (button, prompt, error): values escaped, numbers in the language's digits."""
        if values:
            return self.packs[language].ui[key].render(**render.localize_numbers(language, values))
        fixed = self._fixed.get((language, key))
        if fixed is None:  # most strings (button labels) take no values: render each once
            fixed = self._fixed[language, key] = self.packs[language].ui[key].render()
        return fixed

    digits = staticmethod(render.digits)
    clock = staticmethod(render.clock)
    when = staticmethod(render.when)
    zone = staticmethod(render.zone)

    def render(self, language: str, template: str, **context: Any) -> str:
        return self.packs[language].env.get_template(template).render(**context).strip()

    def made_once(self, key: Hashable, make: Callable[[], T]) -> T:
        """What `make()` returns, made once per `key` (at most MADE_ONCE_KEEP kept).

        Content does not change while the bot runs, so a screen built from content alone is the
        same every time: the key names all it depends on, e.g. ("card", language, method id).
        Rendering a card took ~70 µs, a section's pages ~120 µs, a quiz result ~200 µs, against
        ~0.5 ms of CPU for a whole tap (docs/performance.md). What is returned is shared: never
        change it.
        """
        try:
            return self._made[key]
        except KeyError:
            pass
        made = make()
        if len(self._made) >= MADE_ONCE_KEEP:
            del self._made[next(iter(self._made))]  # the oldest
        self._made[key] = made
        return made

    def card(self, language: str, method_id: str) -> str:
        """A method's card (card.j2)."""
        return self.made_once(
            ("card", language, method_id),
            lambda: self.render(language, "card.j2", m=self.method(language, method_id)),
        )

    def section_pages(
        self, language: str, method_id: str, section: str, *, done: frozenset[int] = frozenset()
    ) -> tuple[str, ...]:
        """A method's section split into pages that each fit one message; `done`: the steps
        ticked off (section_steps.j2)."""

        def make() -> tuple[str, ...]:
            text = self.render(
                language, SECTION_TEMPLATES[section], m=self.method(language, method_id), done=done
            )
            # leave room for the "page 2/3" line the handler adds under a page
            return tuple(paginate(text, PAGE_LIMIT, words=SCREEN_WORDS - PAGE_MARK_WORDS))

        return self.made_once(("section", language, method_id, section, done), make)

    def tip_text(self, language: str, method_id: str, index: int) -> str:
        """Weekly tip number `index`; the last one closes the path."""
        method = self.method(language, method_id)
        last = index == len(method.tips) - 1
        return self.render(language, "tip.j2", m=method, index=index, last=last)

    def tip_count(self, method_id: str) -> int:
        return len(self.method(LANGUAGES[0], method_id).tips)

    def find(self, query: str, *, limit: int = 8) -> list[str]:
        """Method ids a free-text query is about, best first (for inline sharing): the methods
        whose card or section answers nearly as much of it as the best one does."""
        outcome = self.search.search(query)
        found: list[str] = []
        best = max(outcome.coverages, default=0.0)
        for target, coverage in zip(outcome.targets, outcome.coverages, strict=True):
            kind, _, rest = target.partition(":")
            method_id = rest.split(":")[0]
            if kind in ("card", "sec") and coverage >= FIND_SHARE * best and method_id not in found:
                found.append(method_id)
        return found[:limit]

    def has_target(self, target: str) -> bool:
        """Whether a `see` or search target names something that exists."""
        kind, _, rest = target.partition(":")
        if kind == "card":
            return self.has_method(rest)
        if kind == "page":
            return rest in PAGE_IDS
        if kind in COLLECTIONS:
            return self.entry(LANGUAGES[0], kind, rest) is not None
        return target == "quiz"
