from __future__ import annotations

import pytest

from gateway.settings import Settings, SettingsError
from gateway.variables import SETTINGS


def test_defaults_match_the_table() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.sandbox
    assert {s.env for s in SETTINGS} >= {
        "MJGATE_HOST",
        "MJGATE_PORT",
        "GOAPI_API_KEY",
        "GOAPI_BASE_URL",
        "REDIS_URL",
        "MJGATE_CLIENT_KEYS",
    }


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("MJGATE_PORT", "eighty"),
        ("MJGATE_PORT", "70000"),
        ("GOAPI_BASE_URL", "api.goapi.ai"),
        ("REDIS_URL", "http://localhost"),
        ("MJGATE_CLIENT_KEYS", "short"),
        ("MJGATE_STAGED_LIMIT", "0"),
        ("MJGATE_LOG_FORMAT", "xml"),
        ("MJGATE_COSTS", "paint=3"),
        ("MJGATE_STRATEGY", "random"),
        ("MJGATE_METRICS_PER_ACCOUNT", "maybe"),
        ("MJGATE_SWEEP_INTERVAL", "nan"),  # passed every comparison, then broke the sweep
        ("MJGATE_LEASE_SECONDS", "inf"),
        ("MJGATE_REDIS_TIMEOUT", "-inf"),
    ],
)
def test_invalid_values_name_the_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: value})


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "GOAPI_API_KEY": "k",
            "MJGATE_CLIENT_KEYS": "aaaaaaaa, bbbbbbbb",
            "MJGATE_COSTS": "imagine=30",
            "REDIS_URL": "redis://x:1/0",
        }
    )
    assert not settings.sandbox
    assert settings.client_keys == ("aaaaaaaa", "bbbbbbbb")
    assert settings.cost_overrides == {"imagine": 30}
    assert "k" not in repr(settings)


def test_readme_lists_every_setting_with_its_default() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default else "(empty)"
        assert f"| `{setting.env}` | {default} |" in readme, setting.env
