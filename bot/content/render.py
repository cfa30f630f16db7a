"""Rendering: the Jinja2 environment of each language, numbers, dates and times as people write
them, and splitting a long screen into pages a phone shows whole."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime, format_time, get_timezone_location
from babel.numbers import format_decimal
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup

from bot.telegram_html import utf16_len

MESSAGE_LIMIT = 4096
PAGE_LIMIT = 2000  # UTF-16 units on a page; longer sections get next/previous pages
SCREEN_WORDS = 160  # words on any screen: what a cheap phone shows without much scrolling
TAG_RE = re.compile(r"</?[A-Za-z][^>]*>")
_BN_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")
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


def to_bangla_digits(text: str) -> str:
    return text.translate(_BN_DIGITS)


def digits(language: str, value: object) -> str:
    """Bangla text uses Bangla digits; Babel and str() give Latin ones."""
    return to_bangla_digits(str(value)) if language == "bn" else str(value)


def localize_numbers(language: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Template values with every whole number in the language's digits."""
    return {
        k: digits(language, v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in values.items()
    }


def clock(language: str, hour: int, minute: int = 0, *, at: bool = False) -> str:
    """A time of day as people say it: "সকাল ৯টা", "সন্ধ্যা ৭টা ৩০ মিনিট"; with `at`, the
    form for "at that time" ("সকাল ৯টায়", "সন্ধ্যা ৭টা ৩০ মিনিটে"). English: "9:00 AM"."""
    if language != "bn":
        return format_time(time(hour, minute), format="h:mm a", locale=language)
    part = next(name for start, name in reversed(BN_DAY_PARTS) if hour >= start)
    text = f"{part} {digits(language, hour % 12 or 12)}টা"
    if minute:
        return f"{text} {digits(language, minute)} মিনিট{'ে' if at else ''}"
    return f"{text}{BN_AT_HOUR if at else ''}"


def when(language: str, moment: datetime, *, at: bool = False) -> str:
    """A date and time as people say them, in the moment's own time zone: "সোমবার, ৩০
    নভেম্বর, বিকেল ৩টা" ("… বিকেল ৩টায়" with `at`, for "at that time" in a sentence),
    "Monday, 30 November, 3:00 PM"."""
    day = digits(language, format_date(moment, format="EEEE, d MMMM", locale=language))
    return f"{day}, {clock(language, moment.hour, moment.minute, at=at)}"


def zone(language: str, zone: tzinfo) -> str:
    """A time zone as readers call it: "বাংলাদেশ সময়", "Bangladesh time"."""
    if str(zone) in ("UTC", "Etc/UTC"):
        return "UTC"
    name = get_timezone_location(zone, locale=language)
    return name.removesuffix(" Time") + " time" if language == "en" else name


def make_env(root: Path, language: str) -> Environment:
    """A language's templates (its own folder first, then the shared one) and its filters."""
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
        return digits(language, text)

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


def ui_function(language: str, ui: Mapping[str, Template]) -> Any:
    """`ui("key", n=1)` inside templates: UI strings are trusted markup, their values are escaped."""

    def ui_text(key: str, **values: Any) -> Markup:
        return Markup(ui[key].render(**localize_numbers(language, values)))

    return ui_text


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
    return sum(1 for w in TAG_RE.sub(" ", text).split() if any(c.isalnum() for c in w))


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
