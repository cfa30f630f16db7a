"""Throughput, latency and CPU of the full bot against bare-framework floors, in one run.

    .venv/bin/python -m bench.run                 # 200 users x 10 actions, every contender
    .venv/bin/python -m bench.run --quick         # 20 users x 5 actions: does it all work?
    .venv/bin/python -m bench.run --dispatch      # tips (broadcast lane) while people tap
    .venv/bin/python -m bench.run --resilience    # others' latency in a group raid, a flood, a crowd
    .venv/bin/python -m bench.run --cluster       # 1, 2, 3 workers on PostgreSQL vs 1 on SQLite
    .venv/bin/python -m bench.run --only aiogram-menu full-bot full-bot-questions   # search
    .venv/bin/python -m bench.run --only full-bot full-bot-shares --actions 30   # shares

full-bot-questions is the full bot with everyone typing the questions of tests/search_eval.toml
instead of tapping: the p99 and CPU of a free-text answer under the same load as the taps.
full-bot-shares is the full bot tapped as full-bot is while SHARERS more people tap "🖼 Share as
image" (a method card or its first tip, in Bangla) about once a second and a half
each, which keeps all shares well under Telegram's 30 new messages a second: the share p50/p99
of a card not yet sent (it waits for its drawing in the render process and its upload) and of
one Telegram has (sent by file_id), beside the taps'.

This process hosts the fake Bot API and the simulated people; each bot under test runs in its own
process and long-polls the fake over 127.0.0.1. Figures: replies/s over the measured phase,
p50/p95/p99 from an update becoming available to the reply arriving, and the bot process's CPU
time (user + system, all threads) per reply. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.loadgen import BenchAPI, Person, Results, run_people, run_sharers
from bench.seed import seed_store
from bot import callbacks
from bot.config import Settings
from bot.content import load_library
from bot.fakeapi import FloodRules
from bot.fakeapi.models import Call

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "ayerpoth-bench"
CONTENT = load_library(Settings().content_dir)
QUESTIONS = tuple(
    case["q"]
    for case in tomllib.loads((ROOT / "tests" / "search_eval.toml").read_text("utf-8"))["case"]
)
SHARERS = 20  # people sharing picture cards in full-bot-shares, beside the ones tapping
SHARE_THINK = (1.0, 2.0)  # seconds between one person's shares
# What full-bot-shares shares: every method card and the first tip of each (16 pictures).
SHARES = tuple(
    data
    for method_id in CONTENT.method_ids
    for data in (
        callbacks.ShareMethodImage(method_id).pack(),
        callbacks.ShareTipImage(method_id, 0).pack(),
    )
)


@dataclass(frozen=True)
class Contender:
    name: str
    command: tuple[str, ...]
    taps: bool  # menu bots are tapped through; echo bots get text messages
    store: bool = False  # needs a seeded store
    env: tuple[tuple[str, str], ...] = ()
    questions: bool = False  # people type real-style questions (tests/search_eval.toml)
    shares: bool = False  # SHARERS more people share picture cards meanwhile


CONTENDERS = (
    Contender("ptb-echo-httpx", (PY, "-m", "bench.bots.ptb_echo", "--backend", "httpx"), False),
    Contender("ptb-echo-aiohttp", (PY, "-m", "bench.bots.ptb_echo", "--backend", "aiohttp"), False),
    Contender("aiogram-echo", (PY, "-m", "bench.bots.aiogram_bots", "echo"), False),
    Contender("aiogram-menu", (PY, "-m", "bench.bots.aiogram_bots", "menu"), True),
    Contender(
        "full-bot",
        (PY, "-m", "bench.bots.full"),
        True,
        store=True,
        env=(("HTTP_BACKEND", "aiohttp"),),
    ),
    Contender(
        "full-bot-questions",  # the same bot, everyone typing questions instead of tapping
        (PY, "-m", "bench.bots.full"),
        False,
        store=True,
        env=(("HTTP_BACKEND", "aiohttp"),),
        questions=True,
    ),
    Contender(
        "full-bot-shares",  # the same bot and taps, while others "🖼 Share as image"
        (PY, "-m", "bench.bots.full"),
        True,
        store=True,
        env=(("HTTP_BACKEND", "aiohttp"),),
        shares=True,
    ),
    Contender(
        "full-bot-before",  # the bot before issue 8: httpx and one 30/s bucket for everything
        (PY, "-m", "bench.bots.full", "--limiter", "single"),
        True,
        store=True,
        env=(("HTTP_BACKEND", "httpx"),),
    ),
)


class BotProcess:
    """A bot under test in its own process; CPU time and peak RSS read from outside."""

    def __init__(
        self, contender: Contender, api: BenchAPI, workdir: Path, extra_env: dict[str, str]
    ):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(workdir),
            "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": api.token,
            "BOT_API_URL": api.base_url,
            "DATABASE_URL": f"sqlite:///{workdir / 'bot.sqlite3'}",
            "LOG_LEVEL": "WARNING",
            **dict(contender.env),
            **extra_env,
        }
        self.started = time.perf_counter()
        self.popen = psutil.Popen(
            list(contender.command), env=env, cwd=workdir, stdout=sys.stderr, stderr=sys.stderr
        )

    def cpu(self, *, children: bool = True) -> float:
        """User + system seconds of the bot and its live children (the card render process)."""
        processes = [self.popen, *(self.popen.children(recursive=True) if children else ())]
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.popen.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    async def stop(self) -> None:
        """SIGTERM, then wait without blocking: the fake must answer the bot's last calls."""
        self.popen.send_signal(signal.SIGTERM)
        for _ in range(300):
            if self.popen.poll() is not None:
                return
            await asyncio.sleep(0.1)
        self.popen.kill()


async def wait_ready(person: Person, limit: float = 60) -> None:
    """The bot answers /start: it has started, polled and loaded everything."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        probe = Results()
        await person.say("/start", probe)
        if probe.latencies:
            return
    raise RuntimeError("the bot did not answer within a minute")


def people_for(api: BenchAPI, count: int, seed: int) -> list[Person]:
    rng = random.Random(seed)
    return [
        Person(api, api.private_user(f"User{i}"), random.Random(rng.random())) for i in range(count)
    ]


async def start_profiler(
    process: BotProcess, folder: Path | None, name: str
) -> asyncio.subprocess.Process | None:
    """py-spy on the bot process for the measured phase: collapsed stacks in folder/name.txt."""
    if folder is None:
        return None
    profiler = await asyncio.create_subprocess_exec(
        str(Path(PY).parent / "py-spy"), "record", "--pid", str(process.popen.pid),
        "--format", "raw", "--rate", "250", "--output", str(folder / f"{name}.txt"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(0.5)  # attached
    return profiler


async def measure(
    contender: Contender, users: int, actions: int, store_users: int, profile: Path | None = None
) -> dict[str, Any]:
    """One contender under the standard load: warm up, then `actions` actions per person."""
    api = BenchAPI()
    async with api:
        with tempfile.TemporaryDirectory() as folder:
            workdir = Path(folder)
            if contender.store:
                await seed_store(workdir / "bot.sqlite3", store_users, cache=CACHE)
            people = people_for(api, users, seed=1)
            sharers = people_for(api, SHARERS if contender.shares else 0, seed=4)
            process = BotProcess(contender, api, workdir, {})
            try:
                await wait_ready(people[0])
                startup = time.perf_counter() - process.started
                # warm-up: everyone opens the menu (or says hello) once, not measured
                await run_people(people, 1, taps=False)
                profiler = await start_profiler(process, profile, contender.name)
                cpu_before, driver_before = process.cpu(), time.process_time()
                own_before = process.cpu(children=False)
                done = asyncio.Event()
                sharing = asyncio.ensure_future(
                    run_sharers(sharers, SHARES, done, SHARE_THINK)
                    if contender.shares
                    else asyncio.sleep(0, (Results(), Results()))
                )
                results, seconds = await run_people(
                    people,
                    actions,
                    taps=contender.taps,
                    questions=QUESTIONS if contender.questions else (),
                )
                done.set()
                shared = await sharing
                cpu = process.cpu() - cpu_before
                own = process.cpu(children=False) - own_before
                driver_cpu = time.process_time() - driver_before
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    await profiler.wait()
                peak = process.peak_rss_mb()
            finally:
                await process.stop()
            row = results.summary(seconds)
            return {
                "name": contender.name,
                **row,
                "cpu_s": cpu,
                "cpu_ms_per_reply": cpu / max(row["replies"], 1) * 1000,
                # the bot's process alone: without the cards the random walk's shares drew
                "bot_cpu_ms_per_reply": own / max(row["replies"], 1) * 1000,
                # the fake API and the people, for seeing when they, not the bot, are the limit
                "driver_cpu_share": driver_cpu / seconds,
                "startup_s": startup,
                "peak_rss_mb": peak,
                # "not modified": a tap raced the edit of the screen it was on; the bot ignores
                # it, as it should. Any other 400 is a bug the random walk found.
                "rejected_400": sum(1 for c in api.rejections if not unchanged(c)),
                "unchanged": sum(1 for c in api.rejections if unchanged(c)),
                "floods": api.flood_rejections,
                "errors_detail": results.errors,
                "rejections_detail": rejection_counts(api),
                **(share_summary(*shared) if contender.shares else {}),
            }


async def dispatch(
    limiter: str, users: int, recipients: int, store_users: int, seconds: float
) -> dict[str, Any]:
    """Tips through the broadcast lane while people tap at a human pace, flood emulation on.

    Telegram's documented limits are emulated (30/s in all, 1/s per private chat with a burst of
    3); edits are not counted, so taps (answer + edit) test only the limiter, not the emulation.
    """
    rules = FloodRules(count_edits=False)
    api = BenchAPI(flood=rules)
    async with api:
        for i in range(recipients):
            api.private_user(f"Tip{i}").user.has_started = True
        tip_ids = list(range(10_000_001, 10_000_001 + recipients))
        people = people_for(api, users, seed=2)
        with tempfile.TemporaryDirectory() as folder:
            workdir = Path(folder)
            await seed_store(workdir / "bot.sqlite3", store_users, tip_recipients=tip_ids)
            contender = next(c for c in CONTENDERS if c.name == "full-bot")
            command = (*contender.command, "--limiter", limiter)
            process = BotProcess(
                Contender(contender.name, command, True, True, contender.env),
                api,
                workdir,
                {"BROADCAST_RATE": "25", "TIP_CHECK_SECONDS": "5"},
            )
            try:
                # the dispatcher starts with the bot; warm-up is quick, as are the first tips
                flood, api.flood = api.flood, None  # everyone opens the menu at once: not measured
                await wait_ready(people[0])
                await run_people(people, 1, taps=False)
                api.flood = flood
                tips_before = sum(1 for i in tip_ids if api.sent_to(i))
                floods_before = len(api.flooded_chats)
                stop = asyncio.Event()
                asyncio.get_running_loop().call_later(seconds, stop.set)
                results, elapsed = await run_people(
                    people, 0, taps=True, think=(0.5, 1.5), stop=stop
                )
                tips = sum(1 for i in tip_ids if api.sent_to(i)) - tips_before
            finally:
                await process.stop()
            recipients_set = set(tip_ids)
            flooded = api.flooded_chats[floods_before:]
            tip_floods = sum(1 for chat in flooded if chat in recipients_set)
            return {
                "name": f"dispatch-{limiter}" + ("" if recipients else "-no-tips"),
                **results.summary(elapsed),
                "tips": tips,
                "tips_per_s": tips / elapsed,
                "broadcast_rate": 25.0,
                "tip_floods": tip_floods,
                "reply_floods": len(flooded) - tip_floods,
                "lost_tips": sum(
                    1 for c in api.calls_to("sendMessage") if c.error_code and c.error_code != 429
                ),
                "rejected_400": len(api.rejections),
            }


APOLOGY = CONTENT.t("bn", "error")


async def resilience(seconds: float, arrivals: int, others: int) -> list[dict[str, Any]]:
    """Issue 14, in one run against one bot process, Telegram's limits emulated (edits free):

    baseline: `others` people tapping at a human pace; raid: the same while one member of a group
    sends /methods 4 times a second; flood: the same while one person sends 200 messages in 2 s;
    arrivals: `arrivals` new people send /start at once, then tap three buttons each. A tap must
    be answered within 10 s (the fake refuses later answers, as Telegram does).
    """
    api = BenchAPI(flood=FloodRules(count_edits=False), callback_timeout=10.0)
    rows: list[dict[str, Any]] = []
    async with api:
        people = people_for(api, others, seed=3)
        with tempfile.TemporaryDirectory() as folder:
            workdir = Path(folder)
            await seed_store(workdir / "bot.sqlite3", 10_000, cache=CACHE)
            contender = next(c for c in CONTENDERS if c.name == "full-bot")
            process = BotProcess(contender, api, workdir, {})
            try:
                flood, api.flood = api.flood, None
                await wait_ready(people[0])
                await run_people(people, 1, taps=False)
                api.flood = flood

                async def phase(name: str, noise: Callable[[], Awaitable[Any]] | None) -> None:
                    stop = asyncio.Event()
                    asyncio.get_running_loop().call_later(seconds, stop.set)
                    floods = api.flood_rejections
                    noisy = asyncio.create_task(noise()) if noise else None
                    results, elapsed = await run_people(
                        people, 0, taps=True, think=(0.5, 1.5), stop=stop
                    )
                    extra = await noisy if noisy else {}
                    rows.append(
                        {
                            "name": name,
                            **results.summary(elapsed),
                            "apologies": apologies(api, [p.driver.id for p in people]),
                            "floods": api.flood_rejections - floods,
                            **extra,
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr)

                async def raid() -> dict[str, Any]:
                    group = api.group("Raid")
                    group.chat.bot_status = "member"
                    raider = api.private_user("Raider")
                    count = int(4 * seconds)
                    for _ in range(count):
                        group.send_nowait(raider, "/methods")
                        await asyncio.sleep(0.25)
                    await asyncio.sleep(2)
                    return {
                        "noise": f"{count} /methods",
                        "noise_answered": len(api.sent_to(group.id)),
                    }

                async def flood_user() -> dict[str, Any]:
                    spammer = api.private_user("Spammer")
                    for i in range(200):
                        spammer.send_nowait(f"freelancing {i}")
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(seconds / 2)
                    return {"noise": "200 messages", "noise_answered": len(api.sent_to(spammer.id))}

                await phase("others-baseline", None)
                await phase("others-during-raid", raid)
                await phase("others-during-flood", flood_user)

                crowd = [
                    Person(api, api.private_user(f"New{i}"), random.Random(i), patience=60)
                    for i in range(arrivals)
                ]
                floods, late = api.flood_rejections, api.late_answers
                results, began = Results(), time.perf_counter()
                await asyncio.gather(*(person.say("/start", results) for person in crowd))
                starts = results.summary(time.perf_counter() - began)
                taps, tap_seconds = await run_people(crowd, 3, taps=True)
                rows.append(
                    {
                        "name": f"arrivals-{arrivals}",
                        **starts,
                        "answered": len(results.latencies),
                        "lost": results.lost + taps.lost,
                        "errors": starts["errors"] + taps.summary(tap_seconds)["errors"],
                        "tap_p99_ms": taps.summary(tap_seconds)["p99_ms"],
                        "late_answers": api.late_answers - late,
                        "apologies": apologies(api, [p.driver.id for p in crowd]),
                        "floods": api.flood_rejections - floods,
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
            finally:
                await process.stop()
    base, raid_row = rows[0], rows[1]
    raid_row["target_p99_ms"] = 2 * base["p99_ms"] + 1000
    rows[2]["target_p99_ms"] = raid_row["target_p99_ms"]
    return rows


def share_summary(first: Results, again: Results) -> dict[str, Any]:
    """Shares apart from the taps: of cards not sent yet (drawn and uploaded), and the rest."""
    return {
        "shares": len(first.latencies) + len(again.latencies),
        "share_first_p50_ms": first.percentile(50) * 1000,
        "share_first_p99_ms": first.percentile(99) * 1000,
        "share_p50_ms": again.percentile(50) * 1000,
        "share_p99_ms": again.percentile(99) * 1000,
        "share_lost": first.lost + again.lost,
        "share_errors": sum(first.errors.values()) + sum(again.errors.values()),
    }


def apologies(api: BenchAPI, chats: list[int]) -> int:
    return sum(1 for chat in chats for m in api.sent_to(chat) if m.text == APOLOGY)


def unchanged(call: Call) -> bool:
    return "not modified" in (call.description or "")


def rejection_counts(api: BenchAPI) -> dict[str, int]:
    """What Telegram would have refused, by method and reason: a bug found by the random walk."""
    counts: dict[str, int] = {}
    for call in api.rejections:
        key = f"{call.method}: {call.description}"
        counts[key] = counts.get(key, 0) + 1
    return counts


THROUGHPUT_COLUMNS = (
    "name",
    "replies_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "cpu_ms_per_reply",
    "bot_cpu_ms_per_reply",
    "lost",
    "rejected_400",
    "unchanged",
)
SHARE_COLUMNS = (
    "name",
    "shares",
    "share_first_p50_ms",
    "share_first_p99_ms",
    "share_p50_ms",
    "share_p99_ms",
    "share_lost",
    "share_errors",
)
RESILIENCE_COLUMNS = (
    "name",
    "replies",
    "p50_ms",
    "p99_ms",
    "target_p99_ms",
    "lost",
    "errors",
    "apologies",
    "floods",
    "noise",
    "noise_answered",
    "answered",
    "tap_p99_ms",
    "late_answers",
)
DISPATCH_COLUMNS = (
    "name",
    "tips_per_s",
    "tip_floods",
    "lost_tips",
    "replies_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "lost",
)


def table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            f"{row[c]:.2f}" if isinstance(row.get(c), float) else str(row.get(c, ""))
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--actions", type=int, default=10, help="actions per user (measured)")
    parser.add_argument("--store-users", type=int, default=100_000)
    parser.add_argument("--only", nargs="*", help="contender names (default: all)")
    parser.add_argument(
        "--dispatch", action="store_true", help="the tips-while-tapping run instead"
    )
    parser.add_argument(
        "--resilience", action="store_true", help="a group raid, a flood and a crowd instead"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="workers behind a balancer: 1, 2, 3 on PostgreSQL, 1 on SQLite (bench/cluster.py)",
    )
    parser.add_argument("--arrivals", type=int, default=500, help="new people (--resilience)")
    parser.add_argument("--recipients", type=int, default=10_000, help="due tips (--dispatch)")
    parser.add_argument("--seconds", type=float, default=60, help="measured time (--dispatch)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--profile", type=Path, help="py-spy each bot into this folder")
    args = parser.parse_args()
    if args.quick:
        args.users, args.actions, args.store_users = 20, 5, 10_000
        args.recipients, args.seconds = 500, 8
        args.arrivals = 100
    rows: list[dict[str, Any]] = []
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.cluster:
        from bench.cluster import COLUMNS, cluster_rows

        rows = asyncio.run(
            cluster_rows(
                args.users,
                args.actions,
                args.store_users,
                CACHE,
                lambda row: print(json.dumps(row), file=sys.stderr),
            )
        )
        print(table(rows, COLUMNS))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    if args.resilience:
        seconds = 10 if args.quick else 30
        rows = asyncio.run(resilience(seconds, args.arrivals, min(args.users, 20)))
        print(table(rows, RESILIENCE_COLUMNS))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    if args.dispatch:
        # the same taps with no tips due: the replies' own latency, to compare with
        runs = (("lanes", 0), ("lanes", args.recipients), ("single", args.recipients))
        for limiter, recipients in runs:
            rows.append(
                asyncio.run(
                    dispatch(limiter, args.users, recipients, args.store_users, args.seconds)
                )
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    else:
        for contender in CONTENDERS:
            if args.only and contender.name not in args.only:
                continue
            rows.append(
                asyncio.run(
                    measure(contender, args.users, args.actions, args.store_users, args.profile)
                )
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(table(rows, DISPATCH_COLUMNS if args.dispatch else THROUGHPUT_COLUMNS))
    if shared := [row for row in rows if "shares" in row]:
        print(table(shared, SHARE_COLUMNS))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
