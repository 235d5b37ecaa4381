"""Shared fixtures: real Mosquitto and PostgreSQL servers on free ports, and database URLs."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import MosquittoBroker, PostgresServer

_db_counter = itertools.count()

#: Set by tests/run.sh: a run with any skipped test fails, so "zero skips" stays true.
NO_SKIPS_ENV = "MES_EDGE_NO_SKIPS"
_skipped: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Remember modules skipped while collecting (importorskip, a module-level skip)."""
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember skipped tests (an expected failure, xfail, is not a skip)."""
    if report.skipped and not hasattr(report, "wasxfail") and report.nodeid not in _skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With MES_EDGE_NO_SKIPS set, a run that skipped anything fails."""
    if not os.environ.get(NO_SKIPS_ENV) or not _skipped:
        return
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"{NO_SKIPS_ENV} is set and {len(_skipped)} test(s) skipped - "
             "a skip is a failure here:", *(f"  {nodeid}" for nodeid in _skipped)]
    if reporter is None:
        print("\n".join(lines))
        return
    reporter.write("\n")  # after the progress line, which ends without one
    for line in lines:
        reporter.write_line(line, red=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | str]:
    """A PostgreSQL for the session: MES_TEST_DATABASE_URL if given, else one we start."""
    given = os.environ.get("MES_TEST_DATABASE_URL")
    if given:
        yield given
        return
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer | str) -> str:
    """A fresh, empty database on the session's PostgreSQL."""
    if isinstance(postgres_server, str):
        from tests.pgutil import fresh_database_from_url

        return fresh_database_from_url(postgres_server, f"t{os.getpid()}_{next(_db_counter)}")
    return postgres_server.create_database(f"t{os.getpid()}_{next(_db_counter)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file database."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mes.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once against SQLite and once against a real PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A private Mosquitto broker on a free port, restartable by the test."""
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
