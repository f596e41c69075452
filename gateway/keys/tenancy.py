"""A client key's tenancy on the shared pool, as the admin API and CLI set it: quotas (jobs and
fast hours per day and month in the key's timezone, tasks in flight), its weight in the fair
queue of staged work, whether it may pin tasks to an account, and when it expires.

The admin body's fields (`TenancyBody`) become `KeyPolicy` fields (`tenancy_policy`), and a
policy's fields become body fields again (`tenancy_body`, for a change merged with a stored
policy); the CLI flags (`add_tenancy_options`) become body fields (`tenancy_options`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from gateway.keys.policy import KeyPolicy
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


def tenancy_body(policy: KeyPolicy) -> dict[str, Any]:
    """The admin body's tenancy fields that give `policy` (JSON: times as unix seconds)."""
    quota = policy.quota
    return {
        "jobs_per_day": quota.jobs_per_day,
        "jobs_per_month": quota.jobs_per_month,
        "fast_hours_per_day": _hours(quota.fast_seconds_per_day),
        "fast_hours_per_month": _hours(quota.fast_seconds_per_month),
        "max_in_flight": quota.max_in_flight,
        "timezone": quota.timezone,
        "weight": policy.weight,
        "allow_pinning": policy.allow_pinning,
        "expires_at": policy.expires_at,
    }


def _hours(seconds: int | None) -> float | None:
    return None if seconds is None else seconds / 3600  # _seconds rounds it back exactly


def add_tenancy_options(parser: argparse.ArgumentParser, *, changing: bool = False) -> None:
    """The tenancy flags of `keys create`, or of `keys set` (`changing`): there a flag not
    given is absent from the namespace, `none` clears a limit (the admin body's null) and
    `--no-allow-pinning` takes the permission back."""
    group = parser.add_argument_group("tenancy (quotas reset on calendar days and months)")
    absent = argparse.SUPPRESS if changing else None  # a flag not given
    for flag, kind, help_ in (
        ("--jobs-per-day", int, "jobs accepted per day"),
        ("--jobs-per-month", int, "jobs accepted per month"),
        ("--fast-hours-per-day", float, "fast/turbo GPU hours per day"),
        ("--fast-hours-per-month", float, "fast/turbo GPU hours per month"),
        ("--max-in-flight", int, "tasks running at once (more are staged)"),
        ("--weight", int, "share of staged work against other keys (default 1)"),
    ):
        if changing:
            help_ += "; none: no limit" if flag != "--weight" else "; none: 1"
        group.add_argument(flag, type=_or_none(kind) if changing else kind, metavar="N",
                           help=help_, default=absent)  # fmt: skip
    group.add_argument("--timezone", type=_or_none(str), metavar="ZONE",
                       help="the quotas' calendar (default UTC)", default=absent)  # fmt: skip
    group.add_argument("--expires-at", type=_or_none(str), metavar="ISO8601",
                       help="the key stops working then" + ("; none: never" if changing else ""),
                       default=absent)  # fmt: skip
    group.add_argument(
        "--allow-pinning",
        action=argparse.BooleanOptionalAction if changing else "store_true",
        help="may send input.bot_id to pick the account",
        default=absent if changing else False,
    )


def _or_none(kind: Callable[[str], object]) -> Callable[[str], object]:
    """An option's type where `none` means null (clear the field)."""

    def convert(value: str) -> object:
        return None if value.strip().lower() == "none" else kind(value)

    convert.__name__ = getattr(kind, "__name__", "value")  # argparse names it in errors
    return convert


TENANCY_OPTIONS = ("jobs_per_day", "jobs_per_month", "fast_hours_per_day",
                   "fast_hours_per_month", "max_in_flight", "weight", "timezone",
                   "expires_at", "allow_pinning")  # fmt: skip


def tenancy_options(args: argparse.Namespace, *, changing: bool = False) -> dict[str, Any]:
    """The admin body's tenancy fields from the CLI flags given (`changing`: every flag given,
    null for `none`; else the flags with a value, and allow_pinning only when set)."""
    given = vars(args)
    return {
        name: given[name]
        for name in TENANCY_OPTIONS
        if name in given and (changing or (given[name] is not None and given[name] is not False))
    }
