"""Scale-out (issue 15): two and three real `ayerpoth run` processes in webhook mode behind the
round-robin balancer, one PostgreSQL database, the fake Bot API in this process delivering
webhooks as Telegram does (bot/fakeapi/cluster.py).

Round robin sends each of a person's updates to another worker than the one before, so a worker
that kept anything of its own (a cache, a lease it thinks it alone holds, its own share of
Telegram's budget) shows at once. What must hold:

* people see their own state on every worker: a path chosen on one is on the card another shows,
  a language switched on one is the language of the next, /forget on one is forgotten by all;
* a worker killed with SIGKILL under load loses no update: it never said 200 for the updates it
  held, so the balancer sends them to the next worker (or Telegram, again later). An update the
  dead worker had handled but not yet answered is handled twice: at most what it had in hand;
* a rolling restart (SIGTERM, start again, one worker after the other) loses nothing either;
* the whole cluster keeps to Telegram's bot-wide budget: the fake's 30-a-second rule never says
  429, replies from every worker and the tips dispatcher together;
* one tips dispatcher at a time; SIGKILL of the leader mid-dispatch: another takes over, no tip is
  lost, and repeated tips are at most what the dead one had in flight (`bot.outbox.dispatcher.SENDERS`).

Each test has a database of its own on the session's throw-away PostgreSQL (tests/postgres.py).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import CONTENT

from bot.fakeapi import BotMessage, FakeBotAPI, FloodRules, Reply, UserDriver
from bot.fakeapi.cluster import Cluster
from bot.fakeapi.models import Call
from bot.outbox.dispatcher import SENDERS
from bot.store import open_store

PATIENCE = 30.0  # a person's patience under load: the driver's timeout for one reply
METHODS = ("youtube", "freelancing", "writing")
# What a second delivery of an update already handled looks like to Telegram: the edit is the
# same as the one shown, the button press was answered already.
REPEATED = ("message is not modified", "query is too old")


@asynccontextmanager
async def cluster_of(
    workers: int,
    database_url: str,
    workdir: Path,
    *,
    flood: FloodRules | None = None,
    env: Mapping[str, str] | None = None,
    repeats_allowed: Callable[[Cluster], int] = lambda _: 0,
) -> AsyncIterator[Cluster]:
    """`workers` workers on one database against a fresh fake Bot API. On the way out, every
    request the cluster made was one Telegram accepts, save the few an update delivered twice
    makes (`repeats_allowed`)."""
    async with FakeBotAPI(flood=flood or False, handled_when_answered=True) as api:
        cluster = Cluster(
            api,
            database_url,
            workdir,
            workers=workers,
            env={"TIP_CHECK_SECONDS": "1", **(env or {})},
        )
        async with cluster:
            yield cluster
        repeated = [c for c in api.rejections if _repeated(c)]
        others = [f"{c.method}: {c.description}" for c in api.rejections if not _repeated(c)]
        assert others == [], f"{others}\n{cluster.logs()}"
        assert len(repeated) <= repeats_allowed(cluster), cluster.logs()


def _repeated(call: Call) -> bool:
    return any(reason in (call.description or "") for reason in REPEATED)


def served_by_every_worker(cluster: Cluster) -> None:
    served = [u.forwarded for u in cluster.balancer.upstreams]
    assert all(served), f"round robin left a worker idle: {served}"


# --- state ---------------------------------------------------------------------------------------


async def journey(user: UserDriver) -> None:
    """Choose a path, subscribe, switch language, forget: each step read back on the next update,
    which round robin sends to another worker."""
    await user.send("/start youtube", timeout=PATIENCE)
    reply = await user.press("এই পথ বেছে নিন", timeout=PATIENCE)
    assert reply.callback_answer is not None and "যোগ হলো" in (reply.callback_answer.text or "")
    reply = await user.send("/mypath", timeout=PATIENCE)
    assert "YouTube ও ভিডিও এডিটিং — ০/৭ ধাপ শেষ" in reply.text
    reply = await user.send("/start youtube", timeout=PATIENCE)
    assert "⭐ আমার পথে আছে" in reply.last.button_texts()  # the card knows, on another worker
    reply = await user.press("সাপ্তাহিক টিপস নিন", timeout=PATIENCE)
    assert reply.callback_answer is not None and "চালু হলো" in (reply.callback_answer.text or "")
    # From here the first tip may arrive in the middle of any exchange: read the screen.
    reply = await user.send("/tips", timeout=PATIENCE)
    assert "🔔 YouTube ও ভিডিও এডিটিং" in screen(reply)
    reply = await user.send("/language", timeout=PATIENCE)
    assert "The language is now English" in screen(reply)
    reply = await user.send("/mypath", timeout=PATIENCE)
    assert "My path" in screen(reply) and "0/7 steps done" in screen(reply)
    await user.send("/forget", timeout=PATIENCE)
    reply = await user.press("Yes, delete everything", timeout=PATIENCE, message=last_screen(user))
    assert "All your data has been deleted" in screen(reply)
    reply = await user.send("/mydata", timeout=PATIENCE)  # forgotten everywhere: new, in Bangla
    assert "বেছে নেওয়া পথ: নেই" in screen(reply) and "টিপস: নেই" in screen(reply)
    reply = await user.send("/mypath", timeout=PATIENCE)
    assert "এখনো কোনো পথ বেছে নেননি" in screen(reply)


def is_tip(message: BotMessage) -> bool:
    return message.text.startswith("💡") and " · " in message.text.split("\n")[0]


def screen(reply: Reply) -> str:
    """The text of the last screen the bot showed in this exchange, a tip sent meanwhile aside."""
    screens = [m for m in reply.shown if not is_tip(m)]
    assert screens, f"the bot showed no screen; it did: {reply.describe()}"
    return screens[-1].text


def last_screen(user: UserDriver) -> BotMessage:
    """The newest message with buttons that is not a tip (a tip has buttons of its own)."""
    return next(m for m in reversed(user.messages) if m.buttons and not is_tip(m))


@pytest.mark.parametrize("workers", [2, 3])
async def test_people_see_their_own_state_whichever_worker_answers(
    workers: int, postgres_url: str, tmp_path: Path
) -> None:
    async with cluster_of(workers, postgres_url, tmp_path) as cluster:
        people = [cluster.api.private_user(f"P{i}") for i in range(4)]
        await asyncio.gather(*(journey(person) for person in people))
        served_by_every_worker(cluster)
        # one registration for the cluster, by the worker that leads the dispatcher
        assert len(cluster.api.calls_to("setWebhook")) == 1
        for person in people:  # each got the first tip once, from whichever worker dispatches
            assert len(tips_to(cluster.api, [person])) <= 1


# --- losing nothing ------------------------------------------------------------------------------


async def tapping(user: UserDriver, rounds: int, done: Callable[[], None]) -> None:
    """A person going round the menu: every step must be answered (the driver checks taps)."""
    for _ in range(rounds):
        reply = await user.send("/start", timeout=PATIENCE)
        assert "মূল মেনু" in reply.text or "স্বাগতম" in reply.text, reply.describe()
        done()
        reply = await user.press("সব পদ্ধতি", timeout=PATIENCE)
        assert "সব পদ্ধতি" in reply.text, reply.describe()
        done()
        reply = await user.press("ফ্রিল্যান্সিং", timeout=PATIENCE)
        assert "ফ্রিল্যান্সিং" in reply.text, reply.describe()
        done()
        # back to a screen another worker drew on this message before: it must be drawn again
        reply = await user.press("ফিরে যান", timeout=PATIENCE)
        assert "সব পদ্ধতি" in reply.text, reply.describe()
        done()


class Progress:
    """Counts answered steps; `reached(n)` is awaited to act in the middle of the load."""

    def __init__(self) -> None:
        self.count = 0
        self._marks: list[tuple[int, asyncio.Event]] = []

    def step(self) -> None:
        self.count += 1
        for mark, event in self._marks:
            if self.count >= mark:
                event.set()

    async def reached(self, mark: int) -> None:
        event = asyncio.Event()
        self._marks.append((mark, event))
        if self.count >= mark:
            event.set()
        await event.wait()


def in_flight_bound(cluster: Cluster) -> int:
    """What a dead worker can have handled without answering: at most every request the
    balancer moved on to another worker, each repeating an edit and a button answer."""
    return 2 * cluster.balancer.retried


async def test_sigkill_of_a_worker_under_load_loses_no_update(
    postgres_url: str, tmp_path: Path
) -> None:
    async with cluster_of(3, postgres_url, tmp_path, repeats_allowed=in_flight_bound) as cluster:
        people = [cluster.api.private_user(f"L{i}") for i in range(30)]
        progress = Progress()
        load = asyncio.gather(*(tapping(p, 3, progress.step) for p in people))
        await progress.reached(80)
        served = cluster.balancer.upstreams[1].forwarded
        await cluster.kill(2)
        await load  # every step of every person answered, by whoever was left
        assert progress.count == 30 * 3 * 4
        assert served > 0 and cluster.balancer.retried > 0, "the kill did not land mid-load"
        print(
            f"\nSIGKILL of 1 of 3 workers under load: {progress.count} steps all answered, "
            f"{cluster.balancer.retried} request(s) sent on to another worker"
        )


async def test_a_rolling_restart_under_load_loses_no_update(
    postgres_url: str, tmp_path: Path
) -> None:
    """A deploy: each worker in turn gets SIGTERM (it answers what it holds, says 503 to the
    rest, which the balancer sends on) and is started again, while people tap."""
    async with cluster_of(2, postgres_url, tmp_path, repeats_allowed=in_flight_bound) as cluster:
        people = [cluster.api.private_user(f"R{i}") for i in range(20)]
        progress = Progress()
        load = asyncio.gather(*(tapping(p, 4, progress.step) for p in people))
        for index, mark in ((1, 60), (2, 160)):
            await progress.reached(mark)
            assert await cluster.terminate(index) == 0, cluster.logs()
            await cluster.start_worker(index)
            await cluster.check_health()
        await load
        assert progress.count == 20 * 4 * 4


# --- the bot-wide budget -------------------------------------------------------------------------


async def seed_due_tips(database_url: str, api: FakeBotAPI, count: int) -> list[UserDriver]:
    """`count` people who started the bot, each with a tip due a minute ago (through the store,
    so on whichever backend DATABASE_URL names)."""
    people = [api.private_user(f"T{i}") for i in range(count)]
    now = datetime.now(UTC)
    store = await open_store(database_url)
    try:
        for person, method in zip(people, itertools.cycle(METHODS), strict=False):
            person.user.has_started = True
            await store.touch_user(person.id, now=now - timedelta(days=1))
            await store.subscribe(
                person.id, method, now=now - timedelta(days=1), weekday=0, hour=15, minute=0,
                first_due=now - timedelta(minutes=1),
            )  # fmt: skip
    finally:
        await store.close()
    return people


def tips_to(api: FakeBotAPI, people: Iterable[UserDriver]) -> Counter[int]:
    """Tips sent (and accepted) per person."""
    ids = {p.id for p in people}
    return Counter(
        int(c.params["chat_id"])
        for c in api.calls_to("sendMessage")
        if c.ok and int(c.params["chat_id"]) in ids and str(c.params.get("text")).startswith("💡")
    )


async def until(api: FakeBotAPI, condition: Callable[[], bool], what: str, limit: float) -> None:
    """Wait on the fake's events until `condition` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        left = deadline - loop.time()
        assert left > 0, f"not within {limit}s: {what}"
        await api.wait_event(left)


def peak_per_second(calls: list[Call]) -> int:
    """The most new messages Telegram accepted in any one second."""
    times = sorted(c.time for c in calls if c.ok and c.method.lower().startswith("send"))
    peak, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


async def test_three_workers_keep_to_one_bot_wide_budget_replies_and_tips_together(
    postgres_url: str, tmp_path: Path
) -> None:
    """90 people write at once while 60 tips are due: each worker alone may send 30 a second,
    three together must not. Telegram's rules are emulated (edits free, as for the bench)."""
    async with cluster_of(
        3, postgres_url, tmp_path, flood=FloodRules(count_edits=False),
        env={"BROADCAST_RATE": "25"},
    ) as cluster:  # fmt: skip
        api = cluster.api
        # seeded before the dispatcher looks again (every second): tips go out with the replies
        subscribers = await seed_due_tips(postgres_url, api, 60)
        people = [api.private_user(f"B{i}") for i in range(90)]
        replies = await asyncio.gather(*(p.send("/start", timeout=PATIENCE) for p in people))
        assert all("স্বাগতম" in r.text for r in replies)
        await until(api, lambda: len(tips_to(api, subscribers)) == 60, "every tip sent", PATIENCE)
        sends = [c for c in api.calls if c.method.lower().startswith("send")]
        print(
            f"\n3 workers, 90 replies + 60 tips: {sum(c.ok for c in sends)} messages, at most "
            f"{peak_per_second(api.calls)} in any second; 429s: {api.flood_rejections} "
            f"({api.bot_wide_floods} for the bot-wide rule)"
        )
        assert api.bot_wide_floods == 0, cluster.logs()
        served_by_every_worker(cluster)


# --- one dispatcher ------------------------------------------------------------------------------


async def leader_of(cluster: Cluster) -> int | None:
    """The index of the worker whose /healthz says it runs the tips dispatcher (one at most)."""
    leaders = []
    for worker in cluster.workers:
        report = await cluster.health(worker.index) if worker.running else None
        if report is not None and report.get("leader"):
            leaders.append(worker.index)
    assert len(leaders) <= 1, f"more than one dispatcher: {leaders}"
    return leaders[0] if leaders else None


async def test_sigkill_of_the_dispatcher_leader_mid_dispatch_loses_no_tip(
    postgres_url: str, tmp_path: Path
) -> None:
    """120 tips at 20 a second: the leader is killed after 20 have gone out. Another worker
    takes over within seconds and sends the rest; what the dead one had in flight may go twice."""
    async with FakeBotAPI(handled_when_answered=True) as api:
        subscribers = await seed_due_tips(postgres_url, api, 120)
        cluster = Cluster(
            api, postgres_url, tmp_path, workers=3,
            env={"TIP_CHECK_SECONDS": "1", "BROADCAST_RATE": "20"},
        )  # fmt: skip
        async with cluster:
            await until(api, lambda: sum(tips_to(api, subscribers).values()) >= 20, "20 tips", 30)
            leader = None
            for _ in range(50):  # the leader says so on /healthz; it may be a moment behind
                if (leader := await leader_of(cluster)) is not None:
                    break
                await asyncio.sleep(0.1)
            assert leader is not None, f"no worker says it is the leader\n{cluster.logs()}"
            await cluster.kill(leader)
            sent_when_killed = sum(tips_to(api, subscribers).values())
            assert sent_when_killed < 120, "the leader was killed after the dispatch, not in it"
            await until(
                api, lambda: len(tips_to(api, subscribers)) == 120, "every tip sent", PATIENCE
            )
            successor = await leader_of(cluster)
            assert successor not in (None, leader), cluster.logs()
            tips = tips_to(api, subscribers)
            repeated = sum(n - 1 for n in tips.values())
            print(
                f"\nleader w{leader} killed after {sent_when_killed} of 120 tips; w{successor} "
                f"took over; {repeated} sent twice (bound: {SENDERS} in flight)"
            )
            assert repeated <= SENDERS, cluster.logs()
            # people tapping meanwhile are served by the two left
            reply = await api.private_user("After").send("/help", timeout=PATIENCE)
            assert reply.last.html == CONTENT.t("bn", "help")
