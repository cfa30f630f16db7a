"""Callback data: every button's data declared once, as a small frozen dataclass with a prefix.

`Card("youtube", "quiz").pack()` is a button's data ("card:youtube:quiz"), `Card.pattern()` the
regex its handler is registered with, `Card.parse(data)` the dataclass back. `on_tap(Card, card)`
registers a handler that is given the parsed data once the ids in it are checked against the
content: a button that names something removed since it was sent (or forged data) gets the
stale-button answer, the current menu, from here. Buttons that always mean the same screen are
`Fixed` words ("home"). `DECLARED` and `FIXED` list them all; tests derive every form of every
button's data from them (tests/test_callbacks.py: each fits Telegram's 64 bytes and reaches
its own handler).

The data is short ASCII, `<prefix>:<field>:<field>`, and a declaration's format never changes:
buttons in people's chats from older versions keep working (a field added later is optional, at
the end). A button that changes something carries the change itself, never "the next one" or
"toggle": the step and whether it is done, the method, the language, the broadcast's draft. On
slow data people tap twice, and Telegram may deliver both taps at once: the second then finds the
change made and answers as the first did.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import types
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Self,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.content.model import (
    COLLECTIONS,
    ENTRY_ID,
    METHOD_ID,
    PAGE_IDS,
    QUIZ_MAX_QUESTIONS,
    SECTIONS,
)
from bot.languages import LANGUAGES

if TYPE_CHECKING:
    from bot.content import Library
    from bot.context import AppContext

MAX_BYTES = 64
# A tap this soon after the change it asks for is taken as a second tap on the button that made
# it, and answered as that one was ("added to your path", not "already on your path").
REPEAT_WINDOW = timedelta(minutes=5)
# Where a card was opened from, so that Back returns there.
ORIGINS = ("all", "active", "passive", "quiz", "path", "find")
LIST_KINDS = ("all", "active", "passive")
R = TypeVar("R")
D = TypeVar("D", bound="CallbackData")
Handler = Callable[["Update", "AppContext"], Coroutine[Any, Any, R]]


class StaleButton(Exception):
    """A button refers to something that no longer exists; the error handler shows the current menu."""


# --- how fields are written ---------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """How one field's value is written in the data."""

    regex: str  # one value (groups inside must not capture)
    width: int  # the most characters a value takes: the 64-byte bound follows from these
    samples: Callable[[Library], Iterable[Any]]  # values the bot writes: the shortest, the longest
    exists: Callable[[Library, Any], bool] | None = None  # for ids: is it in the content still?


def _words(words: Iterable[str]) -> Part:
    words = tuple(words)
    return Part("|".join(map(re.escape, words)), max(map(len, words)), lambda _: words)


def _number(digits: int) -> Part:
    """0 to 10**digits - 1; a page past the last one shows the last one."""
    return Part(
        r"\d" if digits == 1 else rf"\d{{1,{digits}}}", digits, lambda _: (0, 10**digits - 1)
    )


MethodId = Annotated[
    str,
    Part(
        METHOD_ID,
        16,
        lambda library: library.method_ids,
        exists=lambda library, method_id: library.has_method(method_id),
    ),
]
EntryId = Annotated[
    str,
    Part(
        ENTRY_ID,
        20,
        lambda library: sorted(
            {e.id for name in COLLECTIONS for e in library.entries(LANGUAGES[0], name)}
        ),
    ),
]
Origin = Annotated[str, _words(ORIGINS)]
ListKind = Annotated[str, _words(LIST_KINDS)]
SectionId = Annotated[str, _words(SECTIONS)]
PageId = Annotated[str, _words(PAGE_IDS)]
Collection = Annotated[str, _words(COLLECTIONS)]
LanguageCode = Annotated[str, _words(LANGUAGES)]
Audience = Annotated[str, _words(("all", "bn", "en", "no"))]  # "no": cancel
PageNo = Annotated[int, _number(2)]
StepNo = Annotated[int, _number(2)]
TipNo = Annotated[int, _number(2)]
Weekday = Annotated[int, _number(1)]
Hour = Annotated[int, _number(2)]
DraftNo = Annotated[int, _number(15)]
Flag = Annotated[bool, Part("[01]", 1, lambda _: (False, True))]
# One digit per answered question: the answer's place in the question.
QuizAnswers = Annotated[
    str,
    Part(
        rf"\d{{0,{QUIZ_MAX_QUESTIONS}}}",
        QUIZ_MAX_QUESTIONS,
        lambda _: ("", "9" * QUIZ_MAX_QUESTIONS),
    ),
]


@dataclass(frozen=True)
class _Field:
    name: str
    kind: type  # str, int or bool
    part: Part
    optional: bool  # None is left out of the data: an optional field comes after the others

    def write(self, value: Any) -> str:
        if self.kind is bool:
            return "1" if value else "0"
        return str(value)

    def read(self, text: str | None) -> Any:
        if text is None:
            return None
        if self.kind is bool:
            return text == "1"
        return int(text) if self.kind is int else text


@dataclass(frozen=True)
class _Layout:
    fields: tuple[_Field, ...]
    pattern: re.Pattern[str]


_LAYOUTS: dict[type[CallbackData], _Layout] = {}


def _layout(declared: type[CallbackData]) -> _Layout:
    """The declaration's fields and pattern, worked out on first use (the class is complete by
    then: `@dataclass` runs after `__init_subclass__`)."""
    layout = _LAYOUTS.get(declared)
    if layout is None:
        layout = _LAYOUTS[declared] = _compile(declared)
    return layout


def _compile(declared: type[CallbackData]) -> _Layout:
    hints = get_type_hints(declared, include_extras=True)
    layout = []
    for f in dataclasses.fields(cast(Any, declared)):
        hint, optional = hints[f.name], f.default is None
        if get_origin(hint) in (Union, types.UnionType):  # `PageNo | None`
            hint = next(arg for arg in get_args(hint) if arg is not type(None))
        kind, part = get_args(hint)
        layout.append(_Field(f.name, kind, part, optional))
    regex = re.escape(declared.prefix) + "".join(
        f"(?::({f.part.regex}))?" if f.optional else f":({f.part.regex})" for f in layout
    )
    return _Layout(tuple(layout), re.compile(f"^{regex}$"))


# --- declarations -------------------------------------------------------------------------------

DECLARED: list[type[CallbackData]] = []
FIXED: list[Fixed] = []


class CallbackData:
    """A button's data: `class Card(CallbackData, prefix="card")`, a frozen dataclass of fields."""

    prefix: ClassVar[str]

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.prefix = prefix
        DECLARED.append(cls)

    def pack(self) -> str:
        data = [self.prefix]
        for f in _layout(type(self)).fields:
            value = getattr(self, f.name)
            if value is not None:
                data.append(f.write(value))
        return ":".join(data)

    @classmethod
    def pattern(cls) -> re.Pattern[str]:
        return _layout(cls).pattern

    @classmethod
    def parse(cls, data: str) -> Self | None:
        match = cls.pattern().match(data)
        return cls.from_match(match) if match else None

    @classmethod
    def from_match(cls, match: re.Match[str]) -> Self:
        fields = _layout(cls).fields
        return cls(**{f.name: f.read(text) for f, text in zip(fields, match.groups(), strict=True)})

    def exists(self, library: Library) -> bool:
        """Whether every id in the data is still in the content; else the stale-button answer."""
        return all(
            f.part.exists is None
            or (value := getattr(self, f.name)) is None
            or f.part.exists(library, value)
            for f in _layout(type(self)).fields
        )

    @classmethod
    def longest(cls) -> int:
        """The most bytes this data can take (all ASCII)."""
        return len(cls.prefix) + sum(1 + f.part.width for f in _layout(cls).fields)

    @classmethod
    def samples(cls, library: Library) -> Iterator[Self]:
        """Every form the data takes: each id in the content, each word, the shortest and the
        longest numbers, with and without each optional field."""
        fields = _layout(cls).fields
        choices = [[*f.part.samples(library), *((None,) if f.optional else ())] for f in fields]
        for values in itertools.product(*choices):
            yield cls(**{f.name: value for f, value in zip(fields, values, strict=True)})


@dataclass(frozen=True)
class Fixed:
    """A button that always opens the same screen: its data is one fixed word."""

    data: str

    def __post_init__(self) -> None:
        FIXED.append(self)

    def pack(self) -> str:
        return self.data

    def pattern(self) -> re.Pattern[str]:
        return re.compile(f"^{re.escape(self.data)}$")


HOME = Fixed("home")
HELP = Fixed("help")
MY_PATH = Fixed("path")
TIPS = Fixed("tips")
SUBSCRIBE_MENU = Fixed("tips:add")
QUIZ_RESULT = Fixed("quiz:result")
FORGET_YES = Fixed("forget:yes")
FORGET_NO = Fixed("forget:no")
GROUP_LIST = Fixed("glist")  # the `g` keeps group screens apart from private ones


@dataclass(frozen=True)
class MethodList(CallbackData, prefix="list"):
    kind: ListKind


@dataclass(frozen=True)
class InfoPage(CallbackData, prefix="page"):
    page: PageId


@dataclass(frozen=True)
class Answer(CallbackData, prefix="ans"):
    """A short answer (FAQ, getting paid, a scam, free learning)."""

    collection: Collection
    entry: EntryId

    def exists(self, library: Library) -> bool:
        return library.entry(LANGUAGES[0], self.collection, self.entry) is not None


@dataclass(frozen=True)
class AnswerList(CallbackData, prefix="anl"):
    """The list of a collection's answers, a page of buttons at a time."""

    collection: Collection
    page: PageNo = 0


@dataclass(frozen=True)
class Card(CallbackData, prefix="card"):
    method: MethodId
    origin: Origin = "all"


@dataclass(frozen=True)
class Section(CallbackData, prefix="sec"):
    method: MethodId
    section: SectionId
    page: PageNo = 0
    origin: Origin = "all"


@dataclass(frozen=True)
class Choose(CallbackData, prefix="choose"):
    method: MethodId
    origin: Origin = "all"


@dataclass(frozen=True)
class Checklist(CallbackData, prefix="path"):
    """A path's checklist. Opened from a card (`origin`: the card's own origin), Back returns to
    that card; without it, to My path (or to the card the button was on, see handlers/mypath.py)."""

    method: MethodId
    origin: Origin | None = None


@dataclass(frozen=True)
class Step(CallbackData, prefix="step"):
    """Mark first step `index` done (or not): the state to set, so a second tap changes nothing."""

    method: MethodId
    index: StepNo
    done: Flag
    origin: Origin | None = None

    def exists(self, library: Library) -> bool:
        return super().exists(library) and self.index < len(
            library.method(LANGUAGES[0], self.method).first_steps
        )


@dataclass(frozen=True)
class RemovePath(CallbackData, prefix="drop"):
    method: MethodId
    confirmed: Flag = False
    origin: Origin | None = None


@dataclass(frozen=True)
class SetLanguage(CallbackData, prefix="lang"):
    """That language (tapped twice it stays set); without one, the other language."""

    code: LanguageCode | None = None


@dataclass(frozen=True)
class Quiz(CallbackData, prefix="quiz"):
    """Quiz progress: one digit per answered question (the answer's index)."""

    answers: QuizAnswers = ""

    def exists(self, library: Library) -> bool:
        """The quiz may have changed since these buttons were made."""
        questions = library.quiz_questions
        return len(self.answers) <= len(questions) and all(
            int(digit) < len(q.answers) for q, digit in zip(questions, self.answers, strict=False)
        )


@dataclass(frozen=True)
class Subscribe(CallbackData, prefix="sub"):
    method: MethodId


@dataclass(frozen=True)
class Unsubscribe(CallbackData, prefix="unsub"):
    """Stop one method's tips; from the tips screen the screen is redrawn, from a tip it is not."""

    method: MethodId
    from_settings: Flag = False


@dataclass(frozen=True)
class TipStep(CallbackData, prefix="tipstep"):
    """ "I did step n" under a tip: marks that first step done (adding the path if needed).
    Tips sent before buttons named their step carry none."""

    method: MethodId
    step: StepNo | None = None


@dataclass(frozen=True)
class Schedule(CallbackData, prefix="when"):
    """Picking the weekly slot: the day, then the hour."""

    weekday: Weekday | None = None
    hour: Hour | None = None

    def exists(self, library: Library) -> bool:
        return self.weekday is None or self.hour is None or (self.weekday <= 6 and self.hour <= 23)


@dataclass(frozen=True)
class Broadcast(CallbackData, prefix="bc"):
    """Confirm (audience "all", "bn", "en") or cancel ("no") the admin's draft number `draft`."""

    draft: DraftNo
    audience: Audience


@dataclass(frozen=True)
class GroupCard(CallbackData, prefix="gcard"):
    """A method's compact card in a group; the `g` keeps group screens apart from private ones."""

    method: MethodId


@dataclass(frozen=True)
class ShareMethodImage(CallbackData, prefix="img:m"):
    """Send a method's card as a picture (bot.cards), to forward anywhere."""

    method: MethodId


@dataclass(frozen=True)
class ShareTipImage(CallbackData, prefix="img:t"):
    """Send weekly tip number `index` of a method as a picture."""

    method: MethodId
    index: TipNo

    def exists(self, library: Library) -> bool:
        return super().exists(library) and self.index < library.tip_count(self.method)


@dataclass(frozen=True)
class ShareQuizImage(CallbackData, prefix="img:q"):
    """Send a quiz result as a picture; like `Quiz`, one digit per answer, every one answered."""

    answers: QuizAnswers

    def exists(self, library: Library) -> bool:
        """The quiz may have changed since the result was shown."""
        complete = len(self.answers) == len(library.quiz_questions)
        return complete and Quiz(self.answers).exists(library)


# --- handlers -----------------------------------------------------------------------------------


@overload
def on_tap(
    declared: Fixed,
    callback: Handler[R],
    *,
    handler: type[CallbackQueryHandler[AppContext, Any]] = ...,
) -> CallbackQueryHandler[AppContext, R]: ...


@overload
def on_tap(
    declared: type[D],
    callback: Callable[[Update, AppContext, D], Coroutine[Any, Any, R]],
    *,
    stale: Handler[Any] | None = None,
    handler: type[CallbackQueryHandler[AppContext, Any]] = ...,
) -> CallbackQueryHandler[AppContext, R]: ...


def on_tap(
    declared: Fixed | type[CallbackData],
    callback: Callable[..., Coroutine[Any, Any, Any]],
    *,
    stale: Handler[Any] | None = None,
    handler: type[CallbackQueryHandler[AppContext, Any]] = CallbackQueryHandler,
) -> CallbackQueryHandler[AppContext, Any]:
    """The handler for one button: `callback(update, ctx, data)` with the data parsed, or, if the
    data names what the content no longer has, `stale(update, ctx)` (by default the stale-button
    answer). A `Fixed` button's callback is `callback(update, ctx)`."""
    if isinstance(declared, Fixed):
        return handler(callback, pattern=declared.pattern())

    async def tapped(update: Update, ctx: AppContext) -> Any:
        assert ctx.match is not None
        data = declared.from_match(ctx.match)
        if not data.exists(ctx.library):
            if stale is None:
                raise StaleButton
            return await stale(update, ctx)
        return await callback(update, ctx, data)

    return handler(tapped, pattern=declared.pattern())
