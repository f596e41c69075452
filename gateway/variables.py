"""The environment variables: each one's name, the setting it sets, its default, what it means
and how its text becomes a value (a parser raising ValueError that says what is wrong). The
README's settings table is generated from `SETTINGS` (see `mjgate settings`); `Settings`
(`gateway.settings`) reads them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from routing.costs import parse_overrides
from routing.errors import CostTableError
from routing.model import Strategy
from routing.topology import Topology

N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, the field it sets, its default, what it means."""

    env: str
    attr: str
    default: str
    help: str
    parse: Callable[[str], Any]


def _at_least(kind: Callable[[str], N], *, positive: bool) -> Callable[[str], N]:
    """A parser of `kind` numbers greater than 0 (`positive`), or not negative; finite (a
    `nan` or `inf` would pass both comparisons' intent and break what uses it)."""

    def parse(value: str) -> N:
        number = kind(value)
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if positive and number <= 0:
            raise ValueError("must be greater than 0")
        if number < 0:
            raise ValueError("must not be negative")
        return number

    return parse


_positive_float = _at_least(float, positive=True)
_non_negative_float = _at_least(float, positive=False)
_positive_int = _at_least(int, positive=True)
_non_negative_int = _at_least(int, positive=False)


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError("must be a port number (0-65535)")
    return number


def _url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


def _optional_url(value: str) -> str | None:
    return _url(value) if value else None


def _redis_url(value: str) -> str | None:
    if not value:
        return None
    Topology.parse(value)  # raises ValueError saying what is wrong
    return value


def _keys(value: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    if any(len(k) < 8 for k in keys):
        raise ValueError("each key must be at least 8 characters")
    return keys


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _optional_path(value: str) -> Path | None:
    return Path(value) if value else None


def _costs(value: str) -> dict[str, int]:
    try:
        return parse_overrides(value)
    except CostTableError as exc:
        raise ValueError(str(exc)) from exc


SETTINGS: tuple[Variable, ...] = (
    Variable("MJGATE_HOST", "host", "127.0.0.1", "address `mjgate serve` listens on", str),
    Variable("MJGATE_PORT", "port", "8080", "port `mjgate serve` listens on", _port),
    Variable("GOAPI_API_KEY", "goapi_api_key", "",
            "GoAPI key; empty means **sandbox**: the built-in emulator is the upstream", str),
    Variable("GOAPI_BASE_URL", "goapi_base_url", "https://api.goapi.ai", "upstream base URL",
            _url),
    Variable("REDIS_URL", "redis_url", "",
            "Redis for all shared state: redis://, rediss://, unix://, redis+sentinel://, "
            "redis+cluster:// (docs/redis.md); empty starts an embedded Redis "
            "(see MJGATE_DATA_DIR)",
            _redis_url),
    Variable("MJGATE_REDIS_PREFIX", "redis_prefix", "mjgate", "prefix of every Redis key", str),
    Variable("MJGATE_REDIS_TIMEOUT", "redis_timeout", "0.4",
            "seconds before a Redis call counts as failed (503 store_unavailable)",
            _positive_float),
    Variable("MJGATE_SENTINEL_USERNAME", "sentinel_username", "",
            "ACL user of the sentinels (redis+sentinel:// only); empty: none", str),
    Variable("MJGATE_SENTINEL_PASSWORD", "sentinel_password", "",
            "password of the sentinels themselves (redis+sentinel:// only); the primary's is "
            "in REDIS_URL", str),
    Variable("MJGATE_REDIS_MIN_REPLICAS", "redis_min_replicas", "0",
            "with N > 0, each hot-path write (reservations, records) waits for every replica "
            "of the primary (WAIT, within half MJGATE_REDIS_TIMEOUT) and fails with 503 when "
            "fewer than N acknowledged it; 0: off",
            _non_negative_int),
    Variable("MJGATE_REDIS_FUNCTIONS", "redis_functions", "true",
            "call the pool's scripts as Redis Functions (one library loaded once per server, "
            "Redis 7+; EVALSHA on older servers or users not allowed FUNCTION LOAD); false: "
            "EVALSHA always", _bool),
    Variable("MJGATE_DATA_DIR", "data_dir", ".mjgate",
            "folder of the embedded Redis's data, socket and pid file, and of the sandbox "
            "emulator's pid file", Path),
    Variable("MJGATE_CLIENT_KEYS", "client_keys", "",
            "comma-separated client keys accepted on /api/v1 (bootstrap; 8+ chars each)", _keys),
    Variable("MJGATE_STATIC_KEYS_PASSTHROUGH", "static_keys_passthrough", "true",
            "MJGATE_CLIENT_KEYS keys may use the pass-through (any model, any task id, with the "
            "GoAPI key); managed keys have their own policy", _bool),
    Variable("MJGATE_ADMIN_TOKEN", "admin_token", "",
            "Bearer token of the admin API; empty disables /admin/v1", str),
    Variable("MJGATE_ADMIN_PORT", "admin_port", "",
            "serve the admin API on this port only, not on MJGATE_PORT; empty: on MJGATE_PORT",
            lambda v: _port(v) if v else None),
    Variable("MJGATE_PUBLIC_URL", "public_url", "",
            "URL at which GoAPI reaches mjgate's webhooks; empty: no upstream webhooks, "
            "completion is learnt by polling", _optional_url),
    Variable("MJGATE_WEBHOOK_SECRET", "webhook_secret", "",
            "secret GoAPI sends back on task webhooks and notifications (and the token in "
            "their path); empty: derived from the GoAPI key", str),
    Variable("MJGATE_ALERT_WEBHOOK_URL", "alert_webhook_url", "",
            "operator alerts (a key crossing 80%/95% of a quota) are POSTed here; empty: none",
            _optional_url),
    Variable("MJGATE_ALERT_WEBHOOK_SECRET", "alert_webhook_secret", "",
            "signs the alert webhook's body (x-mjgate-signature, HMAC-SHA256); empty: unsigned",
            str),
    Variable("MJGATE_BODY_LIMIT", "body_limit", "2097152", "largest request body, in bytes",
            _positive_int),
    Variable("MJGATE_MAX_PROMPT_LENGTH", "max_prompt_length", "6000",
            "longest prompt accepted, in characters", _positive_int),
    Variable("MJGATE_UPSTREAM_CONNECT_TIMEOUT", "upstream_connect_timeout", "5",
            "seconds to open a connection to the upstream", _positive_float),
    Variable("MJGATE_UPSTREAM_TIMEOUT", "upstream_timeout", "30",
            "seconds to wait for an upstream answer once the request is sent", _positive_float),
    Variable("MJGATE_UPSTREAM_MAX_CONNECTIONS", "upstream_max_connections", "200",
            "connection pool size towards the upstream", _positive_int),
    Variable("MJGATE_CREATE_ATTEMPTS", "create_attempts", "6",
            "accounts a create is tried on, at most, while the upstream refuses for the account "
            "or can't be reached", _positive_int),
    Variable("MJGATE_TRACK_INTERVAL", "track_interval", "2",
            "seconds between completion checks of a task still running past its expected end",
            _positive_float),
    Variable("MJGATE_TRACK_WEBHOOK_GRACE", "track_webhook_grace", "10",
            "once GoAPI's webhooks reach mjgate for a task, seconds past its expected end (or "
            "its latest news) before it is checked by polling", _non_negative_float),
    Variable("MJGATE_TRACK_GETS_PER_SECOND", "track_gets_per_second", "50",
            "upstream GETs per second for the whole deployment (completion checks and client "
            "refreshes); 0: no cap", _non_negative_float),
    Variable("MJGATE_TRACK_CONCURRENCY", "track_concurrency", "32",
            "completion checks in flight at once, per replica", _positive_int),
    Variable("MJGATE_POLL_REFRESH_TIMEOUT", "poll_refresh_timeout", "2",
            "seconds a client GET waits for the upstream before answering the stored record",
            _positive_float),
    Variable("MJGATE_LEASE_SECONDS", "lease_seconds", "120",
            "a reservation with no news for this long is checked upstream by the reconciler "
            "(a send needs the upstream timeouts + half of it + 2 s left, else extends it)",
            _positive_float),
    Variable("MJGATE_RECONCILE_INTERVAL", "reconcile_interval", "2",
            "seconds between reconciler/dispatcher passes in each replica", _positive_float),
    Variable("MJGATE_SWEEP_INTERVAL", "sweep_interval", "60",
            "seconds between sweeps for open tasks nothing holds (a failover lost their "
            "reservation, queue entry or check: tracked again or ended; one replica per pass)",
            _positive_float),
    Variable("MJGATE_STAGED_LIMIT", "staged_limit", "50", "staged tasks allowed per client key",
            _positive_int),
    Variable("MJGATE_STAGED_TIMEOUT", "staged_timeout", "900",
            "seconds a task may wait staged before it fails with staged_timeout",
            _positive_float),
    Variable("MJGATE_TASK_TTL", "task_ttl", "604800",
            "seconds a finished task record is kept", _positive_int),
    Variable("MJGATE_IDEMPOTENCY_TTL", "idempotency_ttl", "86400",
            "seconds an Idempotency-Key is remembered", _positive_int),
    Variable("MJGATE_POOL_FILE", "pool_file", "", "YAML pool file applied at start",
            _optional_path),
    Variable("MJGATE_STRATEGY", "strategy", "", "pool strategy, overriding the pool file's "
            "(least_busy, most_fast_left, weighted)", lambda v: Strategy(v) if v else None),
    Variable("MJGATE_POOL_FILE_MODE", "pool_file_mode", "seed",
            "`seed`: a start creates the pool file's accounts the pool lacks, and changes "
            "nothing else; `authoritative`: a start makes the pool match the file (undoing "
            "admin API changes)", _choice("seed", "authoritative")),
    Variable("MJGATE_REQUEST_READ_TIMEOUT", "request_read_timeout", "20",
            "seconds a client has to send a whole request (headers and body) from its first "
            "byte; slower: 408 request_timeout and the connection closed", _positive_float),
    Variable("MJGATE_MAX_CONNECTIONS", "max_connections", "2048",
            "open client connections per process; one more is answered 503 and closed",
            _positive_int),
    Variable("MJGATE_COSTS", "cost_overrides", "",
            "fast-time cost overrides, e.g. `imagine=60,upscale:4x=300` (GPU seconds)", _costs),
    Variable("MJGATE_SANDBOX_SPEED", "sandbox_speed", "demo",
            "emulator speed in sandbox: `demo` (2 s pending, 4 s processing) or `instant`",
            _choice("demo", "instant")),
    Variable("MJGATE_SANDBOX_EMULATOR_PORT", "sandbox_emulator_port", "8090",
            "port of the sandbox's emulator", _port),
    Variable("MJGATE_LOG_LEVEL", "log_level", "info", "debug, info, warning or error",
            _choice("debug", "info", "warning", "error")),
    Variable("MJGATE_LOG_FORMAT", "log_format", "json", "json (one object per line) or text",
            _choice("json", "text")),
    Variable("MJGATE_METRICS_PER_ACCOUNT", "metrics_per_account", "true",
            "export per-account series (bot_id label); turn off for huge pools", _bool),
    Variable("MJGATE_ALLOW_PRIVATE_WEBHOOKS", "allow_private_webhooks", "false",
            "deliver client webhooks to private/loopback addresses", _bool),
)  # fmt: skip
