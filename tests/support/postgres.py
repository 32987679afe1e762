"""A real PostgreSQL server for tests and benchmarks.

`DATABASE_URL_POSTGRES` (a server you run, e.g. `postgresql://user:pw@host/db`)
is used when set: each use gets a fresh database created on it. Otherwise a
throwaway cluster is started with the Debian binaries (`initdb`, `pg_ctl`;
`make postgres` installs them) in a temporary folder, on a free port, owned by
an unprivileged user when we are root (PostgreSQL refuses to run as root), and
removed afterwards. The fixture skips, saying why, only when the binaries are
absent.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.appserver import free_port

ENV = "DATABASE_URL_POSTGRES"


class PostgresUnavailable(RuntimeError):
    """No server configured and no PostgreSQL binaries installed."""


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version, reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _run_as() -> dict:
    """subprocess arguments to drop root: the 'postgres' user if it exists, else 'nobody'."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise PostgresUnavailable("running as root and no unprivileged user to run PostgreSQL as")


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temporary folder; yields its URL (database 'postgres')."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "PostgreSQL binaries (initdb, pg_ctl) not found: run `make postgres` "
            f"(apt-get install postgresql) or set {ENV}"
        )
    as_user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))
    data, log_file = root / "data", root / "server.log"
    if as_user:
        os.chown(root, as_user["user"], as_user["group"])
    port = free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}

    def run(*args: str) -> None:
        result = subprocess.run(
            [str(bin_dir / args[0]), *args[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            **as_user,
        )
        if result.returncode != 0:
            logs = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()}\n{logs}")

    try:
        run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F -c max_connections=50"
        run("pg_ctl", "-D", str(data), "-l", str(log_file), "-o", options, "-w", "-t", "60", "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create an empty database on the server; yields its URL, drops it afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def postgres_server() -> Iterator[str]:
    """The configured server, or a throwaway cluster."""
    configured = os.environ.get(ENV, "")
    if configured:
        yield configured
    else:
        with throwaway_cluster() as url:
            yield url


@pytest.fixture(scope="session", name="postgres_server_url")
def _postgres_server_url() -> Iterator[str]:
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(name="postgres_url")
def _postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (URL in SQLAlchemy form)."""
    with fresh_database(postgres_server_url) as url:
        yield url
