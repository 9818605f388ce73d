"""The samhandling command."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samhandling", *args], capture_output=True, text=True, timeout=120
    )


def test_migrate_creates_schema_once(tmp_path: Path) -> None:
    first = run("migrate", "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    applied = " ".join(first.stderr.split())  # the console wraps long lines
    assert (
        "applied 5 migration(s): 0001_resources, 0002_search, 0003_trust, 0004_audit, "
        "0005_binary_content" in applied
    )
    second = run("migrate", "--data-dir", str(tmp_path))
    assert "applied 0 migration(s)" in second.stderr
    tables = {
        row[0]
        for row in sqlite3.connect(tmp_path / "samhandling.db").execute(
            "SELECT name FROM sqlite_master"
        )
    }
    assert {"resource", "resource_history", "schema_migration", "trust_client"} <= tables


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = run("migrate", "--data-dir", str(tmp_path), "--database-url", "mysql://x")
    assert result.returncode == 2
    assert "unsupported database URL scheme" in result.stderr


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "migrate", "demo"):
        assert command in result.stdout


def test_migrate_on_postgresql(postgres_database: str, tmp_path: Path) -> None:
    result = run("migrate", "--data-dir", str(tmp_path), "--database-url", postgres_database)
    assert result.returncode == 0, result.stderr
    assert "migration(s)" in result.stderr


def test_demo_data_loads_once(tmp_path: Path) -> None:
    args = ("demo", "--data-dir", str(tmp_path), "--persons", "150", "--patients", "2")
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "loaded the register population (seed 42): 150 persons" in first.stderr
    assert "loaded GP offices and 2 patients with clinical records" in first.stderr
    db = sqlite3.connect(tmp_path / "samhandling.db")
    counts = dict(db.execute("SELECT type, count(*) FROM resource GROUP BY type").fetchall())
    assert counts["Patient"] >= 152  # the register's persons, and 2 with clinical records
    assert counts["Organization"] >= 1 and counts["Observation"] >= 1
    second = run(*args)
    assert "the register population (seed 42) is already loaded" in second.stderr
    assert "the clinical demo data is already loaded" in second.stderr
    assert (
        db.execute("SELECT count(*) FROM resource WHERE type = 'Patient'").fetchone()[0]
        == (counts["Patient"])
    )
