"""Throughput, latency and CPU of the full bot against bare-framework floors, in one run.

    .venv/bin/python -m bench.run                 # 200 users x 10 actions, every contender
    .venv/bin/python -m bench.run --quick         # 20 users x 5 actions: does it all work?
    .venv/bin/python -m bench.run --dispatch      # tips (broadcast lane) while people tap
    .venv/bin/python -m bench.run --only aiogram-menu full-bot full-bot-questions   # search

full-bot-questions is the full bot with everyone typing the questions of tests/search_eval.toml
instead of tapping: the p99 and CPU of a free-text answer under the same load as the taps.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.loadgen import BenchAPI, Person, Results, run_people
from bench.seed import seed_store
from bot.fakeapi import FloodRules
from bot.fakeapi.models import Call

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "ayerpoth-bench"
QUESTIONS = tuple(
    case["q"]
    for case in tomllib.loads((ROOT / "tests" / "search_eval.toml").read_text("utf-8"))["case"]
)


@dataclass(frozen=True)
class Contender:
    name: str
    command: tuple[str, ...]
    taps: bool  # menu bots are tapped through; echo bots get text messages
    store: bool = False  # needs a seeded store
    env: tuple[tuple[str, str], ...] = ()
    questions: bool = False  # people type real-style questions (tests/search_eval.toml)


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

    def cpu(self) -> float:
        times = self.popen.cpu_times()
        return float(times.user + times.system)

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
            process = BotProcess(contender, api, workdir, {})
            try:
                await wait_ready(people[0])
                startup = time.perf_counter() - process.started
                # warm-up: everyone opens the menu (or says hello) once, not measured
                await run_people(people, 1, taps=False)
                profiler = await start_profiler(process, profile, contender.name)
                cpu_before, driver_before = process.cpu(), time.process_time()
                results, seconds = await run_people(
                    people,
                    actions,
                    taps=contender.taps,
                    questions=QUESTIONS if contender.questions else (),
                )
                cpu = process.cpu() - cpu_before
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
                # the fake API and the people, for seeing when they, not the bot, are the limit
                "driver_cpu_share": driver_cpu / seconds,
                "startup_s": startup,
                "peak_rss_mb": peak,
                # "not modified": a tap raced the edit of the screen it was on; the bot ignores
                # it, as it should. Any other 400 is a bug the random walk found.
                "rejected_400": sum(1 for c in api.rejections if not _unchanged(c)),
                "unchanged": sum(1 for c in api.rejections if _unchanged(c)),
                "floods": api.flood_rejections,
                "errors_detail": results.errors,
                "rejections_detail": rejection_counts(api),
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


def _unchanged(call: Call) -> bool:
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
    "lost",
    "rejected_400",
    "unchanged",
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
    parser.add_argument("--recipients", type=int, default=10_000, help="due tips (--dispatch)")
    parser.add_argument("--seconds", type=float, default=60, help="measured time (--dispatch)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--profile", type=Path, help="py-spy each bot into this folder")
    args = parser.parse_args()
    if args.quick:
        args.users, args.actions, args.store_users = 20, 5, 10_000
        args.recipients, args.seconds = 500, 8
    rows: list[dict[str, Any]] = []
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
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
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
