"""A throw-away PostgreSQL server for the tests and the bench (tests/postgres.py, bench/cluster.py).

Why our own and not pytest-postgresql: that plugin needs the same server binaries and a TCP port,
and does nothing about what makes this awkward here: initdb and postgres will not run as root,
and CI runs as root. This starts Debian's server (`initdb` and `postgres`, found on PATH or under
/usr/lib/postgresql/*/bin; `.ci/run` installs the package when they are missing) in a temporary
folder, as an unprivileged user when we are root, listening on a Unix socket only (no port to
clash with), with fsync off: such a database is worth nothing once the run is over. The server
is our child with a parent-death signal (util-linux's setpriv), so it goes when we go, even when
a test run is killed before it could stop it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import asyncpg

__all__ = ["PostgresCluster", "PostgresMissing"]

SUPERUSER = "ayerpoth"
START_LIMIT = 60.0  # seconds for the server to accept connections
# What a throw-away server needs and a real one must not do: nothing is forced to disk.
SERVER_SETTINGS = {
    "listen_addresses": "''",  # the Unix socket only
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",  # several worker processes, each with its pool
    "unix_socket_permissions": "0777",
    "log_min_messages": "warning",
}


class PostgresMissing(RuntimeError):
    """The server's binaries are not installed, or there is nobody to run them as."""


def server_binaries() -> Path:
    """The folder holding initdb and postgres: PATH first, then Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and (Path(on_path).resolve().parent / "postgres").exists():
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    raise PostgresMissing(
        "PostgreSQL's server is not installed (no initdb on PATH or under /usr/lib/postgresql): "
        "apt-get install postgresql (.ci/run does it)"
    )


def _unprivileged() -> pwd.struct_passwd | None:
    """Whom to run the server as: None (ourselves) unless we are root, which initdb refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresMissing("running as root, and there is no postgres or nobody user to run as")


@dataclass
class PostgresCluster:
    """One running server in `root` (its data, socket and log), as `user` when we are root."""

    root: Path
    binaries: Path
    user: pwd.struct_passwd | None
    server: subprocess.Popen[bytes] | None = None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def pid(self) -> int:
        """The server's (postmaster's) process id; its backends are its children."""
        assert self.server is not None
        return self.server.pid

    def url(self, database: str = "postgres") -> str:
        """A URL asyncpg (and the bot's DATABASE_URL) takes: the socket folder as `host`."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def _as_user(self) -> list[str]:
        """setpriv's options that run a command as `user` (none when we are not root)."""
        if self.user is None:
            return []
        return [f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--clear-groups"]

    @classmethod
    def start(cls) -> PostgresCluster:
        binaries = server_binaries()
        user = _unprivileged()
        root = Path(tempfile.mkdtemp(prefix="ayerpoth-postgres-"))
        cluster = cls(root, binaries, user)
        cluster.socket_dir.mkdir()
        if user is not None:
            for folder in (root, cluster.socket_dir):
                os.chown(folder, user.pw_uid, user.pw_gid)
        root.chmod(0o755)  # the socket folder is reached through it by whoever runs the tests
        try:
            cluster._initdb()
            cluster._serve()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                "setpriv", *self._as_user(), str(self.binaries / "initdb"),
                "--pgdata", str(self.data), "--username", SUPERUSER, "--auth", "trust",
                "--encoding", "UTF8", "--locale", "C", "--no-sync",
            ],
            capture_output=True, text=True, cwd=self.root, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")
        with (self.data / "postgresql.conf").open("a") as conf:
            settings = {**SERVER_SETTINGS, "unix_socket_directories": f"'{self.socket_dir}'"}
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def _serve(self) -> None:
        """Start the server and wait until it accepts connections."""
        with self.log.open("wb") as log:
            self.server = subprocess.Popen(
                [
                    "setpriv", *self._as_user(), "--pdeathsig", "SIGQUIT",
                    str(self.binaries / "postgres"), "-D", str(self.data),
                ],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
            )  # fmt: skip
        deadline = time.monotonic() + START_LIMIT
        while b"ready to accept connections" not in self.log.read_bytes():
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL did not start:\n{self.log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.05)  # another process's start: nothing to await but its log

    def stop(self) -> None:
        """Stop at once (SIGQUIT: nothing here is worth a checkpoint) and remove every file."""
        try:
            if self.server is not None and self.server.poll() is None:
                self.server.send_signal(signal.SIGQUIT)
                try:
                    self.server.wait(30)
                except subprocess.TimeoutExpired:
                    self.server.kill()
                    self.server.wait()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of database `template`); its URL."""
        # On a thread of its own: an async fixture may ask for it while an event loop runs.
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(asyncio.run, self.create_database_async(template)).result()

    async def create_database_async(self, template: str | None = None) -> str:
        name = f"test_{os.getpid()}_{next(self._names)}"
        clause = f' TEMPLATE "{template}"' if template else ""
        connection = await asyncpg.connect(self.url())
        try:
            await connection.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await connection.close()
        return self.url(name)
