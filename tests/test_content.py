"""The content library: the shipped content passes the check; broken content is reported exactly."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.config import default_content_dir
from bot.content import (
    PAGE_LIMIT,
    SCREEN_WORDS,
    SECTIONS,
    Library,
    check_content,
    load_library,
    paginate,
    screen_words,
    to_bangla_digits,
)
from bot.telegram_html import parse_html, utf16_len

CONTENT = default_content_dir()


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(CONTENT)


def test_shipped_content_passes_the_check() -> None:
    assert check_content(CONTENT) == []


def test_every_method_is_complete_in_both_languages(library: Library) -> None:
    assert library.method_ids == (
        "freelancing", "writing", "youtube", "affiliate", "courses", "social", "stock", "dropshipping",
    )  # fmt: skip
    for language in ("bn", "en"):
        for method in library.methods(language):
            assert 4 <= len(method.first_steps) <= 8
            assert len(method.tips) >= 12
            assert method.platforms and all(p.url.startswith("https://") for p in method.platforms)


def test_bangla_digits_and_lakh_grouping(library: Library) -> None:
    env_bn = library.packs["bn"].env
    env_en = library.packs["en"].env
    assert env_bn.from_string("{{ 1234567 | number }}").render() == "১২,৩৪,৫৬৭"
    assert env_en.from_string("{{ 1234567 | number }}").render() == "1,234,567"
    assert env_bn.from_string("{{ d | date }}").render(d=date(2026, 11, 23)) == "২৩ নভেম্বর, ২০২৬"
    assert env_en.from_string("{{ d | date }}").render(d=date(2026, 11, 23)) == "November 23, 2026"
    assert to_bangla_digits("3/12") == "৩/১২"
    assert library.digits("en", 3) == "3"


def test_tip_uses_bangla_digits(library: Library) -> None:
    text = library.tip_text("bn", "stock", 2)
    assert "৩/১২" in text or "৩/১৩" in text
    assert not any(ch.isascii() and ch.isdigit() for ch in text.split("\n")[0])


def test_templates_escape_content_text(content_copy: Path) -> None:
    path = content_copy / "en" / "methods" / "stock.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('summary = "', 'summary = "Tom & Jerry <3 ', 1), encoding="utf-8")
    card = load_library(content_copy).render(
        "en", "card.j2", m=load_library(content_copy).method("en", "stock")
    )
    assert "Tom &amp; Jerry &lt;3" in card
    parse_html(card)  # Telegram would accept it


def test_broken_content_is_reported_as_file_line_message(content_copy: Path) -> None:
    bn = content_copy / "bn" / "methods" / "youtube.toml"
    lines = bn.read_text(encoding="utf-8").splitlines()
    kind_line = next(i for i, line in enumerate(lines) if line.startswith("kind ="))
    lines[kind_line] = 'kind = "sometimes"'
    bn.write_text("\n".join(lines) + "\n", encoding="utf-8")
    en_ui = content_copy / "en" / "ui.toml"
    en_ui.write_text(
        en_ui.read_text(encoding="utf-8").replace('home = "🏠 Main menu"', 'home = "<br>Home"'),
        encoding="utf-8",
    )
    problems = check_content(content_copy)
    assert (
        f"content/bn/methods/youtube.toml:{kind_line + 1}: kind: must be one of active, passive, both"
        in problems
    )
    assert any(
        p.startswith("content/en/ui.toml:")
        and "btn.home" in p
        and "unsupported start tag" in p.lower()
        for p in problems
    )


def test_languages_must_have_the_same_shape(content_copy: Path) -> None:
    en = content_copy / "en" / "methods" / "writing.toml"
    extra_tip = '\n[[tips]]\ntitle = "One more week"\ntext = "An extra tip that Bangla lacks."\n'
    en.write_text(en.read_text(encoding="utf-8") + extra_tip, encoding="utf-8")
    problems = check_content(content_copy)
    assert any("en/methods/writing.toml" in p and "tips:" in p and "in bn" in p for p in problems)


def test_missing_ui_key_and_bad_toml_are_reported_together(content_copy: Path) -> None:
    en_ui = content_copy / "en" / "ui.toml"
    en_ui.write_text(
        en_ui.read_text(encoding="utf-8").replace("stale = ", "stale_renamed = ", 1),
        encoding="utf-8",
    )
    quiz = content_copy / "en" / "quiz.toml"
    quiz.write_text(quiz.read_text(encoding="utf-8") + '\nbroken = "\n', encoding="utf-8")
    problems = check_content(content_copy)
    assert any(p.startswith("content/en/quiz.toml:") and "not valid TOML" in p for p in problems)


def test_long_sections_become_pages_that_fit_a_phone(library: Library) -> None:
    for language in ("bn", "en"):
        for method_id in library.method_ids:
            for section in SECTIONS:
                pages = library.section_pages(language, method_id, section, done=frozenset())
                heading = pages[0].split("\n\n")[0]
                for page in pages:
                    assert utf16_len(parse_html(page).plain) <= PAGE_LIMIT
                    assert screen_words(page) <= SCREEN_WORDS
                    assert page.startswith(heading)  # every page has its heading


def test_paginate_splits_between_whole_items_under_the_heading() -> None:
    heading = "<b>Tips</b>"
    items = [f"<b>Week {i}</b>\n" + "word " * 50 for i in range(7)]
    pages = paginate("\n\n".join([heading, *items]))
    assert [p.count("<b>Week") for p in pages] == [3, 2, 2]  # no tip alone on the last page
    assert all(p.startswith(heading + "\n\n") for p in pages)
    assert [i for p in pages for i in p.split("\n\n")[1:]] == items  # whole, in order
    for page in pages:
        parse_html(page)
        assert screen_words(page) <= SCREEN_WORDS


def test_paginate_splits_a_long_checklist_between_lines() -> None:
    lines = [f"▫️ {i}. " + "step " * 20 for i in range(12)]
    pages = paginate("<b>Steps</b>\n\n" + "\n".join(lines))
    assert len(pages) > 1
    assert [line for p in pages for line in p.split("\n\n", 1)[1].split("\n")] == lines


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ইউটিউব থেকে কিভাবে আয় করব?", "youtube"),
        ("freelancing", "freelancing"),
        ("ফ্রিলান্সিং", "freelancing"),
        ("ফ্রিল্যান্স", "freelancing"),
        ("freelancer", "freelancing"),
        ("ড্রপশিপিং", "dropshipping"),
        ("Shopify", "dropshipping"),
        ("ই-বুক", "courses"),
        ("affiliate marketing", "affiliate"),
    ],
)
def test_inline_search_finds_methods_in_both_scripts(
    library: Library, query: str, expected: str
) -> None:
    assert library.find(query)[0] == expected


def test_inline_search_finds_no_method_in_empty_or_stop_words(library: Library) -> None:
    assert library.find("অনলাইনে") == []
    assert library.find("   ") == []
    assert library.find("free") == []  # not a prefix of "freelancing"


def test_the_content_follows_its_house_style_and_has_no_stale_figures(library: Library) -> None:
    assert library.warnings == []


def test_house_style_and_stale_figures_are_warned_about_by_file_and_line(
    content_copy: Path,
) -> None:
    faq = content_copy / "bn" / "answers" / "faq.toml"
    text = faq.read_text(encoding="utf-8")
    first_body = text.index('body = """') + len('body = """\n')
    text = text[:first_body] + "একটা কথা কিভাবে বলি ফেসবুক-এ. " + text[first_body:]
    faq.write_text(text.replace('checked = "2026-12"', 'checked = "2024-01"', 1), encoding="utf-8")
    english = content_copy / "en" / "answers" / "faq.toml"  # the same month in both languages
    english.write_text(
        english.read_text(encoding="utf-8").replace(
            'checked = "2026-12"', 'checked = "2024-01"', 1
        ),
        encoding="utf-8",
    )
    warnings = load_library(content_copy, today=date(2026, 12, 1)).warnings
    body_line = text[:first_body].count("\n")  # the line of `body = """`
    for variant in ("একটা", "কিভাবে", "ফেসবুক", "এ."):
        assert any(
            w.startswith(f"content/bn/answers/faq.toml:{body_line}: warning: body: {variant!r}")
            for w in warnings
        ), (variant, warnings)
    assert any("checked 2024-01: over 12 months ago" in w for w in warnings)


def test_a_figure_without_its_month_is_warned_about_and_a_bad_month_refused(
    content_copy: Path,
) -> None:
    pages = content_copy / "en" / "pages.toml"
    text = pages.read_text(encoding="utf-8")
    pages.write_text(
        text.replace("Keep records:", "Fees are about 2% or $3. Keep records:"), encoding="utf-8"
    )
    warnings = load_library(content_copy).warnings
    assert any("pages.toml" in w and "add checked" in w for w in warnings)
    faq = content_copy / "en" / "answers" / "faq.toml"
    faq.write_text(
        faq.read_text(encoding="utf-8").replace('checked = "2026-12"', 'checked = "Dec 2026"', 1),
        encoding="utf-8",
    )
    problems = check_content(content_copy)
    assert any("checked: 'Dec 2026' must be a month" in p for p in problems)


def test_a_screen_over_its_word_limit_is_a_problem_naming_file_and_key(
    content_copy: Path,
) -> None:
    youtube = content_copy / "en" / "methods" / "youtube.toml"
    text = youtube.read_text(encoding="utf-8")
    youtube.write_text(text.replace('cost = "', 'cost = "' + "very " * 30, 1), encoding="utf-8")
    problems = check_content(content_copy)
    assert any(
        p.startswith("content/en/methods/youtube.toml:") and "card:" in p and "at most 90" in p
        for p in problems
    ), problems


def test_screens_made_from_content_alone_are_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A card or a section's pages are rendered on first use only, and the same as a render;
    the ticked steps are part of what a checklist is kept by."""
    library = load_library(CONTENT)
    card = library.card("bn", "youtube")
    assert card == library.render("bn", "card.j2", m=library.method("bn", "youtube"))
    none_done = library.section_pages("en", "youtube", "steps")
    first_done = library.section_pages("en", "youtube", "steps", done=frozenset({0}))
    assert none_done != first_done and first_done[0].count("✅") == 1
    english = library.card("en", "youtube")
    assert english != card  # each language its own
    monkeypatch.setattr(library, "render", lambda *a, **k: pytest.fail("rendered again"))
    assert library.card("bn", "youtube") is card
    assert library.section_pages("en", "youtube", "steps", done=frozenset({0})) is first_done
    assert library.card("en", "youtube") is english
