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
    for name in ("topics", "governor"):
        env = services[name]["environment"]
        for key, value in env.items():
            assert key.startswith("GOVERNOR_"), key
            monkeypatch.setenv(key, "x" if str(value).startswith("${") else str(value))
        settings = load_settings(REPO / "config/governor.yaml")
        assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.worker.web_port == 8088


def test_prometheus_scrapes_the_worker_port_and_path() -> None:
    services = compose()["services"]
    port = services["governor"]["environment"]["GOVERNOR_WORKER__WEB_PORT"]
    assert f"{port}:{port}" in services["governor"]["ports"]
    scrape = yaml.safe_load((REPO / "deploy/prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["static_configs"][0]["targets"] == [f"governor:{port}"]


def test_compose_kafka_is_kraft_single_node() -> None:
    env = compose()["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    replication = {t.replication_factor for t in Catalogue.load().topics}
    assert replication == {1}, "topics.yaml must fit the single-broker compose cluster"
