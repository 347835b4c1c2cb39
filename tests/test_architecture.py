"""The headless core (src/db, src/data, src/training) must never import Qt."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("src/db", "src/data", "src/training")
QT_PACKAGES = ("PyQt6", "PyQt5", "PySide6", "PySide2", "qtpy", "superqt")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_sources_do_not_import_qt():
    offenders = []
    for folder in CORE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in _imported_modules(path):
                if name.split(".")[0] in QT_PACKAGES or name.startswith("src.gui"):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_importing_every_core_module_loads_no_qt():
    """Catches indirect imports too (a core module importing something that imports Qt)."""
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts)
               for folder in CORE for p in sorted((ROOT / folder).rglob("*.py"))
               if p.name != "__main__.py"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"print([m for m in sys.modules if m.split('.')[0] in {QT_PACKAGES!r}])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_check_catches_a_qt_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from PyQt6.QtCore import QObject\n")
    assert "PyQt6.QtCore" in _imported_modules(bad)
