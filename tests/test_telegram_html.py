"""Telegram HTML parse mode: entities, offsets and the exact errors Telegram reports."""

from __future__ import annotations

import pytest

from bot.telegram_html import TelegramHTMLError, html_to_terminal, parse_html, utf16_len


def test_utf16_len_counts_surrogate_pairs() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("আয়ের পথ") == 8
    assert utf16_len("😀") == 2


@pytest.mark.parametrize(
    ("html", "entity_type"),
    [
        ("<b>x</b>", "bold"),
        ("<strong>x</strong>", "bold"),
        ("<i>x</i>", "italic"),
        ("<em>x</em>", "italic"),
        ("<u>x</u>", "underline"),
        ("<ins>x</ins>", "underline"),
        ("<s>x</s>", "strikethrough"),
        ("<strike>x</strike>", "strikethrough"),
        ("<del>x</del>", "strikethrough"),
        ('<span class="tg-spoiler">x</span>', "spoiler"),
        ("<tg-spoiler>x</tg-spoiler>", "spoiler"),
        ("<code>x</code>", "code"),
        ("<pre>x</pre>", "pre"),
        ("<blockquote>x</blockquote>", "blockquote"),
        ("<blockquote expandable>x</blockquote>", "expandable_blockquote"),
    ],
)
def test_each_tag_becomes_its_entity(html: str, entity_type: str) -> None:
    parsed = parse_html(html)
    assert parsed.plain == "x"
    assert parsed.entities == [{"type": entity_type, "offset": 0, "length": 1}]


def test_links_emoji_and_pre_language_carry_their_arguments() -> None:
    parsed = parse_html(
        '<a href="https://fiverr.com/x?a=1&amp;b=2">Fiverr</a> '
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> '
        '<pre><code class="language-python">print(1)</code></pre>'
    )
    assert parsed.plain == "Fiverr 👍 print(1)"
    assert parsed.entities == [
        {"type": "text_link", "offset": 0, "length": 6, "url": "https://fiverr.com/x?a=1&b=2"},
        {
            "type": "custom_emoji",
            "offset": 7,
            "length": 2,
            "custom_emoji_id": "5368324170671202286",
        },
        {"type": "pre", "offset": 10, "length": 8, "language": "python"},
    ]


def test_offsets_are_utf16_and_nesting_is_kept() -> None:
    parsed = parse_html("😀 <b>আয়<i>ের</i></b>")
    assert parsed.plain == "😀 আয়ের"
    assert parsed.entities == [
        {"type": "bold", "offset": 3, "length": 5},
        {"type": "italic", "offset": 6, "length": 2},
    ]


def test_entities_decode_and_empty_tags_vanish() -> None:
    parsed = parse_html("&lt;b&gt; &amp; &quot;&#2453;&#x995;<b></b>")
    assert parsed.plain == '<b> & "কক'
    assert parsed.entities == []


def test_stripped_trims_whitespace_and_shifts_entities() -> None:
    parsed = parse_html("\n  <b>hi</b> there \n").stripped()
    assert parsed.plain == "hi there"
    assert parsed.entities == [{"type": "bold", "offset": 0, "length": 2}]


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ("hello <br> x", 'unsupported start tag "br" at byte offset 6'),
        ("আ <br/>", 'unsupported start tag "br/" at byte offset 4'),
        ("<b>bold", 'can\'t find end tag corresponding to start tag "b"'),
        ("text</b>", "unexpected end tag at byte offset 4"),
        ("<b><i>x</b></i>", 'unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("a < b", 'unsupported start tag "" at byte offset 2'),
        ("Tom & Jerry", 'unescaped "&" at byte offset 4; use "&amp;"'),
        ("&nbsp;", 'unescaped "&" at byte offset 0; use "&amp;"'),
        ("<b", "unclosed start tag at byte offset 0"),
        ("<b>x</b", "unclosed end tag at byte offset 4"),
        ('<b class="x">y</b>', 'unsupported attribute "class" of the tag "b" at byte offset 0'),
        ('<span class="x">y</span>', 'tag "span" must have class "tg-spoiler" at byte offset 0'),
        ('<a href="javascript:alert(1)">x</a>', 'unsupported URL "javascript:alert(1)"'),
        ("<a>x</a>", 'unsupported URL ""'),
        ('<a href"x">y</a>', 'expected equal sign in declaration of an attribute of the tag "a"'),
        ("<tg-emoji>x</tg-emoji>", 'tag "tg-emoji" must have an emoji-id'),
        ("&#0;", "invalid character reference at byte offset 0"),
    ],
)
def test_invalid_html_raises_telegrams_message(html: str, message: str) -> None:
    with pytest.raises(TelegramHTMLError) as caught:
        parse_html(html)
    assert str(caught.value).startswith("Can't parse entities: ")
    assert message in str(caught.value)


def test_allowed_links() -> None:
    for url in ("http://a.b", "https://a.b/c", "tg://user?id=1", "mailto:a@b.c"):
        assert parse_html(f'<a href="{url}">x</a>').entities[0]["url"] == url


def test_terminal_rendering_plain_and_ansi() -> None:
    html = '<b>Hi</b> <i>you</i> <a href="https://x.org">site</a> <code>a&lt;b</code>'
    assert html_to_terminal(html, ansi=False) == "*Hi* _you_ site (https://x.org) a<b"
    assert html_to_terminal(html) == "\x1b[1mHi\x1b[22m \x1b[3myou\x1b[23m site (https://x.org) a<b"
    assert html_to_terminal("<blockquote>a\nb</blockquote>", ansi=False) == "▎ a\n▎ b"


def test_terminal_rendering_shows_invalid_html_verbatim() -> None:
    assert html_to_terminal("a <br> b") == "a <br> b"
