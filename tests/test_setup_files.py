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
