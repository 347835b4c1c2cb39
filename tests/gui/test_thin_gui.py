"""The GUI stays thin: no SQL and no direct sqlite3 use in src/gui (it calls src/db)."""
from __future__ import annotations

import re
from pathlib import Path

GUI = Path(__file__).resolve().parents[2] / "src" / "gui"
SQL = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|PRAGMA)\b")


def test_no_sql_in_the_gui():
    offenders = []
    for path in sorted(GUI.rglob("*.py")):
        text = path.read_text()
        if SQL.search(text) or ".execute(" in text or "sqlite3.connect" in text:
            offenders.append(path.name)
    assert offenders == []


def test_the_check_would_catch_sql(tmp_path):
    assert SQL.search('conn.execute("SELECT id FROM frames")')
    assert not SQL.search("select a frame in the gallery")
