"""What free-text search is built from: every topic the content can answer with (bot/search.py
does the searching), and content/search.toml's word lists, checked with the rest."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bot.content.library import LanguagePack
from bot.content.model import COLLECTIONS
from bot.content.problems import Collector
from bot.search import Document, SearchIndex


def search_documents(
    packs: Mapping[str, LanguagePack],
    order: Iterable[str],
    collection_keywords: Mapping[str, Iterable[str]] | None = None,
) -> list[Document]:
    """Every topic a question can be answered with, each language's text in one document."""
    shared = {name: tuple(words) for name, words in (collection_keywords or {}).items()}
    docs: dict[str, list[tuple[str, str, str]]] = {}

    def add(target: str, title: str, keywords: Iterable[str], *body: str) -> None:
        docs.setdefault(target, []).append((title, " ".join(keywords), "\n".join(body)))

    for pack in packs.values():
        for method_id in order:
            m = pack.methods.get(method_id)
            if m is None:  # it failed to load; the problem is already reported
                continue
            keywords = (*m.keywords, *shared.get("methods", ()))
            add(f"card:{m.id}", f"{m.title} {m.button} {m.id}", keywords, m.summary, m.cost,
                m.time_to_income, *m.skills)  # fmt: skip
            sections = {
                "what": (m.what_it_is,),
                "steps": m.first_steps,
                "platforms": tuple(f"{p.name} {p.note}" for p in m.platforms),
                "mistakes": m.mistakes,
                "tips": tuple(f"{t.title} {t.text}" for t in m.tips),
            }
            for section, texts in sections.items():
                add(f"sec:{m.id}:{section}", m.button, (), *texts)
        for page in pack.pages.values():
            keywords = (*page.keywords, *shared.get(page.collection or "", ()))
            add(f"page:{page.id}", f"{page.title} {page.button}", keywords, page.body)
        for name, entries in pack.entries.items():
            for e in entries.values():
                add(e.target, f"{e.title} {e.button}", (*e.keywords, *shared.get(name, ())), e.body)
    return [
        Document(target, *(" ".join(part) for part in zip(*texts, strict=True)))
        for target, texts in docs.items()
    ]


def read_search(
    col: Collector, root: Path, packs: Mapping[str, LanguagePack], order: Iterable[str]
) -> Callable[[], SearchIndex]:
    """Check search.toml now; the index itself is built on first use (a quarter of a second)."""
    path = root / "search.toml"
    data = col.read_toml(path) or {}
    collections = data.get("collections", {})
    if not isinstance(collections, dict) or set(collections) - {*COLLECTIONS, "methods"}:
        col.add(
            path,
            col.line(path, "collections"),
            f"[collections]: only {', '.join(COLLECTIONS)} and methods",
        )
        collections = {}
    synonyms = data.get("synonyms", [])
    if not isinstance(synonyms, list) or not all(
        isinstance(g, list) and all(isinstance(w, str) for w in g) for g in synonyms
    ):
        col.add(path, col.line(path, "synonyms"), "synonyms: must be a list of lists of words")
        synonyms = []
    smalltalk = data.get("smalltalk", {})
    if not isinstance(smalltalk, dict) or not all(
        isinstance(v, list) and all(isinstance(w, str) for w in v) for v in smalltalk.values()
    ):
        col.add(path, 1, "[smalltalk]: each kind must be a list of words")
        smalltalk = {}
    lists = {
        key: _word_list(col, path, data, key) for key in ("stop_words", "weak_words", "platforms")
    }
    return functools.partial(
        SearchIndex,
        search_documents(packs, order, collections),
        smalltalk=smalltalk,
        synonyms=synonyms,
        **lists,
    )


def _word_list(col: Collector, path: Path, data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        col.add(path, col.line(path, key), f"{key}: must be a list of words")
        return []
    return value
