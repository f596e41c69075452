"""Address: where and how the hot-path Pipe connects to one Redis server (TCP or a unix socket,
database, credentials, TLS), as redis-py's connection keyword arguments describe it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

Arg = bytes | str | int | float  # one argument of a Redis command


@dataclass(frozen=True)
class Address:
    """Where and how to connect: TCP (`host`, `port`) or a unix socket (`path`)."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: ssl.SSLContext | None = None

    @classmethod
    def from_kwargs(cls, kw: dict[str, Any], *, tls: bool) -> Address:
        """The address redis-py connection keyword arguments describe."""
        context: ssl.SSLContext | None = None
        if tls:
            context = ssl.create_default_context(cafile=kw.get("ssl_ca_certs"))
            if kw.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return cls(
            host=kw.get("host") or "127.0.0.1",
            port=int(kw.get("port") or 6379),
            path=kw.get("path"),
            db=int(kw.get("db") or 0),
            username=kw.get("username"),
            password=kw.get("password"),
            ssl=context,
        )

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"

    def handshake(self) -> list[tuple[Arg, ...]]:
        commands: list[tuple[Arg, ...]] = []
        if self.password is not None:
            auth: tuple[Arg, ...] = (
                (self.username, self.password) if self.username else (self.password,)
            )
            commands.append((b"AUTH", *auth))
        if self.db:
            commands.append((b"SELECT", self.db))
        return commands
