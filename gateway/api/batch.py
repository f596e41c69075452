"""`DELETE /api/v1/tasks?created_before=<unix s>&model=<model|all>`: GoAPI's batch cancel of
pending tasks (documented by GoAPI as "developing"; both parameters required).

mjgate cancels the calling key's own tasks created before that time, staged (locally) and
pending (upstream), from a per-key index of its open tasks (`RecordStore.open_before`). The
same request is also sent upstream, for the tasks mjgate did not create, only when the key may
reach ids mjgate did not create (and use that model): upstream, the batch covers every task of
the operator's GoAPI account, other tenants' included. The answer lists what was cancelled and
what could not be (a task no longer pending), and the upstream's answer when it was asked.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.handlers import authenticate
from gateway.api.passthrough import may_use_foreign_ids, may_use_model
from gateway.errors import InvalidRequestError
from gateway.state import state_of

_MODEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIDJOURNEY = "midjourney"


def _query(request: Request) -> tuple[float, str]:
    raw_before = request.query_params.get("created_before", "")
    try:
        before = float(raw_before)
    except ValueError as exc:
        raise InvalidRequestError("created_before", "is required: unix seconds") from exc
    if not 0 < before < 1e11:
        raise InvalidRequestError("created_before", "must be unix seconds")
    model = request.query_params.get("model", "")
    if not _MODEL.match(model):
        raise InvalidRequestError("model", "is required: a model name, or all")
    return before, model


async def cancel_tasks(request: Request) -> Response:
    client = await authenticate(request)
    before, model = _query(request)
    gate = state_of(request)
    cancelled: list[str] = []
    refused: list[dict[str, str]] = []
    if model in (MIDJOURNEY, "all"):
        cancelled, refused = await gate.tasks.canceller.cancel_many(client.id, before)
    upstream: Any = None
    forward = may_use_foreign_ids(client, gate.settings) and (
        model == "all" or may_use_model(client, model, gate.settings) or model == MIDJOURNEY
    )
    if forward:
        query = urlencode({"created_before": int(before), "model": model})
        answer = await gate.upstream.request("DELETE", f"/api/v1/tasks?{query}")
        gate.metrics.upstream_request("forward", str(answer.status), answer.seconds)
        upstream = {"status": answer.status, "message": answer.message}
    body = {
        "code": 200,
        "data": {"cancelled": cancelled, "not_cancelled": refused, "upstream": upstream},
        "message": f"{len(cancelled)} task(s) canceled",
    }
    return Response(orjson.dumps(body), media_type="application/json")
