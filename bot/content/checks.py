"""Checks of the whole library once it is loaded: languages of the same shape, buttons that lead
somewhere, and every screen of every method, page, answer and the quiz rendered in every language
and checked as Telegram would check it (markup, length) and as a phone shows it (words)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import TemplateError, meta

from bot.content.library import LanguagePack, Library
from bot.content.model import QUIZ_TOP, SECTION_KEYS, SECTIONS
from bot.content.problems import Collector
from bot.content.render import MESSAGE_LIMIT, SCREEN_WORDS, screen_words
from bot.languages import LANGUAGES
from bot.telegram_html import TelegramHTMLError, parse_html, utf16_len

CARD_WORDS = 90  # a method card's first screen
BUTTON_LIMIT = 32
_SAMPLE = "Sample ও নমুনা <&>"


def check_targets(col: Collector, root: Path, library: Library) -> None:
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


def compare_languages(col: Collector, root: Path, packs: Mapping[str, LanguagePack]) -> None:
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
            col.add(ui_path, col.ui_line(ui_path, key), f"{key}: not in {ref.language}/ui.toml")
        for key in sorted(set(ref.ui_source) & set(other.ui_source)):
            ref_vars = meta.find_undeclared_variables(ref.env.parse(ref.ui_source[key]))
            other_vars = meta.find_undeclared_variables(other.env.parse(other.ui_source[key]))
            if ref_vars != other_vars:
                col.add(
                    ui_path,
                    col.ui_line(ui_path, key),
                    f"{key}: uses {sorted(other_vars)}, but {ref.language} uses {sorted(ref_vars)}",
                )


def _compare_entries(col: Collector, root: Path, ref: LanguagePack, other: LanguagePack) -> None:
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


def check_rendering(col: Collector, root: Path, library: Library) -> None:
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
            line = col.ui_line(ui_path, key)
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
                for section in SECTIONS:
                    pages = library.section_pages(language, method_id, section)
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
                check(
                    path,
                    col.line(path, "first_steps"),
                    "checklist",
                    library.render(language, "checklist.j2", m=method, done=frozenset()),
                    advice="shorten the first steps",
                )
            except TemplateError as exc:
                col.add(root / "templates", 1, f"rendering {method_id} ({language}): {exc}")
                continue
        try:  # My path with every method on it (a person has at most three)
            chosen = [(m, frozenset[int]()) for m in pack.methods.values()]
            text = library.render(language, "my_paths.j2", paths=chosen)
        except TemplateError as exc:
            col.add(root / "templates" / "my_paths.j2", 1, f"{exc}")
        else:
            check(base / "ui.toml", col.ui_line(base / "ui.toml", "path.title"), "my path", text)
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


def check_quiz(col: Collector, root: Path, library: Library) -> None:
    """Render the quiz's screens in every language and check them as Telegram would."""
    questions = library.quiz_questions
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
