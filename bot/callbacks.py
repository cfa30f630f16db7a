"""Callback data: short ASCII strings, one builder per screen, so every button stays under 64 bytes.

Format `<screen>:<arg>:<arg>`; handlers match them with the patterns below. A button from an old
message whose data no longer parses (or names a method that was removed) is answered by the
stale-button fallback, which shows the current menu.

A button that changes something carries the change itself, never "the next one" or "toggle":
the step and whether it is done, the method, the language, the broadcast's draft. On slow data
people tap twice, and Telegram may deliver both taps at once: the second then finds the change
made and answers as the first did.
"""

from __future__ import annotations

import re
from datetime import timedelta

MAX_BYTES = 64
# A tap this soon after the change it asks for is taken as a second tap on the button that made
# it, and answered as that one was ("added to your path", not "already on your path").
REPEAT_WINDOW = timedelta(minutes=5)
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


def path(method_id: str, origin: str | None = None) -> str:
    """A path's checklist. Opened from a card (`origin`: the card's own origin), Back returns to
    that card; without it, to My path (or to the card the button was on, see handlers/mypath.py)."""
    return f"path:{method_id}:{origin}" if origin else f"path:{method_id}"


def step(method_id: str, index: int, done: bool, origin: str | None = None) -> str:
    """Mark first step `index` done (or not): the state to set, so a second tap changes nothing."""
    data = f"step:{method_id}:{index}:{int(done)}"
    return f"{data}:{origin}" if origin else data


def remove_path(method_id: str, confirmed: bool = False, origin: str | None = None) -> str:
    data = f"drop:{method_id}:{int(confirmed)}"
    return f"{data}:{origin}" if origin else data


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


def tip_step(method_id: str, index: int) -> str:
    """ "I did step n" under a tip: marks that first step done (adding the path if needed)."""
    return f"tipstep:{method_id}:{index}"


SUBSCRIBE_MENU = "tips:add"
SCHEDULE = "when"


def schedule(weekday: int | None = None, hour: int | None = None) -> str:
    return ":".join([SCHEDULE, *(str(v) for v in (weekday, hour) if v is not None)])


FORGET_YES = "forget:yes"
FORGET_NO = "forget:no"


def broadcast(draft: int, audience: str) -> str:
    """Confirm (audience "all", "bn", "en") or cancel ("no") the admin's draft number `draft`."""
    return f"bc:{draft}:{audience}"


def group_card(method_id: str) -> str:
    """A method's compact card in a group; the `g` keeps group screens apart from private ones."""
    return f"gcard:{method_id}"


GROUP_LIST = "glist"


def share_method_image(method_id: str) -> str:
    """Send a method's card as a picture (bot.cards), to forward anywhere."""
    return f"img:m:{method_id}"


def share_tip_image(method_id: str, index: int) -> str:
    """Send weekly tip number `index` of a method as a picture."""
    return f"img:t:{method_id}:{index}"


def share_quiz_image(answers: str) -> str:
    """Send a quiz result as a picture; like `quiz`, one digit per answer."""
    return f"img:q:{answers}"


def fits(data: str) -> bool:
    """Telegram refuses callback data over 64 bytes of UTF-8."""
    return 0 < len(data.encode("utf-8")) <= MAX_BYTES


def every_method_callback(
    method_id: str, *, steps: int, section_pages: int, tips: int
) -> list[str]:
    """All the callback data a method's screens can produce, for the content check."""
    data = [card(method_id, origin) for origin in ORIGINS]
    data += [
        section(method_id, s, p, origin)
        for s in SECTIONS
        for p in range(section_pages)
        for origin in ORIGINS
    ]
    data += [step(method_id, i, True, origin) for i in range(steps) for origin in ORIGINS]
    data += [choose(method_id, origin) for origin in ORIGINS]
    data += [path(method_id, origin) for origin in ORIGINS]
    data += [remove_path(method_id, True, origin) for origin in ORIGINS]
    data += [group_card(method_id), subscribe(method_id)]
    data += [unsubscribe(method_id, from_settings=True)]
    data += [tip_step(method_id, i) for i in range(steps)]
    data += [share_method_image(method_id)]
    data += [share_tip_image(method_id, i) for i in range(tips)]
    return data
