"""Free-text search: the one answer a typed question needs, asked in Bangla, English or Banglish.

Documents (method cards and their sections, pages, and the answer entries, both languages in one
row per topic) and questions go through one analyzer:
- Unicode NFC, case folded, Bangla digits read as Latin ones, links dropped;
- Bangla: spelling folded to a skeleton so the variants people write meet (অ্যাকটিভ/একটিভ, ী/ি,
  শ/ষ/স, য-ফলা…), and one inflection suffix stripped where what is left is a word the content
  uses (বিকাশে → বিকাশ, মোবাইলে → মোবাইল, never মোবাই + লে);
- English: Snowball stems, whole words only (no "get" → "getty" prefix trap);
- a Latin word is also read as Bangla by Avro phonetic (avro.py), as Bangladeshi users type;
- a word the index does not know is matched to its nearest indexed word (rapidfuzz, a swap of
  two letters is one edit) when close; synonyms and stop words come from content/search.toml.
SQLite's FTS5 finds the candidates with BM25; they are re-ranked by how much of the question's
weight their titles and keywords cover. An answer is given only when the best one covers enough
of the question; otherwise the caller says so honestly (see `SearchIndex.search`).
"""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import avro
import snowballstemmer
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

# A question longer than this is cut: the answer never needs more, and the cost stays bounded.
MAX_QUERY_CHARS = 300
MAX_QUERY_WORDS = 24
# Latin words of a question also read as romanised Bangla: Avro costs ~0.7 ms a word, so 24 made
# up words cost ~20 ms. 8 leaves tests/search_eval.toml's results as they were (its longest has 12).
ROMANISED_WORDS = 8
# Searches for typed messages run here, one at a time, not on the event loop; the index is built
# here too (see on_search_thread).
_SEARCH_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
T = TypeVar("T")
RESULTS = 8
CANDIDATES = 40  # BM25's best, re-ranked by how much of the question each one answers
COVERAGE_STEP = 0.05
WEAK_WEIGHT = 0.5
# Between two topics that answer a question equally well, the broader one comes first: a card,
# a page, a collection's overview (the entry with id "general"), an answer, a card's section.
BREADTH = {"card": 3, "page": 2, "overview": 2, "sec": 0}
# Share of the question's weight (IDF) the best document must cover to be given as the answer;
# less will do when a telling word of the question is in its title (ANCHOR_MIN_WEIGHT: not a
# word as common as টাকা). Chatty questions have many words the index does not know.
MIN_COVERAGE = 0.4
MIN_ANCHORED_COVERAGE = 0.25
ANCHOR_MIN_WEIGHT = 1.0
# Column weights for BM25: a topic's keywords and title say what it is about; the body details it.
TITLE_WEIGHT, KEYWORDS_WEIGHT, BODY_WEIGHT = 3.0, 4.0, 1.0
FUZZY_MIN_LENGTH = 5
# Similarity (1 - edits / length; a swap of two letters is one edit) a typo must keep.
FUZZY_CUTOFF = 0.8  # one letter wrong in a word of five to seven
FUZZY_CUTOFF_LONG = 0.75  # two in a word of eight or more

_BN_TO_LATIN_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯৳", "0123456789 ")
_LINK_RE = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\S+|@\w+")
_WORD_RE = re.compile(r"[a-z0-9]+|[\u0980-\u09ff]+")
_BN_BASE_RE = re.compile(r"[\u0985-\u09b9\u09dc-\u09df]")  # vowels and consonants, not signs


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# Inflections of nouns (case, plural, article) and verbs (tense, person; the colloquial forms
# people type too: করতেছি, দিছে), longest first; one is stripped when two letters remain.
_BN_SUFFIXES = sorted(
    map(
        _nfc,
        (
            "গুলোতে", "গুলোকে", "গুলোর", "গুলো", "গুলি", "দেরকে", "দের", "য়ের", "য়ে", "য়",
            "টির", "টার", "টাই", "টি", "টা", "েরা", "ের", "কে", "তে", "ে", "র", "ই",
            "তেছিলাম", "তেছেন", "তেছি", "তেছে", "চ্ছিলাম", "চ্ছেন", "চ্ছি", "চ্ছে", "ছিলাম",
            "ছিলেন", "ছিল", "েছিলাম", "েছেন", "েছি", "েছে", "ইছে", "ইছি", "ছেন", "ছি", "ছে",
            "বেন", "বে", "বো", "ব", "লাম", "লেন", "লে", "তাম", "তেন", "েন",
        ),
    ),
    key=len,
    reverse=True,
)  # fmt: skip
# Spellings people use interchangeably, folded to one form (after NFC, before signs are dropped).
_BN_FOLDS = (
    ("অ্যা", "এ"),  # অ্যাকটিভ / একটিভ, অ্যাপ / এপ
    ("্যা", "া"),  # ফ্রিল্যান্সিং / ফ্রিলান্সিং
    ("্য", ""),  # ধন্যবাদ / ধনবাদ: য-ফলা is often left out
)
_BN_CHARS = str.maketrans(
    {
        "ী": "ি", "ঈ": "ই", "ূ": "ু", "ঊ": "উ", "ণ": "ন", "ষ": "শ", "স": "শ",
        "ৎ": "ত", "ঞ": "ন", "ঙ": "ং", "্": None, "়": None, "ঁ": None, "ঃ": None,
    }
)  # fmt: skip
_stemmer = snowballstemmer.stemmer("english")


def words(text: str) -> list[str]:
    """The words of a text, lowercased and NFC-normalised, links and punctuation dropped."""
    text = _nfc(text).casefold().replace("\u200c", "").replace("\u200d", "")
    text = _LINK_RE.sub(" ", text.translate(_BN_TO_LATIN_DIGITS))
    return _WORD_RE.findall(text)


def is_bangla(word: str) -> bool:
    return "\u0980" <= word[0] <= "\u09ff"


@lru_cache(maxsize=16384)
def bangla_keys(word: str) -> tuple[str, ...]:
    """The forms a Bangla word may stand for, the longest suffix stripped first, then shorter
    ones, then the word itself: শাটারস্টকে is শাটারস্টক + এ, not শাটারস্ট + কে."""
    stems = [
        word[: -len(suffix)]
        for suffix in _BN_SUFFIXES
        if word.endswith(suffix) and len(_BN_BASE_RE.findall(word[: -len(suffix)])) >= 2
    ]
    return tuple(dict.fromkeys(_fold(stem) for stem in (*stems, word)))


def _fold(word: str) -> str:
    for old, new in _BN_FOLDS:
        word = word.replace(old, new)
    word = word.translate(_BN_CHARS)
    if word.endswith("ো") and len(_BN_BASE_RE.findall(word)) >= 2:
        word = word[:-1]  # করবো / করব, ভালো / ভাল
    return word


@lru_cache(maxsize=16384)
def english_key(word: str) -> str:
    return str(_stemmer.stemWord(word))


@lru_cache(maxsize=16384)
def romanised(word: str) -> str:
    """A Latin word read as Avro phonetic Bangla ("taka" → টাকা); "" when it is not one word."""
    bangla = words(avro.parse(word))
    return bangla[0] if len(bangla) == 1 else ""


async def on_search_thread(work: Callable[[], T]) -> T:
    """Run `work` on the search thread, where the index is built and every search runs."""
    return await asyncio.get_running_loop().run_in_executor(_SEARCH_THREAD, work)


@dataclass(frozen=True, slots=True)
class Document:
    """One topic the search can answer with; `target` names what to show ("card:youtube")."""

    target: str
    title: str
    keywords: str
    body: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a question got: an answer (best first), an unsure list, nothing, or small talk."""

    kind: str  # "answer", "unsure", "none" or "smalltalk"
    targets: tuple[str, ...] = ()
    smalltalk: str = ""
    coverages: tuple[float, ...] = ()  # how much of the question each target answers, 0 to 1


class SearchIndex:
    """An in-memory FTS5 index of every topic, built once when the content is loaded."""

    def __init__(
        self,
        documents: Sequence[Document],
        *,
        stop_words: Iterable[str] = (),
        smalltalk: Mapping[str, Iterable[str]] | None = None,
        synonyms: Iterable[Iterable[str]] = (),
        weak_words: Iterable[str] = (),
        platforms: Iterable[str] = (),
    ) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        # The ascii tokenizer keeps every non-ASCII character in its word: Bangla vowel signs too.
        self._db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5(title, keywords, body, tokenize = 'ascii')"
        )
        self._targets: list[str] = []
        self._fields: list[tuple[frozenset[str], frozenset[str], frozenset[str]]] = []
        synonyms = [list(group) for group in synonyms]
        stop_words, smalltalk, weak_words = (
            list(stop_words),
            dict(smalltalk or {}),
            list(weak_words),
        )
        platforms = list(platforms)
        # Every Bangla word the content and these lists use, spelling folded: a suffix comes off
        # only where what is left is such a word (মোবাইলে → মোবাইল, never মোবাই + লে).
        fields_words = [
            [words(t) for t in (doc.title, doc.keywords, doc.body)] for doc in documents
        ]
        listed = [
            w
            for group in (*synonyms, stop_words, weak_words, platforms, *smalltalk.values())
            for w in group
        ]
        every_word = {w for text in listed for w in words(text)}
        every_word.update(w for doc in fields_words for field in doc for w in field)
        self._known_words = {_fold(w) for w in every_word if is_bangla(w)}
        self._stems: dict[str, str] = {}
        # Words that mean the same to a searcher (শিখব, শেখা, learn): each becomes its group's first.
        self._same: dict[str, str] = {}
        for group in synonyms:
            keys = [k for k in map(self._phrase_key, group) if k]
            self._same.update((k, keys[0]) for k in keys)
        frequency: Counter[str] = Counter()
        for doc, (title_words, keyword_words, body_words) in zip(
            documents, fields_words, strict=True
        ):
            # A title or keyword says what the topic is once, however often a phrase repeats it.
            fields = [
                " ".join(dict.fromkeys(self._terms_of(title_words))),
                " ".join(dict.fromkeys(self._terms_of(keyword_words))),
                " ".join(self._terms_of(body_words)),
            ]
            self._db.execute("INSERT INTO docs VALUES (?, ?, ?)", fields)
            title, keywords, body = (frozenset(f.split()) for f in fields)
            self._targets.append(doc.target)
            self._fields.append((title, keywords, body))
            frequency.update(title | keywords | body)
        count = len(self._targets)
        self._idf = {
            term: math.log(1 + (count - n + 0.5) / (n + 0.5)) for term, n in frequency.items()
        }
        # A word the index does not know weighs as much as a typical one: it may be chatter.
        self._unknown_weight = sum(self._idf.values()) / len(self._idf) if self._idf else 1.0
        self._latin = sorted(t for t in frequency if not is_bangla(t))
        self._bangla = sorted(t for t in frequency if is_bangla(t))
        self._stop = {k for k in map(self._phrase_key, stop_words) if k}
        self._weak = {self._same.get(k, k) for k in map(self._phrase_key, weak_words) if k}
        self._platforms = {self._same.get(k, k) for k in map(self._phrase_key, platforms) if k}
        self._smalltalk = {
            self._phrase_key(word): kind for kind, group in smalltalk.items() for word in group
        }

    def key(self, word: str) -> str:
        """A word's index form: Bangla stemmed against the known words, English stemmed."""
        if not is_bangla(word):
            return english_key(word)
        stem = self._stems.get(word)
        if stem is None:
            forms = bangla_keys(word)
            stem = next((f for f in forms if f in self._known_words), forms[0])
            self._stems[word] = stem
        return stem

    def _terms_of(self, found: list[str]) -> list[str]:
        """Index terms of a text's words: stemmed, synonyms merged, numbers and letters left out."""
        same, key = self._same, self.key
        return [same.get(k, k) for w in found if not w.isdigit() and len(k := key(w)) >= 2]

    def _phrase_key(self, word: str) -> str:
        """Index form of a listed stop word, small-talk word or synonym (one word)."""
        found = words(word)
        return self.key(found[0]) if len(found) == 1 else ""

    def search(self, query: str) -> Outcome:
        found = words(query[:MAX_QUERY_CHARS])[:MAX_QUERY_WORDS]
        chat: list[str] = []
        groups: list[tuple[str, ...]] = []
        latin = 0
        for word in found:
            if kind := self._smalltalk.get(word) or self._smalltalk.get(self.key(word)):
                chat.append(kind)
                continue
            if not is_bangla(word):
                latin += 1
            if (group := self._resolve(word, romanise=latin <= ROMANISED_WORDS)) != ("",):
                groups.append(group)
        if not groups:
            return Outcome("smalltalk", smalltalk=chat[0] if chat else "ok")
        known = {alt for group in groups for alt in group if not alt.startswith("?")}
        if not known:
            return Outcome("smalltalk", smalltalk=chat[0]) if chat else Outcome("none")
        match = " OR ".join(f'"{alt}"' for alt in sorted(known))
        rows = self._db.execute(
            f"""SELECT rowid - 1 FROM docs WHERE docs MATCH ?
            ORDER BY bm25(docs, {TITLE_WEIGHT}, {KEYWORDS_WEIGHT}, {BODY_WEIGHT}) LIMIT ?""",
            (match, CANDIDATES),
        ).fetchall()
        if not rows:
            return Outcome("smalltalk", smalltalk=chat[0]) if chat else Outcome("none")
        weights = [self._weight(group) for group in groups]
        scored = sorted(
            (self._judge(groups, weights, doc), position, doc)
            for position, (doc,) in enumerate(rows)
        )
        ranked = tuple(self._targets[doc] for _judgement, _position, doc in scored[:RESULTS])
        coverages = tuple(-judgement[1] for judgement, _position, _doc in scored[:RESULTS])
        (_elsewhere, coverage, in_title, _breadth), _position, _best = scored[0]
        coverage, in_title = -coverage, -in_title
        confident = coverage >= MIN_COVERAGE or (coverage >= MIN_ANCHORED_COVERAGE and in_title > 0)
        if chat and not (coverage >= MIN_COVERAGE and in_title > 0):
            return Outcome("smalltalk", smalltalk=chat[0])  # "thanks, that helped a lot"
        if not confident and coverage < MIN_ANCHORED_COVERAGE:
            return Outcome("none")  # what matched is chance, not a topic
        kind = "answer" if confident else "unsure"
        return Outcome(kind, ranked, coverages=coverages)

    def _weight(self, group: tuple[str, ...]) -> float:
        """A question word's weight: the IDF of its commonest reading ("shuru" is শুরু); a weak
        word (when, how much, gives) weighs little, however rare the content makes it."""
        weight = min(self._idf.get(alt, self._unknown_weight) for alt in group)
        return min(weight, WEAK_WEIGHT) if any(alt in self._weak for alt in group) else weight

    def _judge(
        self, groups: list[tuple[str, ...]], weights: list[float], doc: int
    ) -> tuple[bool, float, float, int]:
        """How well a document answers the question, as a sort key (smaller is better).

        An answer about another platform than the question names comes last. Then: how much of
        the question's weight its title and keywords cover (words only in its body text do not
        count: they made answers worse in both evaluation sets), then how much its title covers,
        then the broader topic (a card, a page or overview, an answer, a card's section); BM25's
        order, where the body does count, breaks the remaining ties.
        """
        title, keywords, _body = self._fields[doc]
        topic = title | keywords
        # About another platform than the one asked about: after every other answer.
        named = {alt for group in groups for alt in group} & self._platforms
        elsewhere = bool(named) and bool(title & self._platforms) and not title & named
        total = sum(weights)
        covered = in_title = 0.0
        for group, weight in zip(groups, weights, strict=True):
            if any(alt in topic for alt in group):
                covered += weight
            if weight >= ANCHOR_MIN_WEIGHT and any(alt in title for alt in group):
                in_title += weight
        target = self._targets[doc]
        kind = "overview" if target.endswith(":general") else target.split(":", 1)[0]
        # Coverage in steps of COVERAGE_STEP: a nearly equal answer is decided by what follows.
        coverage = round(covered / total / COVERAGE_STEP) * COVERAGE_STEP
        return (elsewhere, -coverage, -round(in_title / total, 6), -BREADTH.get(kind, 1))

    def _resolve(self, word: str, *, romanise: bool = True) -> tuple[str, ...]:
        """The index terms a query word may mean; ("",) for a word that carries no meaning."""
        if word.isdigit() or len(word) < 2:
            return ("",)
        same = self._same
        if is_bangla(word):
            k = same.get(self.key(word), self.key(word))
            if k in self._stop:
                return ("",)
            return (k,) if k in self._idf else self._nearest(k, self._bangla) or ("?" + k,)
        english = same.get(english_key(word), english_key(word))
        reading = romanised(word) if romanise else ""
        bangla = same.get(self.key(reading), self.key(reading)) if reading else ""
        if word in self._stop or english in self._stop or bangla in self._stop:
            return ("",)
        exact = tuple(k for k in (english, bangla) if k in self._idf)
        if exact:
            return exact
        near = self._nearest(english, self._latin) + self._nearest(bangla, self._bangla)
        return near or ("?" + word,)

    @staticmethod
    def _nearest(term: str, vocabulary: list[str]) -> tuple[str, ...]:
        if len(term) < FUZZY_MIN_LENGTH:
            return ()
        cutoff = FUZZY_CUTOFF if len(term) < 8 else FUZZY_CUTOFF_LONG
        found = process.extract(
            term,
            vocabulary,
            scorer=DamerauLevenshtein.normalized_similarity,
            score_cutoff=cutoff,
            limit=2,
        )
        return tuple(choice for choice, _score, _index in found)
