"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, started on a free
loopback port in a temporary directory, one fresh database per test that asks for one.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user the
Debian package creates (``runuser``), in a directory that user owns."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from peers import free_port

SUPERUSER = "cardiogate"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class PostgresCluster:
    """A running cluster; :meth:`new_database` gives each test an empty database."""

    port: int
    data_dir: Path
    pg_ctl: list[str]
    _names: Iterator[int]

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        name = f"test_{next(self._names)}"
        dsn = f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self.pg_ctl, "stop", "-D", str(self.data_dir), "-m", "immediate"],
            capture_output=True,
            check=False,
        )


def start_cluster(base: Path) -> PostgresCluster:
    """initdb, then pg_ctl start on 127.0.0.1 at a free port; wait until it accepts."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):  # .ci/run installs postgresql: missing there is a failure
            pytest.fail("PostgreSQL's server binaries are not installed")
        pytest.skip("PostgreSQL's server binaries (Debian package postgresql) are not installed")
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
        os.chown(base, user.pw_uid, user.pw_gid)
    data, sockets = base / "data", base / "sockets"
    subprocess.run([*run_as, "mkdir", str(data), str(sockets)], check=True, capture_output=True)
    subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust"]
        + ["--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    pg_ctl = [*run_as, str(bin_dir / "pg_ctl")]
    options = f"-k {sockets} -h 127.0.0.1 -p {port} -F -c max_connections=300"
    subprocess.run(
        [*pg_ctl, "start", "-D", str(data), "-w", "-l", str(base / "server.log"), "-o", options],
        check=True,
        capture_output=True,
        timeout=60,
    )
    cluster = PostgresCluster(port, data, pg_ctl, itertools.count())
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres").close()
            return cluster
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                cluster.stop()
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One cluster for the whole test session, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="cardiogate-pg-"))
    try:
        cluster = start_cluster(base)
        yield cluster
        cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
