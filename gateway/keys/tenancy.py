"""A client key's tenancy on the shared pool, as the admin API and CLI set it: quotas (jobs and
fast hours per day and month in the key's timezone, tasks in flight), its weight in the fair
queue of staged work, whether it may pin tasks to an account, and when it expires.

The admin body's fields (`TenancyBody`) become `KeyPolicy` fields (`tenancy_policy`); the CLI
flags (`add_tenancy_options`) become body fields (`tenancy_options`).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from routing.quotas import Quota

MAX_KEY_WEIGHT = 1000


class TenancyBody(BaseModel):
    """The tenancy fields of a key's admin body (the key's body adds the rest)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    jobs_per_day: int | None = Field(default=None, ge=0, le=10**12)
    jobs_per_month: int | None = Field(default=None, ge=0, le=10**12)
    fast_hours_per_day: float | None = Field(default=None, ge=0, lt=1e6)
    fast_hours_per_month: float | None = Field(default=None, ge=0, lt=1e7)
    max_in_flight: int | None = Field(default=None, ge=1, le=100_000)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    weight: int = Field(default=1, ge=1, le=MAX_KEY_WEIGHT)
    allow_pinning: bool = False
    expires_at: Annotated[datetime, Strict(False)] | None = None  # ISO 8601 or unix seconds

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value != "UTC" and value not in available_timezones():
            raise ValueError("must be an IANA timezone, e.g. Europe/Paris")
        ZoneInfo(value)
        return value


def _unix(instant: datetime | None) -> float | None:
    if instant is None:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)  # no offset means UTC, as everywhere in admin
    return round(instant.timestamp(), 3)


def _seconds(hours: float | None) -> int | None:
    return None if hours is None else round(hours * 3600)


def tenancy_policy(body: TenancyBody) -> dict[str, Any]:
    """KeyPolicy's tenancy fields from an admin body."""
    return {
        "quota": Quota(
            jobs_per_day=body.jobs_per_day,
            jobs_per_month=body.jobs_per_month,
            fast_seconds_per_day=_seconds(body.fast_hours_per_day),
            fast_seconds_per_month=_seconds(body.fast_hours_per_month),
            max_in_flight=body.max_in_flight,
            timezone=body.timezone,
        ),
        "weight": body.weight,
        "allow_pinning": body.allow_pinning,
        "expires_at": _unix(body.expires_at),
    }


def add_tenancy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tenancy (quotas reset on calendar days and months)")
    for flag, kind, help_ in (
        ("--jobs-per-day", int, "jobs accepted per day"),
        ("--jobs-per-month", int, "jobs accepted per month"),
        ("--fast-hours-per-day", float, "fast/turbo GPU hours per day"),
        ("--fast-hours-per-month", float, "fast/turbo GPU hours per month"),
        ("--max-in-flight", int, "tasks running at once (more are staged)"),
        ("--weight", int, "share of staged work against other keys (default 1)"),
    ):
        group.add_argument(flag, type=kind, metavar="N", help=help_)
    group.add_argument("--timezone", metavar="ZONE", help="the quotas' calendar (default UTC)")
    group.add_argument("--expires-at", metavar="ISO8601", help="the key stops working then")
    group.add_argument(
        "--allow-pinning", action="store_true", help="may send input.bot_id to pick the account"
    )


def tenancy_options(args: argparse.Namespace) -> dict[str, Any]:
    """The admin body's tenancy fields from the CLI flags given."""
    body: dict[str, Any] = {}
    for name in (
        "jobs_per_day",
        "jobs_per_month",
        "fast_hours_per_day",
        "fast_hours_per_month",
        "max_in_flight",
        "weight",
        "timezone",
        "expires_at",
    ):
        value = getattr(args, name, None)
        if value is not None:
            body[name] = value
    if getattr(args, "allow_pinning", False):
        body["allow_pinning"] = True
    return body
