"""The pool file: parsing with line-numbered errors, export round trip, apply and dry run."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.accounts import AccountSpec
from routing.catalog import Catalog
from routing.errors import PoolFileError
from routing.model import PLANS, AccountState, Plan, Setting, Strategy
from routing.pacefile import KEYS
from routing.pacing import Pacing, Tier
from routing.pooldiff import describe
from routing.poolfile import (
    _ACCOUNT_FIELDS,
    FILE_STATES,
    PoolChange,
    PoolFile,
    dump_pool,
    parse_pool_file,
)
from routing.results import Outcome
from routing.store import PoolStore
from tests.routing.helpers import reserved, root

EXAMPLE = """\
strategy: weighted
accounts:
  - bot_id: 1201
    name: studio-a
    plan: pro
    setting: fast
    fast_hours_left: 12.5
    renews_at: 2025-07-01T00:00:00Z
    fast_slots: 10
    relax_slots: 2
    weight: 3
    tags: [studio, eu]
    state: active
  - bot_id: 1202
    plan: basic
"""


def test_parse_reads_every_field_and_leaves_defaults_to_the_plan() -> None:
    pool = parse_pool_file(EXAMPLE)
    assert pool.strategy is Strategy.WEIGHTED
    first, second = pool.accounts
    assert first == AccountSpec(
        bot_id=1201,
        name="studio-a",
        plan=Plan.PRO,
        setting=Setting.FAST,
        fast_seconds_left=45_000,
        renews_at=datetime(2025, 7, 1, tzinfo=UTC).timestamp(),
        fast_slots=10,
        relax_slots=2,
        weight=3,
        tags=("studio", "eu"),
        state=AccountState.ACTIVE,
    )
    assert second == AccountSpec(bot_id=1202, plan=Plan.BASIC)
    assert second.effective_fast_seconds == PLANS[Plan.BASIC].fast_seconds_per_month
    assert (second.effective_fast_slots, second.effective_relax_slots) == (3, 0)


def test_renewal_dates_accept_strings_dates_and_naive_times_as_utc() -> None:
    text = (
        "accounts:\n  - {bot_id: 1, renews_at: '2025-07-01T02:00:00+02:00'}\n"
        "  - {bot_id: 2, renews_at: 2025-07-01}\n"
        "  - {bot_id: 3, renews_at: 2025-07-01 00:00:00}\n"
    )
    expected = datetime(2025, 7, 1, tzinfo=UTC).timestamp()
    assert [a.renews_at for a in parse_pool_file(text).accounts] == [expected] * 3


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("accounts:\n  - bot_id: 1\n    colour: red\n", 3, "unknown account key 'colour'"),
        ("accounts:\n  - bot_id: 1\n    plan: gold\n", 3, "expected one of basic"),
        ("accounts:\n  - bot_id: 1\n  - bot_id: 1\n", 3, "bot_id 1 listed twice"),
        ("accounts:\n  - name: a\n", 2, "needs a bot_id"),
        ("accounts:\n  - bot_id: true\n", 2, "whole number"),
        ("accounts:\n  - bot_id: 1\n    weight: 0\n", 3, "whole number from 1"),
        ("accounts:\n  - bot_id: 1\n    fast_slots: 2.5\n", 3, "whole number"),
        ("accounts:\n  - bot_id: 1\n    fast_hours_left: -1\n", 3, "hours"),
        ("accounts:\n  - bot_id: 1\n    state: cooling\n", 3, "expected one of active"),
        ("accounts:\n  - bot_id: 1\n    renews_at: soon\n", 3, "ISO 8601"),
        ("accounts:\n  - bot_id: 1\n    tags: eu\n", 3, "list of tags"),
        ("accounts:\n  - bot_id: 1\n    bot_id: 2\n", 3, "given twice"),
        ("accounts:\n  - bot_id: 1\n    plan: basic\n    relax_slots: 2\n", 2, "no relax"),
        ("strategy: fastest\naccounts: []\n", 1, "expected one of least_busy"),
        ("accounts: []\nextra: 1\n", 2, "unknown key 'extra'"),
        ("strategy: least_busy\n", 1, "needs an 'accounts' list"),
        ("accounts: {}\n", 1, "list of accounts"),
        ("accounts:\n  - bot_id: [1\n", 3, "not valid YAML"),
        ("", 0, "empty"),
        ("pacing: {timezone: Mars/Base}\naccounts: []\n", 1, "unknown time zone"),
        ("accounts:\n  - bot_id: 1\n    pacing:\n      active_hours: [9-17]\n", 4, "window"),
        ("accounts:\n  - bot_id: 1\n    pacing: {tier: spare}\n", 3, "primary, backup"),
        ("accounts:\n  - bot_id: 1\n    pacing: {daily_caps: {turbo: 1}}\n", 3, "fast and relax"),
        ("accounts:\n  - bot_id: 1\n    pacing: {min_gap_seconds: -5}\n", 3, "seconds from 0"),
        ("accounts:\n  - bot_id: 1\n    pacing: {naps: 2}\n", 3, "unknown pacing key"),
        # found from outside: a time zone that is not text was a traceback (a 500 in the API)
        ("pacing: {timezone: 5}\naccounts: []\n", 1, "time zone name"),
        ("pacing:\n  timezone:\naccounts: []\n", 2, "time zone name"),  # left empty: null
        ("accounts:\n  - bot_id: 1\n    pacing: {timezone: 2026-01-01}\n", 3, "time zone"),
        ("accounts:\n  - bot_id: 1\n    pacing: {timezone: true}\n", 3, "time zone name"),
        ("pacing: {daily_caps: {fast: 1000001}}\naccounts: []\n", 1, "0 to 1000000"),
        (  # as many windows as the API takes, no more (25 made an apply stall the gateway)
            "pacing: {active_hours: [" + ", ".join(["01:00-02:00"] * 25) + "]}\naccounts: []\n",
            1,
            "at most 24 windows",
        ),
    ],
)
def test_bad_files_name_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(PoolFileError) as caught:
        parse_pool_file(text)
    assert caught.value.line == line
    assert reason in caught.value.reason


specs = st.builds(
    AccountSpec,
    bot_id=st.integers(1, 10**12),
    name=st.text(max_size=20),
    plan=st.sampled_from([Plan.STANDARD, Plan.PRO, Plan.MEGA]),
    setting=st.sampled_from(list(Setting)),
    fast_seconds_left=st.integers(0, 10**8),
    renews_at=st.none() | st.integers(0, 4_000_000_000_000).map(lambda ms: ms / 1000),
    fast_slots=st.integers(0, 1000),
    relax_slots=st.integers(0, 1000),
    weight=st.integers(1, 1000),
    tags=st.lists(st.text(max_size=10), max_size=4).map(tuple),
    state=st.sampled_from(FILE_STATES),
    pacing=st.none()
    | st.builds(
        Pacing,
        timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
        active_hours=st.sampled_from([(), ("09:00-23:30",), ("22:00-06:00", "12:00-13:00")]),
        actions_only_hours=st.sampled_from([(), ("23:30-24:00",)]),
        fast_cap=st.none() | st.integers(0, 1000),
        relax_cap=st.none() | st.integers(0, 1000),
        caps_count_children=st.booleans(),
        min_gap_seconds=st.sampled_from([0.0, 12.5, 600.0]),
        gap_jitter_seconds=st.sampled_from([0.0, 30.0]),
        tier=st.sampled_from(list(Tier)),
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(Strategy)), st.lists(specs, max_size=5, unique_by=lambda s: s.bot_id))
def test_dump_reads_back_to_the_same_definitions(
    strategy: Strategy, accounts: list[AccountSpec]
) -> None:
    pool = parse_pool_file(dump_pool(strategy, accounts))
    assert pool == PoolFile(strategy, tuple(sorted(accounts, key=lambda a: a.bot_id)))


async def test_export_reads_back_to_what_was_applied(store: PoolStore, catalog: Catalog) -> None:
    pool = parse_pool_file(EXAMPLE)
    await catalog.apply_pool(pool)
    reserved(await root(store, "t1"))  # live figures are not definitions
    exported = parse_pool_file(await catalog.export_pool())
    assert exported.strategy is pool.strategy
    assert [_effective(a) for a in exported.accounts] == [_effective(a) for a in pool.accounts]
    assert all(c.action == "unchanged" for c in await catalog.apply_pool(exported))


PACED = """\
pacing:
  timezone: Europe/Berlin
  active_hours: [09:00-23:30]
  daily_caps: {fast: 150}
  min_gap_seconds: 20
  gap_jitter_seconds: 40
accounts:
  - bot_id: 1
  - bot_id: 2
    pacing:
      tier: backup
      daily_caps: {fast: null, relax: 10}
      caps_count_children: false
"""


def test_the_pool_default_applies_to_every_account_and_each_may_override_it() -> None:
    first, second = parse_pool_file(PACED).accounts
    default = Pacing(
        timezone="Europe/Berlin",
        active_hours=("09:00-23:30",),
        fast_cap=150,
        min_gap_seconds=20,
        gap_jitter_seconds=40,
    )
    assert first.pacing == default
    assert second.pacing == replace(
        default, tier=Tier.BACKUP, fast_cap=None, relax_cap=10, caps_count_children=False
    )
    assert parse_pool_file("accounts:\n  - bot_id: 1\n").accounts[0].pacing is None


async def test_pacing_survives_export_and_a_changed_profile_is_a_change(
    store: PoolStore,
    catalog: Catalog,
) -> None:
    await catalog.apply_pool(parse_pool_file(PACED))
    exported = parse_pool_file(await catalog.export_pool())
    assert [a.pacing for a in exported.accounts] == [
        a.pacing for a in parse_pool_file(PACED).accounts
    ]
    assert all(c.action == "unchanged" for c in await catalog.apply_pool(exported))
    changed = await catalog.apply_pool(parse_pool_file(PACED.replace("150", "100")))
    assert [c for c in changed if c.action != "unchanged"] == [
        PoolChange(None, "updated", ("pacing",)),  # the default; account 2 overrides the cap
        PoolChange(1, "updated", ("daily_caps",)),
    ]
    # found from outside: the logs said {"from": null, "to": null} for an account's keys
    before = {a.bot_id: a for a in await catalog.list_accounts()}
    file = parse_pool_file(PACED.replace("150", "90"))
    strategy = str(await catalog.get_strategy())
    change = next(c for c in await catalog.apply_pool(file) if c.bot_id == 1)
    ((name, was, now),) = describe(change, before, file, strategy)
    assert name == "daily_caps" and was["fast"] == 100 and now["fast"] == 90


def _effective(spec: AccountSpec) -> tuple[object, ...]:
    return (
        spec.bot_id,
        spec.name,
        spec.plan,
        spec.setting,
        spec.effective_fast_seconds,
        spec.renews_at,
        spec.effective_fast_slots,
        spec.effective_relax_slots,
        spec.weight,
        spec.tags,
        spec.state,
    )


async def test_apply_pool_makes_the_pool_match_the_file(store: PoolStore, catalog: Catalog) -> None:
    first = parse_pool_file(
        "accounts:\n  - {bot_id: 1, plan: pro}\n  - {bot_id: 2}\n  - {bot_id: 3}\n"
    )
    changes = await catalog.apply_pool(first)
    assert changes == [PoolChange(b, "created") for b in (1, 2, 3)]
    reserved(await root(store, "t1", exclude=[1, 3]))  # account 2 has a task in flight
    second = parse_pool_file(
        "strategy: most_fast_left\naccounts:\n  - {bot_id: 1, plan: pro, weight: 2}\n"
    )
    planned = await catalog.apply_pool(second, dry_run=True)
    assert planned == [
        PoolChange(None, "updated", ("strategy",)),
        PoolChange(1, "updated", ("weight",)),
        PoolChange(2, "draining"),
        PoolChange(3, "removed"),
    ]
    assert len(await catalog.list_accounts()) == 3  # the dry run changed nothing
    assert await catalog.get_strategy() is Strategy.LEAST_BUSY
    assert await catalog.apply_pool(second) == planned
    accounts = {a.bot_id: a for a in await catalog.list_accounts()}
    assert sorted(accounts) == [1, 2]
    assert accounts[2].state is AccountState.DRAINING
    assert accounts[2].state_reason == "absent_from_pool_file"
    assert await catalog.get_strategy() is Strategy.MOST_FAST_LEFT
    await store.settle("t1", Outcome.COMPLETED)
    assert (await catalog.apply_pool(second))[-1] == PoolChange(2, "removed")
    assert [a.bot_id for a in await catalog.list_accounts()] == [1]


def test_control_characters_are_a_pool_file_error() -> None:
    with pytest.raises(PoolFileError, match="not valid YAML"):
        parse_pool_file("accounts:\n  - {bot_id: 1}\x07\n")


def test_a_negative_zero_gap_is_read_and_written_as_zero() -> None:
    """Found from outside: `-0.0` was kept, and exported as `-0.0`."""
    text = (
        "pacing: {min_gap_seconds: -0.0}\n"
        "accounts:\n  - {bot_id: 1, pacing: {gap_jitter_seconds: -0.0}}\n"
    )
    parsed = parse_pool_file(text)
    assert parsed.pacing is not None and math.copysign(1, parsed.pacing.min_gap_seconds) == 1
    own = parsed.accounts[0].own_pacing
    assert own is not None and own.keys is not None
    assert math.copysign(1, own.keys["gap_jitter_seconds"]) == 1
    assert math.copysign(1, Pacing(min_gap_seconds=-0.0).min_gap_seconds) == 1


async def test_a_created_unpaced_account_lists_no_pacing_keys(catalog: Catalog) -> None:
    """Found from outside: its log line listed `pacing` and every pacing key as
    {"from": null, "to": null}."""
    file = parse_pool_file("accounts:\n  - {bot_id: 9, plan: pro}\n")
    (change,) = await catalog.apply_pool(file)
    described = describe(change, {}, file, "least_busy")
    names = {name for name, _, _ in described}
    assert change.action == "created" and "plan" in names and "weight" in names
    assert not names & {"pacing", "timezone", "min_gap_seconds", "daily_caps"}
    assert all(new is not None for _, _, new in described)


PACING_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.dates()
    | st.sampled_from(["09:00-17:00", "22:00-06:00", "UTC", "Asia/Kolkata", "backup", -0.0]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)  # fmt: skip
PACING_BLOCKS = st.none() | PACING_VALUES | st.dictionaries(
    st.sampled_from([*KEYS, "naps"]),
    PACING_VALUES
    | st.fixed_dictionaries({}, optional={"fast": PACING_VALUES, "relax": PACING_VALUES}),
    max_size=4,
)  # fmt: skip


ACCOUNT_VALUES = st.dictionaries(
    st.sampled_from([*_ACCOUNT_FIELDS, "colour"]), PACING_VALUES, max_size=4
)


@settings(max_examples=300, deadline=None)
@given(default=PACING_BLOCKS, own=PACING_BLOCKS, fields=ACCOUNT_VALUES, strategy=PACING_VALUES)
def test_any_pacing_block_loads_or_names_its_line(
    default: object, own: object, fields: dict[str, object], strategy: object
) -> None:
    """Whatever YAML a `pacing` block (or an account's other keys) holds, the file loads or is
    a PoolFileError naming the line: never another exception (found from outside: a time zone
    that was a number, a date or null was a TypeError, a traceback in the CLI and a 500 in the
    API)."""
    account = {"bot_id": 1, "plan": "pro", "pacing": own, **fields}
    doc = {"strategy": strategy, "pacing": default, "accounts": [account]}
    try:
        parse_pool_file(yaml.safe_dump(doc))
    except PoolFileError as exc:
        assert exc.line >= 1 or "pacing" not in str(exc), exc
