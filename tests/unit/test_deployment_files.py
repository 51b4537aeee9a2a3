"""docker-compose.yml and deploy/prometheus.yml stay consistent with the settings they use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import load_settings
from app.topics import Catalogue

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def test_every_governor_variable_in_compose_is_a_valid_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose()["services"]
    for name in ("topics", "governor-1", "governor-2"):
        env = services[name]["environment"]
        for key, value in env.items():
            assert key.startswith("GOVERNOR_"), key
            monkeypatch.setenv(key, "x" if str(value).startswith("${") else str(value))
        settings = load_settings(REPO / "config/governor.yaml")
        assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.worker.web_port == 8088


def test_prometheus_scrapes_both_workers_and_their_ledgers() -> None:
    services = compose()["services"]
    workers = [name for name in services if name.startswith("governor-")]
    assert workers == ["governor-1", "governor-2"]
    ports = {services[w]["environment"]["GOVERNOR_WORKER__WEB_PORT"] for w in workers}
    hosts = {services[w]["environment"]["GOVERNOR_WORKER__ADVERTISED_HOST"] for w in workers}
    assert hosts == set(workers) and len(ports) == 1
    (port,) = ports
    ledger_port = load_settings(REPO / "config/governor.yaml").ledger.metrics_port
    jobs = {
        job["job_name"]: job
        for job in yaml.safe_load((REPO / "deploy/prometheus.yml").read_text())["scrape_configs"]
    }
    assert jobs["governor"]["metrics_path"] == "/metrics"
    assert jobs["governor"]["static_configs"][0]["targets"] == [f"{w}:{port}" for w in workers]
    ledger_targets = jobs["governor-ledger"]["static_configs"][0]["targets"]
    assert ledger_targets == [f"{w}:{ledger_port}" for w in workers]


def test_grafana_is_provisioned_with_every_dashboard() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"]}
    assert mounts["./deploy/grafana/dashboards"] == "/var/lib/grafana/dashboards"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/governor.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert source["datasources"][0]["url"] == "http://prometheus:9090"


def test_compose_kafka_is_kraft_single_node() -> None:
    env = compose()["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    replication = {t.replication_factor for t in Catalogue.load().topics}
    assert replication == {1}, "topics.yaml must fit the single-broker compose cluster"


def test_compose_file_is_valid_for_docker_compose() -> None:
    """`docker compose config` (v2) or Debian's docker-compose (v1.29) must accept it."""
    import shutil
    import subprocess

    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        command = ["docker", "compose", "config", "-q"]
    else:
        found = shutil.which("docker-compose")
        assert found, "no docker compose: bin/test installs Debian's docker-compose"
        command = [found, "config", "-q"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
