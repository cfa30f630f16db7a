"""The content library: methods, pages, quiz and UI strings per language, loaded and checked once.

Editors change files under `content/` (see content/README.md). At start-up everything is read,
every template is compiled and every screen of every method is rendered in every language and
checked against Telegram's rules, so a broken sentence is reported as `file:line: message`
before it can reach a user.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime
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
from bot.telegram_html import TelegramHTMLError, parse_html, utf16_len

LANGUAGES = ("bn", "en")
KINDS = ("active", "passive", "both")
PAGE_IDS = ("active_passive", "before_start", "safety", "getting_paid")
SECTION_TEMPLATES = {s: f"section_{s}.j2" for s in callbacks.SECTIONS}
MESSAGE_LIMIT = 4096
PAGE_LIMIT = 2000  # a screenful on a phone; longer sections get next/previous pages
BUTTON_LIMIT = 32
SHORT_BUTTON_LIMIT = 24
_BN_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")
_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/\S*)?$")
_TAG_RE = re.compile(r"</?[A-Za-z][^>]*>")


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

    def fits(self, kind: str) -> bool:
        """Whether the method belongs in the list of `kind` ('all', 'active' or 'passive')."""
        return kind == "all" or self.kind in (kind, "both")


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    title: str
    button: str
    emoji: str
    body: str


@dataclass(frozen=True, slots=True)
class QuizAnswer:
    id: str
    scores: Mapping[str, int]


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

    def __init__(self, problems: list[Problem], root: Path) -> None:
        self.problems = problems
        self.lines = [p.render(root) for p in problems]
        super().__init__("\n".join(self.lines))


def to_bangla_digits(text: str) -> str:
    return text.translate(_BN_DIGITS)


def normalize(text: str) -> str:
    """Lowercase, NFC-normalised text with punctuation folded to spaces, for keyword search."""
    text = unicodedata.normalize("NFC", text).casefold()
    return re.sub(r"[^\w\u0980-\u09ff]+", " ", text).strip()


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


class Library:
    """Read-only access to loaded content; handlers get data here and render it with `render`."""

    def __init__(
        self,
        root: Path,
        packs: dict[str, LanguagePack],
        order: tuple[str, ...],
        quiz: tuple[QuizQuestion, ...],
        ignore_words: frozenset[str] = frozenset(),
    ) -> None:
        self.root = root
        self.ignore_words = ignore_words
        self.packs = packs
        self.method_ids = order
        self.quiz_questions = quiz
        self._search_index = _build_search_index(packs, order, ignore_words)
        self._fixed: dict[tuple[str, str], str] = {}

    def method(self, language: str, method_id: str) -> Method:
        return self.packs[language].methods[method_id]

    def has_method(self, method_id: str) -> bool:
        return method_id in self.method_ids

    def methods(self, language: str, kind: str = "all") -> list[Method]:
        return [m for m in self.packs[language].methods.values() if m.fits(kind)]

    def page(self, language: str, page_id: str) -> Page:
        return self.packs[language].pages[page_id]

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

    def section_pages(
        self, language: str, method_id: str, section: str, **context: Any
    ) -> list[str]:
        """A method's section split into pages that each fit one message."""
        text = self.render(
            language,
            SECTION_TEMPLATES[section],
            m=self.method(language, method_id),
            **context,
        )
        return paginate(text, PAGE_LIMIT)

    def when(self, language: str, moment: datetime) -> str:
        """A date and time as people say it ("সোমবার, ৩০ নভেম্বর, ৩:০০ PM"), in local time."""
        text = format_datetime(moment, format="EEEE, d MMMM, h:mm a", locale=language)
        return self.digits(language, text)

    def tip_text(self, language: str, method_id: str, index: int) -> str:
        """Weekly tip number `index`; the last one closes the path."""
        method = self.method(language, method_id)
        last = index == len(method.tips) - 1
        return self.render(language, "tip.j2", m=method, index=index, last=last)

    def tip_count(self, method_id: str) -> int:
        return len(self.method(LANGUAGES[0], method_id).tips)

    def find(self, query: str, *, limit: int = 8) -> list[str]:
        """Method ids matching a free-text query in either language, best first.

        Each query word is matched against the words of every method's keywords and names
        (title and button, in every language: exactly, by prefix, or inside a longer word); a word that matches many methods (like
        "income") counts for little, and only methods close to the best score are returned.
        """
        scores: dict[str, float] = {}
        for word in normalize(query).split():
            if word in self.ignore_words:
                continue
            weights = {
                method_id: max((_match_weight(word, term) for term in terms), default=0)
                for method_id, terms in self._search_index.items()
            }
            matched = {mid: w for mid, w in weights.items() if w}
            for method_id, weight in matched.items():
                scores[method_id] = scores.get(method_id, 0) + weight / len(matched)
        if not scores:
            return []
        best = max(scores.values())
        ranked = sorted(
            (mid for mid, score in scores.items() if score >= best / 2),
            key=lambda mid: (-scores[mid], self.method_ids.index(mid)),
        )
        return ranked[:limit]


def _match_weight(word: str, term: str) -> int:
    if word == term:
        return 3
    if len(word) >= 3 and len(term) >= 3 and (term.startswith(word) or word.startswith(term)):
        return 2
    if len(word) >= 4 and word in term:
        return 1
    return 0


def _build_search_index(
    packs: Mapping[str, LanguagePack], order: Iterable[str], ignore: frozenset[str]
) -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for method_id in order:
        terms = {method_id}
        for pack in packs.values():
            method = pack.methods.get(method_id)
            if method is None:  # it failed to load; the problem is already reported
                continue
            for phrase in (*method.keywords, method.button, method.title):
                terms.update(normalize(phrase).split())
        index[method_id] = {t for t in terms if len(t) >= 2 and t not in ignore}
    return index


def paginate(text: str, limit: int) -> list[str]:
    """Split text at paragraph (then line) breaks into pages of at most `limit` UTF-16 units.

    Templates keep every HTML tag on one line, so a split at a line break never cuts a tag.
    """
    if utf16_len(text) <= limit:
        return [text]
    pages: list[str] = []
    current = ""
    for block in _blocks(text, limit):
        candidate = f"{current}\n\n{block}" if current else block
        if utf16_len(candidate) <= limit:
            current = candidate
        else:
            pages.append(current)
            current = block
    if current:
        pages.append(current)
    return pages


def _blocks(text: str, limit: int) -> Iterable[str]:
    for paragraph in text.split("\n\n"):
        if utf16_len(paragraph) <= limit:
            yield paragraph
            continue
        chunk = ""
        for line in paragraph.split("\n"):
            candidate = f"{chunk}\n{line}" if chunk else line
            if utf16_len(candidate) <= limit or not chunk:
                chunk = candidate
            else:
                yield chunk
                chunk = line
        if chunk:
            yield chunk


# ---------------------------------------------------------------- loading and checking


class _Collector:
    """Gathers problems with line numbers found by searching the file's text."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._texts: dict[Path, list[str]] = {}

    def read_toml(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            self.add(path, 1, "file is missing")
            return None
        text = path.read_text(encoding="utf-8")
        self._texts[path] = text.splitlines()
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"line (\d+)", str(exc))
            self.add(path, int(match.group(1)) if match else 1, f"not valid TOML: {exc}")
            return None

    def line(self, path: Path, key: str, *, table: str | None = None, nth: int = 0) -> int:
        """The line of `key = ...`, inside the nth `[[table]]` when given; 1 when not found."""
        lines = self._texts.get(path, [])
        start = 0
        if table is not None:
            headers = [
                i
                for i, line in enumerate(lines)
                if re.match(rf"^\s*\[\[?{re.escape(table)}\]?\]", line)
            ]
            if nth < len(headers):
                start = headers[nth]
        for i in range(start, len(lines)):
            if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i]):
                return i + 1
        return start + 1

    def add(self, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem(path, line, message))


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
        return value

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
        return tuple(v.strip() for v in value)

    def tables(self, key: str) -> list[Mapping[str, Any]]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self._problem(key, f"must be a list of [[{key}]] tables")
            return []
        return value

    def unknown(self, allowed: Iterable[str]) -> None:
        for key in sorted(set(self.data) - set(allowed)):
            self._problem(key, "unknown key (a typo?)")


_METHOD_KEYS = (
    "title", "button", "emoji", "kind", "summary", "keywords", "what_it_is", "cost",
    "time_to_income", "skills", "first_steps", "mistakes", "platforms", "tips",
)  # fmt: skip


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
    keywords = r.texts("keywords", low=1, high=40)
    for word in keywords:
        if word != word.lower():
            r._problem("keywords", f"{word!r} must be lowercase")
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
    )
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
        r.unknown(("title", "button", "emoji", "body"))
        page = Page(
            page_id,
            r.text("title", limit=80),
            r.text("button", limit=SHORT_BUTTON_LIMIT),
            r.text("emoji", limit=8),
            r.text("body", limit=PAGE_LIMIT),
        )
        if r.ok:
            pages[page_id] = page
    for extra in sorted(set(data) - set(PAGE_IDS)):
        col.add(path, col.line(path, extra, table=extra), f"[{extra}] is not a known page")
    return pages


def _read_quiz_scores(
    col: _Collector, path: Path, method_ids: tuple[str, ...]
) -> tuple[QuizQuestion, ...]:
    data = col.read_toml(path) or {}
    questions = []
    answer_index = 0
    for q in data.get("questions", []):
        answers = []
        for a in q.get("answers", []):
            scores = a.get("scores", {})
            line = col.line(path, "scores", table="questions.answers", nth=answer_index)
            answer_index += 1
            missing = sorted(set(method_ids) - set(scores))
            extra = sorted(set(scores) - set(method_ids))
            if missing or extra:
                col.add(
                    path,
                    line,
                    f"scores of answer {a.get('id')!r}: missing {missing}, unknown {extra}",
                )
            if not all(isinstance(v, int) and 0 <= v <= 3 for v in scores.values()):
                col.add(
                    path, line, f"scores of answer {a.get('id')!r} must be whole numbers 0 to 3"
                )
            answers.append(QuizAnswer(str(a.get("id")), dict(scores)))
        if not 2 <= len(answers) <= 9:
            col.add(
                path,
                col.line(path, "id", table="questions"),
                f"question {q.get('id')!r} needs 2 to 9 answers",
            )
        questions.append(QuizQuestion(str(q.get("id")), tuple(answers)))
    if not 3 <= len(questions) <= 8:
        col.add(path, 1, f"the quiz has {len(questions)} questions, 3 to 8 expected")
    return tuple(questions)


def _read_quiz_text(col: _Collector, path: Path, questions: tuple[QuizQuestion, ...]) -> QuizText:
    data = col.read_toml(path) or {}
    r = _FieldReader(col, path, data)
    r.unknown(("title", "intro", "result_intro", "questions"))
    texts, labels, whys = {}, {}, {}
    table = data.get("questions", {})
    for q in questions:
        entry = table.get(q.id, {})
        qr = _FieldReader(col, path, entry, table=f"questions.{q.id}")
        texts[q.id] = qr.text("text", limit=300)
        for a in q.answers:
            ar = _FieldReader(
                col,
                path,
                entry.get("answers", {}).get(a.id, {}),
                table=f"questions.{q.id}.answers.{a.id}",
            )
            labels[q.id, a.id] = ar.text("label", limit=SHORT_BUTTON_LIMIT)
            whys[q.id, a.id] = ar.text("why", limit=120)
    for extra in sorted(set(table) - {q.id for q in questions}):
        col.add(
            path,
            col.line(path, "text", table=f"questions.{extra}"),
            f"question {extra!r} is not in content/quiz.toml",
        )
    return QuizText(
        r.text("title", limit=80),
        r.text("intro", limit=500),
        r.text("result_intro", limit=200),
        texts,
        labels,
        whys,
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


def _read_ui(
    col: _Collector, path: Path, env: Environment
) -> tuple[dict[str, Template], dict[str, str]]:
    data = col.read_toml(path) or {}
    compiled: dict[str, Template] = {}
    sources: dict[str, str] = {}
    for key, value in _flatten(data).items():
        line = col.line(path, key.rsplit(".", 1)[-1])
        if not isinstance(value, str) or not value.strip():
            col.add(path, line, f"{key}: must be non-empty text")
            continue
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


def load_library(root: Path) -> Library:
    """Load and check all content under `root`; raise ContentError listing every problem."""
    col = _Collector()
    order_path = root / "methods.toml"
    order_data = col.read_toml(order_path) or {}
    order = tuple(order_data.get("order", []))
    if not order:
        col.add(order_path, 1, "order: list the method ids in menu order")
    quiz = _read_quiz_scores(col, root / "quiz.toml", order)
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
            quiz=_read_quiz_text(col, base / "quiz.toml", quiz),
            ui=ui,
            ui_source=ui_source,
        )
    if not col.problems:
        _compare_languages(col, root, packs)
    ignore = frozenset(normalize(w) for w in order_data.get("ignore_words", []))
    library = Library(root, packs, order, quiz, ignore)
    _check_rendering(col, root, library)
    if col.problems:
        raise ContentError(col.problems, root)
    return library


def check_content(root: Path) -> list[str]:
    """All problems as `file:line: message` lines (empty when the content is fine)."""
    try:
        load_library(root)
    except ContentError as exc:
        return exc.lines
    return []


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
        ui_path = root / language / "ui.toml"
        for key in sorted(set(ref.ui_source) - set(other.ui_source)):
            col.add(ui_path, 1, f"{key}: missing (it is in {ref.language}/ui.toml)")
        for key in sorted(set(other.ui_source) - set(ref.ui_source)):
            col.add(
                ui_path,
                col.line(ui_path, key.rsplit(".", 1)[-1]),
                f"{key}: not in {ref.language}/ui.toml",
            )
        for key in sorted(set(ref.ui_source) & set(other.ui_source)):
            ref_vars = meta.find_undeclared_variables(ref.env.parse(ref.ui_source[key]))
            other_vars = meta.find_undeclared_variables(other.env.parse(other.ui_source[key]))
            if ref_vars != other_vars:
                col.add(
                    ui_path,
                    col.line(ui_path, key.rsplit(".", 1)[-1]),
                    f"{key}: uses {sorted(other_vars)}, but {ref.language} uses {sorted(ref_vars)}",
                )


_SAMPLE = "Sample ও নমুনা <&>"


def _check_rendering(col: _Collector, root: Path, library: Library) -> None:
    """Render every screen of every method in every language and check it as Telegram would."""
    for language, pack in library.packs.items():
        base = root / language

        def check(
            where: Path, line: int, what: str, text: str, *, limit: int = MESSAGE_LIMIT
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

        for key, template in pack.ui.items():
            ui_path = base / "ui.toml"
            line = col.line(ui_path, key.rsplit(".", 1)[-1])
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
                check(path, 1, "card", library.render(language, "card.j2", m=method))
                check(path, 1, "share card", library.render(language, "share.j2", m=method))
                pages_max = 1
                for section in callbacks.SECTIONS:
                    pages = library.section_pages(
                        language, method_id, section, done=frozenset(), page_no=0
                    )
                    pages_max = max(pages_max, len(pages))
                    for n, text in enumerate(pages, 1):
                        check(path, col.line(path, section), f"section {section} page {n}", text)
                for n, _tip in enumerate(method.tips):
                    text = library.tip_text(language, method_id, n)
                    check(path, col.line(path, "text", table="tips", nth=n), f"tip {n + 1}", text)
            except TemplateError as exc:
                col.add(root / "templates", 1, f"rendering {method_id} ({language}): {exc}")
                continue
            for data in callbacks.every_method_callback(
                method_id, steps=len(method.first_steps), section_pages=pages_max
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
