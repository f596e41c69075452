"""The pass-through: requests mjgate does not route, forwarded untouched with the operator's
GoAPI key, as a permission of the client key.

What may go through:

- a create of another model, or a `service_mode: "public"` Midjourney create: the model must
  be in the key's `passthrough_models` (`"*"`: any model);
- a GET or cancel of an id mjgate did not create for this key, or a child create whose parent
  mjgate does not know for this key: the key needs `passthrough_foreign_ids`. For a managed
  key, that reaches only ids mjgate did not create: the upstream id of a task mjgate created
  (another key's, or its own) is 404 `not_found` and never forwarded.

Static keys (MJGATE_CLIENT_KEYS) may do both when MJGATE_STATIC_KEYS_PASSTHROUGH is on (the
default: they are the operator's own keys), neither when it is off. A refusal is 403
`forbidden` naming the permission (`error.permission`), and nothing is forwarded.

What comes back is the upstream's answer, except that mjgate's own GoAPI webhook (endpoint,
token, secret) is scrubbed from it, and a non-2xx answer always carries `error.type`
(`upstream_not_found`, `upstream_rate_limited`, `upstream_unavailable`,
`upstream_rejected`) with GoAPI's `code` and `message` kept.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.redact import OwnWebhook, scrub_body, scrub_bytes
from gateway.errors import ForbiddenError, NotFoundError
from gateway.keys.client import Client
from gateway.settings import Settings
from gateway.state import state_of
from gateway.upstream import UpstreamAnswer
from gateway.webhooks.credentials import goapi_secret, goapi_token
from routing.results import Decision

MODELS = "passthrough_models"
FOREIGN_IDS = "passthrough_foreign_ids"


def may_use_model(client: Client, model: str, settings: Settings) -> bool:
    if client.bootstrap:
        return settings.static_keys_passthrough
    return "*" in client.passthrough_models or model in client.passthrough_models


def may_use_foreign_ids(client: Client, settings: Settings) -> bool:
    if client.bootstrap:
        return settings.static_keys_passthrough
    return client.passthrough_foreign_ids


def require_model(client: Client, model: str, settings: Settings) -> None:
    if not may_use_model(client, model, settings):
        raise ForbiddenError(
            f"this key may not send {model!r} tasks through the pass-through (permission {MODELS})",
            permission=MODELS,
        )


def require_foreign_ids(client: Client, settings: Settings) -> None:
    if not may_use_foreign_ids(client, settings):
        raise ForbiddenError(
            "this key may only use tasks mjgate created for it; other task ids need the "
            f"permission {FOREIGN_IDS}",
            permission=FOREIGN_IDS,
        )


async def require_not_mjgates(request: Request, client: Client, task_id: str) -> None:
    """A managed key's foreign id must not be the upstream id of a task mjgate created: those
    tasks are reached by mjgate's ids, by their own key (no key reads or cancels another's
    task through the pass-through). Static keys keep the setting's reach."""
    if client.bootstrap:
        return
    if await state_of(request).records.by_upstream_id(task_id) is not None:
        raise NotFoundError("task not found")


def own_webhook(settings: Settings) -> OwnWebhook:
    return OwnWebhook(
        tokens=(goapi_token(settings, "tasks"), goapi_token(settings, "notifications")),
        secret=goapi_secret(settings),
    )


def error_type(status: int) -> str:
    if status == 404:
        return "upstream_not_found"
    if status == 429:
        return "upstream_rate_limited"
    if status >= 500:
        return "upstream_unavailable"
    return "upstream_rejected"


def relay(answer: UpstreamAnswer, settings: Settings) -> bytes:
    """The body a client gets for a forwarded answer: scrubbed, and enveloped when non-2xx."""
    hook = own_webhook(settings)
    body: dict[str, Any] | None = answer.body
    ok = 200 <= answer.status < 300
    if body is None and ok:
        return scrub_bytes(answer.raw, hook.secrets)
    if body is None:
        body = {"code": answer.status, "data": None, "message": answer.message}
    body = scrub_body(body, hook)
    if not ok:
        error = body.get("error")
        details = error if isinstance(error, dict) else {}
        body = {
            "code": body.get("code", answer.status),
            "data": body.get("data"),
            "message": body.get("message", answer.message),
            **{k: v for k, v in body.items() if k not in ("code", "data", "message", "error")},
            "error": {**details, "type": error_type(answer.status),
                      "upstream_status": answer.status},
        }  # fmt: skip
    return scrub_bytes(orjson.dumps(body), hook.secrets)


async def forward_untouched(
    request: Request, method: str, path: str, body: bytes | None = None
) -> Response:
    """Forward the request untouched (the caller checked the permission) and relay the answer."""
    app = state_of(request)
    answer: UpstreamAnswer = await app.upstream.request(method, path, body)
    app.metrics.upstream_request("forward", str(answer.status), answer.seconds)
    return Response(
        relay(answer, app.settings),
        status_code=answer.status,
        media_type=answer.headers.get("content-type", "application/json"),
        headers={"x-mjgate-decision": Decision.FORWARDED},
    )
