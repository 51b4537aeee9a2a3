"""Prometheus alerting rules, unit-tested by Prometheus itself (Debian's promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "rules"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool missing: bin/test installs Debian's prometheus package"
    return found


@pytest.mark.parametrize("rules", sorted(RULES.glob("*.test.yml")), ids=lambda p: p.name)
def test_rules_pass_their_promtool_tests(rules: Path) -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", rules.name], cwd=RULES, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rules_file_is_valid_and_tested() -> None:
    files = sorted(p for p in RULES.glob("*.yml") if not p.name.endswith(".test.yml"))
    assert files
    for rules in files:
        assert rules.with_suffix(".test.yml").exists(), f"{rules.name} has no promtool test"
        result = subprocess.run(
            [promtool(), "check", "rules", str(rules)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_loads_every_rules_file_and_no_test_file() -> None:
    config = (RULES.parent / "prometheus.yml").read_text()
    loaded = {
        line.strip().removeprefix("- /etc/prometheus/rules/")
        for line in config.splitlines()
        if line.strip().startswith("- /etc/prometheus/rules/")
    }
    files = {p.name for p in RULES.glob("*.yml") if not p.name.endswith(".test.yml")}
    assert loaded == files
