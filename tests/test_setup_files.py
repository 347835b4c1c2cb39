"""The set-up files agree with each other and with what the brief promises newcomers."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_environment_yml_installs_exactly_the_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip) == sorted(_requirements())


def test_torch_range_admits_the_local_wheels():
    from packaging.specifiers import SpecifierSet
    specs = {r.split(">")[0].split("<")[0].split("=")[0]: r for r in _requirements()}
    for name, version in (("torch", "2.14.1"), ("torchvision", "0.29.1")):
        assert version in SpecifierSet(specs[name][len(name):]), specs[name]


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    head = (ROOT / "README.md").read_text().splitlines()[:8]
    assert any(line.startswith("make run") for line in head)
    assert any(line.startswith("make test") for line in head)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# import name -> distribution name, where they differ
IMPORT_TO_PACKAGE = {"cv2": "opencv-python", "yaml": "pyyaml", "PIL": "pillow",
                     "sklearn": "scikit-learn", "PyQt6": "pyqt6", "av": "av"}
LOCAL = {"src", "benchmarks", "tests",
         # test helper modules the benchmarks reuse (put on sys.path by the benchmark)
         *(p.stem for p in ROOT.joinpath("tests").rglob("*.py"))}


def _top_level_imports(path: Path) -> set[str]:
    import ast
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _requirement_names() -> set[str]:
    import re
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-")
            for r in _requirements()}


def test_every_imported_third_party_package_is_a_requirement():
    import sys
    files = [ROOT / "main.py", *(ROOT / "src").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    used: dict[str, set[str]] = {}
    for path in files:
        for name in _top_level_imports(path) - LOCAL - set(sys.stdlib_module_names):
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert {"torch", "ultralytics", "cv2", "tqdm", "matplotlib"} <= set(used)   # the scan works
    required = _requirement_names()
    missing = {name: sorted(where)[:3] for name, where in used.items()
               if IMPORT_TO_PACKAGE.get(name, name).lower().replace("_", "-") not in required}
    assert not missing, f"imported but not in requirements.txt/environment.yml: {missing}"
