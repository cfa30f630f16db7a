"""Problems found in the content, each as `file:line: message`, and the collector that finds lines.

TOML parsers give values, not positions: a problem's line is found by looking up its key (inside
its table) in the file's text, which is read once per file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bot.languages import LANGUAGES

CHECKED_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
STALE_AFTER_MONTHS = 12
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


class Collector:
    """Gathers problems and warnings, with line numbers found by searching the file's text."""

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

    def ui_line(self, path: Path, key: str) -> int:
        """The line of a UI string; `group.help` is looked up under its [group] table."""
        table, _, name = key.rpartition(".")
        return self.line(path, name, table=table or None)

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


def source_line(root: Path, file: str, key: str, *, table: str | None = None, nth: int = 0) -> int:
    """The line of `key` in a content file (a UI string's dotted key in ui.toml, or a key in
    the nth `[[table]]`), for checks made after loading, such as the picture cards'."""
    col = Collector(date.today())
    path = root / file
    col.read_toml(path)
    if path.name == "ui.toml":
        return col.ui_line(path, key)
    return col.line(path, key, table=table, nth=nth)
