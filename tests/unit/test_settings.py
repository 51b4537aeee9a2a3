"""Settings: YAML plus environment, validated with readable errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.settings import SettingsError, load_settings
from schemas.common import EnergySource


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "governor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_reference_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVERNOR_CONFIG", raising=False)
    settings = load_settings(Path("config/governor.yaml"))
    carbon = settings.carbon
    assert carbon.factor_set == "reference"
    assert carbon.active_factor_set.factors_kg_co2e_per_kwh[EnergySource.COAL] == 0.95
    assert settings.worker.web_port == 8088
    audit = settings.audit
    assert (audit.peak_sun_hours, audit.max_energy_reduction_pct) == (6.0, 5.0)
    assert audit.compliance_period == "week"
    assert audit.ceiling_kwh("any-site") is None  # no capacity configured, no ceiling


def test_site_capacities_from_yaml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "audit:\n  sites:\n    site-a: {capacity_kw: 100}\n")
    assert load_settings(path).audit.ceiling_kwh("site-a") == pytest.approx(10_950.0)
    monkeypatch.setenv("GOVERNOR_AUDIT__DEFAULT_CAPACITY_KW", "200")
    monkeypatch.setenv("GOVERNOR_AUDIT__MAX_ENERGY_REDUCTION_PCT", "2.5")
    audit = load_settings(path).audit
    assert audit.ceiling_kwh("site-b") == pytest.approx(200 * 6 * 365 * 0.025)
    assert audit.ceiling_kwh("site-a") == pytest.approx(100 * 6 * 365 * 0.025)


def test_yaml_then_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "carbon:\n  max_future_skew_s: 60\nworker:\n  web_port: 9000\n")
    monkeypatch.setenv("GOVERNOR_WORKER__WEB_PORT", "9100")
    settings = load_settings(path)
    assert settings.carbon.max_future_skew_s == 60
    assert settings.worker.web_port == 9100


def test_custom_factor_set_is_added_to_builtins(tmp_path: Path) -> None:
    factors = "\n".join(f"        {s.value}: 0.1" for s in EnergySource)
    path = write(
        tmp_path,
        "carbon:\n  factor_set: site\n  factor_sets:\n    site:\n      version: v7\n"
        f"      factors_kg_co2e_per_kwh:\n{factors}\n",
    )
    settings = load_settings(path)
    assert settings.carbon.active_factor_set.version == "v7"
    assert "ipcc-ar5-lifecycle" in settings.carbon.factor_sets


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("carbon:\n  factor_set: nope\n", "factor_set 'nope' is not defined"),
        ("carbon:\n  max_future_skew_s: -1\n", "carbon.max_future_skew_s"),
        ("worker:\n  web_prot: 1\n", "worker.web_prot"),
        ("- a list\n", "top level must be a mapping"),
        ("carbon: [\n", "not valid YAML"),
        ("audit:\n  sites:\n    s: {capacity_kw: 0}\n", "audit.sites.s.capacity_kw"),
        ("audit:\n  compliance_period: fortnight\n", "audit.compliance_period"),
        ("audit:\n  max_energy_reduction_pct: 120\n", "audit.max_energy_reduction_pct"),
    ],
)
def test_invalid_configuration_names_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(SettingsError, match=None) as info:
        load_settings(write(tmp_path, text))
    assert fragment in str(info.value)


def test_invalid_environment_value_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVERNOR_WORKER__WEB_PORT", "not-a-port")
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, ""))
    assert "worker.web_port" in str(info.value)


def test_sasl_requires_credentials(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, "kafka:\n  security_protocol: SASL_SSL\n"))
    assert "SASL needs" in str(info.value)


def test_secret_is_not_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNOR_API__TOKEN", "s3cr3t-value")
    settings = load_settings(write(tmp_path, ""))
    assert "s3cr3t-value" not in repr(settings)
    token = settings.api.resolved_token()
    assert token is not None and token.get_secret_value() == "s3cr3t-value"


def test_traffic_policy_defaults_yaml_and_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVERNOR_CONFIG", raising=False)
    policy = load_settings(Path("config/governor.yaml")).traffic.policy
    assert (policy.risk_thresholds.throttle, policy.risk_thresholds.drop) == (0.3, 0.8)
    assert policy.breaker.minimum_calls == 100 and policy.breaker.wait_open_s == 60.0
    assert [r.burn_rate for r in policy.burn_rules] == [14.4, 6.0, 1.0]
    assert policy.tier_of("anything") == "OBSERVE_ONLY"
    path = write(
        tmp_path,
        "traffic:\n  policy:\n    version: 1.0.0\n    contracts:\n"
        "      - {contract_id: s1, endpoint_pattern: 'GET /s', max_latency_ms: 50}\n"
        "    platform_tiers: {gitlab: CONTROL}\n",
    )
    loaded = load_settings(path).traffic.policy
    assert loaded.contracts[0].max_latency_ms == 50 and loaded.tier_of("gitlab") == "CONTROL"
    monkeypatch.setenv("GOVERNOR_TRAFFIC__POLICY__RISK_THRESHOLDS__THROTTLE", "0.9")
    with pytest.raises(SettingsError, match="throttle < quarantine < drop"):
        load_settings(path)
    monkeypatch.delenv("GOVERNOR_TRAFFIC__POLICY__RISK_THRESHOLDS__THROTTLE")
    monkeypatch.setenv("GOVERNOR_TRAFFIC__POLICY_PUBLIC_KEYS", '["not base64!"]')
    with pytest.raises(SettingsError, match="policy public keys"):
        load_settings(path)


def test_carbon_budget_and_load_defaults_overrides_and_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVERNOR_CONFIG", raising=False)
    settings = load_settings(Path("config/governor.yaml"))
    budgets, load = settings.carbon_budgets, settings.load
    assert (budgets.warning_threshold_pct, budgets.critical_threshold_pct) == (80.0, 95.0)
    assert (load.target_utilization_min, load.target_utilization_max) == (60.0, 80.0)
    assert (load.scale_up_threshold, load.scale_down_threshold) == (85.0, 50.0)
    monkeypatch.setenv("GOVERNOR_LOAD__SCALE_UP_THRESHOLD", "90")
    monkeypatch.setenv("GOVERNOR_CARBON_BUDGETS__TIMEZONE", "Europe/Berlin")
    overridden = load_settings(Path("config/governor.yaml"))
    assert overridden.load.scale_up_threshold == 90.0
    assert overridden.carbon_budgets.timezone == "Europe/Berlin"
    monkeypatch.setenv("GOVERNOR_LOAD__SCALE_UP_THRESHOLD", "70")
    with pytest.raises(SettingsError, match="load thresholds must rise"):
        load_settings(Path("config/governor.yaml"))
    monkeypatch.delenv("GOVERNOR_LOAD__SCALE_UP_THRESHOLD")
    monkeypatch.setenv("GOVERNOR_CARBON_BUDGETS__TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError, match="unknown timezone"):
        load_settings(Path("config/governor.yaml"))


def test_an_empty_api_token_is_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNOR_API__TOKEN", "")  # an unset ${VAR:-} in docker-compose.yml
    assert load_settings(Path("config/governor.yaml")).api.resolved_token() is None


def test_the_settings_file_used_is_logged_and_a_named_missing_one_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.settings")
    config = tmp_path / "governor.yaml"
    config.write_text("carbon:\n  max_future_skew_s: 60\n")
    assert load_settings(config).carbon.max_future_skew_s == 60
    assert f"settings: {config.resolve()}" in caplog.text
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    monkeypatch.setenv("GOVERNOR_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings()
    monkeypatch.delenv("GOVERNOR_CONFIG")
    monkeypatch.chdir(tmp_path)
    caplog.clear()
    load_settings()
    assert "built-in defaults" in caplog.text
