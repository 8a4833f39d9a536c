"""A throwaway PostgreSQL 15 cluster for the tests: Debian's binaries, a temp folder, a socket.

The cluster lives in a temporary folder, listens only on a unix socket in that folder (no TCP
port to collide with), runs with fsync off (nothing in it outlives the session) and C
collation (text sorts by bytes, as SQLite sorts it). initdb refuses to run as root, so under
root (CI, containers) the server runs as the `postgres` system user, which owns the folder.

Each test gets a database of its own, cloned from a template that is migrated once: CREATE
DATABASE ... TEMPLATE copies files, which is faster than running the migrations again.

bench/postgres.py starts the same cluster for its measurements.

When the binaries are missing the PostgreSQL tests skip, saying so, except under CI
(`CI=true`), where a missing server is a failure: CI must run the contract on both backends.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("PAYOFF_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
TEMPLATE = "payoff_template"
START_TIMEOUT_S = 60


@dataclass
class Cluster:
    """A running cluster: URLs of fresh databases, on its socket."""

    socket_dir: Path
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str) -> str:
        return f"postgresql://{SERVER_USER}@/{database}?host={self.socket_dir}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def fresh_database(self, *, migrated: bool = True) -> str:
        """A new database's URL: a clone of the migrated template, or an empty one."""
        name = f"ledger_{os.getpid()}_{next(self._numbers)}"
        template = TEMPLATE if migrated else "template0"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)


def missing_reason(binaries: Path = PG_BIN) -> str | None:
    """Why the cluster cannot run here, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'payoff[postgres]')"
    if not (binaries / "initdb").exists():
        return f"no PostgreSQL 15 binaries in {binaries} (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run the server"
    return None


def require_binaries(binaries: Path = PG_BIN) -> None:
    """Skip (or, under CI, fail) when the cluster cannot run here."""
    import pytest  # here: the benchmarks start the cluster too, without pytest

    reason = missing_reason(binaries)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Start a cluster in a temporary folder; stop it and remove the folder at the end."""
    root = Path(tempfile.mkdtemp(prefix="payoff-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(root, account.pw_uid, account.pw_gid)
    root.chmod(0o755)
    run = _runner(root)
    try:
        run(
            [
                str(PG_BIN / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                SERVER_USER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ]
        )
        options = (
            f"-k {root} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        run(
            [
                str(PG_BIN / "pg_ctl"),
                "--pgdata",
                str(data),
                "--log",
                str(root / "server.log"),
                "--options",
                options,
                "--wait",
                f"--timeout={START_TIMEOUT_S}",
                "start",
            ]
        )
        try:
            yield Cluster(root)
        finally:
            run([str(PG_BIN / "pg_ctl"), "--pgdata", str(data), "--mode", "immediate", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _runner(root: Path):  # type: ignore[no-untyped-def]
    def run(command: list[str]) -> None:
        done = subprocess.run(
            _as_server_user(command), cwd=root, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log = root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr}{tail}"
            )

    return run


def migrate_template(cluster: Cluster) -> None:
    """Create the template database and bring it to the packaged schema, once a session."""
    from payoff.store import open_store

    cluster.admin(f"CREATE DATABASE {TEMPLATE} TEMPLATE template0")
    open_store(cluster.url(TEMPLATE)).close()
