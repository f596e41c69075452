"""What every admin handler shares: the token check (`admin`) and reading a request's path,
query flags and JSON body.

Every route needs `Authorization: Bearer <MJGATE_ADMIN_TOKEN>`, compared in constant time. An
empty token turns the whole API off (404, as if there were no route); a valid client key gets
403.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.audit import unauthorized
from gateway.admin.schemas import Model, parse
from gateway.bodies import read_body
from gateway.errors import (
    ForbiddenError,
    GatewayError,
    InvalidKeyError,
    InvalidRequestError,
    MissingKeyError,
    NotFoundError,
)
from gateway.state import MjGate, state_of

Handler = Callable[[Request, MjGate], Awaitable[Response]]


def admin(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Check the admin token, then run `handler(request, gate)`."""

    async def endpoint(request: Request) -> Response:
        gate = state_of(request)
        token: str = gate.settings.admin_token
        if not token:  # the admin API is off
            raise NotFoundError(f"no route {request.url.path}")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        secret = value.strip() if scheme.lower() == "bearer" else ""
        if secret and hmac.compare_digest(secret.encode(), token.encode()):
            return await handler(request, gate)
        refusal = await _refusal(gate, secret, request.headers.get("x-api-key", ""))
        unauthorized(request, refusal.type)  # the audit log (gateway.admin.audit)
        raise refusal

    endpoint.__name__ = handler.__name__
    return endpoint


async def _refusal(gate: MjGate, secret: str, api_key: str) -> GatewayError:
    """Why a request without the admin token is refused."""
    presented = secret or api_key
    if not presented:
        return MissingKeyError("the admin API needs Authorization: Bearer <admin token>")
    if await gate.clients.lookup(presented) is not None:
        return ForbiddenError("a client key can't use the admin API")
    if not secret and hmac.compare_digest(presented.encode(), gate.settings.admin_token.encode()):
        return MissingKeyError(  # the right token in the wrong header
            "the admin token goes in Authorization: Bearer <admin token>, not x-api-key"
        )
    return InvalidKeyError("the admin token is not valid")


_BOT_ID = re.compile(r"[0-9]{1,16}")  # ASCII digits only ("²".isdigit() is true)


def bot_id_of(request: Request) -> int:
    raw = request.path_params["bot_id"]
    if not _BOT_ID.fullmatch(raw) or not 1 <= int(raw) <= 2**53:
        raise InvalidRequestError("bot_id", "must be a positive integer")
    return int(raw)


def flag(request: Request, name: str) -> bool:
    """A boolean query parameter; `?force` alone means true."""
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.strip().lower() in ("", "1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidRequestError(name, "must be true or false")


async def body_of(request: Request, gate: MjGate, model: type[Model]) -> Model:
    return parse(model, await read_body(request, gate.settings.body_limit))


async def nullable_body_of(request: Request, gate: MjGate, model: type[Model]) -> Model | None:
    """A JSON body that may be `null`; an empty one is refused."""
    raw = await read_body(request, gate.settings.body_limit)
    if not raw.strip():
        raise InvalidRequestError("body", "is required (a JSON object, or null)")
    return None if raw.strip() == b"null" else parse(model, raw)
