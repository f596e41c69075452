"""Settings: every setting's value, read once from an injectable mapping.

`Settings.from_env(os.environ)` reads each environment variable (`gateway.variables`:
its name, default, meaning and parser) and validates everything at start; an invalid value
raises SettingsError naming the variable, and `mjgate serve` stops with that message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.variables import SETTINGS
from routing.errors import SentinelCredentialsError
from routing.model import Strategy
from routing.topology import Topology


class SettingsError(ValueError):
    """A setting has a value mjgate can't use. The message names the variable."""


def _check_redis(values: Mapping[str, Any]) -> None:
    """REDIS_URL and the sentinels' credentials together (each alone was checked)."""
    try:
        Topology.parse(
            values["redis_url"] or "redis://",
            sentinel_username=values["sentinel_username"],
            sentinel_password=values["sentinel_password"],
        )
    except SentinelCredentialsError as exc:
        name = (
            "MJGATE_SENTINEL_PASSWORD"
            if values["sentinel_password"]
            else ("MJGATE_SENTINEL_USERNAME")
        )
        raise SettingsError(f"{name}: {exc}") from exc


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    goapi_api_key: str = ""
    goapi_base_url: str = "https://api.goapi.ai"
    redis_url: str | None = None
    redis_prefix: str = "mjgate"
    redis_timeout: float = 0.4
    sentinel_username: str = ""
    sentinel_password: str = ""
    redis_min_replicas: int = 0
    redis_functions: bool = True
    data_dir: Path = Path(".mjgate")
    client_keys: tuple[str, ...] = ()
    static_keys_passthrough: bool = True
    admin_token: str = ""
    admin_port: int | None = None
    public_url: str | None = None
    webhook_secret: str = ""
    alert_webhook_url: str | None = None
    alert_webhook_secret: str = ""
    body_limit: int = 2 * 1024 * 1024
    max_prompt_length: int = 6000
    upstream_connect_timeout: float = 5.0
    upstream_timeout: float = 30.0
    upstream_max_connections: int = 200
    create_attempts: int = 6
    track_interval: float = 2.0
    track_webhook_grace: float = 10.0
    track_gets_per_second: float = 50.0
    track_concurrency: int = 32
    poll_refresh_timeout: float = 2.0
    lease_seconds: float = 120.0
    reconcile_interval: float = 2.0
    sweep_interval: float = 60.0
    staged_limit: int = 50
    staged_timeout: float = 900.0
    task_ttl: int = 7 * 86400
    idempotency_ttl: int = 86400
    pool_file: Path | None = None
    strategy: Strategy | None = None
    pool_file_mode: str = "seed"
    request_read_timeout: float = 20.0
    max_connections: int = 2048
    cost_overrides: dict[str, int] = field(default_factory=dict)
    sandbox_speed: str = "demo"
    sandbox_emulator_port: int = 8090
    log_level: str = "info"
    log_format: str = "json"
    metrics_per_account: bool = True
    allow_private_webhooks: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env, setting.default)
            try:
                values[setting.attr] = setting.parse(raw.strip())
            except (ValueError, TypeError) as exc:
                raise SettingsError(f"{setting.env}={raw!r}: {exc}") from exc
        _check_redis(values)
        return cls(**values)

    @property
    def sandbox(self) -> bool:
        """No GoAPI key: the emulator is the upstream."""
        return not self.goapi_api_key

    def __repr__(self) -> str:  # never print secrets
        return f"Settings(host={self.host!r}, port={self.port}, sandbox={self.sandbox})"
