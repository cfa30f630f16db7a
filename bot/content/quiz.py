"""The quiz's content: its scoring (content/quiz.toml) and each language's texts, read and checked.

Scoring is data with cross-references (answers name methods and needs), so besides each field it
checks that every combination of answers still leaves enough methods to recommend.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import Path

from bot.content.fields import Table
from bot.content.model import (
    EXCLUDED_LINE,
    QUIZ_FITS,
    QUIZ_MAX_ANSWERS,
    QUIZ_MAX_QUESTIONS,
    QUIZ_TOP,
    QuizAnswer,
    QuizAnswerText,
    QuizIntro,
    QuizQuestion,
    QuizQuestionText,
    QuizText,
)
from bot.content.problems import Collector

_QUIZ_WORD_RE = re.compile(r"^[a-z][a-z0-9_]{1,19}$")


def read_quiz_scores(
    col: Collector, path: Path, method_ids: tuple[str, ...]
) -> tuple[tuple[QuizQuestion, ...], dict[str, tuple[str, ...]]]:
    """content/quiz.toml: the questions, each answer's points per method, and [needs]."""
    data = col.read_toml(path) or {}
    declared = data.get("needs", {})
    needs = _read_needs(col, path, declared, method_ids)
    # what `lacks` may name: every need in [needs], also under a method id that is wrong there
    needed = {
        need
        for wanted in (declared.values() if isinstance(declared, dict) else ())
        if isinstance(wanted, list)
        for need in wanted
    }
    lacked: set[str] = set()
    questions = []
    answer_index = 0
    for q in data.get("questions", []):
        answers = []
        for a in q.get("answers", []):
            nth = answer_index
            answer_index += 1
            answer_id = str(a.get("id"))
            scores = a.get("scores", {})
            line = col.line(path, "scores", table="questions.answers", nth=nth)
            missing = sorted(set(method_ids) - set(scores))
            extra = sorted(set(scores) - set(method_ids))
            if missing or extra:
                col.add(
                    path,
                    line,
                    f"scores of answer {answer_id!r}: missing {missing}, unknown {extra}",
                )
            if not all(isinstance(v, int) and 0 <= v <= 3 for v in scores.values()):
                col.add(path, line, f"scores of answer {answer_id!r} must be whole numbers 0 to 3")
            for key in sorted(set(a) - {"id", "scores", "lacks", "interest"}):
                col.add(
                    path,
                    col.line(path, key, table="questions.answers", nth=nth),
                    f"{key}: unknown key in answer {answer_id!r} (a typo?)",
                )
            lacks_line = col.line(path, "lacks", table="questions.answers", nth=nth)
            lacks = _words(col, path, a.get("lacks", []), lacks_line, "lacks")
            for need in lacks:
                if need not in needed:
                    col.add(path, lacks_line, f"lacks: no method needs {need!r} (see [needs])")
            lacked.update(lacks)
            interest_line = col.line(path, "interest", table="questions.answers", nth=nth)
            interest = _words(col, path, a.get("interest", []), interest_line, "interest")
            for method_id in interest:
                points = scores.get(method_id, 0)
                if method_id not in method_ids:
                    col.add(path, interest_line, f"interest: {method_id!r} is not a method")
                    continue
                if set(needs.get(method_id, ())) & set(lacks):
                    col.add(
                        path,
                        interest_line,
                        f"interest: {method_id!r} needs what answer {answer_id!r} lacks",
                    )
                if not isinstance(points, int) or points < QUIZ_FITS:
                    col.add(
                        path,
                        interest_line,
                        f"interest: answer {answer_id!r} gives {method_id!r} {points} points; "
                        f"an interest gets {QUIZ_FITS} or 3",
                    )
            answers.append(QuizAnswer(answer_id, dict(scores), frozenset(lacks), tuple(interest)))
        if not 2 <= len(answers) <= QUIZ_MAX_ANSWERS:
            col.add(
                path,
                col.line(path, "id", table="questions"),
                f"question {q.get('id')!r} needs 2 to {QUIZ_MAX_ANSWERS} answers",
            )
        questions.append(QuizQuestion(str(q.get("id")), tuple(answers)))
    if not 3 <= len(questions) <= QUIZ_MAX_QUESTIONS:
        col.add(
            path, 1, f"the quiz has {len(questions)} questions, 3 to {QUIZ_MAX_QUESTIONS} expected"
        )
    for method_id, wanted in needs.items():
        for need in wanted:
            if need not in lacked:
                col.warn(
                    path,
                    col.line(path, method_id, table="needs"),
                    f"needs.{method_id}: no answer lacks {need!r}, so it never rules anything out",
                )
    _check_combinations(col, path, tuple(questions), needs, method_ids)
    return tuple(questions), needs


def _words(col: Collector, path: Path, value: object, line: int, key: str) -> list[str]:
    """`needs`, `lacks`, `interest`: a list of short lowercase words (ids)."""
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _QUIZ_WORD_RE.match(v) for v in value
    ):
        col.add(path, line, f'{key}: must be a list of short lowercase words, like ["computer"]')
        return []
    return list(dict.fromkeys(value))


def _read_needs(
    col: Collector, path: Path, table: object, method_ids: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """[needs]: what each method's card says it needs (a computer, money, time)."""
    if not isinstance(table, dict):
        message = '[needs]: must be a table: freelancing = ["computer"]'
        col.add(path, col.line(path, "needs"), message)
        return {}
    needs = {}
    for method_id, value in table.items():
        line = col.line(path, method_id, table="needs")
        if method_id not in method_ids:
            col.add(path, line, f"needs: {method_id!r} is not a method in content/methods.toml")
            continue
        needs[method_id] = tuple(_words(col, path, value, line, f"needs.{method_id}"))
    return needs


def _check_combinations(
    col: Collector,
    path: Path,
    questions: tuple[QuizQuestion, ...],
    needs: Mapping[str, tuple[str, ...]],
    method_ids: tuple[str, ...],
) -> None:
    """Whatever someone answers, enough methods are left to recommend, interests included."""
    # Only what an answer lacks and names as an interest matters here: one answer of each kind.
    kinds = [
        list({(a.lacks, a.interest): a for a in q.answers}.values()) for q in questions if q.answers
    ]
    for combination in itertools.product(*kinds):
        lacks = frozenset().union(*(a.lacks for a in combination))
        left = [m for m in method_ids if not set(needs.get(m, ())) & lacks]
        wanted = {m for a in combination for m in a.interest if m in left}
        shown = ", ".join(
            f"{q.id} = {a.id!r}" for q, a in zip(questions, combination, strict=False)
        )
        if len(left) < QUIZ_TOP:
            col.add(
                path,
                col.line(path, next(iter(needs), "needs"), table="needs"),
                f"[needs]: answers like {shown} leave too few methods ({len(left)}); "
                f"at least {QUIZ_TOP} must be left",
            )
            return
        if len(wanted) > QUIZ_TOP:
            col.add(
                path,
                1,
                f"answers like {shown} name {len(wanted)} interests; at most {QUIZ_TOP} fit",
            )
            return


def read_quiz_text(
    col: Collector,
    path: Path,
    questions: tuple[QuizQuestion, ...],
    needs: Mapping[str, tuple[str, ...]],
) -> QuizText:
    """A language's quiz.toml: a text per question, a label and a reason per answer, and a line
    per need saying why a method is left out; keyed by the ids content/quiz.toml declares."""
    data = col.read_toml(path) or {}
    intro = Table(col, path, data).read(QuizIntro, also=("questions", "excluded"))
    texts, labels, whys = {}, {}, {}
    table = data.get("questions", {})
    seen: dict[str, str] = {}
    for q in questions:
        entry = table.get(q.id, {})
        question = Table(col, path, entry, table=f"questions.{q.id}")
        texts[q.id] = question.read(QuizQuestionText, strict=False).text
        for a in q.answers:
            where = f"questions.{q.id}.answers.{a.id}"
            answer = Table(col, path, entry.get("answers", {}).get(a.id, {}), table=where)
            read = answer.read(QuizAnswerText, strict=False)
            labels[q.id, a.id], why = read.label, read.why
            whys[q.id, a.id] = why
            if why and why in seen:
                answer.problem(
                    "why", f"the same as [{seen[why]}]; each answer needs its own reason"
                )
            seen.setdefault(why, where)
    for extra in sorted(set(table) - {q.id for q in questions}):
        col.add(
            path,
            col.line(path, "text", table=f"questions.{extra}"),
            f"question {extra!r} is not in content/quiz.toml",
        )
    excluded = {}
    lines = data.get("excluded", {})
    for method_id, wanted in needs.items():
        reasons = Table(col, path, lines.get(method_id, {}), table=f"excluded.{method_id}")
        for need in wanted:
            excluded[method_id, need] = EXCLUDED_LINE.read(reasons, need)
    for method_id, entry in lines.items() if isinstance(lines, dict) else ():
        for need in sorted(set(entry) - set(needs.get(method_id, ()))):
            col.add(
                path,
                col.line(path, need, table=f"excluded.{method_id}"),
                f"excluded.{method_id}.{need}: content/quiz.toml has no such need for {method_id!r}",
            )
    return QuizText(intro.title, intro.intro, intro.result_intro, texts, labels, whys, excluded)
