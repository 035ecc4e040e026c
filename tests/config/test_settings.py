"""config.settings: TOML, environment overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings


def test_defaults_are_the_embedded_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CXR_CONFIG", raising=False)
    settings = Settings.load()
    assert settings.data_dir == tmp_path / "var"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'cxr.sqlite'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'var' / 'broker.sqlite'}"
    assert settings.scp.ae_title == "CXR_AI" and settings.scp.port == 11112
    assert settings.destinations == []


def test_toml_file_then_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        f'data_dir = "{tmp_path}/data"\n'
        'database_url = "postgresql+psycopg://cxr@db/cxr"\n'
        '[scp]\nport = 104\nae_title = "NODE"\n'
        '[[destinations]]\nname = "pacs"\nae_title = "PACS"\nhost = "10.0.0.5"\nport = 4242\n'
    )
    monkeypatch.setenv("CXR_SCP__PORT", "11113")
    settings = Settings.load(config)
    assert settings.scp.port == 11113, "the environment overrides the file"
    assert settings.scp.ae_title == "NODE", "keys the environment does not name come from the file"
    assert settings.database_url == "postgresql+psycopg://cxr@db/cxr"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'data' / 'broker.sqlite'}"
    assert [d.name for d in settings.destinations] == ["pacs"]


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('detector = "baseline"\n[scp]\nport = 2000\n')
    monkeypatch.setenv("CXR_CONFIG", str(config))
    assert Settings.load().scp.port == 2000


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("databse_url = 'sqlite://'\n")
    with pytest.raises(ValueError, match="databse_url"):
        Settings.load(config)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        Settings.load(tmp_path / "nope.toml")


def test_the_example_configuration_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXR_CONFIG", raising=False)
    example = Path(__file__).resolve().parents[2] / "cxr.example.toml"
    settings = Settings.load(example)
    assert settings.scp.port == 11112 and settings.destinations[0].port == 4242


def test_a_delivery_lease_shorter_than_a_backoff_is_refused(tmp_path: Path) -> None:
    """A sweeper that re-sends deliveries still waiting out their backoff multiplies the attempts (the fault soak
    dead-lettered deliveries within a minute that way)."""
    config = tmp_path / "cxr.toml"
    config.write_text("[worker]\ndelivery_lease_s = 60\n")
    with pytest.raises(ValueError, match=r"delivery_lease_s \(60\) must be longer than delivery_backoff_max_s \(300\)"):
        Settings.load(config)
    config.write_text("[worker]\ndelivery_lease_s = 60\ndelivery_backoff_max_s = 30\n")
    assert Settings.load(config).worker.delivery_lease_s == 60
