"""What mjgate must never show a client: upstream task ids and its own GoAPI webhook.

- `redact_upstream_ids(message, mapping)`: a message mjgate relays for one of its own tasks
  (an upstream refusal, an upstream task's error) with every upstream id replaced by the
  mjgate id it stands for (`mapping`: upstream id → mjgate id), and any other id-shaped token
  (a UUID that is neither a mapped upstream id nor one of the mapped mjgate ids) replaced by
  `[upstream id]`.
- `scrub_task(task, webhook)`: a task object forwarded untouched from the upstream, with
  `config.webhook_config` emptied when it is mjgate's own (its endpoint carries mjgate's
  webhook token, or its secret is mjgate's).
- `scrub_bytes(raw, secrets)`: any remaining occurrence of those secrets, replaced in the
  raw bytes of a forwarded answer (the belt to `scrub_task`'s braces).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HIDDEN_ID = "[upstream id]"
REDACTED = "[redacted]"


def redact_upstream_ids(message: str, mapping: Mapping[str, str], keep: Iterable[str] = ()) -> str:
    """`message` with upstream ids replaced by mjgate's (or hidden when unmapped). Ids in
    `keep` and the mapping's mjgate ids are left as they are."""
    lowered = {upstream.lower(): own for upstream, own in mapping.items() if upstream}
    kept = {own.lower() for own in mapping.values() if own} | {k.lower() for k in keep if k}

    def replace(match: re.Match[str]) -> str:
        token = match.group(0).lower()
        if token in lowered:
            return lowered[token]
        if token in kept:
            return match.group(0)
        return HIDDEN_ID

    text = UUID.sub(replace, message)
    for upstream, own in mapping.items():  # upstream ids that are not UUID-shaped
        if upstream and not UUID.fullmatch(upstream) and upstream != own:
            text = text.replace(upstream, own)
    return text


@dataclass(frozen=True)
class OwnWebhook:
    """mjgate's GoAPI webhook: the path tokens and secret that identify it."""

    tokens: tuple[str, ...]
    secret: str

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (*self.tokens, self.secret) if s)

    def is_ours(self, hook: object) -> bool:
        if not isinstance(hook, dict):
            return False
        endpoint, secret = hook.get("endpoint"), hook.get("secret")
        if isinstance(secret, str) and secret and secret == self.secret:
            return True
        return isinstance(endpoint, str) and any(t and t in endpoint for t in self.tokens)


def scrub_task(task: dict[str, Any], webhook: OwnWebhook) -> dict[str, Any]:
    """A copy of an upstream task object without mjgate's webhook config."""
    config = task.get("config")
    if not isinstance(config, dict) or not webhook.is_ours(config.get("webhook_config")):
        return task
    return {**task, "config": {**config, "webhook_config": {"endpoint": "", "secret": ""}}}


def scrub_body(body: dict[str, Any], webhook: OwnWebhook) -> dict[str, Any]:
    """An upstream answer (`{"code", "data", "message"}`) whose task, or tasks, are scrubbed."""
    data = body.get("data")
    if isinstance(data, dict):
        return {**body, "data": scrub_task(data, webhook)}
    if isinstance(data, list):
        items = [scrub_task(item, webhook) if isinstance(item, dict) else item for item in data]
        return {**body, "data": items}
    return body


def scrub_bytes(raw: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        if secret:
            raw = raw.replace(secret.encode(), REDACTED.encode())
    return raw
