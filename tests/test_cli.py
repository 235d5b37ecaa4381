"""The `mes-edge` command line: help on every option with its default, quiet admin commands."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mes_edge.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(180)


def parsers(parser: argparse.ArgumentParser, name: str = "mes-edge"
            ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The parser and every sub-command's parser, with its command line."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_every_option_has_help_and_shows_its_default() -> None:
    seen = 0
    for command, parser in parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            seen += 1
            what = f"{command} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{what} has no help"
            if action.required or action.default in (None, [], False):
                continue
            shown = (formatter._get_help_string(action) or "") % {"default": action.default}
            assert "default" in shown, f"{what}: its default is not shown"
    assert seen > 25
    demo = dict(parsers(build_parser()))["mes-edge demo"]
    text = demo.format_help()
    assert "(default: 8000)" in text and "(default: mes-edge-data)" in text


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mes_edge.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_admin_commands_print_what_they_say_and_nothing_else(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(f"site: s1\nwork_centers: [{{id: A}}]\n"
                     f"database: {{url: 'sqlite:///{tmp_path / 'mes.db'}'}}\n")
    # A fresh database: the first command migrates it, still without Alembic's INFO lines.
    token = cli("token", "create", "--config", str(plant), "--role", "erp", "--name", "ERP-1")
    assert token.returncode == 0, token.stderr
    assert token.stderr == ""
    assert len(token.stdout.splitlines()) == 1 and token.stdout.startswith("mes_")
    upgrade = cli("db", "upgrade", "--config", str(plant))
    assert (upgrade.returncode, upgrade.stdout, upgrade.stderr) == (0, "database at head\n", "")
    listed = cli("token", "list", "--config", str(plant))
    assert listed.returncode == 0 and listed.stderr == ""
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["TOKEN", "ID", "ROLE", "STATE", "EXPIRES", "LAST", "USED", "WORK",
                              "CENTERS", "NAME"]
    assert len(rows) == 1 and rows[0].split()[1:] == ["erp", "active", "-", "-", "-", "ERP-1"]
    # The columns line up under the header.
    assert rows[0].index("erp") == header.index("ROLE")
    added = cli("operator", "add", "--config", str(plant), "--badge", "B-1", "--name", "Li",
                "--pin-env", "P", env={"P": "1234"})
    assert (added.returncode, added.stderr) == (0, "")
    assert added.stdout == "operator B-1 (Li) saved, with a PIN\n"


def test_verbose_shows_alembic_again(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(f"site: s1\nwork_centers: [{{id: A}}]\n"
                     f"database: {{url: 'sqlite:///{tmp_path / 'mes.db'}'}}\n")
    res = cli("-v", "db", "upgrade", "--config", str(plant))
    assert res.returncode == 0 and "alembic" in res.stderr
