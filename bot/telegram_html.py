"""Telegram's HTML parse mode, reimplemented so that mistakes are caught before Telegram sees them.

The fake Bot API (bot/fakeapi) and the content checker both need to know exactly what Telegram
does with ``parse_mode=HTML``: which tags exist, which attributes they take, how entities are
decoded and how offsets are counted (UTF-16 code units, like the real API).  The parser follows
tdlib's ``parse_html`` closely, including its error texts, but is deliberately stricter in three
places so that content bugs surface in tests instead of silently degrading in production:

* a bare ``&`` that does not start a known entity is an error (Telegram keeps it as text);
* attributes other than the documented ones are an error (Telegram ignores them);
* an ``<a href>`` whose URL is not http(s)/tg/mailto is an error (Telegram drops the link).

Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ParsedText",
    "TelegramHTMLError",
    "html_to_terminal",
    "parse_html",
    "utf16_len",
]

#: HTML tag name -> Telegram entity type (``span`` is checked for its class separately).
_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}

_ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href"}),
    "code": frozenset({"class"}),
    "span": frozenset({"class"}),
    "tg-emoji": frozenset({"emoji-id"}),
    "blockquote": frozenset({"expandable"}),
}

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_LINK_RE = re.compile(r"^(?:https?://[^\s/?#]+|tg://[^\s]+|mailto:[^\s@]+@[^\s@]+)", re.IGNORECASE)
_SPACE = " \t\r\n\f"
_TRIM = " \t\r\n\f\v\u00a0\u2028\u2029"


class TelegramHTMLError(ValueError):
    """Raised for HTML that Telegram (or our stricter reading of it) refuses.

    ``str(error)`` is Telegram's own wording, e.g. ``Can't parse entities: unsupported start tag
    "br" at byte offset 12``; the fake Bot API prefixes it with ``Bad Request: `` and lowers the
    first letter, exactly as the real API reports it.
    """

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"Can't parse entities: {detail}")


@dataclass(frozen=True)
class ParsedText:
    """The text Telegram would show plus its entities (offsets/lengths in UTF-16 units)."""

    plain: str
    entities: list[dict[str, Any]] = field(default_factory=list)

    def stripped(self) -> ParsedText:
        """Trim leading/trailing whitespace like Telegram does, shifting and clipping entities."""
        lead = len(self.plain) - len(self.plain.lstrip(_TRIM))
        plain = self.plain.strip(_TRIM)
        if plain == self.plain:
            return self
        shift = utf16_len(self.plain[:lead])
        end = utf16_len(plain)
        entities = []
        for entity in self.entities:
            start = max(entity["offset"] - shift, 0)
            stop = min(entity["offset"] + entity["length"] - shift, end)
            if stop > start:
                entities.append({**entity, "offset": start, "length": stop - start})
        return ParsedText(plain, entities)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: Telegram measures offsets and limits in these."""
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Start:
    name: str
    attrs: dict[str, str]
    byte_offset: int


@dataclass(frozen=True)
class _End:
    name: str
    byte_offset: int


_Token = _Text | _Start | _End


class _Scanner:
    """Splits Telegram HTML into text, start-tag and end-tag tokens, tdlib style."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def byte_offset(self, pos: int) -> int:
        return len(self.text[:pos].encode("utf-8"))

    def tokens(self) -> Iterator[_Token]:
        text = self.text
        buf: list[str] = []
        while self.pos < len(text):
            char = text[self.pos]
            if char == "&":
                buf.append(self._entity())
            elif char == "<":
                if buf:
                    yield _Text("".join(buf))
                    buf = []
                yield self._tag()
            else:
                buf.append(char)
                self.pos += 1
        if buf:
            yield _Text("".join(buf))

    def _entity(self) -> str:
        match = _ENTITY_RE.match(self.text, self.pos)
        if match is None:
            raise TelegramHTMLError(
                f'unescaped "&" at byte offset {self.byte_offset(self.pos)}; use "&amp;"'
            )
        name, decimal, hexadecimal = match.groups()
        if name:
            decoded = _NAMED_ENTITIES[name]
        else:
            code = int(decimal, 10) if decimal else int(hexadecimal, 16)
            if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise TelegramHTMLError(
                    f"invalid character reference at byte offset {self.byte_offset(self.pos)}"
                )
            decoded = chr(code)
        self.pos = match.end()
        return decoded

    def _tag(self) -> _Token:
        text = self.text
        begin = self.pos
        offset = self.byte_offset(begin)
        if text.startswith("</", begin):
            close = text.find(">", begin)
            if close < 0:
                raise TelegramHTMLError(f"unclosed end tag at byte offset {offset}")
            self.pos = close + 1
            return _End(text[begin + 2 : close].strip(_SPACE).lower(), offset)
        self.pos = begin + 1
        name = self._read_until(_SPACE + ">", offset).lower()
        if name not in _TAG_ENTITY:
            raise TelegramHTMLError(f'unsupported start tag "{name}" at byte offset {offset}')
        attrs: dict[str, str] = {}
        while True:
            self._skip_spaces(offset)
            if text[self.pos] == ">":
                self.pos += 1
                return _Start(name, attrs, offset)
            attr = self._read_until(_SPACE + "=>", offset).lower()
            self._skip_spaces(offset)
            if text[self.pos] != "=":
                if name == "blockquote" and attr == "expandable":
                    attrs[attr] = ""
                    continue
                raise TelegramHTMLError(
                    f'expected equal sign in declaration of an attribute of the tag "{name}" '
                    f"at byte offset {offset}"
                )
            self.pos += 1
            self._skip_spaces(offset)
            value = self._attribute_value(offset)
            if attr not in _ALLOWED_ATTRIBUTES.get(name, frozenset()):
                raise TelegramHTMLError(
                    f'unsupported attribute "{attr}" of the tag "{name}" at byte offset {offset}'
                )
            attrs[attr] = value

    def _read_until(self, stops: str, offset: int) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        if self.pos >= len(self.text):
            raise TelegramHTMLError(f"unclosed start tag at byte offset {offset}")
        return self.text[start : self.pos]

    def _skip_spaces(self, offset: int) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1
        if self.pos >= len(self.text):
            raise TelegramHTMLError(f"unclosed start tag at byte offset {offset}")

    def _attribute_value(self, offset: int) -> str:
        text = self.text
        quote = text[self.pos]
        if quote not in "'\"":
            start = self.pos
            while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] in ".-"):
                self.pos += 1
            if self.pos >= len(text):
                raise TelegramHTMLError(f"unclosed start tag at byte offset {offset}")
            return text[start : self.pos]
        self.pos += 1
        value: list[str] = []
        while self.pos < len(text) and text[self.pos] != quote:
            if text[self.pos] == "&":
                value.append(self._entity())
            else:
                value.append(text[self.pos])
                self.pos += 1
        if self.pos >= len(text):
            raise TelegramHTMLError(f"unclosed start tag at byte offset {offset}")
        self.pos += 1
        return "".join(value)


# ---------------------------------------------------------------------------------------------
# Parser


@dataclass
class _Open:
    tag: _Start
    offset: int
    extra: dict[str, Any]


def _entity_extra(tag: _Start) -> dict[str, Any]:
    """Validate one start tag's attributes and return the entity fields they contribute."""
    name, attrs, where = tag.name, tag.attrs, tag.byte_offset
    if name == "a":
        href = attrs.get("href", "")
        if not _LINK_RE.match(href):
            raise TelegramHTMLError(
                f'unsupported URL "{href}" in tag "a" at byte offset {where}; '
                "use an http(s), tg:// or mailto: URL"
            )
        return {"url": href}
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise TelegramHTMLError(f'tag "span" must have class "tg-spoiler" at byte offset {where}')
    if name == "code" and "class" in attrs:
        language = attrs["class"]
        if not language.startswith("language-") or len(language) == len("language-"):
            raise TelegramHTMLError(
                f'class of the tag "code" must start with "language-" at byte offset {where}'
            )
        return {"language": language[len("language-") :]}
    if name == "tg-emoji":
        emoji_id = attrs.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise TelegramHTMLError(f'tag "tg-emoji" must have an emoji-id at byte offset {where}')
        return {"custom_emoji_id": emoji_id}
    if name == "blockquote" and "expandable" in attrs:
        return {"expandable": True}
    return {}


def parse_html(text: str) -> ParsedText:
    """Parse ``text`` the way Telegram's ``parse_mode=HTML`` does.

    Returns the plain text and Bot API entity dicts sorted by offset. Raises
    :class:`TelegramHTMLError` with Telegram's message for anything the real API rejects.
    """
    plain: list[str] = []
    position = 0
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    for token in _Scanner(text).tokens():
        if isinstance(token, _Text):
            plain.append(token.text)
            position += utf16_len(token.text)
        elif isinstance(token, _Start):
            stack.append(_Open(token, position, _entity_extra(token)))
        else:
            if not stack:
                raise TelegramHTMLError(f"unexpected end tag at byte offset {token.byte_offset}")
            top = stack[-1]
            if token.name != top.tag.name:
                raise TelegramHTMLError(
                    f"unmatched end tag at byte offset {token.byte_offset}, "
                    f'expected "</{top.tag.name}>", found "</{token.name}>"'
                )
            stack.pop()
            _close(top, position, stack, entities)
    if stack:
        raise TelegramHTMLError(
            f'can\'t find end tag corresponding to start tag "{stack[-1].tag.name}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(plain), entities)


def _close(item: _Open, position: int, stack: list[_Open], entities: list[dict[str, Any]]) -> None:
    """Turn a closed tag into an entity, applying Telegram's rules for code inside pre."""
    length = position - item.offset
    name = item.tag.name
    if length == 0:
        return
    if any(o.tag.name in ("pre", "code") for o in stack):
        # Telegram keeps no formatting inside code blocks; only <pre><code class=...> matters,
        # and it becomes the language of the surrounding pre entity.
        parent = stack[-1]
        if name == "code" and parent.tag.name == "pre" and "language" in item.extra:
            parent.extra["language"] = item.extra["language"]
        return
    entity_type = _TAG_ENTITY[name]
    extra = dict(item.extra)
    if name == "code":
        extra.pop("language", None)
    if name == "blockquote" and extra.pop("expandable", False):
        entity_type = "expandable_blockquote"
    entities.append({"type": entity_type, "offset": item.offset, "length": length, **extra})


# ---------------------------------------------------------------------------------------------
# Terminal rendering

_ANSI = {
    "bold": ("\x1b[1m", "\x1b[22m"),
    "italic": ("\x1b[3m", "\x1b[23m"),
    "underline": ("\x1b[4m", "\x1b[24m"),
    "strikethrough": ("\x1b[9m", "\x1b[29m"),
    "spoiler": ("\x1b[7m", "\x1b[27m"),
}
_PLAIN = {
    "bold": ("*", "*"),
    "italic": ("_", "_"),
    "underline": ("__", "__"),
    "strikethrough": ("~", "~"),
    "spoiler": ("||", "||"),
}


def html_to_terminal(text: str, *, ansi: bool = True) -> str:
    """Render Telegram HTML readably for a terminal (the playground and test failure output).

    Bold/italic/underline/strike/spoiler become ANSI styles (or ``*x*``-style marks when
    ``ansi`` is false), links become ``text (url)``, blockquotes get a bar in front of each
    line, code is shown as-is and entities are unescaped. Invalid HTML is shown verbatim so a
    broken message is still visible rather than hidden behind an exception.
    """
    try:
        tokens = list(_Scanner(text).tokens())
    except TelegramHTMLError:
        return text
    marks = _ANSI if ansi else _PLAIN
    buffers: list[list[str]] = [[]]
    opened: list[_Start] = []
    for token in tokens:
        if isinstance(token, _Text):
            buffers[-1].append(token.text)
        elif isinstance(token, _Start):
            opened.append(token)
            buffers.append([])
        elif opened and opened[-1].name == token.name:
            tag = opened.pop()
            inner = "".join(buffers.pop())
            buffers[-1].append(_wrap(tag, inner, marks))
        else:
            return text
    while opened:
        inner = "".join(buffers.pop())
        buffers[-1].append(_wrap(opened.pop(), inner, marks))
    return "".join(buffers[0])


def _wrap(tag: _Start, inner: str, marks: dict[str, tuple[str, str]]) -> str:
    entity = _TAG_ENTITY[tag.name]
    if entity == "text_link":
        url = tag.attrs.get("href", "")
        return inner if not url or url == inner else f"{inner} ({url})"
    if entity == "blockquote":
        return "\n".join(f"▎ {line}" for line in inner.split("\n"))
    if entity in marks:
        start, end = marks[entity]
        return f"{start}{inner}{end}"
    return inner
