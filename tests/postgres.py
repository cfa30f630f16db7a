"""A throw-away PostgreSQL server for the tests: one cluster per test session, a fresh database
per test that asks for one (`postgres_url`).

Why our own and not pytest-postgresql: that plugin needs the same server binaries, a TCP port, and
refuses nothing of what makes this awkward here: initdb and postgres will not run as root, and CI
runs as root. This module starts Debian's server (`initdb`, `pg_ctl`, found on PATH or under
/usr/lib/postgresql/*/bin; `.ci/run` installs the package when they are missing) in a temporary
folder, as an unprivileged user when the tests run as root, listening on a Unix socket only (no
port to clash with), with fsync off (a test database is worth nothing after the run). The server
is stopped and its folder removed at the end of the session, whatever the tests did.

A test without the binaries fails, naming the package to install: it never skips, so a missing
install step shows in CI instead of hiding a whole backend.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

SUPERUSER = "ayerpoth"
# What a test server needs and a real one must not do: nothing is forced to disk.
SERVER_SETTINGS = {
    "listen_addresses": "''",  # the Unix socket only
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",  # several worker processes, each with its pool
    "unix_socket_permissions": "0777",
    "log_min_messages": "warning",
}


def server_binaries() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    pytest.fail(
        "PostgreSQL's server is not installed (no initdb on PATH or under /usr/lib/postgresql): "
        "apt-get install postgresql (.ci/run does it)",
        pytrace=False,
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
    pytest.fail("running as root, and there is no postgres or nobody user to run PostgreSQL as")


@dataclass
class PostgresCluster:
    """One running server in `root` (its data, socket and log), as `user` when we are root."""

    root: Path
    binaries: Path
    user: pwd.struct_passwd | None
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

    def url(self, database: str = "postgres") -> str:
        """A URL asyncpg (and the bot's DATABASE_URL) takes: the socket folder as `host`."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def _run(self, *command: str) -> None:
        as_user = {}
        if self.user is not None:
            as_user = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(self.binaries / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            cwd=self.root,
            check=False,
            **as_user,  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{command[0]} failed ({result.returncode}): {result.stderr.strip()}\n{log}"
            )

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
            cluster._run(
                "initdb", "--pgdata", str(cluster.data), "--username", SUPERUSER,
                "--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync",
            )  # fmt: skip
            with (cluster.data / "postgresql.conf").open("a") as conf:
                for name, value in {
                    **SERVER_SETTINGS,
                    "unix_socket_directories": f"'{cluster.socket_dir}'",
                }.items():
                    conf.write(f"{name} = {value}\n")
            cluster._run(
                "pg_ctl", "start", "--pgdata", str(cluster.data), "--log", str(cluster.log),
                "--wait", "--timeout", "60", "--silent",
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cluster

    def stop(self) -> None:
        """Stop at once (nothing here is worth a checkpoint) and remove every file."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(
                    "pg_ctl", "stop", "--pgdata", str(self.data), "--mode", "immediate", "--wait"
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of `template`); its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        clause = f' TEMPLATE "{template}"' if template else ""

        async def create() -> None:
            connection = await asyncpg.connect(self.url())
            try:
                await connection.execute(f'CREATE DATABASE "{name}"{clause}')
            finally:
                await connection.close()

        # On a thread of its own: an async fixture may ask for it while an event loop runs.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, create()).result()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The session's server, started on first use and stopped at the end of the session."""
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database for this test: `postgresql://…?host=/socket/folder`."""
    return postgres_cluster.create_database()
