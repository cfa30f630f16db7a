"""Several real `ayerpoth run` processes in webhook mode behind the round-robin balancer, against
the fake Bot API in this process: how the cluster tests and the bench run a cluster.

Every worker is its own process with its own environment (the fake's token and URL, one
DATABASE_URL, WEBHOOK_URL pointing at the balancer, its own WEBHOOK_PORT and WORKER_ID), so
nothing is shared that production would not share. A worker is ready when its `/healthz` answers
200 (it serves only after its start-up is done). Each one's output goes to `worker<N>.log` in the
work folder (kept across restarts), and `logs()` gives their tails for a failing assertion.

The fake should be made with ``handled_when_answered=True``: the workers answer a webhook POST
only once the update is handled, so the drivers' ``send``/``press`` return exactly when the
reply is complete, whichever worker took it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from bot.fakeapi.balancer import Balancer
from bot.fakeapi.server import FakeBotAPI

__all__ = ["Cluster", "Worker"]

ROOT = Path(__file__).resolve().parent.parent.parent
WEBHOOK_PATH = "/telegram"
#: How long a worker may take to start (imports, content, migrations) or to stop on SIGTERM.
START_LIMIT = 60.0
STOP_LIMIT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Worker:
    """One `ayerpoth run` process (None once it has ended) and where it listens and logs."""

    index: int
    port: int
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def worker_id(self) -> str:
        return f"w{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


class Cluster:
    """`workers` bot processes on one database, behind a Balancer the fake's webhook POSTs to."""

    def __init__(
        self,
        api: FakeBotAPI,
        database_url: str,
        workdir: Path,
        *,
        workers: int,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] = (sys.executable, "-m", "bot", "run"),
        secret: str = "cluster_secret",
    ) -> None:
        self.api = api
        self.database_url = database_url
        self.workdir = workdir
        self.env = dict(env or {})
        self.command = tuple(command)
        self.secret = secret
        self.workers = [
            Worker(i, free_port(), workdir / f"worker{i}.log") for i in range(1, workers + 1)
        ]
        self.balancer = Balancer([w.url for w in self.workers])
        self._http: aiohttp.ClientSession | None = None

    @property
    def webhook_url(self) -> str:
        return self.balancer.base_url + WEBHOOK_PATH

    def environment(self, worker: Worker) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": self.api.token,
            "BOT_API_URL": self.api.base_url,
            "DATABASE_URL": self.database_url,
            "WEBHOOK_URL": self.webhook_url,
            "WEBHOOK_SECRET": self.secret,
            "WEBHOOK_LISTEN": "127.0.0.1",
            "WEBHOOK_PORT": str(worker.port),
            "WORKER_ID": worker.worker_id,
            "LOG_LEVEL": "INFO",
            **self.env,
        }

    async def start(self) -> None:
        """The balancer, then every worker; returns once all are ready and the webhook is set."""
        self._http = aiohttp.ClientSession()
        await self.balancer.start()
        await asyncio.gather(*(self.start_worker(w.index) for w in self.workers))
        await self.check_health()
        for _ in range(int(START_LIMIT / 0.05)):  # set by a worker's start; no event tells
            if self.api.webhook_url == self.webhook_url:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"no worker set the webhook\n{self.logs()}")

    def worker(self, index: int) -> Worker:
        return self.workers[index - 1]

    async def start_worker(self, index: int) -> None:
        """Start worker `index` (again) and wait until its /healthz answers 200."""
        worker = self.worker(index)
        assert not worker.running, f"{worker.worker_id} is running already"
        with worker.log.open("ab") as log:
            log.write(f"--- start {worker.worker_id} on port {worker.port}\n".encode())
            log.flush()
            worker.process = await asyncio.create_subprocess_exec(
                *self.command, env=self.environment(worker), cwd=self.workdir,
                stdout=log, stderr=log,
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_LIMIT
        while await self.health(index) is None:  # another process: nothing to await but a probe
            if not worker.running:
                raise AssertionError(f"{worker.worker_id} exited at start\n{self.logs()}")
            if loop.time() > deadline:
                raise AssertionError(
                    f"{worker.worker_id} not ready in {START_LIMIT}s\n{self.logs()}"
                )
            await asyncio.sleep(0.1)

    async def health(self, index: int) -> dict[str, Any] | None:
        """Worker `index`'s /healthz report, or None when it does not answer 200."""
        assert self._http is not None
        try:
            async with self._http.get(
                self.worker(index).url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)
            ) as answer:
                if answer.status != 200:
                    return None
                report: dict[str, Any] = await answer.json()
                return report
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def check_health(self) -> None:
        """Have the balancer probe every worker now (a started or killed one is seen at once)."""
        await self.balancer.check_health()

    async def kill(self, index: int) -> None:
        """SIGKILL: the worker dies mid-whatever, as on a power cut or an OOM kill."""
        await self._signal(index, signal.SIGKILL)

    async def terminate(self, index: int) -> int:
        """SIGTERM, as systemd stops a worker; its exit code once it has stopped."""
        return await self._signal(index, signal.SIGTERM)

    async def _signal(self, index: int, signum: int) -> int:
        worker = self.worker(index)
        process = worker.process
        assert process is not None and worker.running, f"{worker.worker_id} is not running"
        process.send_signal(signum)
        try:
            code = await asyncio.wait_for(process.wait(), STOP_LIMIT)
        except TimeoutError:
            process.kill()
            code = await process.wait()
        with worker.log.open("ab") as log:
            log.write(f"--- {worker.worker_id} ended: {code} after signal {signum}\n".encode())
        return code

    async def stop(self) -> None:
        """SIGTERM to every worker still running (at once), then the balancer."""
        try:
            await asyncio.gather(
                *(self.terminate(w.index) for w in self.workers if w.running),
                return_exceptions=True,
            )
        finally:
            await self.balancer.stop()
            if self._http is not None:
                await self._http.close()

    def logs(self, lines: int = 40) -> str:
        """The last `lines` of every worker's log, for an assertion's message."""
        parts = []
        for worker in self.workers:
            text = worker.log.read_text(errors="replace") if worker.log.exists() else ""
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"=== {worker.worker_id} ({worker.log})\n{tail}")
        return "\n".join(parts)

    async def __aenter__(self) -> Cluster:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
