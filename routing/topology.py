"""Topology: which kind of Redis deployment REDIS_URL names, parsed once into a typed value.

    redis://[user:pass@]<host>:<port>[/db]        standalone (also rediss:// for TLS)
    unix://[user:pass@]/path/to/redis.sock[?db=N] standalone over a unix socket
    redis+sentinel://[user:pass@]<host>:<port>,<host>:<port>,.../<service>[/db]
                                                  Sentinel (rediss+sentinel:// for TLS)
    redis+cluster://[user:pass@]<host>:<port>,<host>:<port>,...
                                                  Redis Cluster (rediss+cluster:// for TLS)

The user and password of the URL are the data nodes' (the primary's, every cluster node's);
the sentinels' own credentials are separate settings (`sentinel_username`,
`sentinel_password`), since sentinels usually have their own or none. TLS options for the
`rediss` forms are query parameters: `ssl_cert_reqs` (required, optional, none) and
`ssl_ca_certs` (a CA bundle file). Valkey speaks the same protocol and is used the same way.

Parsing does no I/O; a URL mjgate can't use raises ValueError saying why (the settings name
the variable). `gateway.redisconn` builds the clients from a Topology.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from routing.errors import SentinelCredentialsError

Kind = Literal["standalone", "sentinel", "cluster"]
_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("standalone", False),
    "rediss": ("standalone", True),
    "unix": ("standalone", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_TLS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs")
SENTINEL_PORT = 26379
REDIS_PORT = 6379


@dataclass(frozen=True)
class Node:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Topology:
    kind: Kind
    url: str  # as given; standalone URLs are handed to redis-py as they are
    nodes: tuple[Node, ...] = ()  # the sentinels, or the cluster's seed nodes
    service: str = ""  # Sentinel: the monitored primary's name
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_options: dict[str, str] = field(default_factory=dict)
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
    ) -> Topology:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in _SCHEMES:
            raise ValueError(
                "must be a redis://, rediss://, unix://, redis+sentinel://, "
                "rediss+sentinel://, redis+cluster:// or rediss+cluster:// URL"
            )
        kind, tls = _SCHEMES[scheme]
        if kind != "sentinel" and (sentinel_username or sentinel_password):
            raise SentinelCredentialsError("only applies to a redis+sentinel:// REDIS_URL")
        if kind == "standalone":
            return cls(kind=kind, url=url, tls=tls)
        parts = urlsplit(url)
        credentials, _, hosts = parts.netloc.rpartition("@")
        username, _, password = credentials.partition(":")
        nodes = _nodes(hosts, SENTINEL_PORT if kind == "sentinel" else REDIS_PORT)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - set(_TLS_OPTIONS))
        if unknown:
            raise ValueError(f"unknown URL parameter {', '.join(unknown)}")
        if query and not tls:
            raise ValueError("ssl_* parameters need a rediss+... URL")
        path = [unquote(p) for p in parts.path.split("/") if p]
        service, db = "", 0
        if kind == "sentinel":
            if not path or len(path) > 2:
                raise ValueError("a Sentinel URL ends with /<service name>[/<db>]")
            service = path[0]
            db = _db(path[1]) if len(path) == 2 else 0
        elif path:
            raise ValueError("a cluster URL has no path: a cluster has only database 0")
        return cls(
            kind=kind,
            url=url,
            nodes=nodes,
            service=service,
            db=db,
            username=unquote(username) or None,
            password=unquote(password) if credentials and password else None,
            tls=tls,
            tls_options=query,
            sentinel_username=sentinel_username or None,
            sentinel_password=sentinel_password or None,
        )

    def __str__(self) -> str:
        """For logs and check-config: never the password."""
        if self.kind == "standalone":
            parts = urlsplit(self.url)
            where = parts.path if parts.scheme == "unix" else (parts.hostname or "127.0.0.1")
            port = "" if parts.scheme == "unix" else f":{parts.port or REDIS_PORT}"
            return f"standalone Redis at {where}{port}" + (" (TLS)" if self.tls else "")
        nodes = ", ".join(str(node) for node in self.nodes)
        tls = " (TLS)" if self.tls else ""
        if self.kind == "sentinel":
            return f"Sentinel service {self.service!r} db {self.db} via {nodes}{tls}"
        return f"Redis Cluster via {nodes}{tls}"


def _nodes(hosts: str, default_port: int) -> tuple[Node, ...]:
    nodes: list[Node] = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [ipv6]:port
            host, _, rest = item[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ValueError(f"{item!r} is not host:port") from None
        if not host or not 0 < port <= 65535:
            raise ValueError(f"{item!r} is not host:port")
        nodes.append(Node(host, port))
    if not nodes:
        raise ValueError("names no host: list host:port,host:port,...")
    return tuple(nodes)


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"database {text!r} is not a number")
    return int(text)
