"""The pool's default pacing through the admin API and the CLI: `/pool/pacing` reads, sets,
changes and removes it; accounts without their own pacing inherit it, their own keys survive
its changes, `pacing: null` opts out; the pool file's `pacing` is the same object."""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.cli import pacing as cli_pacing
from gateway.cli import pool as pool_cli
from gateway.cli.main import build_parser
from tests.gateway.test_admin import call, data, error
from tests.harness import harness

DEFAULT = {"timezone": "Europe/Berlin", "min_gap_seconds": 60, "daily_caps": {"fast": 100}}
WHOLE = {
    "timezone": "Europe/Berlin",
    "active_hours": [],
    "actions_only_hours": [],
    "daily_caps": {"fast": 100, "relax": None},
    "caps_count_children": True,
    "min_gap_seconds": 60.0,
    "gap_jitter_seconds": 0.0,
    "tier": "primary",
}
ALL_KEYS = [
    "timezone", "active_hours", "actions_only_hours", "daily_caps.fast", "daily_caps.relax",
    "caps_count_children", "min_gap_seconds", "gap_jitter_seconds", "tier",
]  # fmt: skip


async def test_the_default_is_set_inherited_overridden_and_cleared(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        assert data(await call(h, "GET", "/pool/pacing")) == {"pacing": None}
        put = data(await call(h, "PUT", "/pool/pacing", body=DEFAULT))
        assert put["pacing"] == WHOLE
        assert put["accounts_updated"] == [1001, 1002, 1003, 1004]  # the harness's pool
        assert data(await call(h, "GET", "/pool/pacing")) == {"pacing": WHOLE}
        assert data(await call(h, "GET", "/pool"))["pacing"] == WHOLE

        body = {"plan": "pro"}  # no pacing: it inherits
        plain = data(await call(h, "PUT", "/accounts/2001", body=body), 201)["account"]
        assert plain["pacing"] == WHOLE
        assert plain["pacing_source"] == {"own": {}, "inherited": ALL_KEYS, "opted_out": False}
        body = {"plan": "pro", "pacing": {"tier": "backup", "daily_caps": {"fast": 5}}}
        own = data(await call(h, "PUT", "/accounts/2002", body=body), 201)["account"]
        assert own["pacing"] == WHOLE | {"tier": "backup", "daily_caps": {"fast": 5, "relax": None}}
        assert own["pacing_source"]["own"] == {"tier": "backup", "daily_caps": {"fast": 5}}
        assert "tier" not in own["pacing_source"]["inherited"]
        body = {"plan": "pro", "pacing": None}
        off = data(await call(h, "PUT", "/accounts/2003", body=body), 201)["account"]
        assert off["pacing"] is None
        assert off["pacing_source"] == {"own": {}, "inherited": [], "opted_out": True}

        patched = data(await call(h, "PATCH", "/pool/pacing", body={"min_gap_seconds": 5}))
        assert patched["pacing"] == WHOLE | {"min_gap_seconds": 5.0}
        assert 2003 not in patched["accounts_updated"]
        account = data(await call(h, "GET", "/accounts/2002"))
        assert account["pacing"]["min_gap_seconds"] == 5.0  # follows the default
        assert account["pacing"]["tier"] == "backup"  # its own key survives
        assert account["pacing"]["daily_caps"]["fast"] == 5
        assert data(await call(h, "GET", "/accounts/2003"))["pacing"] is None

        # PATCH on an account: keys over its own; an object ends an opt-out
        back = await call(h, "PATCH", "/accounts/2003", body={"pacing": {"tier": "backup"}})
        assert data(back)["account"]["pacing"] == WHOLE | {"min_gap_seconds": 5.0,
                                                           "tier": "backup"}  # fmt: skip

        cleared = data(await call(h, "DELETE", "/pool/pacing"))
        assert cleared["pacing"] is None
        assert data(await call(h, "GET", "/accounts/2001"))["pacing"] is None
        kept = data(await call(h, "GET", "/accounts/2002"))["pacing"]
        assert kept["tier"] == "backup" and kept["timezone"] == "UTC"  # over the built-ins
        assert data(await call(h, "PUT", "/pool/pacing", content=b"null"))["pacing"] is None


async def test_bad_defaults_are_400_with_stable_types(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        for body, field in (
            ({"timezone": "Mars/Base"}, "timezone"),
            ({"active_hours": ["9:00-17:00"]}, "active_hours.0"),
            ({"active_hours": ["25:00-26:00"]}, "active_hours.0"),
            ({"tier": "spare"}, "tier"),
            ({"min_gap_seconds": -1}, "min_gap_seconds"),
            ({"naps": 1}, "naps"),
            ({"tier": None}, "tier"),
        ):
            got = error(await call(h, "PUT", "/pool/pacing", body=body), 400)
            assert got["type"] == "invalid_request" and got["field"] == field, (body, got)
        got = error(await call(h, "PUT", "/pool/pacing", content=b""), 400)
        assert got["field"] == "body"
        got = error(await call(h, "PATCH", "/pool/pacing", body={}), 400)
        assert got["field"] == "body"
        assert data(await call(h, "GET", "/pool/pacing")) == {"pacing": None}  # untouched
        got = error(await call(h, "GET", "/pool/pacing", headers={}), 401)
        assert got["type"]


FILE = """\
pacing: {timezone: Europe/Berlin, min_gap_seconds: 60, daily_caps: {fast: 100}}
accounts:
  - {bot_id: 1, plan: pro}
  - {bot_id: 2, plan: pro, pacing: {tier: backup}}
  - {bot_id: 3, plan: pro, pacing: null}
"""


async def test_a_pool_file_and_the_api_agree(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        applied = data(await call(h, "POST", "/pool/apply", content=FILE.encode()))
        assert {"bot_id": None, "action": "updated", "fields": ["pacing"]} in applied["changes"]
        assert data(await call(h, "GET", "/pool/pacing"))["pacing"] == WHOLE
        accounts = {a["bot_id"]: a for a in data(await call(h, "GET", "/accounts"))["accounts"]}
        assert accounts[1]["pacing"] == WHOLE
        assert accounts[2]["pacing_source"]["own"] == {"tier": "backup"}
        assert accounts[3]["pacing_source"]["opted_out"] is True
        exported = data(await call(h, "GET", "/pool/export"))["yaml"]
        again = data(await call(h, "POST", "/pool/apply", content=exported.encode()))
        assert set(again["counts"]) == {"unchanged"}


def test_the_cli_pool_pacing_commands_parse() -> None:
    args = build_parser().parse_args(
        ["pool", "pacing", "set", "--timezone", "Asia/Tokyo", "--min-gap", "20",
         "--fast-cap", "none", "--json"]
    )  # fmt: skip
    assert args.pacing_action == "set" and args.json
    assert cli_pacing.body(args) == {
        "pacing": {"timezone": "Asia/Tokyo", "min_gap_seconds": 20.0,
                   "daily_caps": {"fast": None}}
    }  # fmt: skip
    assert build_parser().parse_args(["pool", "pacing"]).pacing_action is None
    assert build_parser().parse_args(["pool", "pacing", "clear"]).pacing_action == "clear"
    shown = dict(cli_pacing.profile_rows(WHOLE))
    assert shown["daily caps"] == "fast 100, relax none (children count: yes)"
    assert shown["gap"] == "60 s"  # no jitter: not "+ up to 0 s"
    assert pool_cli.pool_pacing_set  # the handlers exist for `set` and `clear`


def test_the_cli_says_where_an_accounts_pacing_comes_from() -> None:
    inherited = {"pacing": WHOLE,
                 "pacing_source": {"own": {"tier": "backup"}, "inherited": ["timezone"],
                                   "opted_out": False}}  # fmt: skip
    assert cli_pacing.source(inherited) == "own: tier; from the pool's default: timezone"
    off = {"pacing": None, "pacing_source": {"own": {}, "inherited": [], "opted_out": True}}
    assert cli_pacing.source(off) == "none (opted out of the pool's default)"
