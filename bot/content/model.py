"""What the content is made of: methods, pages, short answers and the quiz, as read from content/.

Each field a content file sets declares how it is checked (its `spec`, see bot/content/fields.py):
the dataclass is both the model handlers use and the schema `ayerpoth content check` applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.content.fields import Choice, Links, Month, See, Tables, Text, Texts, spec
from bot.content.render import PAGE_LIMIT

KINDS = ("active", "passive", "both")
PAGE_IDS = ("active_passive", "before_start", "safety", "getting_paid")
# Short answers to typed questions, one file each in <language>/answers/, and their word limits.
COLLECTIONS = {"faq": 80, "paid": 140, "scams": 140, "learn": 140}
# A method card's sections, each a screen of its own, and the method file's key each one shows.
SECTION_KEYS = {
    "what": "what_it_is",
    "steps": "first_steps",
    "platforms": "platforms",
    "mistakes": "mistakes",
    "tips": "tips",
}
SECTIONS = tuple(SECTION_KEYS)
# Ids travel in button data (bot/callbacks.py), so they are short ASCII.
METHOD_ID = r"[a-z][a-z0-9_]{1,15}"
ENTRY_ID = r"[a-z][a-z0-9_]{1,19}"
QUIZ_TOP = 3  # the quiz recommends this many methods
QUIZ_FITS = 2  # an answer giving a method this many points is a reason it fits
# One digit per answer in a quiz button's data: at most this many questions, and ten answers.
QUIZ_MAX_QUESTIONS = 8
QUIZ_MAX_ANSWERS = 9
SHORT_BUTTON_LIMIT = 24
KEYWORDS = Texts(low=1, high=40, lowercase=True, style=False)


@dataclass(frozen=True, slots=True)
class Platform:
    name: str = spec(Text(limit=40))
    url: str = spec(Text(link=True))
    note: str = spec(Text(limit=200))


@dataclass(frozen=True, slots=True)
class Tip:
    title: str = spec(Text(limit=80))
    text: str = spec(Text(limit=600))


@dataclass(frozen=True, slots=True)
class Method:
    id: str  # the file's name
    title: str = spec(Text(limit=80))
    button: str = spec(Text(limit=SHORT_BUTTON_LIMIT))
    emoji: str = spec(Text(limit=8))
    kind: str = spec(Text(one_of=KINDS))
    summary: str = spec(Text(limit=300))
    keywords: tuple[str, ...] = spec(KEYWORDS)
    what_it_is: str = spec(Text(limit=1500, figures=True))
    cost: str = spec(Text(limit=300, figures=True))
    time_to_income: str = spec(Text(limit=300, figures=True))
    skills: tuple[str, ...] = spec(Texts(low=3, high=6, limit=80))
    first_steps: tuple[str, ...] = spec(Texts(low=4, high=8, limit=120))
    mistakes: tuple[str, ...] = spec(Texts(low=4, high=6, limit=300))
    platforms: tuple[Platform, ...] = spec(Tables(Platform, low=2, high=6))
    tips: tuple[Tip, ...] = spec(Tables(Tip, low=12, reason="three months of weeks"))
    checked: str | None = spec(Month())  # "YYYY-MM": when its figures were last verified

    def fits(self, kind: str) -> bool:
        """Whether the method belongs in the list of `kind` ('all', 'active' or 'passive')."""
        return kind == "all" or self.kind in (kind, "both")


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Page:
    id: str  # the table's name
    title: str = spec(Text(limit=80))
    button: str = spec(Text(limit=SHORT_BUTTON_LIMIT))
    emoji: str = spec(Text(limit=8))
    body: str = spec(Text(limit=PAGE_LIMIT, figures=True))
    keywords: tuple[str, ...] = spec(Texts(low=1, high=40, style=False, optional=True))
    links: tuple[Link, ...] = spec(Links(Link))
    see: tuple[str, ...] = spec(See())  # buttons to what says more, as in Entry
    # its entries are listed under the page as buttons
    collection: str | None = spec(Choice(tuple(COLLECTIONS)))
    checked: str | None = spec(Month())


@dataclass(frozen=True, slots=True)
class Entry:
    """A short answer to a question people type: a FAQ, a platform's payouts, a scam, a course."""

    collection: str  # the file's name
    id: str  # the table's name
    title: str = spec(Text(limit=120))
    button: str = spec(Text(limit=SHORT_BUTTON_LIMIT))
    keywords: tuple[str, ...] = spec(KEYWORDS)
    body: str = spec(Text(limit=PAGE_LIMIT, figures=True))
    # targets for "more" buttons: card:<id>, page:<id>, <collection>:<id>, quiz
    see: tuple[str, ...] = spec(See())
    links: tuple[Link, ...] = spec(Links(Link))
    checked: str | None = spec(Month())  # "YYYY-MM": when its numbers were last verified

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
class QuizIntro:
    """The top of a language's quiz.toml; its [questions] and [excluded] are keyed by the ids
    content/quiz.toml declares, and read against those (bot/content/quiz.py)."""

    title: str = spec(Text(limit=80))
    intro: str = spec(Text(limit=500))
    result_intro: str = spec(Text(limit=200))


@dataclass(frozen=True, slots=True)
class QuizQuestionText:
    text: str = spec(Text(limit=300))


@dataclass(frozen=True, slots=True)
class QuizAnswerText:
    label: str = spec(Text(limit=SHORT_BUTTON_LIMIT))
    why: str = spec(Text(limit=120))


EXCLUDED_LINE = Text(limit=200)  # why a method is not offered to someone who lacks its need


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
