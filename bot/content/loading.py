"""Loading: every content file read into its model, then the whole library checked, once.

At start-up everything is read, every template is compiled and every screen of every method is
rendered in every language and checked against Telegram's rules, so a broken sentence is
reported as `file:line: message` before it can reach a user.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, Template, TemplateSyntaxError

from bot.content.checks import check_quiz, check_rendering, check_targets, compare_languages
from bot.content.fields import Table
from bot.content.index import read_search
from bot.content.library import LanguagePack, Library
from bot.content.model import COLLECTIONS, ENTRY_ID, METHOD_ID, PAGE_IDS, Entry, Method, Page
from bot.content.problems import Collector, ContentError
from bot.content.quiz import read_quiz_scores, read_quiz_text
from bot.content.render import make_env, ui_function
from bot.languages import LANGUAGES


def load_library(root: Path, *, today: date | None = None) -> Library:
    """Load and check all content under `root`; raise ContentError listing every problem.

    Warnings (house style, figures checked over a year ago) do not stop loading: they are in
    `Library.warnings` for `ayerpoth content check` to print.
    """
    col = Collector(today or date.today())
    order_path = root / "methods.toml"
    order_data = col.read_toml(order_path) or {}
    order = tuple(order_data.get("order", []))
    if not order:
        col.add(order_path, 1, "order: list the method ids in menu order")
    quiz, quiz_needs = read_quiz_scores(col, root / "quiz.toml", order)
    packs: dict[str, LanguagePack] = {}
    for language in LANGUAGES:
        base = root / language
        env = make_env(root, language)
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
        env.globals["ui"] = ui_function(language, ui)
        packs[language] = LanguagePack(
            language=language,
            env=env,
            methods={mid: methods[mid] for mid in order if mid in methods},
            pages=_read_pages(col, base / "pages.toml"),
            quiz=read_quiz_text(col, base / "quiz.toml", quiz, quiz_needs),
            ui=ui,
            ui_source=ui_source,
            entries={
                name: _read_entries(col, base / "answers" / f"{name}.toml", name)
                for name in COLLECTIONS
            },
        )
    if not col.problems:
        compare_languages(col, root, packs)
    library = Library(
        root, packs, order, quiz, read_search(col, root, packs, order), quiz_needs=quiz_needs
    )
    check_targets(col, root, library)
    check_rendering(col, root, library)
    check_quiz(col, root, library)
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


def _read_method(col: Collector, path: Path) -> Method | None:
    data = col.read_toml(path)
    if data is None:
        return None
    table = Table(col, path, data)
    method = table.read(Method, id=path.stem)
    if not re.fullmatch(METHOD_ID, path.stem):
        col.add(path, 1, "file name must be a short id of a-z, 0-9 and _ (2-16 characters)")
    return method if table.ok else None


def _read_pages(col: Collector, path: Path) -> dict[str, Page]:
    data = col.read_toml(path) or {}
    pages = {}
    for page_id in PAGE_IDS:
        data_of_page = data.get(page_id)
        if not isinstance(data_of_page, dict):
            col.add(path, 1, f"[{page_id}] page is missing")
            continue
        table = Table(col, path, data_of_page, table=page_id)
        page = table.read(Page, id=page_id)
        if table.ok:
            pages[page_id] = page
    for extra in sorted(set(data) - set(PAGE_IDS)):
        col.add(path, col.line(path, extra, table=extra), f"[{extra}] is not a known page")
    return pages


def _read_entries(col: Collector, path: Path, collection: str) -> dict[str, Entry]:
    """One answers file: a table per entry, in the order lists show them."""
    data = col.read_toml(path) or {}
    entries = {}
    for entry_id, data_of_entry in data.items():
        if not isinstance(data_of_entry, dict):
            col.add(path, col.line(path, entry_id), f"{entry_id}: must be a [{entry_id}] table")
            continue
        table = Table(col, path, data_of_entry, table=entry_id)
        if not re.fullmatch(ENTRY_ID, entry_id):
            table.problem("title", f"[{entry_id}]: ids are a-z, 0-9 and _, 2 to 20 characters")
        entry = table.read(Entry, collection=collection, id=entry_id)
        if (words := len(entry.body.split())) > COLLECTIONS[collection]:
            table.problem(
                "body", f"has {words} words, at most {COLLECTIONS[collection]} on a phone screen"
            )
        if table.ok:
            entries[entry_id] = entry
    return entries


def _read_ui(
    col: Collector, path: Path, env: Environment
) -> tuple[dict[str, Template], dict[str, str]]:
    data = col.read_toml(path) or {}
    compiled: dict[str, Template] = {}
    sources: dict[str, str] = {}
    for key, value in _flatten(data).items():
        line = col.ui_line(path, key)
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


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
