"""What `mjgate serve` says when it starts and when it stops: where it listens, the upstream,
Redis (never a password), the admin API and how to turn it on, /metrics, the pool file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.settings import Settings


def redact(url: str) -> str:
    """A Redis URL without its password (in the user part or as `?password=`)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{parts.username or ''}:***@{host}{port}"
    query = urlencode(
        [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*"
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def starting(settings: Settings, *, sandbox: bool, embedded_dir: Path | None) -> list[str]:
    """The start-up lines (also logged as one `serving` event by the caller)."""
    base = f"http://{_local(settings.host)}:{settings.port}"
    upstream = (
        f"sandbox emulator at {settings.goapi_base_url} (no GOAPI_API_KEY)"
        if sandbox
        else f"GoAPI at {settings.goapi_base_url}"
    )
    if embedded_dir is not None:
        redis = (
            f"embedded, data in {embedded_dir} (append-only file + snapshots; "
            "set REDIS_URL to use your own)"
        )
    else:
        redis = redact(settings.redis_url or "")
    if not settings.admin_token:
        admin = "off (set MJGATE_ADMIN_TOKEN to turn it on)"
    elif settings.admin_port is not None:
        admin = f"on at http://{_local(settings.host)}:{settings.admin_port}/admin/v1 only"
    else:
        admin = f"on at {base}/admin/v1 (Bearer MJGATE_ADMIN_TOKEN)"
    pool = (
        f"{settings.pool_file} (mode {settings.pool_file_mode})"
        if settings.pool_file is not None
        else "none (accounts come from the admin API)"
    )
    return [
        f"mjgate: listening on {settings.host}:{settings.port} ({base}/api/v1/task)",
        f"  upstream:  {upstream}",
        f"  redis:     {redis}",
        f"  admin API: {admin}",
        f"  metrics:   {base}/metrics   health: {base}/healthz, {base}/readyz",
        f"  pool file: {pool}",
    ]
