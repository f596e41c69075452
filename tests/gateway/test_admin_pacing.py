"""Pacing through the admin API: PUT and PATCH take a `pacing` object, the account view shows
the profile, today's counts against the caps, the next window change and when the account is
next ready, and the listing says whether each account is available now or why not."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from gateway.admin.pacing import pacing_view
from gateway.admin.schemas import iso
from gateway.cli import accounts as admin_cli
from gateway.cli import pacing as cli_pacing
from gateway.cli import pool as pool_cli
from gateway.cli.main import build_parser
from routing.accounts import AccountStatus, PaceStatus
from routing.model import AccountState, Mode, Plan, Setting
from routing.pacing import Pacing
from routing.poolfile import parse_pool_file
from tests.gateway.test_admin import ADMIN, call, data, error
from tests.harness import harness

PACING = {
    "timezone": "Europe/Berlin",
    "active_hours": ["00:00-24:00"],
    "daily_caps": {"fast": 1, "relax": 5},
    "min_gap_seconds": 30,
}


async def test_put_and_patch_set_the_profile_and_the_view_shows_where_it_stands(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        body = {"name": "paced", "plan": "pro", "pacing": PACING}
        account = data(await call(h, "PUT", "/accounts/2001", body=body), 201)["account"]
        assert account["pacing"] == {
            "timezone": "Europe/Berlin",
            "active_hours": ["00:00-24:00"],
            "actions_only_hours": [],
            "daily_caps": {"fast": 1, "relax": 5},
            "caps_count_children": True,
            "min_gap_seconds": 30.0,
            "gap_jitter_seconds": 0.0,
            "tier": "primary",
        }
        assert account["pace"]["phase"] == "active" and account["pace"]["today"] == {
            "fast": 0,
            "relax": 0,
        }
        assert account["available"] == {"now": True, "why_not": ""}
        await h.gate.store.reserve_root(
            "t1", Mode.FAST, 60, client_id="c", lease_seconds=60, staged_limit=5,
            staged_timeout=60, exclude=(1001, 1002, 1003, 1004))  # fmt: skip
        shown = data(await call(h, "GET", "/accounts/2001"))
        assert shown["pace"]["today"] == {"fast": 1, "relax": 0}
        assert shown["pace"]["caps"] == {"fast": 1, "relax": 5}
        assert shown["pace"]["held"] == "paced:gap"
        assert shown["pace"]["ready_at"] == shown["pace"]["gap_until"]
        assert shown["available"]["why_not"].startswith("paced:gap until ")
        assert shown["pace"]["day_ends"].endswith(":00:00Z")

        patched = data(
            await call(h, "PATCH", "/accounts/2001", body={"pacing": {"tier": "backup"}})
        )["account"]
        assert patched["pacing"]["tier"] == "backup"
        assert patched["pacing"]["daily_caps"] == {"fast": 1, "relax": 5}  # the rest stays
        assert patched["pace"]["today"] == {"fast": 1, "relax": 0}  # counts stay
        listed = data(await call(h, "GET", "/accounts"))["accounts"]
        assert [a["available"]["now"] for a in listed] == [True] * 4 + [False]

        cleared = data(await call(h, "PATCH", "/accounts/2001", body={"pacing": None}))
        assert cleared["account"]["pacing"] is None and cleared["account"]["pace"] is None


async def test_an_account_at_one_of_its_caps_is_shown_available_for_the_other_only(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        body = {"name": "capped", "plan": "pro", "pacing": {**PACING, "min_gap_seconds": 0}}
        data(await call(h, "PUT", "/accounts/2001", body=body), 201)
        await h.gate.store.reserve_root(
            "t1", Mode.FAST, 60, client_id="c", lease_seconds=60, staged_limit=5,
            staged_timeout=60, exclude=(1001, 1002, 1003, 1004))  # fmt: skip
        shown = data(await call(h, "GET", "/accounts/2001"))
        assert shown["available"]["now"] is True
        assert shown["available"]["only"].startswith("relax only: fast cap reached until ")
        assert cli_pacing.available(shown) == shown["available"]["only"]


async def test_bad_profiles_are_400_naming_the_field(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        for pacing, field in (
            ({"timezone": "Mars/Base"}, "pacing.timezone"),
            ({"active_hours": ["9:00-17:00"]}, "pacing.active_hours.0"),
            ({"active_hours": ["09:00-09:00"]}, "pacing.active_hours.0"),
            ({"active_hours": ["09:00-12:00", "25:00-26:00"]}, "pacing.active_hours.1"),
            ({"actions_only_hours": ["12:00-24:01"]}, "pacing.actions_only_hours.0"),
            ({"tier": "spare"}, "pacing.tier"),
            ({"min_gap_seconds": -1}, "pacing.min_gap_seconds"),
            ({"naps": 1}, "pacing.naps"),
            ({"min_gap_seconds": float("nan")}, "pacing.min_gap_seconds"),  # a JSON NaN
            ({"gap_jitter_seconds": float("inf")}, "pacing.gap_jitter_seconds"),
        ):
            text = json.dumps(
                {"plan": "pro", "pacing": pacing}
            )  # NaN, Infinity as Python writes them
            answer = await call(h, "PUT", "/accounts/2001", content=text.encode(),
                                headers={**ADMIN, "content-type": "application/json"})  # fmt: skip
            got = error(answer, 400)
            assert got["type"] == "invalid_request" and got["field"] == field, (pacing, got)
            if "gap" in field:  # said plainly, not as a bound NaN fails
                assert "finite" in answer.json()["message"] or "-1" in str(pacing), answer.text
            if pacing == {"active_hours": ["9:00-17:00"]}:  # what a window looks like
                assert "expected a window like 09:00-23:30" in answer.json()["message"]


def test_the_cli_options_become_the_pacing_object() -> None:
    args = build_parser().parse_args(
        ["accounts", "set", "7", "--timezone", "Asia/Tokyo", "--active-hours",
         "09:00-12:00,13:00-18:00", "--fast-cap", "40", "--relax-cap", "none",
         "--min-gap", "20", "--tier", "backup", "--caps-count-children", "no"]
    )  # fmt: skip
    assert admin_cli._definition(args) == {
        "pacing": {
            "timezone": "Asia/Tokyo",
            "active_hours": ["09:00-12:00", "13:00-18:00"],
            "daily_caps": {"fast": 40, "relax": None},
            "caps_count_children": False,
            "min_gap_seconds": 20.0,
            "tier": "backup",
        }
    }
    assert admin_cli._definition(
        build_parser().parse_args(["accounts", "set", "7", "--weight", "2"])
    ) == {"weight": 2}
    off = build_parser().parse_args(["accounts", "set", "7", "--no-pacing"])
    assert admin_cli._definition(off) == {"pacing": None}
    with pytest.raises(SystemExit):  # -1 is not `none`: a typo never lifts a cap
        build_parser().parse_args(["accounts", "set", "7", "--fast-cap", "-1"])
    with pytest.raises(SystemExit):  # a trailing comma: an empty window, not dropped
        build_parser().parse_args(["accounts", "set", "7", "--active-hours", "22:00-06:00,"])
    always = build_parser().parse_args(["accounts", "set", "7", "--active-hours", ""])
    assert admin_cli._definition(always) == {"pacing": {"active_hours": []}}


@pytest.mark.parametrize(
    "argv",
    [
        ["accounts", "set", "7", "--min-gap", "nan"],
        ["accounts", "set", "7", "--min-gap", "inf"],
        ["accounts", "add", "7", "--gap-jitter=-inf"],
        ["accounts", "set", "7", "--fast-hours", "nan"],
        ["pool", "pacing", "set", "--gap-jitter", "inf"],
        ["accounts", "list", "--timeout", "nan"],
        ["accounts", "state", "7", "cooling", "--for", "9" * 400 + "s"],
    ],
)
def test_non_finite_numbers_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Found from outside: they went on to a traceback (JSON has no nan or inf)."""
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert "finite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["accounts", "set", "7", "--min-gap", "-5"], "from 0 to 86400"),
        (["pool", "pacing", "set", "--gap-jitter", "90000"], "from 0 to 86400"),
        (["accounts", "set", "7", "--active-hours", "9:00-17:00"], "like 09:00-23:30"),
        (["accounts", "add", "7", "--actions-only-hours", "10:00-10:00"], "different end"),
        (["pool", "pacing", "set", "--active-hours", "08:00-12:00,25:00-26:00"], "time of day"),
    ],
)
def test_out_of_range_pacing_options_are_usage_errors(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found from outside: the server refused them after the call was made (a 400 naming the
    key); the command line says so before anything is sent, in the server's words."""
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err


async def test_the_cli_shows_availability_and_the_profile(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        body = {"plan": "pro", "pacing": {**PACING, "daily_caps": {"fast": 0, "relax": 0}}}
        account = data(await call(h, "PUT", "/accounts/2001", body=body), 201)["account"]
        plain = data(await call(h, "GET", "/accounts/1001"))
    assert cli_pacing.available(account).startswith("paced:daily_cap until ")
    assert cli_pacing.available(plain) == "yes"
    shown = dict(cli_pacing.rows(account))
    assert shown["today"].startswith("fast 0/0, relax 0/0")
    assert shown["available"] == cli_pacing.available(account)
    assert shown["next ready"] == account["pace"]["day_ends"]
    paused = {**account, "state": "paused", "state_until": None}
    assert cli_pacing.next_ready(paused, account["pace"]) == "not while paused"
    cooling = {**account, "state": "cooling", "state_until": "2999-01-01T00:00:00Z"}
    assert dict(cli_pacing.rows(cooling))["next ready"] == (
        "when cooling ends (2999-01-01T00:00:00Z)"
    )
    free = {**account["pace"], "held": "", "ready_at": None}
    assert cli_pacing.next_ready(account, free) == "now"
    assert dict(cli_pacing.rows(plain)) == {"available": "yes"}


async def test_a_cap_on_the_only_class_an_account_can_run_makes_it_unavailable(
    redis: Redis, prefix: str
) -> None:
    """Found from outside: a Basic account (no relax) at its fast cap was listed as available
    for "relax only"; so was an account without fast time at its relax cap (its fast work
    runs relax). A Pro account at its fast cap still takes relax."""
    async with harness(redis, prefix) as h:
        capped = {"fast": 0, "relax": None}
        basic = {"plan": "basic", "pacing": {"daily_caps": capped}}
        view = data(await call(h, "PUT", "/accounts/2001", body=basic), 201)["account"]
        assert view["available"]["now"] is False and "only" not in view["available"]
        assert view["available"]["why_not"].startswith("paced:daily_cap until ")
        dry = {"plan": "pro", "fast_hours_left": 0, "pacing": {"daily_caps": {"relax": 0}}}
        view = data(await call(h, "PUT", "/accounts/2002", body=dry), 201)["account"]
        assert view["available"]["now"] is False
        pro = {"plan": "pro", "pacing": {"daily_caps": capped}}
        view = data(await call(h, "PUT", "/accounts/2003", body=pro), 201)["account"]
        assert view["available"]["now"] is True
        assert view["available"]["only"].startswith("relax only: fast cap reached until ")


async def test_accounts_show_says_opted_out_and_always_active(redis: Redis, prefix: str) -> None:
    """Found from outside: an account opted out of the pool's default printed no pacing line
    at all (as if never paced), and an always-active one `active until - (then to be
    planned)`."""
    async with harness(redis, prefix) as h:
        body = {"plan": "pro", "pacing": None}
        out = data(await call(h, "PUT", "/accounts/2001", body=body), 201)["account"]
        shown = dict(cli_pacing.rows(out))
        assert shown["pacing from"].startswith("none (opted out")
        plain = data(await call(h, "GET", "/accounts/1001"))
        assert "pacing from" not in dict(cli_pacing.rows(plain))  # never paced: nothing to say
        body = {"plan": "pro", "pacing": {"min_gap_seconds": 5}}
        always = data(await call(h, "PUT", "/accounts/2002", body=body), 201)["account"]
        assert dict(cli_pacing.rows(always))["phase"] == "active (always)"
        hours = {"plan": "pro", "pacing": {"active_hours": ["00:00-12:00", "12:00-23:00"]}}
        timed = data(await call(h, "PUT", "/accounts/2003", body=hours), 201)["account"]
        assert dict(cli_pacing.rows(timed))["phase"].startswith(f"{timed['pace']['phase']} until ")


async def test_a_patch_that_changes_nothing_answers_unchanged(redis: Redis, prefix: str) -> None:
    """Found from outside: `PATCH {"pacing": {}}` answered `updated` and changed nothing (an
    account inheriting the default went on inheriting it)."""
    async with harness(redis, prefix) as h:
        before = data(await call(h, "GET", "/accounts/1001"))
        got = data(await call(h, "PATCH", "/accounts/1001", body={"pacing": {}}))
        assert got["action"] == "unchanged"
        assert got["account"]["pacing_source"] == before["pacing_source"]
        got = data(await call(h, "PATCH", "/accounts/1001", body={"weight": before["weight"]}))
        assert got["action"] == "unchanged"
        got = data(await call(h, "PATCH", "/accounts/1001", body={"weight": 7}))
        assert got["action"] == "updated"


async def test_next_ready_is_the_later_of_a_cooling_end_and_pacing(
    redis: Redis, prefix: str
) -> None:
    """Found from outside: a cooling account whose hours start tomorrow showed next ready at
    the end of its cooling; and a Basic account at its fast cap showed `next ready: now` while
    no work could go to it."""
    async with harness(redis, prefix) as h:
        body = {"plan": "basic", "pacing": {"daily_caps": {"fast": 0}}}
        basic = data(await call(h, "PUT", "/accounts/2001", body=body), 201)["account"]
        assert basic["pace"]["held"] == "paced:daily_cap"
        assert basic["pace"]["ready_at"] == basic["pace"]["day_ends"]
        assert dict(cli_pacing.rows(basic))["next ready"] == basic["pace"]["day_ends"]
    cooling = {**basic, "state": "cooling", "state_until": "2000-01-01T00:00:00Z"}
    shown = dict(cli_pacing.rows(cooling))["next ready"]
    assert shown.startswith(basic["pace"]["day_ends"]) and "cooling until 2000" in shown
    soon = {**cooling, "state_until": "2999-01-01T00:00:00Z"}
    assert dict(cli_pacing.rows(soon))["next ready"] == "when cooling ends (2999-01-01T00:00:00Z)"


def test_instants_pacing_waits_for_are_rounded_up() -> None:
    """Found from outside: a gap ending at :21.069 showed `until ...:21Z`, a time already
    past while the account was still held."""
    pace = PaceStatus("active", None, None, 0, 0, 86400.0, 21.069, "paced:gap", 21.069)
    account = AccountStatus(
        bot_id=1, name="", plan=Plan.PRO, setting=Setting.FAST, declared_setting=Setting.FAST,
        state=AccountState.ACTIVE, state_reason="", state_until=None, fast_seconds_left=60,
        fast_seconds_reserved=0, fast_slots=1, relax_slots=1, fast_in_flight=0,
        relax_in_flight=0, weight=1, tags=(), renews_at=None, pacing=Pacing(min_gap_seconds=3),
        pace=pace,
    )  # fmt: skip
    view = pacing_view(account, iso)
    assert view["pace"]["gap_until"] == "1970-01-01T00:00:22Z"
    assert view["available"]["why_not"] == "paced:gap until 1970-01-01T00:00:22Z"


def test_an_apply_that_leaves_an_account_unpaced_says_so() -> None:
    """Found from outside: a `pacing:` block whose keys were all commented out is YAML's
    null (an opt-out), and the dry run only listed the keys that changed."""
    text = ("pacing: {min_gap_seconds: 5}\naccounts:\n  - bot_id: 1\n    pacing:\n"
            "  - {bot_id: 2}\n")  # fmt: skip
    pool = parse_pool_file(text)
    change = {"bot_id": 1, "action": "updated", "fields": ["timezone", "min_gap_seconds"]}
    assert "now unpaced: `pacing:` is null" in pool_cli._unpaced(pool, change)
    assert pool_cli._unpaced(pool, {**change, "bot_id": 2}) == ""  # paced by the default
    assert pool_cli._unpaced(pool, {**change, "fields": ["weight"]}) == ""
    unpaced = parse_pool_file("accounts:\n  - bot_id: 1\n")  # the default removed
    assert pool_cli._unpaced(unpaced, change) == " (now unpaced)"
