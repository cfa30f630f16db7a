"""How each field of a content file is checked, declared where the model is (bot/content/model.py),
and the one reader that applies those declarations to a TOML table.

`Table.read(Method)` reads every declared field of a method file: a missing or wrong field is a
problem at the line of its key ("kind: must be one of active, passive, both"), a key no field
declares is reported as a typo, and the model comes back with an empty value in place of each bad
field, so that one run reports every problem in a file, not just the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot.content.problems import Collector
from bot.content.render import TAG_RE
from bot.telegram_html import utf16_len

M = TypeVar("M")
_SPEC = "spec"
URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/\S*)?$")
# A figure a reader may rely on: money, a percentage.
_FIGURE_RE = re.compile(r"[$৳%]|[0-9০-৯]\s*(?:টাকা|ডলার|শতাংশ|dollars?|taka)", re.IGNORECASE)


class Spec(Protocol):
    def read(self, table: Table, key: str) -> Any:
        """The field's value from the table; a problem for the table when it is wrong."""


def spec(check: Spec, *, default: Any = MISSING) -> Any:
    """Declare a model field as read from the content file's key of the same name."""
    return field(metadata={_SPEC: check}, default=default)


_DECLARED: dict[type[Any], tuple[tuple[str, Spec], ...]] = {}


def declared(model: type[Any]) -> tuple[tuple[str, Spec], ...]:
    """The model's fields that come from its file, in declaration order, with their checks."""
    if model not in _DECLARED:
        _DECLARED[model] = tuple(
            (f.name, f.metadata[_SPEC]) for f in fields(model) if _SPEC in f.metadata
        )
    return _DECLARED[model]


class Table:
    """One TOML table being read: every problem lands at the line of its key, in its table."""

    def __init__(
        self,
        col: Collector,
        path: Path,
        data: Mapping[str, Any],
        *,
        table: str | None = None,
        nth: int = 0,
    ) -> None:
        self.col, self.path, self.data, self.table, self.nth = col, path, data, table, nth
        self.ok = True

    def read(
        self, model: type[M], *, also: Iterable[str] = (), strict: bool = True, **known: Any
    ) -> M:
        """`model` from this table: its declared fields from their keys, the rest from `known`.

        `also` names keys read apart (sub-tables keyed by ids); `strict=False` leaves other
        unknown keys unreported.
        """
        checks = declared(model)
        if strict:
            self.unknown([*(name for name, _ in checks), *also])
        values = {name: check.read(self, name) for name, check in checks}
        for name, check in checks:
            if isinstance(check, Text) and check.figures:
                self.figures_checked(name, values[name])
        return model(**known, **values)

    def line(self, key: str) -> int:
        return self.col.line(self.path, key, table=self.table, nth=self.nth)

    def problem(self, key: str, message: str) -> None:
        """A problem with `key`: the table's model is not used (the content does not load)."""
        self.ok = False
        self.col.add(self.path, self.line(key), f"{key}: {message}")

    def style(self, key: str, value: str) -> None:
        self.col.style(self.path, lambda: self.line(key), key, value)

    def unknown(self, allowed: Iterable[str]) -> None:
        for key in sorted(set(self.data) - set(allowed)):
            self.problem(key, "unknown key (a typo?)")

    def figures_checked(self, key: str, text: str) -> None:
        """Money and percentages need the month they were verified (`checked`)."""
        if "checked" not in self.data and (found := _FIGURE_RE.search(text)):
            self.col.warn(
                self.path,
                self.line(key),
                f'{key}: states {found.group(0)!r}; add checked = "YYYY-MM"',
            )


@dataclass(frozen=True)
class Text:
    """Non-empty plain text (the templates add all markup), stripped; `limit` in UTF-16 units."""

    limit: int | None = None
    one_of: tuple[str, ...] = ()
    link: bool = False  # an http(s) URL
    figures: bool = False  # money or a percentage in it needs a `checked` month

    def read(self, table: Table, key: str) -> str:
        value = table.data.get(key)
        if not isinstance(value, str) or not value.strip():
            table.problem(key, "must be non-empty text")
            return ""
        value = value.strip()
        if self.limit is not None and (size := utf16_len(value)) > self.limit:
            table.problem(key, f"is {size} characters long, at most {self.limit} allowed")
        if TAG_RE.search(value):
            table.problem(
                key, "has an HTML tag; write plain text (layout comes from the templates)"
            )
        table.style(key, value)
        if self.one_of and value not in self.one_of:
            table.problem(key, f"must be one of {', '.join(self.one_of)}")
        if self.link and not URL_RE.match(value):
            table.problem(key, f"{value!r} is not a valid http(s) link")
        return value


@dataclass(frozen=True)
class Texts:
    """A list of `low` to `high` texts; keywords are lowercase and kept out of the style check."""

    low: int
    high: int
    limit: int | None = None
    lowercase: bool = False
    style: bool = True
    optional: bool = False  # a missing key is an empty list

    def read(self, table: Table, key: str) -> tuple[str, ...]:
        if self.optional and key not in table.data:
            return ()
        value = table.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            table.problem(key, "must be a list of non-empty texts")
            return ()
        if not self.low <= len(value) <= self.high:
            table.problem(key, f"has {len(value)} items, {self.low} to {self.high} expected")
        for item in value:
            if self.limit is not None and utf16_len(item) > self.limit:
                table.problem(
                    key,
                    f"item {item[:30]!r}… is {utf16_len(item)} characters long, at most {self.limit}",
                )
            if TAG_RE.search(item):
                table.problem(key, f"item {item[:30]!r}… has an HTML tag; write plain text")
            if self.style:
                table.style(key, item)
        texts = tuple(v.strip() for v in value)
        for word in texts if self.lowercase else ():
            if word != word.lower():
                table.problem(key, f"{word!r} must be lowercase")
        return texts


@dataclass(frozen=True)
class Tables:
    """`[[key]]` tables, each read as a `model`; `low` to `high` of them (or at least `low`)."""

    model: type[Any]
    low: int
    high: int | None = None
    reason: str = ""  # why at least `low`, said in the problem

    def read(self, table: Table, key: str) -> tuple[Any, ...]:
        value = table.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            table.problem(key, f"must be a list of [[{key}]] tables")
            value = []
        items = []
        for nth, data in enumerate(value):
            item = Table(table.col, table.path, data, table=key, nth=nth)
            items.append(item.read(self.model))
            table.ok &= item.ok
        count = len(items)
        if self.high is not None and not self.low <= count <= self.high:
            table.problem(key, f"has {count} {key}, {self.low} to {self.high} expected")
        elif self.high is None and count < self.low:
            table.problem(key, f"has {count} {key}, at least {self.low} expected ({self.reason})")
        return tuple(items)


@dataclass(frozen=True)
class Links:
    """`links = [{ name = "…", url = "https://…" }]`: buttons to pages elsewhere."""

    make: Callable[[str, str], Any]

    def read(self, table: Table, key: str) -> tuple[Any, ...]:
        value = table.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            table.problem(key, 'must be a list like [{ name = "…", url = "https://…" }]')
            return ()
        links = []
        for item in value:
            name, url = item.get("name"), item.get("url")
            if not isinstance(name, str) or not name.strip() or len(name) > 40:
                table.problem(key, f"link name {name!r} must be text of at most 40 characters")
            elif (
                not isinstance(url, str) or not url.startswith("https://") or not URL_RE.match(url)
            ):
                table.problem(key, f"{url!r} is not an https link")
            else:
                links.append(self.make(name.strip(), url))
        return tuple(links)


@dataclass(frozen=True)
class See:
    """`see`: up to three buttons to what says more (checked once everything is loaded)."""

    def read(self, table: Table, key: str) -> tuple[str, ...]:
        see = table.data.get(key, [])
        if not isinstance(see, list) or len(see) > 3 or not all(isinstance(t, str) for t in see):
            table.problem(key, "must be a list of at most 3 targets")
            return ()
        return tuple(see)


@dataclass(frozen=True)
class Choice:
    """One of a few words, or nothing."""

    choices: tuple[str, ...]

    def read(self, table: Table, key: str) -> Any:
        value = table.data.get(key)
        if value is not None and value not in self.choices:
            table.problem(key, f"must be one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class Month:
    """`checked = "YYYY-MM"`, when figures were verified. A bad month is a problem, but the table
    is still used: nothing else depends on it."""

    def read(self, table: Table, key: str) -> str | None:
        return table.col.checked(table.path, table.line(key), table.data.get(key))
