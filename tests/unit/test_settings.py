from __future__ import annotations

import pytest

from tilegraph.settings import DEFAULT_JWT_SECRET, Settings, SettingsError


def test_default_secret_is_refused_outside_dev() -> None:
    with pytest.raises(SettingsError, match="TILEGRAPH_JWT_SECRET"):
        Settings.from_env({"TILEGRAPH_ENV": "production"})
    with pytest.raises(SettingsError):
        Settings.from_env({"TILEGRAPH_ENV": "test", "TILEGRAPH_JWT_SECRET": DEFAULT_JWT_SECRET})
    assert Settings.from_env({"TILEGRAPH_ENV": "dev"}).jwt_secret == DEFAULT_JWT_SECRET


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {
            "TILEGRAPH_ENV": "production",
            "TILEGRAPH_JWT_SECRET": "s" * 32,
            "TILEGRAPH_CORS_ORIGINS": "https://a.example, https://b.example",
            "TILEGRAPH_MAX_DEPTH": "9",
            "TILEGRAPH_INTROSPECTION": "yes",
            "AWS_ACCESS_KEY_ID": "AKIA",
        }
    )
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.max_depth == 9
    assert settings.introspection_enabled is True
    assert settings.field_suggestions_enabled is False  # off by default outside dev
    assert settings.aws_access_key_id == "AKIA"
    assert settings.bcrypt_rounds == 12


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="TILEGRAPH_MAX_DEPTH"):
        Settings.from_env({"TILEGRAPH_ENV": "dev", "TILEGRAPH_MAX_DEPTH": "deep"})
    with pytest.raises(SettingsError, match="TILEGRAPH_ENV"):
        Settings.from_env({"TILEGRAPH_ENV": "staging", "TILEGRAPH_JWT_SECRET": "s" * 32})


def test_card_results_have_a_cache_redis_and_a_retention() -> None:
    dev = {"TILEGRAPH_ENV": "dev", "TILEGRAPH_REDIS_URL": "redis://main:6379/0"}
    assert Settings.from_env(dev).cache_redis == "redis://main:6379/0"  # the old behaviour
    own = Settings.from_env({**dev, "TILEGRAPH_CACHE_REDIS_URL": "redis://cache:6379/0"})
    assert own.cache_redis == "redis://cache:6379/0" and own.redis_url == "redis://main:6379/0"
    assert own.card_result_retention_days == 30
    with pytest.raises(SettingsError, match="TILEGRAPH_CARD_RESULT_RETENTION_DAYS"):
        Settings.from_env({**dev, "TILEGRAPH_CARD_RESULT_RETENTION_DAYS": "0"})


def test_card_tables_have_a_size_cap() -> None:
    dev = {"TILEGRAPH_ENV": "dev"}
    assert Settings.from_env(dev).card_table_max_bytes == 16 << 20
    assert (
        Settings.from_env({**dev, "TILEGRAPH_CARD_TABLE_MAX_BYTES": "1000"}).card_table_max_bytes
        == 1000
    )
    with pytest.raises(SettingsError, match="TILEGRAPH_CARD_TABLE_MAX_BYTES"):
        Settings.from_env({**dev, "TILEGRAPH_CARD_TABLE_MAX_BYTES": "0"})


def test_the_compose_stack_restarts_what_exits_and_lets_workers_hand_runs_back() -> None:
    """Every service of docker-compose.yml comes back after a crash and is health-checked;
    a worker is given longer to stop than its grace period, so it can hand its runs back."""
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        assert service.get("restart") in {"unless-stopped", "always"}, name
        assert "healthcheck" in service, name
    grace = Settings.from_env({"TILEGRAPH_ENV": "dev"}).worker_stop_grace_seconds
    stop = compose["services"]["worker"]["stop_grace_period"]
    assert stop.endswith("s") and float(stop[:-1]) > grace
