"""The content library: methods, pages, quiz and UI strings per language, loaded and checked once.

Editors change files under `content/` (see content/README.md). At start-up everything is read,
every template is compiled and every screen of every method is rendered in every language and
checked against Telegram's rules, so a broken sentence is reported as `file:line: message`
before it can reach a user.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
import tomllib
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, TypeVar

from babel.dates import format_date, format_datetime, format_time, get_timezone_location
from babel.numbers import format_decimal
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    meta,
)
from markupsafe import Markup

from bot import callbacks
from bot.search import Document, SearchIndex
from bot.telegram_html import TelegramHTMLError, parse_html, utf16_len

LANGUAGES = ("bn", "en")
KINDS = ("active", "passive", "both")
PAGE_IDS = ("active_passive", "before_start", "safety", "getting_paid")
# Short answers to typed questions, one file each in <language>/answers/, and their word limits.
COLLECTIONS = {"faq": 80, "paid": 140, "scams": 140, "learn": 140}
ENTRY_ID_RE = re.compile(r"^[a-z][a-z0-9_]{1,19}$")
CHECKED_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
STALE_AFTER_MONTHS = 12
FIND_SHARE = 0.75  # inline sharing lists the methods that answer this much of the best one
SECTION_TEMPLATES = {s: f"section_{s}.j2" for s in callbacks.SECTIONS}
SECTION_KEYS = {  # the method file's key each section shows
    "what": "what_it_is",
    "steps": "first_steps",
    "platforms": "platforms",
    "mistakes": "mistakes",
    "tips": "tips",
}
MESSAGE_LIMIT = 4096
PAGE_LIMIT = 2000  # UTF-16 units on a page; longer sections get next/previous pages
SCREEN_WORDS = 160  # words on any screen: what a cheap phone shows without much scrolling
CARD_WORDS = 90  # a method card's first screen
PAGE_MARK_WORDS = 3  # "পাতা ২/৩" under a page of a longer section
# Screens made from content alone that `Library.made_once` keeps: every card, section page,
# quiz question and quiz result in both languages (a few thousand), and room for ticked steps.
MADE_ONCE_KEEP = 8192
T = TypeVar("T")
BUTTON_LIMIT = 32
SHORT_BUTTON_LIMIT = 24
_BN_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")
_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/\S*)?$")
_TAG_RE = re.compile(r"</?[A-Za-z][^>]*>")
_HEADER_RE = re.compile(r"^\s*\[\[?([^\]]+)\]?\]")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
# The house style (content/README.md): each rule finds the variant we decided against.
HOUSE_STYLE = (
    ("bn", re.compile(r"(?<!কিছু )একটা|প্রতিটা"), 'write "একটি", "প্রতিটি" ("কিছু একটা" is fine)'),
    ("bn", re.compile(r"কিভাবে"), 'write "কীভাবে"'),
    ("bn", re.compile(r"একটিভ"), 'write "অ্যাকটিভ"'),
    (
        "bn",
        re.compile(r"ফেসবুক|ইউটিউব|গুগল|পেপাল|পেপ্যাল|ফাইভার|ফাইবার|আপওয়ার্ক|পেওনিয়ার|দারাজ"),
        "write brand names in Latin script (Facebook, YouTube, Google…); Bangla spellings belong in keywords",
    ),
    ("bn", re.compile(r"[\u0980-\u09ff][.](?=\s|$)"), 'end a Bangla sentence with "।"'),
    ("*", re.compile(r"[“”‘’«»]"), 'use straight double quotes "…"'),
    (
        "*",
        re.compile(r"(?<![\w'])'[^'\s][^'\n]*[^'\s]'(?![\w'])"),
        'use double quotes "…" for a quotation',
    ),
)
# A figure a reader may rely on: money, a percentage.
_FIGURE_RE = re.compile(r"[$৳%]|[0-9০-৯]\s*(?:টাকা|ডলার|শতাংশ|dollars?|taka)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    url: str
    note: str


@dataclass(frozen=True, slots=True)
class Tip:
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Method:
    id: str
    title: str
    button: str
    emoji: str
    kind: str
    summary: str
    keywords: tuple[str, ...]
    what_it_is: str
    cost: str
    time_to_income: str
    skills: tuple[str, ...]
    first_steps: tuple[str, ...]
    mistakes: tuple[str, ...]
    platforms: tuple[Platform, ...]
    tips: tuple[Tip, ...]
    checked: str | None = None  # "YYYY-MM": when its figures were last verified

    def fits(self, kind: str) -> bool:
        """Whether the method belongs in the list of `kind` ('all', 'active' or 'passive')."""
        return kind == "all" or self.kind in (kind, "both")


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    title: str
    button: str
    emoji: str
    body: str
    keywords: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    see: tuple[str, ...] = ()  # buttons to what says more, as in Entry
    collection: str | None = None  # its entries are listed under the page as buttons
    checked: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A short answer to a question people type: a FAQ, a platform's payouts, a scam, a course."""

    collection: str
    id: str
    title: str
    button: str
    keywords: tuple[str, ...]
    body: str
    see: tuple[
        str, ...
    ]  # targets for "more" buttons: card:<id>, page:<id>, <collection>:<id>, quiz
    links: tuple[Link, ...]
    checked: str | None  # "YYYY-MM": when its numbers were last verified

    @property
    def target(self) -> str:
        return f"{self.collection}:{self.id}"


@dataclass(frozen=True, slots=True)
class QuizAnswer:
    id: str
    scores: Mapping[str, int]
    lacks: frozenset[str] = frozenset()  # what a person giving this answer does not have
    interest: tuple[str, ...] = ()  # methods this answer names as what the person wants to do


@dataclass(frozen=True, slots=True)
class QuizQuestion:
    id: str
    answers: tuple[QuizAnswer, ...]


@dataclass(frozen=True, slots=True)
class QuizText:
    title: str
    intro: str
    result_intro: str
    questions: Mapping[str, str]
    labels: Mapping[tuple[str, str], str]
    whys: Mapping[tuple[str, str], str]
    # (method id, need): why the method is not in the list of a person who lacks the need
    excluded: Mapping[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    line: int
    message: str

    def render(self, root: Path) -> str:
        try:
            shown = self.path.relative_to(root.parent)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}: {self.message}"


class ContentError(Exception):
    """The content has problems; `problems` lists all of them, not just the first."""

    def __init__(self, problems: list[Problem], root: Path, warnings: list[str] | None = None):
        self.problems = problems
        self.lines = [p.render(root) for p in problems]
        self.warnings = warnings or []
        super().__init__("\n".join(self.lines))


def to_bangla_digits(text: str) -> str:
    return text.translate(_BN_DIGITS)


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
            return self.packs[language].ui[key].render(**_localize_numbers(language, values))
        fixed = self._fixed.get((language, key))
        if fixed is None:  # most strings (button labels) take no values: render each once
            fixed = self._fixed[language, key] = self.packs[language].ui[key].render()
        return fixed

    @staticmethod
    def digits(language: str, value: object) -> str:
        """Bangla text uses Bangla digits; Babel and str() give Latin ones."""
        return to_bangla_digits(str(value)) if language == "bn" else str(value)

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

    # The parts of a Bangla day, from the hour each begins: a time is said with its part ("সকাল
    # ৯টা", "দুপুর ২টা", "বিকেল ৩টা", "সন্ধ্যা ৭টা", "রাত ১০টা", "ভোর ৫টা"), never with AM/PM.
    BN_DAY_PARTS = (
        (0, "রাত"),
        (4, "ভোর"),
        (6, "সকাল"),
        (12, "দুপুর"),
        (15, "বিকেল"),
        (18, "সন্ধ্যা"),
        (20, "রাত"),
    )
    BN_AT_HOUR = "\u09af\u09bc"  # "৯টা" → "৯টায়", "at nine"

    def when(self, language: str, moment: datetime, *, at: bool = False) -> str:
        """A date and time as people say them, in the moment's own time zone: "সোমবার, ৩০
        নভেম্বর, বিকেল ৩টা" ("… বিকেল ৩টায়" with `at`, for "at that time" in a sentence),
        "Monday, 30 November, 3:00 PM"."""
        day = self.digits(language, format_date(moment, format="EEEE, d MMMM", locale=language))
        return f"{day}, {self.clock(language, moment.hour, moment.minute, at=at)}"

    def clock(self, language: str, hour: int, minute: int = 0, *, at: bool = False) -> str:
        """A time of day as people say it: "সকাল ৯টা", "সন্ধ্যা ৭টা ৩০ মিনিট"; with `at`, the
        form for "at that time" ("সকাল ৯টায়", "সন্ধ্যা ৭টা ৩০ মিনিটে"). English: "9:00 AM"."""
        if language != "bn":
            return format_time(time(hour, minute), format="h:mm a", locale=language)
        part = next(name for start, name in reversed(self.BN_DAY_PARTS) if hour >= start)
        text = f"{part} {self.digits(language, hour % 12 or 12)}টা"
        if minute:
            return f"{text} {self.digits(language, minute)} মিনিট{'ে' if at else ''}"
        return f"{text}{self.BN_AT_HOUR if at else ''}"

    @staticmethod
    def zone(language: str, zone: tzinfo) -> str:
        """A time zone as readers call it: "বাংলাদেশ সময়", "Bangladesh time"."""
        if str(zone) in ("UTC", "Etc/UTC"):
            return "UTC"
        name = get_timezone_location(zone, locale=language)
        return name.removesuffix(" Time") + " time" if language == "en" else name

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


def paginate(text: str, limit: int = PAGE_LIMIT, *, words: int = SCREEN_WORDS) -> list[str]:
    """Split a screen into pages a phone shows whole: at most `words` words and `limit` UTF-16
    units each, split between whole items, each page under the screen's heading.

    The first paragraph is the heading; every later paragraph is an item, and so is every line
    of a paragraph too long for one page (a long checklist). A last page with a single item
    takes one from the page before it, so no tip stands alone at the end. Templates keep each
    HTML tag on one line, so a split never cuts a tag.
    """
    if _fits(text, limit, words):
        return [text]
    heading, _, rest = text.partition("\n\n")
    items = [item for block in rest.split("\n\n") for item in _items(block, limit, words)]
    pages: list[list[tuple[str, str]]] = [[]]
    for item in items:
        if pages[-1] and not _fits(_page(heading, [*pages[-1], item]), limit, words):
            pages.append([])
        pages[-1].append(item)
    if len(pages) > 1 and len(pages[-1]) == 1 and len(pages[-2]) > 1:
        moved = [pages[-2][-1], *pages[-1]]
        if _fits(_page(heading, moved), limit, words):
            pages[-2:] = [pages[-2][:-1], moved]
    return [_page(heading, page) for page in pages]


def screen_words(text: str) -> int:
    """Words a reader sees on a screen: HTML tags, emoji and bullets are not words."""
    return sum(1 for w in _TAG_RE.sub(" ", text).split() if any(c.isalnum() for c in w))


def _fits(text: str, limit: int, words: int) -> bool:
    return utf16_len(text) <= limit and screen_words(text) <= words


def _items(block: str, limit: int, words: int) -> list[tuple[str, str]]:
    """(text, what joins it to the item before): a paragraph, or the lines of a long one."""
    if _fits(block, limit, words) or "\n" not in block:
        return [(block, "\n\n")]
    first, *others = block.split("\n")
    return [(first, "\n\n"), *((line, "\n") for line in others)]


def _page(heading: str, items: list[tuple[str, str]]) -> str:
    return heading + "".join(
        ("\n\n" if i == 0 else joiner) + text for i, (text, joiner) in enumerate(items)
    )


# ---------------------------------------------------------------- loading and checking


class _Collector:
    """Gathers problems with line numbers found by searching the file's text."""

    def __init__(self, today: date) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.today = today
        self._texts: dict[Path, list[str]] = {}
        self._index: dict[Path, tuple[dict[str, list[int]], dict[str, list[int]]]] = {}

    def read_toml(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            self.add(path, 1, "file is missing")
            return None
        text = path.read_text(encoding="utf-8")
        self._texts[path] = text.splitlines()
        self._index.pop(path, None)
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"line (\d+)", str(exc))
            self.add(path, int(match.group(1)) if match else 1, f"not valid TOML: {exc}")
            return None

    def line(self, path: Path, key: str, *, table: str | None = None, nth: int = 0) -> int:
        """The line of `key = ...`, inside the nth `[[table]]` when given; 1 when not found."""
        headers, keys = self._lines_of(path)
        start = 0
        if table is not None:
            starts = headers.get(table, [])
            if nth < len(starts):
                start = starts[nth]
        return next((i + 1 for i in keys.get(key, []) if i >= start), start + 1)

    def _lines_of(self, path: Path) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Where each table header and each `key =` stands in a file (0-based), read once."""
        if path not in self._index:
            headers: dict[str, list[int]] = {}
            keys: dict[str, list[int]] = {}
            for i, line in enumerate(self._texts.get(path, [])):
                if found := _HEADER_RE.match(line):
                    headers.setdefault(found.group(1).strip(), []).append(i)
                elif found := _KEY_RE.match(line):
                    keys.setdefault(found.group(1), []).append(i)
            self._index[path] = (headers, keys)
        return self._index[path]

    def add(self, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message))

    def warn(self, path: Path, line: int, message: str) -> None:
        """Not wrong enough to stop the bot, but an editor should look: style, stale facts."""
        self.warnings.append(Problem(path, line, f"warning: {message}"))

    def style(self, path: Path, line: Callable[[], int], key: str, text: str) -> None:
        """Warn about every house-style rule the text breaks (`line` is found only then)."""
        language = path.parent.name if path.parent.name in LANGUAGES else path.parent.parent.name
        for rule_language, pattern, advice in HOUSE_STYLE:
            if rule_language in (language, "*") and (found := pattern.search(text)):
                self.warn(path, line(), f"{key}: {found.group(0)!r}: {advice}")

    def checked(self, path: Path, line: int, value: object) -> str | None:
        """A `checked = "YYYY-MM"` month; a warning once it is over a year old."""
        if value is None:
            return None
        match = CHECKED_RE.match(value) if isinstance(value, str) else None
        if match is None:
            self.add(path, line, f'checked: {value!r} must be a month like "2026-12"')
            return None
        months = (self.today.year - int(match[1])) * 12 + self.today.month - int(match[2])
        if months > STALE_AFTER_MONTHS:
            self.warn(
                path,
                line,
                f"checked {value}: over {STALE_AFTER_MONTHS} months ago, verify the figures again",
            )
        return str(value)


class _FieldReader:
    """Typed access to one TOML table that records a problem for every missing or wrong field."""

    def __init__(
        self,
        col: _Collector,
        path: Path,
        data: Mapping[str, Any],
        *,
        table: str | None = None,
        nth: int = 0,
    ):
        self.col, self.path, self.data, self.table, self.nth = col, path, data, table, nth
        self.ok = True

    def _problem(self, key: str, message: str) -> None:
        self.ok = False
        self.col.add(
            self.path,
            self.col.line(self.path, key, table=self.table, nth=self.nth),
            f"{key}: {message}",
        )

    def text(self, key: str, *, limit: int | None = None, units: bool = True) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip():
            self._problem(key, "must be non-empty text")
            return ""
        value = value.strip()
        size = utf16_len(value) if units else len(value)
        if limit is not None and size > limit:
            self._problem(key, f"is {size} characters long, at most {limit} allowed")
        if _TAG_RE.search(value):
            self._problem(
                key, "has an HTML tag; write plain text (layout comes from the templates)"
            )
        self._style(key, value)
        return value

    def _style(self, key: str, value: str) -> None:
        self.col.style(
            self.path,
            lambda: self.col.line(self.path, key, table=self.table, nth=self.nth),
            key,
            value,
        )

    def links(self) -> tuple[Link, ...]:
        value = self.data.get("links", [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self._problem("links", 'must be a list like [{ name = "…", url = "https://…" }]')
            return ()
        links = []
        for item in value:
            name, url = item.get("name"), item.get("url")
            if not isinstance(name, str) or not name.strip() or len(name) > 40:
                self._problem("links", f"link name {name!r} must be text of at most 40 characters")
            elif (
                not isinstance(url, str) or not url.startswith("https://") or not _URL_RE.match(url)
            ):
                self._problem("links", f"{url!r} is not an https link")
            else:
                links.append(Link(name.strip(), url))
        return tuple(links)

    def texts(self, key: str, *, low: int, high: int, limit: int | None = None) -> tuple[str, ...]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self._problem(key, "must be a list of non-empty texts")
            return ()
        if not low <= len(value) <= high:
            self._problem(key, f"has {len(value)} items, {low} to {high} expected")
        for item in value:
            if limit is not None and utf16_len(item) > limit:
                self._problem(
                    key,
                    f"item {item[:30]!r}… is {utf16_len(item)} characters long, at most {limit}",
                )
            if _TAG_RE.search(item):
                self._problem(key, f"item {item[:30]!r}… has an HTML tag; write plain text")
            if key != "keywords":
                self._style(key, item)
        return tuple(v.strip() for v in value)

    def tables(self, key: str) -> list[Mapping[str, Any]]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self._problem(key, f"must be a list of [[{key}]] tables")
            return []
        return value

    def targets(self) -> tuple[str, ...]:
        """`see`: up to three buttons to what says more (checked once everything is loaded)."""
        see = self.data.get("see", [])
        if not isinstance(see, list) or len(see) > 3 or not all(isinstance(t, str) for t in see):
            self._problem("see", "must be a list of at most 3 targets")
            return ()
        return tuple(see)

    def figures_checked(self, key: str, text: str) -> None:
        """Money and percentages need the month they were verified (`checked`)."""
        if "checked" not in self.data and (found := _FIGURE_RE.search(text)):
            line = self.col.line(self.path, key, table=self.table, nth=self.nth)
            self.col.warn(
                self.path, line, f'{key}: states {found.group(0)!r}; add checked = "YYYY-MM"'
            )

    def checked(self) -> str | None:
        line = self.col.line(self.path, "checked", table=self.table, nth=self.nth)
        return self.col.checked(self.path, line, self.data.get("checked"))

    def unknown(self, allowed: Iterable[str]) -> None:
        for key in sorted(set(self.data) - set(allowed)):
            self._problem(key, "unknown key (a typo?)")


_METHOD_KEYS = (
    "title", "button", "emoji", "kind", "summary", "keywords", "what_it_is", "cost",
    "time_to_income", "skills", "first_steps", "mistakes", "platforms", "tips", "checked",
)  # fmt: skip


def _lowercase_keywords(r: _FieldReader) -> tuple[str, ...]:
    keywords = r.texts("keywords", low=1, high=40)
    for word in keywords:
        if word != word.lower():
            r._problem("keywords", f"{word!r} must be lowercase")
    return keywords


def _read_method(col: _Collector, path: Path) -> Method | None:
    data = col.read_toml(path)
    if data is None:
        return None
    method_id = path.stem
    r = _FieldReader(col, path, data)
    r.unknown(_METHOD_KEYS)
    if not callbacks.METHOD_ID_RE.match(method_id):
        col.add(path, 1, "file name must be a short id of a-z, 0-9 and _ (2-16 characters)")
    kind = r.text("kind")
    if kind and kind not in KINDS:
        r._problem("kind", f"must be one of {', '.join(KINDS)}")
    keywords = _lowercase_keywords(r)
    platforms = []
    for i, item in enumerate(r.tables("platforms")):
        p = _FieldReader(col, path, item, table="platforms", nth=i)
        p.unknown(("name", "url", "note"))
        platform = Platform(p.text("name", limit=40), p.text("url"), p.text("note", limit=200))
        if platform.url and not _URL_RE.match(platform.url):
            p._problem("url", f"{platform.url!r} is not a valid http(s) link")
        r.ok &= p.ok
        platforms.append(platform)
    if not 2 <= len(platforms) <= 6:
        r._problem("platforms", f"has {len(platforms)} platforms, 2 to 6 expected")
    tips = []
    for i, item in enumerate(r.tables("tips")):
        t = _FieldReader(col, path, item, table="tips", nth=i)
        t.unknown(("title", "text"))
        tips.append(Tip(t.text("title", limit=80), t.text("text", limit=600)))
        r.ok &= t.ok
    if len(tips) < 12:
        r._problem("tips", f"has {len(tips)} tips, at least 12 expected (three months of weeks)")
    method = Method(
        id=method_id,
        title=r.text("title", limit=80),
        button=r.text("button", limit=SHORT_BUTTON_LIMIT),
        emoji=r.text("emoji", limit=8),
        kind=kind,
        summary=r.text("summary", limit=300),
        keywords=keywords,
        what_it_is=r.text("what_it_is", limit=1500),
        cost=r.text("cost", limit=300),
        time_to_income=r.text("time_to_income", limit=300),
        skills=r.texts("skills", low=3, high=6, limit=80),
        first_steps=r.texts("first_steps", low=4, high=8, limit=120),
        mistakes=r.texts("mistakes", low=4, high=6, limit=300),
        platforms=tuple(platforms),
        tips=tuple(tips),
        checked=r.checked(),
    )
    for key in ("what_it_is", "cost", "time_to_income"):
        r.figures_checked(key, getattr(method, key))
    return method if r.ok else None


def _read_pages(col: _Collector, path: Path) -> dict[str, Page]:
    data = col.read_toml(path) or {}
    pages = {}
    for page_id in PAGE_IDS:
        table = data.get(page_id)
        if not isinstance(table, dict):
            col.add(path, 1, f"[{page_id}] page is missing")
            continue
        r = _FieldReader(col, path, table, table=page_id)
        r.unknown(
            (
                "title",
                "button",
                "emoji",
                "body",
                "keywords",
                "links",
                "see",
                "collection",
                "checked",
            )
        )
        collection = table.get("collection")
        if collection is not None and collection not in COLLECTIONS:
            r._problem("collection", f"must be one of {', '.join(COLLECTIONS)}")
        page = Page(
            page_id,
            r.text("title", limit=80),
            r.text("button", limit=SHORT_BUTTON_LIMIT),
            r.text("emoji", limit=8),
            r.text("body", limit=PAGE_LIMIT),
            keywords=r.texts("keywords", low=1, high=40) if "keywords" in table else (),
            links=r.links(),
            see=r.targets(),
            collection=collection,
            checked=r.checked(),
        )
        r.figures_checked("body", page.body)
        if r.ok:
            pages[page_id] = page
    for extra in sorted(set(data) - set(PAGE_IDS)):
        col.add(path, col.line(path, extra, table=extra), f"[{extra}] is not a known page")
    return pages


def _read_entries(col: _Collector, path: Path, collection: str) -> dict[str, Entry]:
    """One answers file: a table per entry, in the order lists show them."""
    data = col.read_toml(path) or {}
    entries = {}
    for entry_id, table in data.items():
        if not isinstance(table, dict):
            col.add(path, col.line(path, entry_id), f"{entry_id}: must be a [{entry_id}] table")
            continue
        r = _FieldReader(col, path, table, table=entry_id)
        if not ENTRY_ID_RE.match(entry_id):
            r._problem("title", f"[{entry_id}]: ids are a-z, 0-9 and _, 2 to 20 characters")
        r.unknown(("title", "button", "keywords", "body", "see", "links", "checked"))
        body = r.text("body", limit=PAGE_LIMIT)
        if (words := len(body.split())) > COLLECTIONS[collection]:
            r._problem(
                "body", f"has {words} words, at most {COLLECTIONS[collection]} on a phone screen"
            )
        entry = Entry(
            collection=collection,
            id=entry_id,
            title=r.text("title", limit=120),
            button=r.text("button", limit=SHORT_BUTTON_LIMIT),
            keywords=_lowercase_keywords(r),
            body=body,
            see=r.targets(),
            links=r.links(),
            checked=r.checked(),
        )
        r.figures_checked("body", body)
        if r.ok:
            entries[entry_id] = entry
    return entries


QUIZ_TOP = 3  # the quiz recommends this many methods
QUIZ_FITS = 2  # an answer giving a method this many points is a reason it fits
_QUIZ_WORD_RE = re.compile(r"^[a-z][a-z0-9_]{1,19}$")


def _quiz_words(col: _Collector, path: Path, value: object, line: int, key: str) -> list[str]:
    """`needs`, `lacks`, `interest`: a list of short lowercase words (ids)."""
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _QUIZ_WORD_RE.match(v) for v in value
    ):
        col.add(path, line, f'{key}: must be a list of short lowercase words, like ["computer"]')
        return []
    return list(dict.fromkeys(value))


def _read_quiz_needs(
    col: _Collector, path: Path, table: object, method_ids: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """[needs]: what each method's card says it needs (a computer, money, time)."""
    if not isinstance(table, dict):
        message = '[needs]: must be a table: freelancing = ["computer"]'
        col.add(path, col.line(path, "needs"), message)
        return {}
    needs = {}
    for method_id, value in table.items():
        line = col.line(path, method_id, table="needs")
        if method_id not in method_ids:
            col.add(path, line, f"needs: {method_id!r} is not a method in content/methods.toml")
            continue
        needs[method_id] = tuple(_quiz_words(col, path, value, line, f"needs.{method_id}"))
    return needs


def _read_quiz_scores(
    col: _Collector, path: Path, method_ids: tuple[str, ...]
) -> tuple[tuple[QuizQuestion, ...], dict[str, tuple[str, ...]]]:
    data = col.read_toml(path) or {}
    declared = data.get("needs", {})
    needs = _read_quiz_needs(col, path, declared, method_ids)
    # what `lacks` may name: every need in [needs], also under a method id that is wrong there
    needed = {
        need
        for wanted in (declared.values() if isinstance(declared, dict) else ())
        if isinstance(wanted, list)
        for need in wanted
    }
    lacked: set[str] = set()
    questions = []
    answer_index = 0
    for q in data.get("questions", []):
        answers = []
        for a in q.get("answers", []):
            nth = answer_index
            answer_index += 1
            answer_id = str(a.get("id"))
            scores = a.get("scores", {})
            line = col.line(path, "scores", table="questions.answers", nth=nth)
            missing = sorted(set(method_ids) - set(scores))
            extra = sorted(set(scores) - set(method_ids))
            if missing or extra:
                col.add(
                    path,
                    line,
                    f"scores of answer {answer_id!r}: missing {missing}, unknown {extra}",
                )
            if not all(isinstance(v, int) and 0 <= v <= 3 for v in scores.values()):
                col.add(path, line, f"scores of answer {answer_id!r} must be whole numbers 0 to 3")
            for key in sorted(set(a) - {"id", "scores", "lacks", "interest"}):
                col.add(
                    path,
                    col.line(path, key, table="questions.answers", nth=nth),
                    f"{key}: unknown key in answer {answer_id!r} (a typo?)",
                )
            lacks_line = col.line(path, "lacks", table="questions.answers", nth=nth)
            lacks = _quiz_words(col, path, a.get("lacks", []), lacks_line, "lacks")
            for need in lacks:
                if need not in needed:
                    col.add(path, lacks_line, f"lacks: no method needs {need!r} (see [needs])")
            lacked.update(lacks)
            interest_line = col.line(path, "interest", table="questions.answers", nth=nth)
            interest = _quiz_words(col, path, a.get("interest", []), interest_line, "interest")
            for method_id in interest:
                points = scores.get(method_id, 0)
                if method_id not in method_ids:
                    col.add(path, interest_line, f"interest: {method_id!r} is not a method")
                    continue
                if set(needs.get(method_id, ())) & set(lacks):
                    col.add(
                        path,
                        interest_line,
                        f"interest: {method_id!r} needs what answer {answer_id!r} lacks",
                    )
                if not isinstance(points, int) or points < QUIZ_FITS:
                    col.add(
                        path,
                        interest_line,
                        f"interest: answer {answer_id!r} gives {method_id!r} {points} points; "
                        f"an interest gets {QUIZ_FITS} or 3",
                    )
            answers.append(QuizAnswer(answer_id, dict(scores), frozenset(lacks), tuple(interest)))
        if not 2 <= len(answers) <= 9:
            col.add(
                path,
                col.line(path, "id", table="questions"),
                f"question {q.get('id')!r} needs 2 to 9 answers",
            )
        questions.append(QuizQuestion(str(q.get("id")), tuple(answers)))
    if not 3 <= len(questions) <= 8:
        col.add(path, 1, f"the quiz has {len(questions)} questions, 3 to 8 expected")
    for method_id, wanted in needs.items():
        for need in wanted:
            if need not in lacked:
                col.warn(
                    path,
                    col.line(path, method_id, table="needs"),
                    f"needs.{method_id}: no answer lacks {need!r}, so it never rules anything out",
                )
    _check_quiz_combinations(col, path, tuple(questions), needs, method_ids)
    return tuple(questions), needs


def _check_quiz_combinations(
    col: _Collector,
    path: Path,
    questions: tuple[QuizQuestion, ...],
    needs: Mapping[str, tuple[str, ...]],
    method_ids: tuple[str, ...],
) -> None:
    """Whatever someone answers, enough methods are left to recommend, interests included."""
    # Only what an answer lacks and names as an interest matters here: one answer of each kind.
    kinds = [
        list({(a.lacks, a.interest): a for a in q.answers}.values()) for q in questions if q.answers
    ]
    for combination in itertools.product(*kinds):
        lacks = frozenset().union(*(a.lacks for a in combination))
        left = [m for m in method_ids if not set(needs.get(m, ())) & lacks]
        wanted = {m for a in combination for m in a.interest if m in left}
        shown = ", ".join(
            f"{q.id} = {a.id!r}" for q, a in zip(questions, combination, strict=False)
        )
        if len(left) < QUIZ_TOP:
            col.add(
                path,
                col.line(path, next(iter(needs), "needs"), table="needs"),
                f"[needs]: answers like {shown} leave too few methods ({len(left)}); "
                f"at least {QUIZ_TOP} must be left",
            )
            return
        if len(wanted) > QUIZ_TOP:
            col.add(
                path,
                1,
                f"answers like {shown} name {len(wanted)} interests; at most {QUIZ_TOP} fit",
            )
            return


def _read_quiz_text(
    col: _Collector,
    path: Path,
    questions: tuple[QuizQuestion, ...],
    needs: Mapping[str, tuple[str, ...]],
) -> QuizText:
    data = col.read_toml(path) or {}
    r = _FieldReader(col, path, data)
    r.unknown(("title", "intro", "result_intro", "questions", "excluded"))
    texts, labels, whys = {}, {}, {}
    table = data.get("questions", {})
    seen: dict[str, str] = {}
    for q in questions:
        entry = table.get(q.id, {})
        qr = _FieldReader(col, path, entry, table=f"questions.{q.id}")
        texts[q.id] = qr.text("text", limit=300)
        for a in q.answers:
            where = f"questions.{q.id}.answers.{a.id}"
            ar = _FieldReader(col, path, entry.get("answers", {}).get(a.id, {}), table=where)
            labels[q.id, a.id] = ar.text("label", limit=SHORT_BUTTON_LIMIT)
            why = whys[q.id, a.id] = ar.text("why", limit=120)
            if why and why in seen:
                ar._problem("why", f"the same as [{seen[why]}]; each answer needs its own reason")
            seen.setdefault(why, where)
    for extra in sorted(set(table) - {q.id for q in questions}):
        col.add(
            path,
            col.line(path, "text", table=f"questions.{extra}"),
            f"question {extra!r} is not in content/quiz.toml",
        )
    excluded = {}
    lines = data.get("excluded", {})
    for method_id, wanted in needs.items():
        er = _FieldReader(col, path, lines.get(method_id, {}), table=f"excluded.{method_id}")
        for need in wanted:
            excluded[method_id, need] = er.text(need, limit=200)
    for method_id, entry in lines.items() if isinstance(lines, dict) else ():
        for need in sorted(set(entry) - set(needs.get(method_id, ()))):
            col.add(
                path,
                col.line(path, need, table=f"excluded.{method_id}"),
                f"excluded.{method_id}.{need}: content/quiz.toml has no such need for {method_id!r}",
            )
    return QuizText(
        r.text("title", limit=80),
        r.text("intro", limit=500),
        r.text("result_intro", limit=200),
        texts,
        labels,
        whys,
        excluded,
    )


def _check_quiz(col: _Collector, root: Path, library: Library) -> None:
    """Render the quiz's screens in every language and check them as Telegram would."""
    questions = library.quiz_questions
    answers = "8" * len(questions)
    for data in (callbacks.quiz(answers), callbacks.share_quiz_image(answers)):
        if not callbacks.fits(data):
            col.add(
                root / "quiz.toml", 1, f"button data {data!r} is over {callbacks.MAX_BYTES} bytes"
            )
    for language, pack in library.packs.items():
        path = root / language / "quiz.toml"
        quiz = pack.quiz
        whys = [w for w in quiz.whys.values() if w] or [_SAMPLE]
        picks = [
            {"method": pack.methods[m], "why": whys[0], "also": whys[-1]}
            for m in library.method_ids[:QUIZ_TOP]
            if m in pack.methods
        ]
        screens = [
            (
                col.line(path, "text", table=f"questions.{q.id}"),
                f"question {q.id}",
                "quiz_question.j2",
                {
                    "quiz": quiz,
                    "first": n == 0,
                    "n": n + 1,
                    "total": len(questions),
                    "text": quiz.questions.get(q.id, ""),
                },
            )
            for n, q in enumerate(questions)
        ]
        excluded = list(quiz.excluded.values())
        screens.append(
            (1, "result", "quiz_result.j2", {"quiz": quiz, "picks": picks, "excluded": excluded})
        )
        for line, what, template, context in screens:
            try:
                text = library.render(language, template, **context)
            except TemplateError as exc:
                col.add(root / "templates" / template, 1, f"{what} ({language}): {exc}")
                continue
            try:
                plain = parse_html(text).plain
            except TelegramHTMLError as exc:
                col.add(path, line, f"{what}: Telegram would refuse it: {exc}")
                continue
            if utf16_len(plain) > MESSAGE_LIMIT:
                col.add(
                    path, line, f"{what}: {utf16_len(plain)} characters, at most {MESSAGE_LIMIT}"
                )


def _make_env(root: Path, language: str) -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(root / language / "templates"), FileSystemLoader(root / "templates")]
        ),
        autoescape=True,
        auto_reload=False,  # content is loaded and checked once; no file checks per render
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )

    def localize(text: str) -> str:
        return Library.digits(language, text)

    env.filters["digits"] = lambda value: localize(str(value))
    env.filters["number"] = lambda value: localize(format_decimal(value, locale=language))
    env.filters["month"] = lambda value: localize(
        format_date(date(int(value[:4]), int(value[5:7]), 1), format="MMMM y", locale=language)
    )
    env.filters["date"] = lambda value: localize(
        format_date(value, format="long", locale=language)
        if isinstance(value, date)
        else str(value)
    )
    env.filters["datetime"] = lambda value, fmt="d MMMM, h:mm a": localize(
        format_datetime(value, format=fmt, locale=language)
        if isinstance(value, datetime)
        else str(value)
    )
    return env


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _ui_line(col: _Collector, path: Path, key: str) -> int:
    """The line of a UI string; `group.help` is looked up under its [group] table."""
    table, _, name = key.rpartition(".")
    return col.line(path, name, table=table or None)


def _read_ui(
    col: _Collector, path: Path, env: Environment
) -> tuple[dict[str, Template], dict[str, str]]:
    data = col.read_toml(path) or {}
    compiled: dict[str, Template] = {}
    sources: dict[str, str] = {}
    for key, value in _flatten(data).items():
        line = _ui_line(col, path, key)
        if not isinstance(value, str) or not value.strip():
            col.add(path, line, f"{key}: must be non-empty text")
            continue
        col.style(path, functools.partial(int, line), key, value)
        try:
            compiled[key] = env.from_string(value.strip())
            sources[key] = value.strip()
        except TemplateSyntaxError as exc:
            col.add(path, line, f"{key}: template error: {exc.message}")
    return compiled, sources


def _localize_numbers(language: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: Library.digits(language, v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in values.items()
    }


def _ui_function(language: str, ui: Mapping[str, Template]) -> Any:
    """`ui("key", n=1)` inside templates: UI strings are trusted markup, their values are escaped."""

    def ui_text(key: str, **values: Any) -> Markup:
        return Markup(ui[key].render(**_localize_numbers(language, values)))

    return ui_text


def load_library(root: Path, *, today: date | None = None) -> Library:
    """Load and check all content under `root`; raise ContentError listing every problem.

    Warnings (house style, figures checked over a year ago) do not stop loading: they are in
    `Library.warnings` for `ayerpoth content check` to print.
    """
    col = _Collector(today or date.today())
    order_path = root / "methods.toml"
    order_data = col.read_toml(order_path) or {}
    order = tuple(order_data.get("order", []))
    if not order:
        col.add(order_path, 1, "order: list the method ids in menu order")
    quiz, quiz_needs = _read_quiz_scores(col, root / "quiz.toml", order)
    packs: dict[str, LanguagePack] = {}
    for language in LANGUAGES:
        base = root / language
        env = _make_env(root, language)
        methods: dict[str, Method] = {}
        files = {p.stem: p for p in sorted((base / "methods").glob("*.toml"))}
        for method_id in order:
            if method_id not in files:
                col.add(
                    order_path,
                    col.line(order_path, "order"),
                    f"{language}/methods/{method_id}.toml is missing",
                )
        for method_id, path in files.items():
            if method_id not in order:
                col.add(path, 1, f"method {method_id!r} is not listed in content/methods.toml")
                continue
            method = _read_method(col, path)
            if method is not None:
                methods[method_id] = method
        ui, ui_source = _read_ui(col, base / "ui.toml", env)
        env.globals["ui"] = _ui_function(language, ui)
        packs[language] = LanguagePack(
            language=language,
            env=env,
            methods={mid: methods[mid] for mid in order if mid in methods},
            pages=_read_pages(col, base / "pages.toml"),
            quiz=_read_quiz_text(col, base / "quiz.toml", quiz, quiz_needs),
            ui=ui,
            ui_source=ui_source,
            entries={
                name: _read_entries(col, base / "answers" / f"{name}.toml", name)
                for name in COLLECTIONS
            },
        )
    if not col.problems:
        _compare_languages(col, root, packs)
    library = Library(
        root, packs, order, quiz, _read_search(col, root, packs, order), quiz_needs=quiz_needs
    )
    _check_targets(col, root, library)
    _check_rendering(col, root, library)
    _check_quiz(col, root, library)
    warnings = [w.render(root) for w in col.warnings]
    if col.problems:
        raise ContentError(col.problems, root, warnings)
    library.warnings = warnings
    return library


def check_content(root: Path, *, today: date | None = None) -> list[str]:
    """All problems as `file:line: message` lines (empty when the content is fine)."""
    try:
        load_library(root, today=today)
    except ContentError as exc:
        return exc.lines
    return []


def source_line(root: Path, file: str, key: str, *, table: str | None = None, nth: int = 0) -> int:
    """The line of `key` in a content file (a UI string's dotted key in ui.toml, or a key in
    the nth `[[table]]`), for checks made after loading, such as the picture cards'."""
    col = _Collector(date.today())
    path = root / file
    col.read_toml(path)
    if path.name == "ui.toml":
        return _ui_line(col, path, key)
    return col.line(path, key, table=table, nth=nth)


def search_documents(
    packs: Mapping[str, LanguagePack],
    order: Iterable[str],
    collection_keywords: Mapping[str, Iterable[str]] | None = None,
) -> list[Document]:
    """Every topic a question can be answered with, each language's text in one document."""
    shared = {name: tuple(words) for name, words in (collection_keywords or {}).items()}
    docs: dict[str, list[tuple[str, str, str]]] = {}

    def add(target: str, title: str, keywords: Iterable[str], *body: str) -> None:
        docs.setdefault(target, []).append((title, " ".join(keywords), "\n".join(body)))

    for pack in packs.values():
        for method_id in order:
            m = pack.methods.get(method_id)
            if m is None:  # it failed to load; the problem is already reported
                continue
            keywords = (*m.keywords, *shared.get("methods", ()))
            add(f"card:{m.id}", f"{m.title} {m.button} {m.id}", keywords, m.summary, m.cost,
                m.time_to_income, *m.skills)  # fmt: skip
            sections = {
                "what": (m.what_it_is,),
                "steps": m.first_steps,
                "platforms": tuple(f"{p.name} {p.note}" for p in m.platforms),
                "mistakes": m.mistakes,
                "tips": tuple(f"{t.title} {t.text}" for t in m.tips),
            }
            for section, texts in sections.items():
                add(f"sec:{m.id}:{section}", m.button, (), *texts)
        for page in pack.pages.values():
            keywords = (*page.keywords, *shared.get(page.collection or "", ()))
            add(f"page:{page.id}", f"{page.title} {page.button}", keywords, page.body)
        for name, entries in pack.entries.items():
            for e in entries.values():
                add(e.target, f"{e.title} {e.button}", (*e.keywords, *shared.get(name, ())), e.body)
    return [
        Document(target, *(" ".join(part) for part in zip(*texts, strict=True)))
        for target, texts in docs.items()
    ]


def _read_search(
    col: _Collector, root: Path, packs: Mapping[str, LanguagePack], order: Iterable[str]
) -> Callable[[], SearchIndex]:
    """Check search.toml now; the index itself is built on first use (a quarter of a second)."""
    path = root / "search.toml"
    data = col.read_toml(path) or {}
    collections = data.get("collections", {})
    if not isinstance(collections, dict) or set(collections) - {*COLLECTIONS, "methods"}:
        col.add(
            path,
            col.line(path, "collections"),
            f"[collections]: only {', '.join(COLLECTIONS)} and methods",
        )
        collections = {}
    synonyms = data.get("synonyms", [])
    if not isinstance(synonyms, list) or not all(
        isinstance(g, list) and all(isinstance(w, str) for w in g) for g in synonyms
    ):
        col.add(path, col.line(path, "synonyms"), "synonyms: must be a list of lists of words")
        synonyms = []
    smalltalk = data.get("smalltalk", {})
    if not isinstance(smalltalk, dict) or not all(
        isinstance(v, list) and all(isinstance(w, str) for w in v) for v in smalltalk.values()
    ):
        col.add(path, 1, "[smalltalk]: each kind must be a list of words")
        smalltalk = {}
    lists = {
        key: _word_list(col, path, data, key) for key in ("stop_words", "weak_words", "platforms")
    }
    return functools.partial(
        SearchIndex,
        search_documents(packs, order, collections),
        smalltalk=smalltalk,
        synonyms=synonyms,
        **lists,
    )


def _word_list(col: _Collector, path: Path, data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        col.add(path, col.line(path, key), f"{key}: must be a list of words")
        return []
    return value


def _check_targets(col: _Collector, root: Path, library: Library) -> None:
    """Every `see` button must lead somewhere, in every language."""
    for language, pack in library.packs.items():
        pages_path = root / language / "pages.toml"
        for page in pack.pages.values():
            for target in page.see:
                if not library.has_target(target):
                    line = col.line(pages_path, "see", table=page.id)
                    col.add(pages_path, line, f"see: {target!r} does not exist")
        for name, entries in pack.entries.items():
            path = root / language / "answers" / f"{name}.toml"
            for e in entries.values():
                for target in e.see:
                    if not library.has_target(target):
                        col.add(
                            path,
                            col.line(path, "see", table=e.id),
                            f"see: {target!r} does not exist",
                        )


def _compare_languages(col: _Collector, root: Path, packs: Mapping[str, LanguagePack]) -> None:
    """Bangla is the reference: every other language must have the same shape."""
    ref = packs[LANGUAGES[0]]
    for language in LANGUAGES[1:]:
        other = packs[language]
        for method_id, m in ref.methods.items():
            o = other.methods[method_id]
            path = root / language / "methods" / f"{method_id}.toml"
            for name in ("skills", "first_steps", "mistakes", "platforms", "tips"):
                if len(getattr(m, name)) != len(getattr(o, name)):
                    col.add(
                        path,
                        col.line(path, name),
                        f"{name}: {len(getattr(o, name))} items, but {len(getattr(m, name))} in {ref.language}",
                    )
            if m.kind != o.kind:
                col.add(
                    path,
                    col.line(path, "kind"),
                    f"kind: {o.kind!r}, but {m.kind!r} in {ref.language}",
                )
            if [p.url for p in m.platforms] != [p.url for p in o.platforms]:
                col.add(
                    path,
                    col.line(path, "url", table="platforms"),
                    f"platform links differ from {ref.language}",
                )
        _compare_entries(col, root, ref, other)
        pages_path = root / language / "pages.toml"
        for page_id, page in ref.pages.items():
            o_page = other.pages.get(page_id)
            if o_page is not None and (
                [x.url for x in page.links] != [x.url for x in o_page.links]
                or (page.collection, page.see) != (o_page.collection, o_page.see)
            ):
                col.add(
                    pages_path,
                    col.line(pages_path, "title", table=page_id),
                    f"[{page_id}]: links, see and collection must be the same as in {ref.language}",
                )
        ui_path = root / language / "ui.toml"
        for key in sorted(set(ref.ui_source) - set(other.ui_source)):
            col.add(ui_path, 1, f"{key}: missing (it is in {ref.language}/ui.toml)")
        for key in sorted(set(other.ui_source) - set(ref.ui_source)):
            col.add(
                ui_path,
                _ui_line(col, ui_path, key),
                f"{key}: not in {ref.language}/ui.toml",
            )
        for key in sorted(set(ref.ui_source) & set(other.ui_source)):
            ref_vars = meta.find_undeclared_variables(ref.env.parse(ref.ui_source[key]))
            other_vars = meta.find_undeclared_variables(other.env.parse(other.ui_source[key]))
            if ref_vars != other_vars:
                col.add(
                    ui_path,
                    _ui_line(col, ui_path, key),
                    f"{key}: uses {sorted(other_vars)}, but {ref.language} uses {sorted(ref_vars)}",
                )


def _compare_entries(col: _Collector, root: Path, ref: LanguagePack, other: LanguagePack) -> None:
    """Answers have the same ids in the same order, the same buttons, links and checked month."""
    for name, entries in ref.entries.items():
        path = root / other.language / "answers" / f"{name}.toml"
        theirs = other.entries.get(name, {})
        if list(entries) != list(theirs):
            missing = [i for i in entries if i not in theirs]
            extra = [i for i in theirs if i not in entries]
            col.add(
                path,
                1,
                f"entries must match {ref.language}/answers/{name}.toml in order: "
                f"missing {missing}, not in {ref.language} {extra}",
            )
        for entry_id, e in entries.items():
            o = theirs.get(entry_id)
            if o is None:
                continue
            for field_name in ("see", "checked"):
                if getattr(e, field_name) != getattr(o, field_name):
                    col.add(
                        path,
                        col.line(path, field_name, table=entry_id),
                        f"[{entry_id}] {field_name}: differs from {ref.language}",
                    )
            if [x.url for x in e.links] != [x.url for x in o.links]:
                col.add(
                    path,
                    col.line(path, "links", table=entry_id),
                    f"[{entry_id}] links: differ from {ref.language}",
                )


_SAMPLE = "Sample ও নমুনা <&>"


def _check_rendering(col: _Collector, root: Path, library: Library) -> None:
    """Render every screen of every method in every language and check it as Telegram would."""
    for language, pack in library.packs.items():
        base = root / language

        def check(
            where: Path,
            line: int,
            what: str,
            text: str,
            *,
            limit: int = MESSAGE_LIMIT,
            words: int = SCREEN_WORDS,
            advice: str = "shorten it",
        ) -> None:
            try:
                plain = parse_html(text).plain
            except TelegramHTMLError as exc:
                col.add(where, line, f"{what}: Telegram would refuse it: {exc}")
                return
            if not plain.strip():
                col.add(where, line, f"{what}: renders as an empty message")
            elif utf16_len(plain) > limit:
                col.add(
                    where, line, f"{what}: {utf16_len(plain)} characters, Telegram allows {limit}"
                )
            elif (count := screen_words(text)) > words:
                col.add(
                    where, line, f"{what}: {count} words on one screen, at most {words}; {advice}"
                )

        for key, template in pack.ui.items():
            ui_path = base / "ui.toml"
            line = _ui_line(col, ui_path, key)
            variables = meta.find_undeclared_variables(pack.env.parse(pack.ui_source[key]))
            try:
                text = template.render({v: _SAMPLE for v in variables})
            except TemplateError as exc:
                col.add(ui_path, line, f"{key}: {exc}")
                continue
            check(ui_path, line, key, text)
            if key.startswith("btn.") and len(text) > BUTTON_LIMIT:
                col.add(
                    ui_path,
                    line,
                    f"{key}: button label is {len(text)} characters, at most {BUTTON_LIMIT}",
                )
        for method_id, method in pack.methods.items():
            path = base / "methods" / f"{method_id}.toml"
            try:
                sizes = ", ".join(
                    f"{key} {len(getattr(method, key).split())}"
                    for key in ("summary", "cost", "time_to_income")
                )
                check(
                    path,
                    col.line(path, "summary"),
                    "card",
                    library.render(language, "card.j2", m=method),
                    words=CARD_WORDS,
                    advice=f"shorten the first screen's texts (words: {sizes})",
                )
                pages_max = 1
                for section in callbacks.SECTIONS:
                    pages = library.section_pages(language, method_id, section)
                    pages_max = max(pages_max, len(pages))
                    key = SECTION_KEYS[section]
                    for n, text in enumerate(pages, 1):
                        check(
                            path,
                            col.line(path, key),
                            f"section {section} page {n}",
                            text,
                            advice=f"split or shorten a paragraph or item of {key}",
                        )
                for n, _tip in enumerate(method.tips):
                    text = library.tip_text(language, method_id, n)
                    check(path, col.line(path, "text", table="tips", nth=n), f"tip {n + 1}", text)
            except TemplateError as exc:
                col.add(root / "templates", 1, f"rendering {method_id} ({language}): {exc}")
                continue
            for data in callbacks.every_method_callback(
                method_id,
                steps=len(method.first_steps),
                section_pages=pages_max,
                tips=len(method.tips),
            ):
                if not callbacks.fits(data):
                    col.add(path, 1, f"button data {data!r} is over {callbacks.MAX_BYTES} bytes")
        for page_id, page in pack.pages.items():
            try:
                text = library.render(language, "page.j2", page=page)
            except TemplateError as exc:
                col.add(root / "templates" / "page.j2", 1, f"{exc}")
                continue
            check(
                base / "pages.toml",
                col.line(base / "pages.toml", "body", table=page_id),
                f"page {page_id}",
                text,
            )
        for name, entries in pack.entries.items():
            path = base / "answers" / f"{name}.toml"
            for e in entries.values():
                try:
                    text = library.render(language, "answer.j2", e=e)
                except TemplateError as exc:
                    col.add(root / "templates" / "answer.j2", 1, f"{exc}")
                    break
                check(path, col.line(path, "body", table=e.id), f"[{e.id}]", text)
