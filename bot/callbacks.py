"""Callback data: short ASCII strings, one builder per screen, so every button stays under 64 bytes.

Format `<screen>:<arg>:<arg>`; handlers match them with the patterns below. A button from an old
message whose data no longer parses (or names a method that was removed) is answered by the
stale-button fallback, which shows the current menu.
"""

from __future__ import annotations

import re

MAX_BYTES = 64
METHOD_ID_RE = re.compile(r"^[a-z][a-z0-9_]{1,15}$")
SECTIONS = ("what", "steps", "platforms", "mistakes", "tips")
ORIGINS = ("all", "active", "passive", "quiz", "path", "find")

HOME = "home"
HELP = "help"
LANGUAGE = "lang"
MY_PATH = "path"
TIPS = "tips"


def list_of(kind: str) -> str:
    """A list of methods: 'all', 'active' or 'passive'."""
    return f"list:{kind}"


def page(page_id: str) -> str:
    return f"page:{page_id}"


def answer(collection: str, entry_id: str) -> str:
    """A short answer (FAQ, getting paid, a scam, free learning)."""
    return f"ans:{collection}:{entry_id}"


def answers(collection: str, page_no: int = 0) -> str:
    """The list of a collection's answers, a page of buttons at a time."""
    return f"anl:{collection}:{page_no}"


def card(method_id: str, origin: str = "all") -> str:
    return f"card:{method_id}:{origin}"


def section(method_id: str, section_id: str, page_no: int = 0, origin: str = "all") -> str:
    return f"sec:{method_id}:{section_id}:{page_no}:{origin}"


def choose(method_id: str, origin: str = "all") -> str:
    return f"choose:{method_id}:{origin}"


def path(method_id: str) -> str:
    return f"path:{method_id}"


def toggle_step(method_id: str, step: int) -> str:
    return f"step:{method_id}:{step}"


def remove_path(method_id: str, confirmed: bool = False) -> str:
    return f"drop:{method_id}:{int(confirmed)}"


def set_language(language: str) -> str:
    return f"lang:{language}"


def quiz(answers: str = "") -> str:
    """Quiz progress: one digit per answered question (the answer's index)."""
    return f"quiz:{answers}"


QUIZ_RESULT = "quiz:result"


def subscribe(method_id: str) -> str:
    return f"sub:{method_id}"


def unsubscribe(method_id: str, *, from_settings: bool = False) -> str:
    """Stop one method's tips; from the tips screen the screen is redrawn, from a tip it is not."""
    return f"unsub:{method_id}:{int(from_settings)}"


def tip_step(method_id: str) -> str:
    """ "I did the next step" under a tip: ticks the next first step of that path."""
    return f"tipstep:{method_id}"


SUBSCRIBE_MENU = "tips:add"
SCHEDULE = "when"


def schedule(weekday: int | None = None, hour: int | None = None) -> str:
    return ":".join([SCHEDULE, *(str(v) for v in (weekday, hour) if v is not None)])


def group_card(method_id: str) -> str:
    """A method's compact card in a group; the `g` keeps group screens apart from private ones."""
    return f"gcard:{method_id}"


GROUP_LIST = "glist"


def fits(data: str) -> bool:
    """Telegram refuses callback data over 64 bytes of UTF-8."""
    return 0 < len(data.encode("utf-8")) <= MAX_BYTES


def every_method_callback(method_id: str, *, steps: int, section_pages: int) -> list[str]:
    """All the callback data a method's screens can produce, for the content check."""
    data = [card(method_id, origin) for origin in ORIGINS]
    data += [
        section(method_id, s, p, origin)
        for s in SECTIONS
        for p in range(section_pages)
        for origin in ORIGINS
    ]
    data += [toggle_step(method_id, i) for i in range(steps)]
    data += [choose(method_id, origin) for origin in ORIGINS]
    data += [path(method_id), remove_path(method_id, True), group_card(method_id)]
    data += [subscribe(method_id), unsubscribe(method_id, from_settings=True), tip_step(method_id)]
    return data
